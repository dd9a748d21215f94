"""Custom role definitions: explicit actions, assignable below subscription
scope, never able to hand out access or lift governance, never writing
storage accounts.

Azure matches an action against a role's ``actions`` with ``*`` as a
wildcard ("Microsoft.Authorization/*" grants every authorization action) and
takes away what ``notActions`` match: "the effective permissions are
computed by subtracting the NotActions from the allowed Actions. Similarly,
the same subtraction is done for any data actions"
(https://learn.microsoft.com/azure/role-based-access-control/overview#how-azure-rbac-determines-if-a-user-has-access-to-a-resource).
:func:`grants` does the same, case-insensitively (Azure compares operations
case-insensitively). "It's recommended that you specify Actions and
DataActions explicitly instead of using the wildcard (*) character"
(https://learn.microsoft.com/azure/role-based-access-control/best-practices#avoid-using-a-wildcard-when-creating-custom-roles).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import ROLE_DEFINITION
from .checks import PolicyInfo, resource_policy
from .rbac import wide
from .topology import Resource
from .values import get, strings, unwrap


@lru_cache(maxsize=256)
def _pattern(action: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in action.strip().split("*")) + "$", re.IGNORECASE)


def grants(permission: Any, operation: str, *, data: bool = False) -> list[str]:
    """The entries of ``permission``'s actions (dataActions with ``data``)
    that grant ``operation``, unless its notActions (notDataActions) take it away."""
    allow, deny = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    if any(_pattern(n).match(operation) for n in strings(get(permission, deny))):
        return []
    return [a for a in strings(get(permission, allow)) if _pattern(a).match(operation)]


def granted_by_entry(permission: Any, operations: list[str], *, data: bool = False) -> dict[str, list[str]]:
    """Each actions (dataActions) entry of ``permission`` that grants some of
    ``operations``, with those it grants, in the entry's order."""
    found: dict[str, list[str]] = {}
    for operation in operations:
        for entry in grants(permission, operation, data=data):
            found.setdefault(entry, []).append(operation)
    return found


def _permissions(role: Resource) -> list[Any]:
    permissions = unwrap(role.get("permissions"))
    return permissions if isinstance(permissions, list) else []


# --------------------------------------------------------------------------- wildcards and assignable scopes


def _least_privilege(role: Resource, _config: dict[str, Any]) -> Iterator[str]:
    for index, permission in enumerate(_permissions(role)):
        for key in ("actions", "dataActions"):
            for action in strings(get(permission, key)):
                if action.strip() == "*" or action.strip().startswith("*/"):
                    yield (
                        f"{role.label}: permissions[{index}].{key} contains {action!r}; refused: a wildcard over "
                        "every resource provider grants whatever Azure adds later. List the operations the role needs"
                    )
    for scope in strings(role.get("assignableScopes")):
        if wide(scope):
            yield (
                f"{role.label}: assignableScopes contains {scope!r}; refused: the role could be assigned across the "
                "subscription. Make it assignable at the stack's resource group only"
            )


custom_role_least_privilege = resource_policy(
    PolicyInfo(
        name="azml-rbac-custom-role-least-privilege",
        description="Custom roles list explicit actions (no '*' or '*/...') and are assignable only below subscription scope.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation="Replace wildcard actions with the operations the persona needs; set assignableScopes to the resource group.",
        resource_types=(ROLE_DEFINITION,),
        properties=("permissions[].actions", "permissions[].dataActions", "assignableScopes"),
        tags=("rbac",),
    ),
    _least_privilege,
)

# --------------------------------------------------------------------------- access control and governance writes

#: Operations that hand out access or lift the stack's governance: whoever
#: holds them can grant themselves anything, or remove a lock or a policy.
AUTHORIZATION_WRITES = [
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/locks/delete",
    "Microsoft.Authorization/policyAssignments/write",
    "Microsoft.Authorization/policyAssignments/delete",
    "Microsoft.Authorization/policyExemptions/write",
]


