"""Governance mutations: prod's locks, the workspace's Pulumi protect, the
enforced Azure Policy assignments, the Defender plans (and Defender for
Storage's scans) and the activity-log export deleted or quietly weakened."""

from __future__ import annotations

from typing import Callable

from azml.plan.model import Plan

from . import Mutation, added, combined, one, put, removal, setting

LOCK = "azure-native:authorization:ManagementLockByScope"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
PRICING = "azure-native:security:Pricing"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"

LOCKS = "azml-governance-locks"
PROTECTED = "azml-governance-workspace-protected"
POLICIES = "azml-governance-policy-assignments"
DEFENDER = "azml-governance-defender-plans"
STORAGE_SCANS = "azml-governance-defender-storage-scans"
EXTENSIONS_EXPLICIT = "azure-defender-pricing-extensions-explicit"
VULNERABILITY_SCAN = "azml-registry-vulnerability-assessment"
ACTIVITY_LOG = "azml-governance-activity-log-export"


def _storage_extension_dropped(name: str) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        pricing = one(plan, PRICING, "defender-storage-accounts")
        pricing.inputs["extensions"] = [e for e in pricing.inputs["extensions"] if e["name"] != name]

    return mutate


def _unprotect(plan: Plan) -> None:
    one(plan, WORKSPACE).options["protect"] = False


def _lock_moves_to_host_storage(plan: Plan) -> None:
    """The storage lock re-pointed at the function's host account: the
    workspace storage is left unlocked."""
    lock = one(plan, LOCK, "lock-storage")
    host = one(plan, STORAGE_ACCOUNT, "st-fn").inputs["accountName"]
    lock.inputs["scope"] = lock.inputs["scope"].rsplit("/", 1)[0] + "/" + host
    lock.property_dependencies["scope"] = [one(plan, STORAGE_ACCOUNT, "st-fn").urn]
    lock.dependencies = [one(plan, STORAGE_ACCOUNT, "st-fn").urn]


def _exclude_workspace_storage(plan: Plan) -> None:
    """The storage public-network policy also skips the workspace storage."""
    assignment = one(plan, POLICY_ASSIGNMENT, "policy-storage-no-public-network")
    account = one(plan, STORAGE_ACCOUNT, "st").inputs["accountName"]
    excluded = assignment.inputs["notScopes"][0]
    assignment.inputs["notScopes"].append(excluded.rsplit("/", 1)[0] + "/" + account)


def _policy_on_one_resource(plan: Plan) -> None:
    """The workspace policy assigned on the key vault only."""
    vault_scope = one(plan, LOCK, "lock-key-vault").inputs["scope"]
    put(one(plan, POLICY_ASSIGNMENT, "policy-ml-workspace-no-public-network").inputs, "scope", vault_scope)


def _activity_category_off(plan: Plan) -> None:
    for entry in one(plan, DIAGNOSTIC_SETTING, "activity-log").inputs["logs"]:
        if entry["category"] == "Administrative":
            entry["enabled"] = False


