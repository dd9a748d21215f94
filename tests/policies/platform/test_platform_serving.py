"""Platform rules of serving (policies/azml_platform/assets.py): the assets a
deployment references exist when its PUT runs, no role assignment duplicates
one Azure ML makes itself for a system-assigned endpoint or workspace
identity, no egress flag in a managed-network workspace, no deprecated
maxQueueWait, autoscale owns the instance count. The untouched dev and prod
plans pass each rule; a copy of a plan that re-adds the defect fails it
alone, naming the resource, the property and the Microsoft source. Also:
what the config accepts for them."""

from __future__ import annotations

import copy
from typing import Any, Iterable

import pytest

from azml.plan.model import Plan, PlannedResource

from ...platform_harness import PLATFORM_INFO, resource, run_rules
from ...config.test_config import azml_namespace, problems_for

WORKSPACE = "azure-native:machinelearningservices:Workspace"
ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
BATCH_DEPLOYMENT = "azure-native:machinelearningservices:BatchDeployment"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
STORAGE = "azure-native:storage:StorageAccount"
REGISTRY = "azure-native:containerregistry:Registry"
NAMES = {STORAGE: "st", REGISTRY: "cr"}  # the workspace's own (Pulumi names)

RULES = (
    "azure-ml-deployment-assets-exist",
    "azure-ml-endpoint-identity-auto-roles",
    "azure-ml-workspace-identity-auto-roles",
    "azure-ml-deployment-egress-unset-in-managed-network",
    "azure-ml-deployment-no-max-queue-wait",
    "azure-ml-autoscale-owns-instance-count",
)
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


def findings(plan: Plan) -> dict[tuple[str, str], str]:
    """``{(rule, Pulumi name): message}`` of this module's rules."""
    return {(f.rule, f.name): f.message for f in run_rules(plan) if f.rule in RULES}


def assert_fires(plan: Plan, rule: str, names: Iterable[str], *words: str) -> None:
    found = findings(plan)
    assert set(found) == {(rule, name) for name in names}, found
    for message in found.values():
        assert PLATFORM_INFO[rule].source in message and f"rule: {PLATFORM_INFO[rule].description}" in message
        for word in words:
            assert word in message, message


def online_blue(plan: Plan) -> PlannedResource:
    return resource(plan, ONLINE_DEPLOYMENT, "credit-risk-endpoint-blue")


def test_the_rules_are_in_the_pack() -> None:
    for rule in RULES:
        assert PLATFORM_INFO[rule].source.startswith("https://learn.microsoft.com/azure/machine-learning/")


def test_untouched_plans_pass(any_plan: Plan) -> None:
    assert findings(any_plan) == {}


# --------------------------------------------------------------------------- row 1: assets exist


def test_a_workspace_code_asset_not_declared_registered_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    del online_blue(plan).inputs["tags"]["registered-assets"]
    assert_fires(
        plan, "azure-ml-deployment-assets-exist", ["credit-risk-endpoint-blue"],
        "properties.codeConfiguration.codeId", "/codes/credit-risk-score/versions/3", "registered-assets",
    )


def test_a_workspace_model_instead_of_the_registry_one_fails(prod_plan: Plan) -> None:
    """The defect row 1 found: the model inside the workspace this stack creates."""
    plan = copy.deepcopy(prod_plan)
    batch = resource(plan, BATCH_DEPLOYMENT)
    code_id = batch.inputs["properties"]["codeConfiguration"]["codeId"]
    workspace_id = code_id.split("/codes/")[0]
    batch.inputs["properties"]["model"]["assetId"] = f"{workspace_id}/models/credit-risk/versions/3"
    assert_fires(
        plan, "azure-ml-deployment-assets-exist", [batch.name],
        "properties.model.assetId", "/models/credit-risk/versions/3", "workspace model asset",
    )
    # Declared registered by the pipeline (bootstrap phase two): accepted.
    batch.inputs["tags"]["registered-assets"] = "code,model"
    assert findings(plan) == {}


def test_an_environment_of_the_stack_the_deployment_does_not_wait_for_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    blue = online_blue(plan)
    environment = resource(plan, ENVIRONMENT)
    blue.dependencies = [d for d in blue.dependencies if d != environment.urn]
    blue.property_dependencies = {k: [d for d in v if d != environment.urn] for k, v in blue.property_dependencies.items()}
    assert_fires(
        plan, "azure-ml-deployment-assets-exist", [blue.name], "properties.environmentId", "does not depend on it"
    )


