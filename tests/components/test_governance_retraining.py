"""Governance (persona RBAC, Azure Policy, budget, lifecycle, locks) and the
retraining trigger's infrastructure, on the recorded plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from azml.config import read_stack_file
from azml.plan.engine import run_plan
from azml.plan.model import Plan, PlannedResource

from ..conftest import ROOT, load_stack, run_cli, write_stack

ROLE = "azure-native:authorization:RoleAssignment"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
PEOPLE = {
    "readers": ["11111111-2222-4333-8444-555555555555"],
    "dataScientists": [{"objectId": "22222222-3333-4444-8555-666666666666", "type": "User"}],
    "approvers": ["33333333-4444-4555-8666-777777777777"],
}


def only(plan: Plan, token: str) -> PlannedResource:
    (resource,) = plan.of_type(token)
    return resource


def prod_with(tmp_path: Path, **config: Any) -> Plan:
    document = load_stack("prod")
    document["config"].update({f"azml:{k}": v for k, v in config.items()})
    return run_plan(read_stack_file(str(write_stack(tmp_path, "variant", document)), ROOT))


@pytest.fixture(scope="module")
def staffed_prod(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return prod_with(tmp_path_factory.mktemp("staffed"), principals=PEOPLE)


def test_three_personas_get_workspace_scoped_roles(staffed_prod: Plan) -> None:
    workspace = only(staffed_prod, "azure-native:machinelearningservices:Workspace").inputs["workspaceName"]
    grants = {r.inputs["principalId"]: r.inputs for r in staffed_prod.of_type(ROLE)}
    reader, scientist, approver = (
        grants["11111111-2222-4333-8444-555555555555"],
        grants["22222222-3333-4444-8555-666666666666"],
        grants["33333333-4444-4555-8666-777777777777"],
    )
    assert reader["roleDefinitionId"].endswith(READER) and reader["principalType"] == "Group"
    assert scientist["roleDefinitionId"].endswith(DATA_SCIENTIST) and scientist["principalType"] == "User"
    for grant in (reader, scientist, approver):
        assert grant["scope"].endswith(f"/workspaces/{workspace}")
    role = only(staffed_prod, "azure-native:authorization:RoleDefinition")
    assert approver["roleDefinitionId"] == (
        f"{role.inputs['scope']}/providers/Microsoft.Authorization/roleDefinitions/{role.inputs['roleDefinitionId']}"
    )


def test_approver_role_moves_traffic_and_nothing_more(staffed_prod: Plan) -> None:
    role = only(staffed_prod, "azure-native:authorization:RoleDefinition").inputs
    (permission,) = role["permissions"]
    writes = [a for a in permission["actions"] if a.endswith("/write")]
    assert writes == ["Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"]
    assert all(a.startswith("Microsoft.MachineLearningServices/workspaces") for a in permission["actions"])
    assert "*" not in " ".join(permission["actions"]) and permission["dataActions"] == []
    assert role["assignableScopes"] == [role["scope"]]
    assert "/resourceGroups/" in role["scope"] and "/providers/" not in role["scope"]


def test_no_approver_role_without_approvers(dev_plan: Plan) -> None:
    assert dev_plan.of_type("azure-native:authorization:RoleDefinition") == []


def test_policies_are_assigned_at_resource_group_scope(any_plan: Plan) -> None:
    assignments = any_plan.of_type("azure-native:authorization:PolicyAssignment")
    group = only(any_plan, "azure-native:resources:ResourceGroup").inputs["resourceGroupName"]
    assert len(assignments) >= (3 if any_plan.stack == "prod" else 1)
    for assignment in assignments:
        assert assignment.inputs["scope"].endswith(f"/resourceGroups/{group}")
        assert assignment.inputs["policyDefinitionId"].startswith("/providers/Microsoft.Authorization/policyDefinitions/")
    ids = {a.inputs["policyDefinitionId"].rsplit("/", 1)[1] for a in assignments}
    if any_plan.stack == "prod":
        assert {"438c38d2-3772-465a-a9cc-7a6666a275ce", "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f",
                "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"} <= ids  # fmt: skip


def test_budget_alerts_at_thresholds(prod_plan: Plan) -> None:
    budget = only(prod_plan, "azure-native:consumption:Budget").inputs
    assert budget["timeGrain"] == "Monthly" and budget["category"] == "Cost" and budget["amount"] > 0
    actual = sorted(n["threshold"] for n in budget["notifications"].values() if n["thresholdType"] == "Actual")
    assert actual == [50, 80, 100]
    action_group = only(prod_plan, "azure-native:monitor:ActionGroup").inputs["actionGroupName"]
    for notification in budget["notifications"].values():
        assert any(g.endswith(f"/actionGroups/{action_group}") for g in notification["contactGroups"])


def test_lifecycle_rules_on_workspace_storage(any_plan: Plan) -> None:
    policy = only(any_plan, "azure-native:storage:ManagementPolicy").inputs
    rules = {r["name"]: r["definition"] for r in policy["policy"]["rules"]}
    assert rules, "at least one lifecycle rule"
    for definition in rules.values():
        assert definition["filters"]["blobTypes"] == ["blockBlob"]
        assert definition["filters"]["prefixMatch"]
    tiers = [d["actions"].get("baseBlob", {}) for d in rules.values()]
    assert any("tierToCool" in t for t in tiers) and any("delete" in t for t in tiers)


def test_locks_in_prod_only(dev_plan: Plan, prod_plan: Plan) -> None:
    assert dev_plan.of_type("azure-native:authorization:ManagementLockByScope") == []
    locks = prod_plan.of_type("azure-native:authorization:ManagementLockByScope")
    kinds = sorted(lock.inputs["scope"].split("/")[-2] for lock in locks)
    # The data and the secrets; the workspace is protected by Pulumi instead
    # (an Azure lock on it would block deleting deployments and persona grants).
    assert kinds == ["storageAccounts", "vaults"]
    assert all(lock.inputs["level"] == "CanNotDelete" for lock in locks)
    workspace = only(prod_plan, "azure-native:machinelearningservices:Workspace")
    assert workspace.options.get("protect") is True


def test_blob_created_events_reach_a_private_function_through_a_queue(any_plan: Plan) -> None:
    topic = only(any_plan, "azure-native:eventgrid:SystemTopic").inputs
    data_account = [
        a for a in any_plan.of_type("azure-native:storage:StorageAccount") if not a.inputs["accountName"].startswith("stfn")
    ][0]
    assert topic["source"].endswith("/storageAccounts/" + data_account.inputs["accountName"])
    assert topic["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert topic["identity"] == {"type": "SystemAssigned"}
    subscription = only(any_plan, "azure-native:eventgrid:SystemTopicEventSubscription").inputs
    assert subscription["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert subscription["filter"]["subjectBeginsWith"].startswith("/blobServices/default/containers/training-data/blobs/")
    destination = subscription["deliveryWithResourceIdentity"]["destination"]
    assert destination["endpointType"] == "StorageQueue" and destination["queueName"] == "retraining-events"
    assert subscription["retryPolicy"]["maxDeliveryAttempts"] >= 1
    dead_letter = subscription["deadLetterWithResourceIdentity"]["deadLetterDestination"]
    assert dead_letter["endpointType"] == "StorageBlob" and dead_letter["blobContainerName"]


def test_function_app_is_private_and_keyless(any_plan: Plan) -> None:
    app = only(any_plan, "azure-native:web:WebApp").inputs
    assert app["publicNetworkAccess"] == "Disabled" and app["httpsOnly"] is True
    assert app["identity"] == {"type": "SystemAssigned"}
    assert app["virtualNetworkSubnetId"].endswith("-integration")
    settings = {s["name"]: s["value"] for s in app["siteConfig"]["appSettings"]}
    assert "AzureWebJobsStorage__accountName" in settings
    assert not any("AccountKey" in str(v) or "SharedAccessSignature" in str(v) for v in settings.values())
    assert app["functionAppConfig"]["deployment"]["storage"]["authentication"]["type"] == "SystemAssignedIdentity"
    plan = only(any_plan, "azure-native:web:AppServicePlan").inputs
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    groups = {
        e.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        for e in any_plan.of_type("azure-native:network:PrivateEndpoint")
    }
    assert {"sites", "queue", "table"} <= groups
    (integration,) = [
        s for s in any_plan.of_type("azure-native:network:Subnet") if s.inputs["subnetName"].endswith("-integration")
    ]
    assert integration.inputs["delegations"][0]["serviceName"] == "Microsoft.App/environments"


def test_event_delivery_waits_for_its_identity_grants(prod_plan: Plan) -> None:
    subscription = only(prod_plan, "azure-native:eventgrid:SystemTopicEventSubscription")
    topic = only(prod_plan, "azure-native:eventgrid:SystemTopic")
    grants = [r for r in prod_plan.of_type(ROLE) if topic.urn in r.property_dependencies.get("principalId", [])]
    assert len(grants) == 2
    assert {g.urn for g in grants} <= set(subscription.dependencies)
    scopes = sorted(g.inputs["scope"].split("/")[-2] for g in grants)
    assert scopes == ["containers", "queues"]  # the narrowest scopes that work


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"governance": {"policies": [{"builtin": "no-such-policy"}]}}, "azml:governance.policies[0].builtin: unknown built-in policy alias"),
        ({"governance": {"budget": {"amount": 100, "startDate": "2026-12-15"}}}, "azml:governance.budget.startDate: must be the first day of a month"),
        ({"governance": {"lifecycle": [{"name": "x", "prefixes": ["azureml/"], "coolAfterDays": 90, "deleteAfterDays": 30}]}},
         "coolAfterDays (90) must be less than deleteAfterDays (30)"),
        ({"retraining": {"container": "Bad_Name"}}, "azml:retraining.container: must be 3-63 lowercase letters"),
    ],
)  # fmt: skip
def test_invalid_operations_config_is_refused(tmp_path: Path, config: dict, expected: str) -> None:
    document = load_stack("prod")
    document["config"].update({f"azml:{k}": v for k, v in config.items()})
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    assert any(expected in line for line in result.stderr.splitlines()), result.stderr


def test_retraining_needs_an_integration_subnet(tmp_path: Path) -> None:
    document = load_stack("dev")
    document["config"]["azml:network"]["subnets"].pop("integration", None)
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    assert "azml:retraining: needs network.subnets.integration" in result.stderr


def test_shipped_prod_assigns_all_three_personas(prod_plan: Plan) -> None:
    workspace = only(prod_plan, "azure-native:machinelearningservices:Workspace").inputs["workspaceName"]
    role = only(prod_plan, "azure-native:authorization:RoleDefinition")
    persona_roles = {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[1]
        for r in prod_plan.of_type(ROLE)
        if r.inputs["scope"].endswith(f"/workspaces/{workspace}") and r.inputs["principalType"] == "Group"
    }
    assert persona_roles == {READER, DATA_SCIENTIST, role.inputs["roleDefinitionId"]}
