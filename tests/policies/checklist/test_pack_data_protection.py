"""Identity and data protection outside the ML core (policies/azml_policies/
data_protection.py and identity.py): each rule broken on a copy of the
recorded plan makes exactly its policy fire, naming the resource and the
property; the untouched plans break none of them."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from azml.plan.model import Plan

from .test_policy_pack import POLICY_INFO, Finding, evaluate, one, put

STORAGE = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
SYSTEM_TOPIC = "azure-native:eventgrid:SystemTopic"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"

OURS = {
    "azml-storage-blob-soft-delete",
    "azml-storage-container-soft-delete",
    "azml-storage-cross-tenant-replication-disabled",
    "azml-appinsights-local-auth-disabled",
    "azml-log-analytics-local-auth-disabled",
    "azml-appinsights-entra-writers",
    "azml-eventgrid-managed-identity",
    "azml-eventgrid-identity-delivery",
    "azml-workspace-v1-legacy-mode-disabled",
    "azml-required-tags",
}
NO_APPI_ACCEPTANCE = {"azml-appinsights-local-auth-disabled": {"exemptResources": []}}

Mutation = Callable[[Plan], None]


def new_findings(plan: Plan, mutate: Mutation, stack: str = "prod", overrides: dict[str, Any] | None = None) -> list[Finding]:
    """What ``mutate`` adds to the findings of a copy of ``plan`` (under the
    stack's pack config, plus ``overrides``)."""
    before = set(evaluate(plan, stack, overrides))
    changed = copy.deepcopy(plan)
    mutate(changed)
    return [f for f in evaluate(changed, stack, overrides) if f not in before]


def setting(type_token: str, path: str, value: Any, name: str | None = None) -> Mutation:
    return lambda plan: put(one(plan, type_token, name).inputs, path, value)


def without(type_token: str, path: str, name: str | None = None) -> Mutation:
    def mutate(plan: Plan) -> None:
        *parents, last = path.split(".")
        inputs = one(plan, type_token, name).inputs
        for key in parents:
            inputs = inputs[key]
        del inputs[last]

    return mutate


def removed(type_token: str, name: str) -> Mutation:
    def mutate(plan: Plan) -> None:
        gone = one(plan, type_token, name).urn
        plan.resources[:] = [r for r in plan.resources if r.urn != gone]

    return mutate


def app_setting(name: str, value: str | None) -> Mutation:
    def mutate(plan: Plan) -> None:
        settings = one(plan, WEB_APP, "func").inputs["siteConfig"]["appSettings"]
        settings[:] = [s for s in settings if s["name"] != name] + ([{"name": name, "value": value}] if value is not None else [])

    return mutate


def test_the_policies_are_registered() -> None:
    assert OURS <= set(POLICY_INFO)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_untouched_plans_break_none_of_them(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    assert [f for f in evaluate(plan, stack) if f.policy in OURS] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_storage_account_has_its_soft_delete(stack: str, request: pytest.FixtureRequest) -> None:
    """The function's host account got its blob service: both accounts of the
    stack keep deleted blobs and containers for the configured days."""
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    accounts = {a.inputs["accountName"] for a in plan.of_type(STORAGE)}
    services = {s.inputs["accountName"]: s.inputs for s in plan.of_type(BLOB_SERVICE)}
    assert len(accounts) == 2 and set(services) == accounts
    days = 30 if stack == "prod" else 7
    for inputs in services.values():
        assert inputs["deleteRetentionPolicy"] == {"enabled": True, "days": days}
        assert inputs["containerDeleteRetentionPolicy"] == {"enabled": True, "days": days}


CASES: dict[str, tuple[Mutation, set[str], str]] = {
    # name: (mutation of prod, the policies that must fire (and only they), a fragment of the message)
    "host storage without blob service": (
        removed(BLOB_SERVICE, "st-fn-blob"),
        {"azml-storage-blob-soft-delete", "azml-storage-container-soft-delete"},
        "StorageAccount 'stfnazmlprd3d136e' (st-fn): no storage:BlobServiceProperties",
    ),
    "blob soft delete off": (
        setting(BLOB_SERVICE, "deleteRetentionPolicy.enabled", False, "st-blob"),
        {"azml-storage-blob-soft-delete"},
        "blob service 'st-blob': deleteRetentionPolicy.enabled is false",
    ),
    "blob soft delete for a week in prod": (
        setting(BLOB_SERVICE, "deleteRetentionPolicy.days", 7, "st-fn-blob"),
        {"azml-storage-blob-soft-delete"},
        "deleteRetentionPolicy.days is 7; must be at least 30",
    ),
    "blob soft delete without days": (
        without(BLOB_SERVICE, "deleteRetentionPolicy.days", "st-blob"),
        {"azml-storage-blob-soft-delete"},
        "deleteRetentionPolicy.days is not set",
    ),
    "container soft delete off": (
        setting(BLOB_SERVICE, "containerDeleteRetentionPolicy", {"enabled": False}, "st-fn-blob"),
        {"azml-storage-container-soft-delete"},
        "containerDeleteRetentionPolicy.enabled is false",
    ),
    "cross-tenant replication on": (
        setting(STORAGE, "allowCrossTenantReplication", True, "st"),
        {"azml-storage-cross-tenant-replication-disabled"},
        "StorageAccount 'stazmlprd3d136e' (st): allowCrossTenantReplication is true; must be false",
    ),
    "cross-tenant replication left to Azure": (
        without(STORAGE, "allowCrossTenantReplication", "st-fn"),
        {"azml-storage-cross-tenant-replication-disabled"},
        "allowCrossTenantReplication is not set",
    ),
    "log analytics with shared keys": (
        setting(LOG_ANALYTICS, "features.disableLocalAuth", False),
        {"azml-log-analytics-local-auth-disabled"},
        "Workspace 'log-azml-prd' (log): features.disableLocalAuth is false; must be true",
    ),
    "app insights local auth off while the inference server writes with its key": (
        setting(APP_INSIGHTS, "disableLocalAuth", True),
        {"azml-appinsights-entra-writers"},
        "OnlineDeployment 'blue' (credit-risk-endpoint-blue): writes to Component 'appi-azml-prd' (appi), whose disableLocalAuth is true; "
        "properties.appInsightsEnabled is true",
    ),
    "event grid topic without identity": (
        without(SYSTEM_TOPIC, "identity"),
        {"azml-eventgrid-managed-identity"},
        "SystemTopic 'evgt-azml-prd-training-data' (system-topic): identity.type is not set",
    ),
    "event grid delivery with keys": (
        lambda plan: _keyed_delivery(one(plan, SUBSCRIPTION).inputs),
        {"azml-eventgrid-identity-delivery"},
        "destination sends to a storage account with Event Grid's keys; use deliveryWithResourceIdentity",
    ),
    "dead letters with keys": (
        lambda plan: _keyed_dead_letter(one(plan, SUBSCRIPTION).inputs),
        {"azml-eventgrid-identity-delivery"},
        "deadLetterDestination sends to a storage account with Event Grid's keys",
    ),
    "delivery identity dropped": (
        without(SUBSCRIPTION, "deliveryWithResourceIdentity.identity"),
        {"azml-eventgrid-identity-delivery"},
        "deliveryWithResourceIdentity.identity.type is not set",
    ),
    "v1 legacy mode on": (
        setting(WORKSPACE, "v1LegacyMode", True),
        {"azml-workspace-v1-legacy-mode-disabled"},
        "Workspace 'mlw-azml-prd' (mlw): v1LegacyMode is true; must be false",
    ),
    "v1 legacy mode left to the API version": (
        without(WORKSPACE, "v1LegacyMode"),
        {"azml-workspace-v1-legacy-mode-disabled"},
        "v1LegacyMode is not set",
    ),
    "vault without owner": (
        without(VAULT, "tags.owner"),
        {"azml-required-tags"},
        "Vault 'kv-azml-prd-3d136e' (kv): tags has no (or an empty) owner",
    ),
    "empty cost center": (
        setting(STORAGE, "tags.cost-center", " ", "st-fn"),
        {"azml-required-tags"},
        "tags has no (or an empty) cost-center",
    ),
    "environment asset without classification": (
        without(ENVIRONMENT, "properties.tags.data-classification"),
        {"azml-required-tags"},
        "properties.tags has no (or an empty) data-classification",
    ),
    "untagged system topic": (
        without(SYSTEM_TOPIC, "tags"),
        {"azml-required-tags"},
        "tags has no (or an empty) managed-by, environment, cost-center, owner, data-classification",
    ),
}


def _keyed_delivery(inputs: dict[str, Any]) -> None:
    inputs["destination"] = inputs.pop("deliveryWithResourceIdentity")["destination"]


def _keyed_dead_letter(inputs: dict[str, Any]) -> None:
    inputs["deadLetterDestination"] = inputs.pop("deadLetterWithResourceIdentity")["deadLetterDestination"]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_broken_rule_fires_its_policy_naming_resource_and_property(case: str, prod_plan: Plan) -> None:
    mutate, expected, fragment = CASES[case]
    found = new_findings(prod_plan, mutate)
    assert {f.policy for f in found} == expected, found
    assert all(f.level == "mandatory" for f in found)
    assert any(fragment in f.message for f in found), [f.message for f in found]


def test_every_policy_here_has_a_breaking_case() -> None:
    covered = set().union(*(expected for _, expected, _ in CASES.values())) | {"azml-appinsights-local-auth-disabled"}
    assert covered == OURS


def test_app_insights_local_auth_is_a_dated_acceptance_in_both_stacks(prod_plan: Plan, dev_plan: Plan) -> None:
    """The component keeps local authentication (the inference server needs
    it); without the stack's risk acceptance the policy fires on it."""
    for plan, stack in ((prod_plan, "prod"), (dev_plan, "dev")):
        assert "disableLocalAuth" not in one(plan, APP_INSIGHTS).inputs
        found = [f for f in evaluate(plan, stack, NO_APPI_ACCEPTANCE) if f.policy in OURS]
        assert [(f.policy, f.name, f.level) for f in found] == [("azml-appinsights-local-auth-disabled", "appi", "mandatory")]
        assert "disableLocalAuth is not set (Azure default: false); must be true" in found[0].message


def test_switching_app_insights_to_entra_only_needs_the_deployments_off(prod_plan: Plan) -> None:
    """With local auth off and the deployments' App Insights integration off,
    the only remaining writer is the function, which already sends Entra
    tokens: nothing fires, the acceptance is no longer needed."""

    def entra_only(plan: Plan) -> None:
        one(plan, APP_INSIGHTS).inputs["disableLocalAuth"] = True
        for deployment in plan.of_type(ONLINE_DEPLOYMENT):
            deployment.inputs["properties"]["appInsightsEnabled"] = False

    assert new_findings(prod_plan, entra_only, overrides=NO_APPI_ACCEPTANCE) == []
    # ...and the function falling back to its instrumentation key is caught.
    found = new_findings(prod_plan, lambda p: (entra_only(p), app_setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", None)(p)))
    assert [(f.policy, f.name) for f in found] == [("azml-appinsights-entra-writers", "func")]
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING is not set; set it to 'Authorization=AAD'" in found[0].message


def test_writers_of_another_component_are_not_blamed(prod_plan: Plan) -> None:
    """Only the workspace's own App Insights binds its deployments."""

    def other_component(plan: Plan) -> None:
        one(plan, APP_INSIGHTS).inputs["disableLocalAuth"] = True
        one(plan, WORKSPACE).inputs["applicationInsights"] = one(plan, WORKSPACE).inputs["applicationInsights"].replace("appi-", "appi-other-")

    assert [f.policy for f in new_findings(prod_plan, other_component)] == []


def test_dev_relaxes_soft_delete_to_a_week_and_the_defaults_do_not(dev_plan: Plan) -> None:
    assert [f for f in evaluate(dev_plan, "dev") if f.policy in OURS] == []
    strict = {(f.policy, f.name) for f in evaluate(dev_plan, None) if f.policy.startswith("azml-storage-") and "soft-delete" in f.policy}
    assert strict == {
        (policy, account) for policy in ("azml-storage-blob-soft-delete", "azml-storage-container-soft-delete") for account in ("st", "st-fn")
    }


def test_the_required_tag_set_is_configurable(prod_plan: Plan) -> None:
    findings = [f for f in evaluate(prod_plan, "prod", {"azml-required-tags": {"requiredTags": ["owner", "project"]}}) if f.policy == "azml-required-tags"]
    tagged = {r.name for r in prod_plan.resources if r.custom and r.type in _tagged_types()}
    assert {f.name for f in findings} == tagged and len(tagged) > 60
    assert all("no (or an empty) project;" in f.message for f in findings)
    relaxed = evaluate(prod_plan, "prod", {"azml-required-tags": {"requiredTags": ["owner"]}})
    assert [f for f in relaxed if f.policy == "azml-required-tags"] == []


def _tagged_types() -> set[str]:
    from azml_policies.identity import TAGGED_TYPES

    return set(TAGGED_TYPES)


def test_unknown_values_are_not_reported(prod_plan: Plan) -> None:
    def unknowns(plan: Plan) -> None:
        put(one(plan, BLOB_SERVICE, "st-fn-blob").inputs, "deleteRetentionPolicy.days", "[unknown]")
        put(one(plan, STORAGE, "st").inputs, "allowCrossTenantReplication", "[unknown]")
        put(one(plan, WORKSPACE).inputs, "v1LegacyMode", "[unknown]")
        put(one(plan, VAULT).inputs, "tags", "[unknown]")
        put(one(plan, SYSTEM_TOPIC).inputs, "identity.type", "[unknown]")

    assert new_findings(prod_plan, unknowns) == []


def test_a_blob_service_linked_only_by_dependency_still_counts(prod_plan: Plan) -> None:
    """During preview the account name of a new account can be unknown: the
    blob service is then linked through its recorded dependency."""
    assert new_findings(prod_plan, setting(BLOB_SERVICE, "accountName", "[unknown]", "st-fn-blob")) == []