MUTATIONS: list[Mutation] = [
    Mutation("governance-vault-lock-removed", "governance", "the Key Vault's CanNotDelete lock deleted",
             removal(LOCK, "lock-key-vault"), (LOCKS,)),
    Mutation("governance-storage-lock-removed", "governance", "the workspace storage's CanNotDelete lock deleted",
             removal(LOCK, "lock-storage"), (LOCKS,)),
    Mutation("governance-locks-off", "governance", "azml:governance.locks: false in prod (no locks, no protect)",
             combined(removal(LOCK), _unprotect), (LOCKS, PROTECTED)),
    Mutation("governance-storage-lock-on-the-wrong-account", "governance",
             "the storage lock scoped to the function host account instead of the workspace storage",
             _lock_moves_to_host_storage, (LOCKS,)),
    Mutation("governance-workspace-unprotected", "governance", "Pulumi protect dropped from the workspace",
             _unprotect, (PROTECTED,)),
    Mutation("governance-storage-policy-removed", "governance", "the storage public-network policy assignment deleted",
             removal(POLICY_ASSIGNMENT, "policy-storage-no-public-network"), (POLICIES,)),
    Mutation("governance-all-policies-removed", "governance", "azml:governance.policies emptied",
             removal(POLICY_ASSIGNMENT), (POLICIES,)),
    Mutation("governance-workspace-policy-not-enforced", "governance", "the workspace policy set to DoNotEnforce",
             setting(POLICY_ASSIGNMENT, "enforcementMode", "DoNotEnforce", "policy-ml-workspace-no-public-network"),
             (POLICIES,)),
    Mutation("governance-vault-policy-audit-only", "governance", "the key vault deletion-protection policy set to Audit",
             setting(POLICY_ASSIGNMENT, "parameters.effect.value", "Audit", "policy-key-vault-deletion-protection"),
             (POLICIES,)),
    Mutation("governance-compute-policy-disabled", "governance", "the compute local-auth policy's effect set to Disabled",
             setting(POLICY_ASSIGNMENT, "parameters.effect.value", "Disabled", "policy-ml-compute-local-auth-disabled"),
             (POLICIES,)),
    Mutation("governance-storage-policy-excludes-workspace-storage", "governance",
             "the workspace storage added to the storage policy's notScopes", _exclude_workspace_storage, (POLICIES,)),
    Mutation("governance-policy-scoped-to-one-resource", "governance", "the workspace policy assigned on the vault only",
             _policy_on_one_resource, (POLICIES,)),
    Mutation("governance-defender-removed", "governance", "defenderPlans.containers removed from prod",
             removal(PRICING, "defender-containers"), (DEFENDER, VULNERABILITY_SCAN)),
    Mutation("governance-defender-free", "governance", "the Containers plan set to the Free tier",
             setting(PRICING, "pricingTier", "Free", "defender-containers"), (DEFENDER, VULNERABILITY_SCAN)),
    Mutation("governance-another-plan-switched-off", "governance", "a StorageAccounts pricing on Free added",
             added(PRICING, "defender-containers", "defender-storage", pricingName="StorageAccounts", pricingTier="Free",
                   extensions=[]), (DEFENDER,)),
    Mutation("governance-defender-storage-plan-removed", "governance", "defenderPlans.storageAccounts removed from prod",
             removal(PRICING, "defender-storage-accounts"), (DEFENDER,)),
    Mutation("governance-defender-key-vault-plan-free", "governance", "the KeyVaults plan set to the Free tier",
             setting(PRICING, "pricingTier", "Free", "defender-key-vaults"), (DEFENDER,)),
    Mutation("governance-defender-malware-scanning-off", "governance",
             "defenderPlans.storageAccounts.malwareScanning: false (the plan stays on Standard)",
             setting(PRICING, "extensions.0.isEnabled", "False", "defender-storage-accounts"), (STORAGE_SCANS,)),
    Mutation("governance-defender-data-scanning-dropped", "governance",
             "the SensitiveDataDiscovery extension left out of the StorageAccounts pricing",
             _storage_extension_dropped("SensitiveDataDiscovery"), (STORAGE_SCANS, EXTENSIONS_EXPLICIT)),
    Mutation("governance-defender-storage-classic-sub-plan", "governance",
             "the StorageAccounts plan moved to the classic PerTransaction sub-plan",
             setting(PRICING, "subPlan", "PerTransaction", "defender-storage-accounts"), (STORAGE_SCANS,)),
    Mutation("governance-activity-log-export-removed", "governance", "azml:dashboards.activityLog: false in prod",
             removal(DIAGNOSTIC_SETTING, "activity-log"), (ACTIVITY_LOG,)),
    Mutation("governance-activity-log-administrative-off", "governance",
             "the activity-log export stops sending the Administrative category", _activity_category_off, (ACTIVITY_LOG,)),
]