def _authorization_writes(role: Resource, config: dict[str, Any]) -> Iterator[str]:
    for index, permission in enumerate(_permissions(role)):
        for entry, operations in granted_by_entry(permission, list(config["forbiddenActions"])).items():
            yield (
                f"{role.label}: permissions[{index}].actions {entry!r} grants {', '.join(operations)}; refused: a "
                "persona that can write role assignments or lift locks and policies can grant itself anything. "
                "Remove the action (or exclude those in notActions); access is granted by the stack, not by its users"
            )


custom_role_no_authorization_writes = resource_policy(
    PolicyInfo(
        name="azml-rbac-custom-role-no-authorization-writes",
        description=(
            "No custom role can write role assignments or role definitions, delete locks, or write or delete "
            "policy assignments and exemptions (directly or through wildcards such as Microsoft.Authorization/* "
            "or */write)."
        ),
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.CRITICAL,
        remediation=(
            "Drop Microsoft.Authorization/* and */write style entries from the role's actions, or list them in "
            "notActions; grant access through the stack's assignments (Role Based Access Control Administrator "
            "with a condition is the built-in way to delegate it, outside this platform: "
            "https://learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-portal)."
        ),
        resource_types=(ROLE_DEFINITION,),
        properties=("permissions[].actions", "permissions[].notActions"),
        config={
            "forbiddenActions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(AUTHORIZATION_WRITES),
                "description": "Operations no custom role may grant.",
            }
        },
        tags=("rbac",),
    ),
    _authorization_writes,
)

# --------------------------------------------------------------------------- storage writes

#: Control-plane operations on storage accounts: reconfiguring the account
#: (network, shared keys, public access), deleting it, or reading its keys.
STORAGE_WRITES = [
    "Microsoft.Storage/storageAccounts/write",
    "Microsoft.Storage/storageAccounts/delete",
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.Storage/storageAccounts/regenerateKey/action",
    "Microsoft.Storage/storageAccounts/blobServices/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
]
#: Data-plane writes a wildcard dataAction may grant (explicit blob writes are
#: what the Storage Blob Data roles grant, and stay allowed).
STORAGE_DATA_WRITES = [
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/modifyPermissions/action",
]


def _storage_writes(role: Resource, config: dict[str, Any]) -> Iterator[str]:
    for index, permission in enumerate(_permissions(role)):
        for entry, operations in granted_by_entry(permission, list(config["forbiddenActions"])).items():
            yield (
                f"{role.label}: permissions[{index}].actions {entry!r} grants {', '.join(operations)}; refused: it "
                "lets the persona reconfigure, delete or read the keys of the workspace's storage. Remove it; data "
                "access goes through the Storage Blob Data roles"
            )
        wildcard_data = list(config["forbiddenWildcardDataActions"])
        for entry, operations in granted_by_entry(permission, wildcard_data, data=True).items():
            if "*" in entry:
                yield (
                    f"{role.label}: permissions[{index}].dataActions {entry!r} grants {', '.join(operations)} by "
                    "wildcard; refused: list the data operations the role needs"
                )


custom_role_no_storage_writes = resource_policy(
    PolicyInfo(
        name="azml-rbac-custom-role-no-storage-writes",
        description=(
            "No custom role writes, deletes or lists the keys of storage accounts (Microsoft.Storage/*, "
            "storageAccounts/*, */write...), nor writes blob data through a wildcard dataAction."
        ),
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Remove Microsoft.Storage wildcards and storage account write/delete/listKeys actions from the role; "
            "grant data access with Storage Blob Data Reader or Contributor on the account or container."
        ),
        resource_types=(ROLE_DEFINITION,),
        properties=("permissions[].actions", "permissions[].notActions", "permissions[].dataActions", "permissions[].notDataActions"),
        config={
            "forbiddenActions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(STORAGE_WRITES),
                "description": "Storage control-plane operations no custom role may grant.",
            },
            "forbiddenWildcardDataActions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(STORAGE_DATA_WRITES),
                "description": "Storage data operations no custom role may grant through a wildcard.",
            },
        },
        tags=("rbac",),
    ),
    _storage_writes,
)

POLICIES = [
    custom_role_least_privilege,
    custom_role_no_authorization_writes,
    custom_role_no_storage_writes,
]
