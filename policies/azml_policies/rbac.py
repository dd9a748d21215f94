"""Role assignments: no privileged administrator role at any scope, no
data-owning role wider than the resource it is for, personas granted to
groups.

What Microsoft says, and what these policies make of it:

- "Limit privileged administrator role assignments [...] Avoid assigning a
  privileged administrator role when a job function role can be used
  instead. If you must assign a privileged administrator role, use a narrow
  scope" and "Assign roles to groups, not users"
  (https://learn.microsoft.com/azure/role-based-access-control/best-practices;
  MicrosoftDocs/azure-docs articles/role-based-access-control/best-practices.md).
  The platform grants only job-function roles (components/roles.py,
  components/governance.py): Owner, Contributor, User Access Administrator
  and Role Based Access Control Administrator are refused at every scope. An
  assignment the platform truly needs is a risk acceptance in the policy's
  ``exemptResources`` (a reason and an expiry date), never a silent pass.
- Key Vault Administrator "Perform[s] all data plane operations on a key
  vault and all objects in it"; Storage Blob Data Owner "Provides full access
  to Azure Storage blob containers and data"; Storage Account Contributor
  "Permits management of storage accounts. Provides access to the account
  key, which can be used to access data via Shared Key authorization"
  (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security
  and .../built-in-roles/storage). At a resource group or wider they reach
  every vault or account there (the workspace's data and secrets included),
  so they are granted on the one resource they are for.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import ROLE_ASSIGNMENT, last_segment
from .checks import PolicyInfo, resource_policy
from .topology import Resource
from .values import MISSING, UNKNOWN, one_of, show, unwrap

# Built-in role definition ids (the same in every tenant of the public cloud).
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
ROLE_NAMES = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
    KEY_VAULT_ADMINISTRATOR: "Key Vault Administrator",
    STORAGE_BLOB_DATA_OWNER: "Storage Blob Data Owner",
    STORAGE_ACCOUNT_CONTRIBUTOR: "Storage Account Contributor",
}

_SUBSCRIPTION = re.compile(r"^/subscriptions/[^/]+/?$", re.IGNORECASE)
_MANAGEMENT_GROUP = re.compile(r"^/providers/Microsoft\.Management/managementGroups/[^/]+/?$", re.IGNORECASE)
_RESOURCE_GROUP = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/?$", re.IGNORECASE)


def scope_level(scope: Any) -> str | None:
    """``root``, ``managementGroup``, ``subscription``, ``resourceGroup`` or
    ``resource`` for a known scope; None when unknown or not a scope."""
    if not isinstance(scope, str) or not scope.startswith("/"):
        return None
    scope = scope.strip()
    if scope == "/":
        return "root"
    if _MANAGEMENT_GROUP.match(scope):
        return "managementGroup"
    if _SUBSCRIPTION.match(scope):
        return "subscription"
    if _RESOURCE_GROUP.match(scope):
        return "resourceGroup"
    return "resource" if scope.lower().startswith("/subscriptions/") else None


def wide(scope: Any) -> bool:
    """Subscription, management group or the root: wider than a resource group."""
    return scope_level(scope) in ("root", "managementGroup", "subscription")


def _role(assignment: Resource) -> str | None:
    role = last_segment(assignment.get("roleDefinitionId"))
    return role.lower() if role else None


def _role_name(role: str) -> str:
    return f"{ROLE_NAMES.get(role, 'role')} ({role})"


# --------------------------------------------------------------------------- privileged administrator roles


def _privileged_assignment(assignment: Resource, config: dict[str, Any]) -> Iterator[str]:
    role = _role(assignment)
    forbidden = {r.lower() for r in config["forbiddenRoleDefinitionIds"]}
    if role is None or role not in forbidden:
        return
    scope = assignment.get("scope")
    where = f"at scope {scope!r}" if isinstance(scope, str) else "(scope not known yet)"
    yield (
        f"{assignment.label}: roleDefinitionId grants {_role_name(role)} {where}; refused: a privileged "
        "administrator role is never assigned by the platform, at any scope. Grant a job-function role "
        "(AzureML Data Scientist, Reader, a Storage Blob Data role, or a custom role listing its actions) on the "
        "one resource it is for; a grant that cannot be avoided needs a risk acceptance (reason and expiry) "
        "in this policy's exemptResources"
    )


no_privileged_admin_roles = resource_policy(
    PolicyInfo(
        name="azml-rbac-no-privileged-admin-roles",
        description=(
            "No role assignment grants Owner, Contributor, User Access Administrator or Role Based Access Control "
            "Administrator, at any scope (subscription, management group, resource group or resource)."
        ),
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.CRITICAL,
        remediation=(
            "Replace the assignment with the job-function role the principal needs (e.g. AzureML Data Scientist "
            "on the workspace, Storage Blob Data Contributor on the account) at the narrowest scope "
            "(https://learn.microsoft.com/azure/role-based-access-control/best-practices#limit-privileged-administrator-role-assignments). "
            "If the platform must assign one, add a risk acceptance to exemptResources naming the assignment, "
            "the reason and the expiry date."
        ),
        resource_types=(ROLE_ASSIGNMENT,),
        properties=("roleDefinitionId", "scope"),
        config={
            "forbiddenRoleDefinitionIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": [OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR],
                "description": "Role definition GUIDs never assigned, at any scope.",
            }
        },
        tags=("rbac",),
    ),
    _privileged_assignment,
)

# --------------------------------------------------------------------------- data-owning roles at wide scopes


def _wide_data_role(assignment: Resource, config: dict[str, Any]) -> Iterator[str]:
    role = _role(assignment)
    if role is None or role not in {r.lower() for r in config["roleDefinitionIds"]}:
        return
    scope = assignment.get("scope")
    level = scope_level(scope)
    if level is None or level not in config["forbiddenScopeLevels"]:
        return
    yield (
        f"{assignment.label}: grants {_role_name(role)} at {level} scope {scope!r}; refused: it would reach every "
        "vault or storage account under that scope. Assign it on the one vault or storage account it is for "
        "(its resource id as scope), or use the narrower data role (Key Vault Secrets User, Storage Blob Data "
        "Contributor or Reader)"
    )


no_wide_data_roles = resource_policy(
    PolicyInfo(
        name="azml-rbac-no-wide-data-roles",
        description=(
            "Key Vault Administrator, Storage Blob Data Owner and Storage Account Contributor are assigned on a "
            "single vault or storage account, never at resource-group, subscription or management-group scope."
        ),
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Set the assignment's scope to the vault or storage account id it is for, or assign a narrower data "
            "role. Storage Account Contributor hands out the account keys (Shared Key access to all data): "
            "https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-account-contributor."
        ),
        resource_types=(ROLE_ASSIGNMENT,),
        properties=("roleDefinitionId", "scope"),
        config={
            "roleDefinitionIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": [KEY_VAULT_ADMINISTRATOR, STORAGE_BLOB_DATA_OWNER, STORAGE_ACCOUNT_CONTRIBUTOR],
                "description": "Role definition GUIDs assigned only at resource scope.",
            },
            "forbiddenScopeLevels": {
                "type": "array",
                "items": {"type": "string", "enum": ["root", "managementGroup", "subscription", "resourceGroup"]},
                "default": ["root", "managementGroup", "subscription", "resourceGroup"],
                "description": "Scope levels those roles are refused at.",
            },
        },
        tags=("rbac",),
    ),
    _wide_data_role,
)

# --------------------------------------------------------------------------- personas are groups


def _principal_type(assignment: Resource, config: dict[str, Any]) -> Iterator[str]:
    value = unwrap(assignment.get("principalType"))
    allowed = list(config["allowedPrincipalTypes"])
    if value is UNKNOWN or one_of(value, allowed):
        return
    if value is MISSING:
        yield (
            f"{assignment.label}: principalType is not set; refused: Azure then resolves the principal itself and "
            f"an individual user passes unseen. Set principalType to one of {', '.join(allowed)}"
        )
        return
    yield (
        f"{assignment.label}: principalType is {show(value)}; refused: roles go to Entra ID groups (personas) or "
        f"to service principals and managed identities, never to individual accounts. Put the person in the "
        f"persona's group (azml:principals) and assign the group; allowed: {', '.join(allowed)}"
    )


personas_are_groups = resource_policy(
    PolicyInfo(
        name="azml-rbac-personas-are-groups",
        description="Role assignments go to groups or service principals (managed identities), never to individual users.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.MEDIUM,
        remediation=(
            "List the persona's Entra ID group object id in azml:principals (a bare id means a group) instead of "
            "a user; \"Assign roles to groups, not users\" "
            "(https://learn.microsoft.com/azure/role-based-access-control/best-practices#assign-roles-to-groups-not-users)."
        ),
        resource_types=(ROLE_ASSIGNMENT,),
        properties=("principalType",),
        config={
            "allowedPrincipalTypes": {
                "type": "array",
                "items": {"type": "string", "enum": ["Group", "ServicePrincipal", "ForeignGroup", "User", "Device"]},
                "default": ["Group", "ServicePrincipal"],
                "description": "principalType values a role assignment may have.",
            }
        },
        tags=("rbac",),
    ),
    _principal_type,
)

POLICIES = [no_privileged_admin_roles, no_wide_data_roles, personas_are_groups]
