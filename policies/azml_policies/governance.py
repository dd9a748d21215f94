"""Stack policies on governance: what docs/operations.md promises for production —
locks on what must never be deleted, the workspace protected by Pulumi,
enforced Azure Policy assignments, Defender plans and the activity-log export
— is in the stack, so that deleting or weakening any of it fails the plan.

What each relies on (Microsoft):

- Locks: "CanNotDelete means authorized users can read and modify a resource,
  but they can't delete the resource", and "When you apply a lock at a parent
  scope, all resources within that scope inherit the same lock"; "A read-only
  lock on a storage account prevents users from listing the account keys"
  (https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources).
  The platform locks the data and the secrets (workspace storage, Key Vault)
  and protects the workspace with Pulumi instead of a lock, because a lock
  there would block releases (components/governance.py; the platform rule
  ``azure-lock-spares-release-resources`` refuses such a lock): these
  policies require exactly that, never a lock on the workspace.
- Policy assignments: ``enforcementMode`` ``DoNotEnforce``: "The policy
  effect isn't enforced during resource creation or update"
  (https://learn.microsoft.com/azure/governance/policy/concepts/assignment-structure#enforcement-mode).
- Defender: ``pricingTier`` "Indicates whether the Defender plan is enabled on
  the selected scope [...] free and standard"; a Free pricing turns the plan
  off for the whole subscription
  (https://learn.microsoft.com/rest/api/defenderforcloud/pricings/update).
- Activity log: a diagnostic setting whose scope is the subscription sends
  the activity log (categories Administrative, Policy, Security...) to Log
  Analytics (https://learn.microsoft.com/azure/azure-monitor/platform/activity-log#export-activity-log).

Unknown values (preview) count as compliant; presence is read from types and
recorded dependencies, so a plan of unknowns reports nothing it did not before.
"""

from __future__ import annotations

from typing import Any, Iterable

from pulumi_policy import Severity

from . import checks
from .azure import REGISTRY, STORAGE_ACCOUNT, VAULT, WORKSPACE, last_segment
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .rbac import scope_level
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, get, one_of, same, show, strings

RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
LOCK_BY_SCOPE = "azure-native:authorization:ManagementLockByScope"
LOCK_AT_RESOURCE = "azure-native:authorization:ManagementLockAtResourceLevel"
LOCK_AT_GROUP = "azure-native:authorization:ManagementLockAtResourceGroupLevel"
LOCK_AT_SUBSCRIPTION = "azure-native:authorization:ManagementLockAtSubscriptionLevel"
LOCKS = (LOCK_BY_SCOPE, LOCK_AT_RESOURCE, LOCK_AT_GROUP, LOCK_AT_SUBSCRIPTION)
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
PRICING = "azure-native:security:Pricing"

#: The built-in Azure Policy definitions prod assigns (azml/config/platform/governance.py BUILTIN_POLICIES).
PROD_POLICY_DEFINITIONS = [
    "438c38d2-3772-465a-a9cc-7a6666a275ce",  # Azure ML workspaces should disable public network access
    "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f",  # Azure ML computes should have local authentication methods disabled
    "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",  # Key vaults should have deletion protection enabled
    "b2982f36-99f2-4db5-8eff-283140c09693",  # Storage accounts should disable public network access
]


def anchor(stack: Stack) -> str | None:
    """Where a stack-wide absence is reported: the stack's resource group."""
    groups = stack.of_type(RESOURCE_GROUP)
    return groups[0].urn if len(groups) == 1 else None


