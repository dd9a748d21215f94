"""The checklist pack's RBAC and governance policies on copies of the recorded
plans: each rule broken one way at a time must make exactly the expected
policy report the expected resource, allowed variations must stay silent, and
the untouched stacks stay clean (tests/policies/checklist/test_policy_pack.py)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Callable

import pytest

from azml.plan.model import Plan, PlannedResource
from tests.mutations import governance as governance_mutations
from tests.mutations import rbac as rbac_mutations
from tests.policies.checklist.test_policy_pack import POLICIES, Finding, evaluate, one

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
LOCK = "azure-native:authorization:ManagementLockByScope"
LOCK_AT_GROUP = "azure-native:authorization:ManagementLockAtResourceGroupLevel"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
PRICING = "azure-native:security:Pricing"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
WORKSPACE = "azure-native:machinelearningservices:Workspace"

SUB = "/subscriptions/00000000-0000-4000-8000-000000000001"
GROUP = f"{SUB}/resourceGroups/rg-azml-prd-westeurope"
VAULT_ID = f"{GROUP}/providers/Microsoft.KeyVault/vaults/kv-azml-prd-3d136e"
STORAGE_ID = f"{GROUP}/providers/Microsoft.Storage/storageAccounts/stazmlprd3d136e"
SCOPES = {
    "management group": "/providers/Microsoft.Management/managementGroups/corp",
    "subscription": SUB,
    "resource group": GROUP,
    "resource": VAULT_ID,
}
PRIVILEGED = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
}
DATA_ROLES = {
    "Key Vault Administrator": ("00482a5a-887f-4fb3-b363-3b7fe8e74483", VAULT_ID),
    "Storage Blob Data Owner": ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", STORAGE_ID),
    "Storage Account Contributor": ("17d1049b-9a84-46fb-8f53-869881c3d3ab", STORAGE_ID),
}
READER = "ra-reader-5c1e6f0a-2b3d-4e4f-8a5b-6c7d8e9f0a1b"

Mutate = Callable[[Plan], None]


def new_findings(base: Plan, stack: str, mutate: Mutate, overrides: dict[str, Any] | None = None) -> list[Finding]:
    """What ``mutate`` makes the pack report on a copy of ``base`` beyond the untouched plan."""
    plan = copy.deepcopy(base)
    before = set(evaluate(plan, stack, overrides))
    mutate(plan)
    return [f for f in evaluate(plan, stack, overrides) if f not in before]


def only(findings: list[Finding], policy: str, resource: str) -> str:
    """The one finding, of ``policy`` on ``resource``; its message."""
    assert [(f.policy, f.name) for f in findings] == [(policy, resource)], findings
    return findings[0].message


def grant(role: str, scope: str, name: str = "ra-added", **inputs: Any) -> Mutate:
    def mutate(plan: Plan) -> None:
        template = one(plan, ROLE_ASSIGNMENT, READER)
        resource = copy.deepcopy(template)
        resource.name, resource.urn = name, template.urn.rsplit("::", 1)[0] + "::" + name
        resource.inputs.update(roleDefinitionId=f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}", scope=scope, **inputs)
        plan.resources.append(resource)

    return mutate


def approver_permission(**permission: list[str]) -> Mutate:
    def mutate(plan: Plan) -> None:
        one(plan, ROLE_DEFINITION, "approver-role").inputs["permissions"] = [
            {"actions": [], "notActions": [], "dataActions": [], "notDataActions": [], **permission}
        ]

    return mutate


# --------------------------------------------------------------------------- role assignments


@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("role", list(PRIVILEGED))
def test_privileged_admin_roles_are_refused_at_every_scope(role: str, scope: str, prod_plan: Plan) -> None:
    message = only(new_findings(prod_plan, "prod", grant(PRIVILEGED[role], SCOPES[scope])), "azml-rbac-no-privileged-admin-roles", "ra-added")
    assert f"grants {role} ({PRIVILEGED[role]}) at scope {SCOPES[scope]!r}" in message
    assert "refused" in message and "exemptResources" in message


def test_a_privileged_grant_passes_only_under_a_dated_risk_acceptance(prod_plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from azml_policies import acceptances

    owner = grant(PRIVILEGED["Owner"], GROUP, name="ra-break-glass")
    accepted = {
        "resource": "ra-break-glass",
        "reason": "break-glass Owner for the tenant migration, removed when it ends",
        "expires": "2026-09-30",
    }
    config = {"azml-rbac-no-privileged-admin-roles": {"exemptResources": [accepted]}}
    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2026, 9, 30))
    assert new_findings(prod_plan, "prod", owner, config) == []
    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2026, 10, 1))
    message = only(new_findings(prod_plan, "prod", owner, config), "azml-rbac-no-privileged-admin-roles", "ra-break-glass")
    assert "expired on 2026-09-30" in message


@pytest.mark.parametrize("scope", ["management group", "subscription", "resource group"])
@pytest.mark.parametrize("role", list(DATA_ROLES))
def test_data_owning_roles_are_refused_wider_than_their_resource(role: str, scope: str, prod_plan: Plan) -> None:
    role_id, _resource = DATA_ROLES[role]
    message = only(new_findings(prod_plan, "prod", grant(role_id, SCOPES[scope])), "azml-rbac-no-wide-data-roles", "ra-added")
    assert f"grants {role} ({role_id})" in message and "refused" in message


@pytest.mark.parametrize("role", list(DATA_ROLES))
def test_data_owning_roles_on_their_own_resource_are_allowed(role: str, prod_plan: Plan) -> None:
    role_id, resource = DATA_ROLES[role]
    assert new_findings(prod_plan, "prod", grant(role_id, resource)) == []


def test_the_function_keeps_blob_data_owner_on_its_host_account(prod_plan: Plan) -> None:
    assignment = one(prod_plan, ROLE_ASSIGNMENT, "ra-func-storage-blob-data-owner")
    assert assignment.inputs["roleDefinitionId"].endswith(DATA_ROLES["Storage Blob Data Owner"][0])
    assert assignment.inputs["scope"].endswith("/storageAccounts/stfnazmlprd3d136e")
    assert not [f for f in evaluate(prod_plan, "prod") if f.name == assignment.name]


def test_personas_go_to_groups_never_to_users(prod_plan: Plan) -> None:
    to_user = lambda plan: one(plan, ROLE_ASSIGNMENT, READER).inputs.update(principalType="User")  # noqa: E731
    message = only(new_findings(prod_plan, "prod", to_user), "azml-rbac-personas-are-groups", READER)
    assert "principalType is 'User'; refused" in message and "Group, ServicePrincipal" in message
    unset = lambda plan: one(plan, ROLE_ASSIGNMENT, READER).inputs.pop("principalType")  # noqa: E731
    assert "principalType is not set" in only(new_findings(prod_plan, "prod", unset), "azml-rbac-personas-are-groups", READER)
    unknown = lambda plan: one(plan, ROLE_ASSIGNMENT, READER).inputs.update(principalType="[unknown]")  # noqa: E731
    assert new_findings(prod_plan, "prod", unknown) == []
    # Personas are groups and identities service principals in both stacks.
    for plan in (prod_plan,):
        assert {r.inputs["principalType"] for r in plan.of_type(ROLE_ASSIGNMENT)} == {"Group", "ServicePrincipal"}


# --------------------------------------------------------------------------- custom roles


@pytest.mark.parametrize(
    "actions",
    [
        ["Microsoft.Authorization/*"],
        ["Microsoft.Authorization/roleAssignments/*"],
        ["microsoft.authorization/roleassignments/write"],
        ["Microsoft.Authorization/*/write"],
        ["Microsoft.Authorization/locks/delete"],
        ["Microsoft.Authorization/policyAssignments/*"],
    ],
)
def test_custom_roles_never_hand_out_access_or_lift_governance(actions: list[str], prod_plan: Plan) -> None:
    message = only(
        new_findings(prod_plan, "prod", approver_permission(actions=actions)),
        "azml-rbac-custom-role-no-authorization-writes",
        "approver-role",
    )
    assert f"{actions[0]!r} grants Microsoft.Authorization/" in message and "refused" in message


def test_not_actions_take_away_what_a_wildcard_grants(prod_plan: Plan) -> None:
    """Azure subtracts notActions from actions: what is excluded is not granted."""
    excluded = approver_permission(
        actions=["Microsoft.Authorization/*"],
        notActions=["Microsoft.Authorization/*/write", "Microsoft.Authorization/*/delete"],
    )
    assert new_findings(prod_plan, "prod", excluded) == []
    assert new_findings(prod_plan, "prod", approver_permission(actions=["Microsoft.Authorization/*/read"])) == []


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("actions", "Microsoft.Storage/*"),
        ("actions", "Microsoft.Storage/storageAccounts/*"),
        ("actions", "Microsoft.Storage/storageAccounts/*/write"),
        ("actions", "Microsoft.Storage/storageAccounts/write"),
        ("actions", "Microsoft.Storage/storageAccounts/listKeys/action"),
        ("dataActions", "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"),
    ],
)
def test_custom_roles_never_write_storage(key: str, action: str, prod_plan: Plan) -> None:
    message = only(
        new_findings(prod_plan, "prod", approver_permission(**{key: [action]})),
        "azml-rbac-custom-role-no-storage-writes",
        "approver-role",
    )
    assert f"{key} {action!r} grants Microsoft.Storage/" in message


def test_explicit_blob_data_and_read_actions_stay_allowed(prod_plan: Plan) -> None:
    reads = approver_permission(
        actions=["Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/blobServices/containers/read"],
        dataActions=["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"],
    )
    assert new_findings(prod_plan, "prod", reads) == []


def test_a_star_write_is_every_kind_of_refusal(prod_plan: Plan) -> None:
    findings = new_findings(prod_plan, "prod", approver_permission(actions=["*/write"]))
    assert {f.policy for f in findings} == {
        "azml-rbac-custom-role-least-privilege",
        "azml-rbac-custom-role-no-authorization-writes",
        "azml-rbac-custom-role-no-storage-writes",
    }
    assert {f.name for f in findings} == {"approver-role"}


# --------------------------------------------------------------------------- locks and protect


@pytest.mark.parametrize(("lock", "target"), [("lock-key-vault", "kv"), ("lock-storage", "st")])
def test_deleting_a_lock_fails(lock: str, target: str, prod_plan: Plan) -> None:
    drop = lambda plan: plan.resources.remove(one(plan, LOCK, lock))  # noqa: E731
    message = only(new_findings(prod_plan, "prod", drop), "azml-governance-locks", target)
    assert "no management lock; refused" in message and "CanNotDelete" in message


def test_a_read_only_lock_is_refused_and_a_group_lock_counts(prod_plan: Plan) -> None:
    read_only = lambda plan: one(plan, LOCK, "lock-key-vault").inputs.update(level="ReadOnly")  # noqa: E731
    message = only(new_findings(prod_plan, "prod", read_only), "azml-governance-locks", "kv")
    assert "level 'ReadOnly'" in message and "listing a storage account's keys" in message

    def group_lock(plan: Plan) -> None:
        template = one(plan, LOCK, "lock-key-vault")
        plan.resources[:] = [r for r in plan.resources if r.type != LOCK]
        plan.resources.append(
            PlannedResource(
                template.urn.replace("ManagementLockByScope::lock-key-vault", "ManagementLockAtResourceGroupLevel::lock-rg"),
                LOCK_AT_GROUP, "lock-rg", True, template.parent, [], {},
                {"level": "CanNotDelete", "resourceGroupName": "rg-azml-prd-westeurope"}, {},
            )
        )

    # A resource-group lock does protect both (the platform pack refuses it for covering releases).
    assert [f for f in new_findings(prod_plan, "prod", group_lock) if f.policy == "azml-governance-locks"] == []


def test_more_kinds_can_be_required(prod_plan: Plan) -> None:
    config = {"azml-governance-locks": {"lockedKinds": ["vault", "workspaceStorage", "registry"]}}
    assert {(f.policy, f.name) for f in evaluate(prod_plan, "prod", config)} == {("azml-governance-locks", "cr")}


def test_the_workspace_stays_under_pulumi_protect(prod_plan: Plan) -> None:
    assert one(prod_plan, WORKSPACE).options["protect"] is True
    unprotect = lambda plan: one(plan, WORKSPACE).options.update(protect=False)  # noqa: E731
    message = only(new_findings(prod_plan, "prod", unprotect), "azml-governance-workspace-protected", "mlw")
    assert "protect option is off; refused" in message


def test_dev_needs_no_locks(dev_plan: Plan) -> None:
    assert not dev_plan.of_type(LOCK) and not one(dev_plan, WORKSPACE).options.get("protect")
    assert [f for f in evaluate(dev_plan, "dev") if f.policy.startswith("azml-governance")] == []


# --------------------------------------------------------------------------- policy assignments


@pytest.mark.parametrize(
    "assignment",
    [
        "policy-ml-workspace-no-public-network",
        "policy-ml-compute-local-auth-disabled",
        "policy-key-vault-deletion-protection",
        "policy-storage-no-public-network",
    ],
)
def test_deleting_a_required_policy_assignment_fails(assignment: str, prod_plan: Plan) -> None:
    definition = one(prod_plan, POLICY_ASSIGNMENT, assignment).inputs["policyDefinitionId"].rsplit("/", 1)[1]
    drop = lambda plan: plan.resources.remove(one(plan, POLICY_ASSIGNMENT, assignment))  # noqa: E731
    message = only(new_findings(prod_plan, "prod", drop), "azml-governance-policy-assignments", "rg")
    assert f"no Azure Policy for definition(s) {definition}; refused" in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("enforcementMode", "DoNotEnforce", "enforcementMode is 'DoNotEnforce'; refused"),
        ("parameters.effect.value", "Audit", "parameters.effect is 'Audit'; refused: this stack requires Deny"),
        ("parameters.effect.value", "Disabled", "parameters.effect is 'Disabled'; refused: it turns the policy off"),
        ("scope", VAULT_ID, "is a single resource; refused"),
    ],
)
def test_a_weakened_policy_assignment_fails(path: str, value: str, expected: str, prod_plan: Plan) -> None:
    def weaken(plan: Plan) -> None:
        inputs = one(plan, POLICY_ASSIGNMENT, "policy-key-vault-deletion-protection").inputs
        *parents, key = path.split(".")
        for part in parents:
            inputs = inputs[part]
        inputs[key] = value

    message = only(new_findings(prod_plan, "prod", weaken), "azml-governance-policy-assignments", "policy-key-vault-deletion-protection")
    assert expected in message


def test_an_unset_effect_fails(prod_plan: Plan) -> None:
    unset = lambda plan: one(plan, POLICY_ASSIGNMENT, "policy-key-vault-deletion-protection").inputs.pop("parameters")  # noqa: E731
    message = only(new_findings(prod_plan, "prod", unset), "azml-governance-policy-assignments", "policy-key-vault-deletion-protection")
    assert "parameters.effect is not set; refused" in message


def test_not_scopes_hold_only_the_accepted_resources(prod_plan: Plan) -> None:
    (excluded,) = one(prod_plan, POLICY_ASSIGNMENT, "policy-storage-no-public-network").inputs["notScopes"]
    assert excluded.endswith("/stfnazmlprd3d136e")  # the function host storage, allowedNotScopes: st-fn
    widen = lambda plan: one(plan, POLICY_ASSIGNMENT, "policy-storage-no-public-network").inputs["notScopes"].append(STORAGE_ID)  # noqa: E731
    message = only(new_findings(prod_plan, "prod", widen), "azml-governance-policy-assignments", "policy-storage-no-public-network")
    assert f"notScopes excludes {STORAGE_ID!r}; refused" in message and "(st-fn)" in message


def test_dev_audits_but_never_disables(dev_plan: Plan) -> None:
    assignment = one(dev_plan, POLICY_ASSIGNMENT, "policy-ml-workspace-no-public-network")
    assert assignment.inputs["enforcementMode"] == "DoNotEnforce" and assignment.inputs["parameters"]["effect"]["value"] == "Audit"
    disable = lambda plan: one(plan, POLICY_ASSIGNMENT).inputs["parameters"]["effect"].update(value="Disabled")  # noqa: E731
    only(new_findings(dev_plan, "dev", disable), "azml-governance-policy-assignments", "policy-ml-workspace-no-public-network")


# --------------------------------------------------------------------------- Defender and the activity log


def test_deleting_or_freeing_the_defender_plan_fails(prod_plan: Plan) -> None:
    drop = lambda plan: plan.resources.remove(one(plan, PRICING, "defender-containers"))  # noqa: E731
    findings = [f for f in new_findings(prod_plan, "prod", drop) if f.policy == "azml-governance-defender-plans"]
    assert [f.name for f in findings] == ["rg"] and "no Standard Defender plan Containers; refused" in findings[0].message
    free = lambda plan: one(plan, PRICING, "defender-containers").inputs.update(pricingTier="Free")  # noqa: E731
    findings = [f for f in new_findings(prod_plan, "prod", free) if f.policy == "azml-governance-defender-plans"]
    assert {f.name for f in findings} == {"defender-containers", "rg"}
    assert any("a Free pricing switches the Defender plan off for the whole subscription" in f.message for f in findings)


def test_required_plans_are_configurable(prod_plan: Plan) -> None:
    config = {"azml-governance-defender-plans": {"requiredPlans": ["Containers", "CosmosDbs"]}}
    findings = [f for f in evaluate(prod_plan, "prod", config)]
    assert [(f.policy, f.name) for f in findings] == [("azml-governance-defender-plans", "rg")]
    assert "Standard Defender plan CosmosDbs" in findings[0].message


def test_removing_the_activity_log_export_fails(prod_plan: Plan) -> None:
    drop = lambda plan: plan.resources.remove(one(plan, DIAGNOSTICS, "activity-log"))  # noqa: E731
    message = only(new_findings(prod_plan, "prod", drop), "azml-governance-activity-log-export", "rg")
    assert "exports no activity log" in message
    assert new_findings(prod_plan, "prod", drop, {"azml-governance-activity-log-export": {"required": False}}) == []


def test_the_export_must_reach_log_analytics_with_every_category(prod_plan: Plan) -> None:
    no_destination = lambda plan: one(plan, DIAGNOSTICS, "activity-log").inputs.pop("workspaceId")  # noqa: E731

    def drop_destination(plan: Plan) -> None:
        no_destination(plan)
        one(plan, DIAGNOSTICS, "activity-log").property_dependencies.pop("workspaceId")

    assert "workspaceId is not set" in only(new_findings(prod_plan, "prod", drop_destination), "azml-governance-activity-log-export", "activity-log")
    policy_off = lambda plan: one(plan, DIAGNOSTICS, "activity-log").inputs["logs"][1].update(enabled=False)  # noqa: E731
    message = only(new_findings(prod_plan, "prod", policy_off), "azml-governance-activity-log-export", "activity-log")
    assert "logs do not enable Policy" in message


def test_the_export_is_recognised_from_outputs_and_unknowns(prod_plan: Plan) -> None:
    """Stack policies see outputs (no resourceUri, an id) and, in a first
    preview, an unknown subscription: the export still counts."""

    def outputs(plan: Plan) -> None:
        inputs = one(plan, DIAGNOSTICS, "activity-log").inputs
        inputs.pop("resourceUri")
        inputs["id"] = f"{SUB}/providers/Microsoft.Insights/diagnosticSettings/azml-prd-activity-log"

    assert new_findings(prod_plan, "prod", outputs) == []
    unknown = lambda plan: one(plan, DIAGNOSTICS, "activity-log").inputs.update(resourceUri="[unknown]")  # noqa: E731
    assert new_findings(prod_plan, "prod", unknown) == []


# --------------------------------------------------------------------------- the mutation matrix, this pack's share


MUTATIONS = rbac_mutations.MUTATIONS + governance_mutations.MUTATIONS


def test_the_matrix_categories_have_their_share() -> None:
    assert len(rbac_mutations.MUTATIONS) >= 16 and {m.category for m in rbac_mutations.MUTATIONS} == {"rbac"}
    assert len(governance_mutations.MUTATIONS) >= 10 and {m.category for m in governance_mutations.MUTATIONS} == {"governance"}
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_each_mutation_is_caught_by_the_checks_it_names(mutation: Any, prod_plan: Plan) -> None:
    """The checklist pack's named policies report something new (the full
    matrix, with checkov and the platform pack, is tests/policies/test_mutation_matrix.py)."""
    named = [c for c in mutation.caught_by if c in POLICIES]
    assert named, mutation.caught_by
    fired = {f.policy for f in new_findings(prod_plan, "prod", mutation.apply)}
    assert fired & set(named), (mutation.id, fired)