def test_registry_assets_exist_before_the_run(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    blue = online_blue(plan)
    blue.inputs["properties"]["environmentId"] = "azureml://registries/azml-models/environments/credit-risk-scoring/versions/1"
    assert blue.inputs["properties"]["model"].startswith("azureml://registries/azml-models/models/")
    assert findings(plan) == {}


# --------------------------------------------------------------------------- row 2: roles Azure ML assigns itself


def _grant(plan: Plan, name: str, principal: PlannedResource, role: str, scope: PlannedResource) -> PlannedResource:
    template = next(r for r in plan.of_type(ROLE_ASSIGNMENT))
    added = copy.deepcopy(template)
    added.name = name
    added.urn = template.urn.rsplit("::", 1)[0] + f"::{name}"
    added.inputs.update(
        roleDefinitionId=f"/subscriptions/00000000-0000-4000-8000-000000000001/providers/Microsoft.Authorization/roleDefinitions/{role}",
        scope=_arm_id(plan, scope),
        principalId="11111111-2222-4333-8444-555555555555",
        principalType="ServicePrincipal",
    )
    added.dependencies = [principal.urn, scope.urn]
    added.property_dependencies = {"principalId": [principal.urn], "scope": [scope.urn]}
    plan.resources.append(added)
    return added


def _arm_id(plan: Plan, target: PlannedResource) -> str:
    """The target's ARM id as the workspace references it."""
    workspace = resource(plan, WORKSPACE)
    key = {STORAGE: "storageAccount", REGISTRY: "containerRegistry"}[target.type]
    return workspace.inputs[key]


@pytest.mark.parametrize(("role", "target"), [(ACR_PULL, REGISTRY), (BLOB_DATA_CONTRIBUTOR, STORAGE), (BLOB_DATA_READER, STORAGE)])
def test_prod_re_adding_the_endpoint_identity_grants_fails(prod_plan: Plan, role: str, target: str) -> None:
    """Row 2's defect: the stack granting the endpoint's system identity what Azure ML grants it."""
    plan = copy.deepcopy(prod_plan)
    endpoint = resource(plan, ONLINE_ENDPOINT)
    _grant(plan, "ra-credit-risk-endpoint-again", endpoint, role, resource(plan, target, NAMES[target]))
    assert_fires(
        plan, "azure-ml-endpoint-identity-auto-roles", ["ra-credit-risk-endpoint-again"],
        "roleDefinitionId", "RoleAssignmentExists", "system-assigned identity of OnlineEndpoint",
    )


def test_an_endpoint_with_a_user_assigned_identity_gets_no_roles_from_azure_ml(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    endpoint = resource(plan, ONLINE_ENDPOINT)
    endpoint.inputs["identity"] = {"type": "UserAssigned", "userAssignedIdentities": ["/subscriptions/x/id-endpoint"]}
    _grant(plan, "ra-endpoint-uai", endpoint, ACR_PULL, resource(plan, REGISTRY, NAMES[REGISTRY]))
    assert findings(plan) == {}


def test_prod_re_adding_the_workspace_storage_grant_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    workspace = resource(plan, WORKSPACE)
    _grant(plan, "ra-mlw-storage-storage-blob-data-contributor", workspace, BLOB_DATA_CONTRIBUTOR, resource(plan, STORAGE, NAMES[STORAGE]))
    assert_fires(
        plan, "azure-ml-workspace-identity-auto-roles", ["ra-mlw-storage-storage-blob-data-contributor"],
        "Storage Blob Data Contributor", "storageAccount", "Workspace",
    )


# --------------------------------------------------------------------------- row 10, row 16: deployment settings


def test_an_egress_flag_in_a_managed_network_workspace_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    online_blue(plan).inputs["properties"]["egressPublicNetworkAccess"] = "Disabled"
    assert_fires(
        plan, "azure-ml-deployment-egress-unset-in-managed-network", ["credit-risk-endpoint-blue"],
        "properties.egressPublicNetworkAccess", "AllowOnlyApprovedOutbound",
    )
    # Legacy isolation (no managed network): the flag applies, the rule does not.
    resource(plan, WORKSPACE).inputs["managedNetwork"]["isolationMode"] = "Disabled"
    assert findings(plan) == {}


def test_the_deprecated_max_queue_wait_fails(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    online_blue(plan).inputs["properties"]["requestSettings"]["maxQueueWait"] = "PT0.5S"
    assert_fires(
        plan, "azure-ml-deployment-no-max-queue-wait", ["credit-risk-endpoint-blue"],
        "properties.requestSettings.maxQueueWait", "'PT0.5S'",
    )


# --------------------------------------------------------------------------- row 14: autoscale


def test_a_deployment_under_autoscale_without_ignore_changes_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    online_blue(plan).options.pop("ignoreChanges")
    assert_fires(
        plan, "azure-ml-autoscale-owns-instance-count", ["credit-risk-endpoint-blue"],
        "sku.capacity is 2", "AutoscaleSetting", "ignore_changes",
    )


# --------------------------------------------------------------------------- config


def _deployment(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["onlineEndpoints"][0]["deployments"][0]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda d: d["requestSettings"].update(maxQueueWaitMs=500), "requestSettings.maxQueueWaitMs", "deprecated"),
        (lambda d: d["code"].pop("registered"), "code", "registered: true"),
        (lambda d: d["model"].pop("registry"), "model", "registry"),
    ],
)
def test_config_refuses_what_azure_ignores_or_cannot_find(change, key: str, words: str) -> None:
    raw = copy.deepcopy(azml_namespace("prod"))
    change(_deployment(raw))
    problems = problems_for(raw)
    assert any(f"onlineEndpoints[0].deployments[0].{key}" in p and words in p for p in problems), problems


def test_config_accepts_a_workspace_model_declared_registered() -> None:
    from azml.config import validate_config

    raw = copy.deepcopy(azml_namespace("prod"))
    model = _deployment(raw)["model"]
    model.pop("registry")
    model["registered"] = True
    validate_config(raw)