def listed(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


# --------------------------------------------------------------------------- locks


def _workspace_storage(stack: Stack) -> list[Resource]:
    accounts = stack.of_type(STORAGE_ACCOUNT)
    return stack.in_order(a for w in stack.of_type(WORKSPACE) for a in stack.links(w, "storageAccount", among=accounts))


_LOCKED_KINDS = {
    "vault": lambda stack: stack.of_type(VAULT),
    "workspaceStorage": _workspace_storage,
    "storage": lambda stack: stack.of_type(STORAGE_ACCOUNT),
    "registry": lambda stack: stack.of_type(REGISTRY),
}


def _covers(stack: Stack, lock: Resource, target: Resource) -> bool | None:
    """Whether ``lock`` applies to ``target`` (None: cannot tell yet)."""
    if lock.type == LOCK_AT_SUBSCRIPTION:
        return True
    if lock.type == LOCK_AT_GROUP:
        mine, theirs = lock.get("resourceGroupName"), target.get("resourceGroupName")
        if isinstance(mine, str) and isinstance(theirs, str):
            return mine.lower() == theirs.lower()
        return None
    if lock.type == LOCK_AT_RESOURCE:
        name = lock.get("resourceName")
        if isinstance(name, str) and target.arm_name:
            return name.lower() == target.arm_name.lower()
        return None if name is UNKNOWN else False
    scope = lock.get("scope")
    if stack.linked(lock, "scope", target):
        return True
    return None if scope is UNKNOWN else False


def _locks(stack: Stack, config: dict[str, Any]) -> Finding:
    locks = stack.of_type(*LOCKS)
    allowed = list(config["allowedLevels"])
    targets = stack.in_order(t for kind in config["lockedKinds"] if kind in _LOCKED_KINDS for t in _LOCKED_KINDS[kind](stack))
    for target in targets:
        if exempt(config, target.name, target.arm_name):
            continue
        covering = [(lock, _covers(stack, lock, target)) for lock in locks]
        if any(c is None for _, c in covering):
            continue
        applying = [lock for lock, c in covering if c]
        if not applying:
            yield target.urn, (
                f"{target.label}: no management lock; refused: nothing stops a deletion of it (or of its resource "
                "group) from destroying production state. Add a ManagementLockByScope with level CanNotDelete and "
                "scope the resource's id (azml:governance.locks: true)"
            )
            continue
        levels = [lock.get("level") for lock in applying]
        if not any(level is UNKNOWN or one_of(level, allowed) for level in levels):
            yield target.urn, (
                f"{target.label}: its locks have level {listed(show(v) for v in levels)}; refused: the level must be "
                f"one of {listed(allowed)} (ReadOnly also blocks writes the platform makes, e.g. listing a storage "
                "account's keys)"
            )


locks_on_state = stack_policy(
    PolicyInfo(
        name="azml-governance-locks",
        description="The Key Vault and the workspace storage (what holds production state) each have a CanNotDelete lock.",
        checklist=checks.BASELINE_GOVERNANCE,
        severity=Severity.HIGH,
        remediation=(
            "Set azml:governance.locks: true (components/governance.py locks the vault and the workspace storage "
            "with ManagementLockByScope, level CanNotDelete). Never lock the workspace or the resource group: "
            "releases delete endpoints and role assignments under them (platform rule azure-lock-spares-release-resources)."
        ),
        resource_types=(*LOCKS, VAULT, STORAGE_ACCOUNT, REGISTRY, WORKSPACE),
        properties=(
            "ManagementLockByScope.scope", "ManagementLockByScope.level", "ManagementLockAtResourceLevel.resourceName",
            "ManagementLockAtResourceGroupLevel.resourceGroupName", "Workspace.storageAccount",
        ),
        config={
            "lockedKinds": {
                "type": "array",
                "items": {"type": "string", "enum": sorted(_LOCKED_KINDS)},
                "default": ["vault", "workspaceStorage"],
                "description": "Kinds of resources that need a lock.",
            },
            "allowedLevels": {
                "type": "array",
                "items": {"type": "string", "enum": ["CanNotDelete", "ReadOnly"]},
                "default": ["CanNotDelete"],
                "description": "Lock levels that count.",
            },
        },
        kind="stack",
        tags=("governance",),
    ),
    _locks,
)

# --------------------------------------------------------------------------- the workspace under Pulumi protect


def _workspace_protected(stack: Stack, config: dict[str, Any]) -> Finding:
    if not config["required"]:
        return
    for workspace in stack.of_type(WORKSPACE):
        if not workspace.protect and not exempt(config, workspace.name, workspace.arm_name):
            yield workspace.urn, (
                f"{workspace.label}: the Pulumi protect option is off; refused: pulumi destroy or a replacing change "
                "would delete the workspace with its models, jobs and lineage. Keep protect on (azml:governance.locks: "
                "true applies components/governance.py protect_workspace)"
            )


workspace_protected = stack_policy(
    PolicyInfo(
        name="azml-governance-workspace-protected",
        description="The Azure ML workspace carries Pulumi's protect option (in place of an Azure lock, which would block releases).",
        checklist=checks.BASELINE_GOVERNANCE,
        severity=Severity.HIGH,
        remediation="Set azml:governance.locks: true; the workspace component then applies protect_workspace (protect=True).",
        resource_types=(WORKSPACE,),
        properties=("Workspace (resource option protect)",),
        config={"required": {"type": "boolean", "default": True, "description": "Whether every workspace must be protected."}},
        kind="stack",
        tags=("governance",),
    ),
    _workspace_protected,
)

# --------------------------------------------------------------------------- Azure Policy assignments


def _definition(assignment: Resource) -> Any:
    value = assignment.get("policyDefinitionId")
    return last_segment(value).lower() if isinstance(value, str) and last_segment(value) else value


def _assignment_problems(stack: Stack, assignment: Resource, config: dict[str, Any], required: bool) -> Iterable[str]:
    mode = assignment.get("enforcementMode")
    if same(mode, "DoNotEnforce") and not config["allowDoNotEnforce"]:
        yield (
            f"{assignment.label}: enforcementMode is 'DoNotEnforce'; refused: the policy then denies nothing. Set it "
            "to 'Default' (azml:governance.policies[].enforcement)"
        )
    effect = get(assignment.props, "parameters.effect.value")
    if required and effect is MISSING:
        yield (
            f"{assignment.label}: parameters.effect is not set; refused: the definition's default effect would apply. "
            f"Set it to one of {listed(config['allowedEffects'])}"
        )
    elif same(effect, "Disabled"):
        yield f"{assignment.label}: parameters.effect is 'Disabled'; refused: it turns the policy off. Remove the assignment's override or set {listed(config['allowedEffects'])}"
    elif required and isinstance(effect, str) and not one_of(effect, config["allowedEffects"]):
        yield (
            f"{assignment.label}: parameters.effect is {show(effect)}; refused: this stack requires "
            f"{listed(config['allowedEffects'])} (Audit only reports what Deny would refuse)"
        )
    level = scope_level(assignment.get("scope"))
    if required and level == "resource":
        yield f"{assignment.label}: scope {assignment.get('scope')!r} is a single resource; refused: assign it at the stack's resource group"
    allowed_ids = [r.own_id for r in stack.resources if r.name in config["allowedNotScopes"] or (r.arm_name or "") in config["allowedNotScopes"]]
    for excluded in strings(assignment.get("notScopes")):
        if not any(own and _refers(excluded, own, full) for own, full in allowed_ids):
            yield (
                f"{assignment.label}: notScopes excludes {excluded!r}; refused: only the resources in allowedNotScopes "
                f"({listed(config['allowedNotScopes'])}) may be outside the policy"
            )


def _refers(reference: str, own: str, full: bool) -> bool:
    ref = reference.rstrip("/").lower()
    return ref == own if full else ref.endswith(own)


def _policy_assignments(stack: Stack, config: dict[str, Any]) -> Finding:
    assignments = [a for a in stack.of_type(POLICY_ASSIGNMENT) if not exempt(config, a.name, a.arm_name)]
    required = [d.lower() for d in config["requiredDefinitions"]]
    for assignment in assignments:
        for problem in _assignment_problems(stack, assignment, config, _definition(assignment) in required):
            yield assignment.urn, problem
    if any(_definition(a) is UNKNOWN for a in stack.of_type(POLICY_ASSIGNMENT)):
        return
    present = {_definition(a) for a in stack.of_type(POLICY_ASSIGNMENT)}
    missing = [d for d in required if d not in present]
    if missing:
        yield anchor(stack), (
            f"the stack assigns no Azure Policy for definition(s) {listed(missing)}; refused: requiredDefinitions "
            "lists them. Add them to azml:governance.policies (builtin aliases in azml/config/platform/governance.py) with "
            "effect Deny at the resource group"
        )


policy_assignments = stack_policy(
    PolicyInfo(
        name="azml-governance-policy-assignments",
        description=(
            "The required built-in Azure Policy definitions are assigned at resource-group (or wider) scope, "
            "enforced (enforcementMode Default) with an allowed effect, excluding only the allowed resources."
        ),
        checklist=checks.BASELINE_GOVERNANCE,
        severity=Severity.HIGH,
        remediation=(
            "List each definition in azml:governance.policies with parameters.effect Deny and enforcement Default "
            "(the default); put a resource in notScopes only with a reason documented in policies/README.md."
        ),
        resource_types=(POLICY_ASSIGNMENT, RESOURCE_GROUP),
        properties=(
            "PolicyAssignment.policyDefinitionId", "PolicyAssignment.enforcementMode",
            "PolicyAssignment.parameters.effect.value", "PolicyAssignment.scope", "PolicyAssignment.notScopes",
        ),
        config={
            "requiredDefinitions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(PROD_POLICY_DEFINITIONS),
                "description": "Policy definition GUIDs (last segment of policyDefinitionId) that must be assigned.",
            },
            "allowDoNotEnforce": {"type": "boolean", "default": False, "description": "Whether enforcementMode DoNotEnforce is accepted."},
            "allowedEffects": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["Deny"],
                "description": "Effects a required definition's assignment may set (Disabled is refused on every assignment).",
            },
            "allowedNotScopes": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Pulumi or Azure names of resources an assignment may exclude (notScopes).",
            },
        },
        kind="stack",
        tags=("governance",),
    ),
    _policy_assignments,
)

POLICIES = [locks_on_state, workspace_protected, policy_assignments]
