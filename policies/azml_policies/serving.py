"""Online and batch endpoints and their deployments: Entra ID auth, private,
no public egress, no secret values in environment variables (not even Pulumi
secrets: literal secrets in any input are secret_values.py's), lineage tags per model version.

(The serving checks that need the whole stack — approved images, instance
counts, traffic splits, alerts, monitors — are stack policies: see stack_monitoring.py and stack_serving.py.)
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import BATCH_DEPLOYMENT, BATCH_ENDPOINT, ONLINE_DEPLOYMENT, ONLINE_ENDPOINT, WORKSPACE
from .checks import Finding, PolicyInfo, exempt, expect_value, resource_policy, stack_policy
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, get, is_secret, one_of, same, show, unwrap

AUTH_MODES = ["AADToken", "AMLToken", "Key"]


def _auth_mode(endpoint: Resource, config: dict[str, Any]) -> Iterator[str]:
    mode = endpoint.get("properties.authMode")
    if mode is UNKNOWN or one_of(mode, config["allowedAuthModes"]):
        return
    yield f"{endpoint.label}: properties.authMode is {show(mode)}; must be one of {', '.join(config['allowedAuthModes'])}"


auth_mode = resource_policy(
    PolicyInfo(
        name="azml-endpoint-auth-mode",
        description="Endpoints authenticate callers with Entra ID tokens (no static keys).",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Set authMode: aad_token on the endpoint in azml:onlineEndpoints (properties.authMode: 'AADToken') "
            "and grant callers a role with the endpoint's score action."
        ),
        resource_types=(ONLINE_ENDPOINT, BATCH_ENDPOINT),
        properties=("properties.authMode",),
        config={
            "allowedAuthModes": {
                "type": "array",
                "items": {"type": "string", "enum": AUTH_MODES},
                "default": ["AADToken"],  # strictest (prod); dev also allows AMLToken in config.dev.json
                "description": "Auth modes an endpoint may use.",
            }
        },
        tags=("serving", "identity"),
    ),
    _auth_mode,
)

endpoint_public_network_disabled = resource_policy(
    PolicyInfo(
        name="azml-endpoint-public-network-disabled",
        description="Online endpoints score only through the workspace's private endpoint.",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation="Set publicNetworkAccess: false on the endpoint in azml:onlineEndpoints (properties.publicNetworkAccess: 'Disabled').",
        resource_types=(ONLINE_ENDPOINT,),
        properties=("properties.publicNetworkAccess",),
        tags=("serving", "network"),
    ),
    lambda endpoint, _config: expect_value(endpoint, "properties.publicNetworkAccess", "Disabled", azure_default="Enabled"),
)


def _managed_network(stack: Stack, deployment: Resource) -> Any:
    """The isolation mode of the deployment's workspace when it is in the
    stack (UNKNOWN while unknown), MISSING when the workspace is not."""
    for workspace in stack.of_type(WORKSPACE):
        if deployment in stack.children(workspace, (ONLINE_DEPLOYMENT,), "workspaceName"):
            return workspace.get("managedNetwork.isolationMode")
    return MISSING


def _egress(stack: Stack, config: dict[str, Any]) -> Finding:
    for deployment in stack.of_type(ONLINE_DEPLOYMENT):
        if exempt(config, deployment.name, deployment.arm_name):
            continue
        if same(deployment.get("properties.endpointComputeType"), "Kubernetes"):
            continue  # Kubernetes deployments have no managed egress setting
        mode = _managed_network(stack, deployment)
        if mode is UNKNOWN:
            continue
        value = deployment.get("properties.egressPublicNetworkAccess")
        if isinstance(mode, str) and not same(mode, "Disabled"):
            # The workspace managed network carries the deployment's outbound
            # traffic; the flag "no longer applies. Avoid setting this flag"
            # (concept-secure-online-endpoint): unset or Disabled pass.
            if value is MISSING or value is UNKNOWN or same(value, "Disabled"):
                continue
            yield deployment.urn, (
                f"{deployment.label}: properties.egressPublicNetworkAccess is {show(value)}; in a managed-network "
                f"workspace ({mode}) leave it unset (or 'Disabled')"
            )
            continue
        for message in expect_value(deployment, "properties.egressPublicNetworkAccess", "Disabled", azure_default="Enabled"):
            yield deployment.urn, message + " (the workspace has no managed network)"


deployment_egress_disabled = stack_policy(
    PolicyInfo(
        name="azml-deployment-egress-disabled",
        description=(
            "Managed online deployments have no public outbound access: through the workspace managed network "
            "(then the deployment flag stays unset), or with egressPublicNetworkAccess Disabled in a workspace without one."
        ),
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.MEDIUM,
        remediation=(
            "Use a workspace managed network (azml:workspace.isolationMode) and leave the deployment's "
            "egressPublicNetworkAccess unset; without a managed network set it to 'Disabled'."
        ),
        resource_types=(ONLINE_DEPLOYMENT, WORKSPACE),
        properties=(
            "OnlineDeployment.properties.endpointComputeType",
            "OnlineDeployment.properties.egressPublicNetworkAccess",
            "OnlineDeployment.workspaceName",
            "Workspace.managedNetwork.isolationMode",
        ),
        kind="stack",
        tags=("serving", "network"),
    ),
    _egress,
)


#: What Azure ML resolves in a deployment's environment variables at
#: creation (secret injection): machine-learning/how-to-deploy-online-endpoint-with-secret-injection.
SECRET_INJECTION_PREFIXES = ["${{keyvault:", "${{azureml://connections/"]


def _secrets_in_definition(deployment: Resource, config: dict[str, Any]) -> Iterator[str]:
    # A literal secret anywhere (named like one or shaped like one) is
    # azml-secret-values' finding; this policy adds what is particular to
    # deployments: a value the program marked secret is still written into
    # the deployment definition in plain text.
    variables = get(deployment.props, "properties.environmentVariables", keep_secret=True)
    whole = is_secret(variables)
    variables = unwrap(variables)
    fix = (
        "map it from Key Vault or a workspace connection with secret injection "
        f"({' or '.join(config['allowedReferencePrefixes'])}...)"
        if deployment.type == ONLINE_DEPLOYMENT
        else "read it at run time with the compute identity from Key Vault"
    )
    exposed = (
        "Azure ML keeps deployment environment variables in the deployment definition, readable to anyone who "
        "can read the deployment (machine-learning/concept-secret-injection)"
    )
    if whole and not isinstance(variables, dict):
        yield f"{deployment.label}: properties.environmentVariables is a Pulumi secret; {exposed}: {fix}"
        return
    if not isinstance(variables, dict):
        return
    prefixes = tuple(p.lower() for p in config["allowedReferencePrefixes"])
    for name, value in sorted(variables.items()):
        if value is UNKNOWN or not (whole or is_secret(value)):
            continue
        plain = unwrap(value)
        if isinstance(plain, str) and plain.strip().lower().startswith(prefixes):
            continue
        yield f"{deployment.label}: properties.environmentVariables.{name} holds a Pulumi secret; {exposed}: {fix}"


no_plaintext_secrets = resource_policy(
    PolicyInfo(
        name="azml-deployment-no-plaintext-secrets",
        description=(
            "Deployment environment variables carry no secret values, not even Pulumi secrets: Azure ML writes "
            "them into the deployment definition. Secrets come in by secret injection (Key Vault or workspace "
            "connection references)."
        ),
        checklist=checks.SECRETS,
        severity=Severity.CRITICAL,
        remediation=(
            "Store the secret in Key Vault (or a workspace connection) and set the variable to "
            "${{keyvault:https://<vault>.vault.azure.net/secrets/<name>/<version>}} or "
            "${{azureml://connections/<connection>/credentials/<key>}}; grant the endpoint identity read access "
            "(Key Vault Secrets User / Azure Machine Learning Workspace Connection Secrets Reader). Literal "
            "secrets in any input are reported by azml-secret-values."
        ),
        resource_types=(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT),
        properties=("properties.environmentVariables",),
        config={
            "allowedReferencePrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": SECRET_INJECTION_PREFIXES,
                "description": "Values starting with one of these are secret-injection references, not secrets.",
            },
        },
        tags=("serving", "secrets"),
    ),
    _secrets_in_definition,
)

_MODEL_REF = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$", re.IGNORECASE)


def _model_reference(deployment: Resource) -> tuple[str, str] | None:
    model = deployment.get("properties.model")
    if isinstance(model, dict):  # batch deployments: {referenceType, assetId}
        model = get(model, "assetId")
    match = _MODEL_REF.search(model) if isinstance(model, str) else None
    return (match.group("name"), match.group("version")) if match else None


def _lineage(deployment: Resource, config: dict[str, Any]) -> Iterator[str]:
    tags = deployment.get("tags")
    if tags is UNKNOWN:
        return
    tags = tags if isinstance(tags, dict) else {}
    missing = []
    for key in config["requiredTags"]:
        value = get(tags, key)
        if value is not UNKNOWN and not (isinstance(value, str) and value.strip()):
            missing.append(key)
    if missing:
        yield f"{deployment.label}: tags {', '.join(missing)} missing; every deployment records its model lineage"
    if not config["checkModelReference"]:
        return
    reference = _model_reference(deployment)
    if reference is None:
        return
    for key, expected in zip((config["modelNameTag"], config["modelVersionTag"]), reference):
        value = get(tags, key)
        if isinstance(value, str) and value and value != expected:
            yield f"{deployment.label}: tag {key} is {value!r} but the deployment serves {'/'.join(reference)} (properties.model)"


lineage_tags = resource_policy(
    PolicyInfo(
        name="azml-deployment-lineage-tags",
        description="Every deployment carries lineage tags naming the model version it serves (and the run that trained it).",
        checklist=checks.LINEAGE,
        severity=Severity.MEDIUM,
        remediation=(
            "Tag each online and batch deployment with the required keys (model-name and model-version from its "
            "model reference; training-run when known) — the serving components set them from azml:onlineEndpoints / "
            "azml:batchEndpoints."
        ),
        resource_types=(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT),
        properties=("tags", "properties.model", "properties.model.assetId"),
        config={
            "requiredTags": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["model-name", "model-version"],
                "description": "Tag keys every deployment must carry (non-empty).",
            },
            "modelNameTag": {"type": "string", "default": "model-name", "description": "Tag holding the model name."},
            "modelVersionTag": {"type": "string", "default": "model-version", "description": "Tag holding the model version."},
            "checkModelReference": {
                "type": "boolean",
                "default": True,
                "description": "The name/version tags must match the model the deployment serves.",
            },
        },
        tags=("serving", "lineage"),
    ),
    _lineage,
)

POLICIES = [auth_mode, endpoint_public_network_disabled, deployment_egress_disabled, no_plaintext_secrets, lineage_tags]
