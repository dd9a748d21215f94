"""azml-secret-values: secrets by value (and by name) in every input of every
resource, on copies of the recorded plans, with the SDK's own argument types;
and azml-deployment-no-plaintext-secrets, which keeps what is particular to
ML deployments (a Pulumi secret in their environment variables)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from pulumi_policy import ResourceValidationArgs, Secret

from azml.plan.model import Plan, PlannedResource

from .test_policy_pack import (
    BATCH_DEPLOYMENT,
    ONLINE_DEPLOYMENT,
    ROLE_ASSIGNMENT,
    ROUTING,
    SCHEDULE,
    VAULT,
    POLICIES,
    _options,
    evaluate,
    one,
    sdk_props,
)

from azml_policies.secret_detectors import DETECTOR_IDS  # noqa: E402  (test_policy_pack puts policies/ on sys.path)
from azml_policies.secret_values import walk  # noqa: E402
from azml_policies.values import normalize  # noqa: E402

WEB_APP = "azure-native:web:WebApp"
POLICY = "azml-secret-values"
DEPLOYMENT_POLICY = "azml-deployment-no-plaintext-secrets"
SECRET_POLICIES = {POLICY, DEPLOYMENT_POLICY}

# --------------------------------------------------------------------------- realistic secrets

# The part of each value that is the secret: never in a message.
STORAGE_KEY = "q7Z3vT0pXk2mN9bR4wYc8sLf1hJd6gKa5eUi0oPn3yMx7tBv2rQw9zAe4sDf6gHj8kLm1nBv5cXz3aSd7fGh0jK=="
SAS_SIG = "Xq4mZ9pL2vR7tK1wN8bY3cF6hJ0dG5sA%2Bk%3D"
PASSWORD = "Tr0ub4dor&3-Horse!"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvuNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s"
GITHUB_TOKEN = "ghp_R8q7P6o5N4m3L2k1J0i9H8g7F6e5D4c3B2a1"
ENTRA_SECRET = "Kx28Q~Wm3.nB7-vC1_xZ9~lK4jH6gF2dS5aP0oI8"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im5PbzNaRHJPRFhFSzFqS1doWHNsSFJfS1hFZyJ9"
    ".eyJhdWQiOiJodHRwczovL21sLmF6dXJlLmNvbSIsImlzcyI6Imh0dHBzOi8vc3RzLndpbmRvd3MubmV0LyIsIm9pZCI6IjEyMyJ9"
    ".VGhpc0lzTm90QVJlYWxTaWduYXR1cmVCdXRJdExvb2tzTGlrZU9uZUZvckFUZXN0"
)


@dataclass(frozen=True)
class Sample:
    value: str  # what a careless change would put in an input
    secret: str  # the part that must not appear in any message


SAMPLES: dict[str, Sample] = {
    "private-key": Sample(f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n", PEM_BODY[:40]),
    "sas-token": Sample(
        "https://stazmlprd3d136e.blob.core.windows.net/training-data/credit.csv"
        f"?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2026-01-01T00:00:00Z&st=2025-01-01T00:00:00Z&spr=https&sig={SAS_SIG}",
        SAS_SIG,
    ),
    "connection-string-key": Sample(
        f"DefaultEndpointsProtocol=https;AccountName=stazmlprd3d136e;AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net",
        STORAGE_KEY[:24],
    ),
    "connection-string-password": Sample(
        f"Server=tcp:sql-azml.database.windows.net,1433;Database=features;User ID=scorer;Password={PASSWORD};Encrypt=True",
        PASSWORD,
    ),
    "url-credentials": Sample(f"postgresql://scorer:{PASSWORD}@pg-azml.postgres.database.azure.com:5432/features", PASSWORD),
    "github-token": Sample(GITHUB_TOKEN, GITHUB_TOKEN[4:]),
    "entra-client-secret": Sample(ENTRA_SECRET, ENTRA_SECRET[6:]),
    "jwt": Sample(f"Bearer {JWT}", JWT.split(".")[2]),
}
NEUTRAL_NAME = "UPSTREAM_SOURCE"  # a setting name that says nothing about secrets


def test_every_detector_has_a_sample() -> None:
    assert set(SAMPLES) == set(DETECTOR_IDS)


# --------------------------------------------------------------------------- places


@dataclass(frozen=True)
class Place:
    type: str
    name: str | None
    path: Callable[[str], str]  # how the message names the property, given the setting's name
    put: Callable[[PlannedResource, str, Any], None]


def _env_var(resource: PlannedResource, name: str, value: Any) -> None:
    resource.inputs["properties"]["environmentVariables"][name] = value


def _app_setting(resource: PlannedResource, name: str, value: Any) -> None:
    resource.inputs["siteConfig"]["appSettings"].append({"name": name, "value": value})


def _tag(resource: PlannedResource, name: str, value: Any) -> None:
    resource.inputs["tags"][name] = value


PLACES: dict[str, Place] = {
    "deployment env var": Place(ONLINE_DEPLOYMENT, None, lambda n: f"properties.environmentVariables.{n}", _env_var),
    # The function app has 12 settings: a new one is the 13th.
    "function app setting": Place(WEB_APP, None, lambda n: f"siteConfig.appSettings[12].value ({n})", _app_setting),
    "tag": Place(VAULT, None, lambda n: f"tags.{n}", _tag),
}


def run(resource: PlannedResource, config: dict[str, Any] | None = None, *, raw: bool = False, policy: str = POLICY) -> list[str]:
    """The messages of one policy on one resource, with the SDK's argument
    types (``raw``: inputs handed over as they are, e.g. with ``Secret`` wrappers,
    as remediation receives them)."""
    props = resource.inputs if raw else sdk_props(resource.inputs)
    args = ResourceValidationArgs(resource.type, props, resource.urn, resource.name, _options(resource), None, config or {})
    messages: list[str] = []
    POLICIES[policy].validate(args, lambda message, urn=None: messages.append(message))
    return messages


def placed(plan: Plan, place: Place, name: str, value: Any) -> PlannedResource:
    resource = copy.deepcopy(one(plan, place.type, place.name))
    place.put(resource, name, value)
    return resource


# --------------------------------------------------------------------------- the untouched plans


def test_the_untouched_plans_hold_no_secret(any_plan: Plan) -> None:
    assert not [f for f in evaluate(any_plan, any_plan.stack) if f.policy in SECRET_POLICIES]
    # Not vacuous: the walk reads every string of every resource, the embedded
    # workbook document and the function's settings among them.
    walked = [(r.type, path) for r in any_plan.resources for path, _, _ in walk(normalize(sdk_props(r.inputs)))]
    assert len(walked) > 1000
    assert ("azure-native:applicationinsights:Workbook", ("serializedData",)) in walked
    assert (WEB_APP, ("siteConfig", "appSettings", 3, "value")) in walked  # the App Insights connection string


# --------------------------------------------------------------------------- each detector in each place


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
@pytest.mark.parametrize("detector", list(SAMPLES))
def test_each_detector_fires_in_each_place(detector: str, place: str, prod_plan: Plan) -> None:
    where, sample = PLACES[place], SAMPLES[detector]
    resource = placed(prod_plan, where, NEUTRAL_NAME, sample.value)
    (message,) = run(resource)
    assert f"[{detector}]" in message
    assert message.startswith(one(prod_plan, where.type, where.name).type.rsplit(":", 1)[-1] + " ")
    assert f"({resource.name})" in message and where.path(NEUTRAL_NAME).split(" (")[0] in message
    assert sample.secret not in message and "<redacted>" in message


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
@pytest.mark.parametrize("name", ["FEATURE_DB_CONN_STR", "FEATURE_DB_PASSWORD", "SCORER_CLIENT_SECRET", "VENDOR_API_KEY", "sasToken"])
def test_a_literal_in_a_setting_named_like_a_secret_fires(name: str, place: str, prod_plan: Plan) -> None:
    where = PLACES[place]
    literal = "vendor-7f3k-92mq-x81z"
    (message,) = run(placed(prod_plan, where, name, literal))
    assert "[secret-named-setting]" in message and name in message
    assert where.path(name).split(" (")[0] in message
    assert literal not in message and "(21 chars)" in message


# --------------------------------------------------------------------------- what passes


REFERENCES = [
    "@Microsoft.KeyVault(SecretUri=https://kv-azml-prd-3d136e.vault.azure.net/secrets/feature-db/)",
    "@Microsoft.KeyVault(VaultName=kv-azml-prd-3d136e;SecretName=feature-db)",
    "${{keyvault:https://kv-azml-prd-3d136e.vault.azure.net/secrets/feature-db/1}}",
    "${{azureml://connections/feature-db/credentials/password}}",
    "keyvaultref:https://kv-azml-prd-3d136e.vault.azure.net/secrets/feature-db,identityref:system",
    "azureml://connections/feature-db",
]


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
@pytest.mark.parametrize("value", ["[secret]", *REFERENCES], ids=["pulumi secret", *[r.split(":", 1)[0][:12] for r in REFERENCES]])
def test_pulumi_secrets_and_references_pass(value: str, place: str, prod_plan: Plan) -> None:
    assert run(placed(prod_plan, PLACES[place], "FEATURE_DB_PASSWORD", value)) == []


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
def test_secret_wrappers_pass_and_are_never_shown(place: str, prod_plan: Plan) -> None:
    """Remediation hands policies ``pulumi_policy.Secret`` wrappers: a marked
    secret is fine whatever it holds."""
    resource = placed(prod_plan, PLACES[place], "FEATURE_DB_PASSWORD", Secret(SAMPLES["connection-string-password"].value))
    PLACES[place].put(resource, NEUTRAL_NAME, Secret(SAMPLES["sas-token"].value))
    assert run(resource, raw=True) == []


@pytest.mark.parametrize(
    "name, value",
    [
        # Application Insights connection strings carry an identifier, not a key (azure-monitor/app/connection-strings).
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=c23a0aa9-b9c5-505d-b6af-3bb5919cf558;IngestionEndpoint=https://westeurope.in.applicationinsights.azure.com/"),
        ("AzureWebJobsStorage__accountName", "stfnazmlprd3d136e"),  # identity-based connection
        ("EVENTS_SAS_URL", "https://stfnazmlprd3d136e.queue.core.windows.net/retraining-events"),  # no signature
        ("ENCRYPTION_KEY", "https://kv-azml-prd-3d136e.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdef"),
        ("SIGNING_KEY", "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/keys/sign"),
        ("SSH_PUBLIC_KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl azml"),
        ("VERIFY_TOKEN", "true"),
        ("DB_PASSWORD", "<set in Key Vault>"),
        ("MODEL_SHA256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        ("RUN_ID", "3d136e0f-8a1b-4c2d-9e3f-0a1b2c3d4e5f"),
    ],
)
def test_values_that_carry_no_secret_pass(name: str, value: str, prod_plan: Plan) -> None:
    assert run(placed(prod_plan, PLACES["function app setting"], name, value)) == []


def test_a_signature_inside_a_reference_is_still_reported(prod_plan: Plan) -> None:
    value = f"azureml://datastores/training/paths/credit.csv?sv=2022-11-02&se=2026-01-01&sp=r&sig={SAS_SIG}"
    (message,) = run(placed(prod_plan, PLACES["deployment env var"], "TRAINING_DATA", value))
    assert "[sas-token]" in message and SAS_SIG not in message


def test_a_detector_can_be_switched_off_by_config(prod_plan: Plan) -> None:
    resource = placed(prod_plan, PLACES["tag"], NEUTRAL_NAME, SAMPLES["jwt"].value)
    assert run(resource, {"disabledDetectors": ["jwt"]}) == []
    assert len(run(resource)) == 1


# --------------------------------------------------------------------------- any other input


OTHER_PLACES: list[tuple[str, str, str | None, Callable[[dict[str, Any]], None], str]] = [
    (
        "batch deployment env var",
        BATCH_DEPLOYMENT,
        None,
        lambda inputs: inputs["properties"].setdefault("environmentVariables", {}).update(FEATURES_URL=SAMPLES["sas-token"].value),
        "properties.environmentVariables.FEATURES_URL",
    ),
    (
        "schedule description",
        SCHEDULE,
        None,
        lambda inputs: inputs["properties"].update(description=f"drift monitor; data at {SAMPLES['sas-token'].value}"),
        "properties.description",
    ),
    (
        "job definition",
        SCHEDULE,
        None,
        lambda inputs: inputs["properties"]["action"]["monitorDefinition"]["alertNotificationSettings"].update(
            webhookUrl=f"https://alerts:{PASSWORD}@hooks.example.com/azml"
        ),
        "properties.action.monitorDefinition.alertNotificationSettings.webhookUrl",
    ),
    (
        "role assignment description",
        ROLE_ASSIGNMENT,
        "ra-compute-registry-acrpull",
        lambda inputs: inputs.update(description=f"granted for the build bot ({GITHUB_TOKEN})"),
        "description",
    ),
    (
        "dynamic resource input",
        ROUTING,
        "credit-risk-endpoint-traffic",
        lambda inputs: inputs.update(clientSecret=ENTRA_SECRET),
        "clientSecret",
    ),
]


@pytest.mark.parametrize("case", OTHER_PLACES, ids=[c[0] for c in OTHER_PLACES])
def test_secrets_in_any_other_input_fire(case: tuple[Any, ...], prod_plan: Plan) -> None:
    _, type_token, name, mutate, path = case
    resource = copy.deepcopy(one(prod_plan, type_token, name))
    mutate(resource.inputs)
    (message,) = run(resource)
    assert f": {path} holds " in message
    assert all(secret not in message for secret in (SAS_SIG, PASSWORD, GITHUB_TOKEN[4:], ENTRA_SECRET[6:]))


# --------------------------------------------------------------------------- the whole pack: one home per finding


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda plan: _app_setting(one(plan, WEB_APP), "TRAINING_SAS_URL", SAMPLES["sas-token"].value), POLICY),
        (lambda plan: _tag(one(plan, VAULT), "bootstrap-key", SAMPLES["private-key"].value), POLICY),
        (lambda plan: _env_var(one(plan, ONLINE_DEPLOYMENT), "FEATURE_DB_PASSWORD", PASSWORD), POLICY),
        # A Pulumi secret is fine in the state, but Azure ML writes deployment
        # variables into the deployment definition (concept-secret-injection).
        (lambda plan: _env_var(one(plan, ONLINE_DEPLOYMENT), "FEATURE_DB_PASSWORD", "[secret]"), DEPLOYMENT_POLICY),
        (lambda plan: one(plan, ONLINE_DEPLOYMENT).inputs["properties"].update(environmentVariables="[secret]"), DEPLOYMENT_POLICY),
    ],
    ids=["sas in function setting", "private key in a tag", "literal password in deployment", "pulumi secret in deployment", "all variables secret"],
)
def test_one_policy_reports_each_finding(mutate: Callable[[Plan], None], expected: str, prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    before = set(evaluate(plan, "prod"))
    mutate(plan)
    new = [f for f in evaluate(plan, "prod") if f not in before]
    assert new and {f.policy for f in new} == {expected}, new
    assert all(PASSWORD not in f.message and SAS_SIG not in f.message and PEM_BODY[:20] not in f.message for f in new)


def test_deployment_secret_injection_references_pass_even_when_marked(prod_plan: Plan) -> None:
    resource = copy.deepcopy(one(prod_plan, ONLINE_DEPLOYMENT))
    _env_var(resource, "FEATURE_DB_PASSWORD", Secret(REFERENCES[2]))
    _env_var(resource, "OPENAI_API_KEY", Secret(REFERENCES[3]))
    assert run(resource, raw=True, policy=DEPLOYMENT_POLICY) == []
    _env_var(resource, "VENDOR_TOKEN", Secret("vendor-7f3k-92mq-x81z"))
    (message,) = run(resource, raw=True, policy=DEPLOYMENT_POLICY)
    assert "VENDOR_TOKEN holds a Pulumi secret" in message and "vendor-7f3k" not in message
