"""Role assignments and custom roles: nothing privileged at subscription (or
wider) scope, no wildcard custom roles."""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import ROLE_ASSIGNMENT, ROLE_DEFINITION, last_segment
from .checks import PolicyInfo, resource_policy
from .topology import Resource
from .values import UNKNOWN, get, strings, unwrap

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
_ROLE_NAMES = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
}

_WIDE_SCOPES = (
    re.compile(r"^/subscriptions/[^/]+/?$", re.IGNORECASE),
    re.compile(r"^/providers/Microsoft\.Management/managementGroups/[^/]+/?$", re.IGNORECASE),
    re.compile(r"^/$"),
)


def _wide(scope: Any) -> bool:
    return isinstance(scope, str) and any(p.match(scope.strip()) for p in _WIDE_SCOPES)


def _privileged_assignment(assignment: Resource, config: dict[str, Any]) -> Iterator[str]:
    scope = assignment.get("scope")
    role = last_segment(assignment.get("roleDefinitionId"))
    if scope is UNKNOWN or role is None or not _wide(scope):
        return
    forbidden = {r.lower() for r in config["forbiddenRoleDefinitionIds"]}
    if role.lower() in forbidden:
        name = _ROLE_NAMES.get(role.lower(), role)
        yield (
            f"{assignment.label}: grants {name} ({role}) at scope {scope!r}; privileged roles are assigned at "
            "resource-group scope or below"
        )


no_privileged_subscription_roles = resource_policy(
    PolicyInfo(
        name="azml-rbac-no-privileged-subscription-roles",
        description="No role assignment grants Owner, Contributor or access-administration roles at subscription (or wider) scope.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.CRITICAL,
        remediation=(
            "Scope the assignment to the resource group or the resource it needs, with the narrowest built-in or "
            "custom role (e.g. AzureML Data Scientist on the workspace)."
        ),
        resource_types=(ROLE_ASSIGNMENT,),
        properties=("scope", "roleDefinitionId"),
        config={
            "forbiddenRoleDefinitionIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": [OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR],
                "description": "Role definition GUIDs never assigned at subscription or management-group scope.",
            }
        },
        tags=("rbac",),
    ),
    _privileged_assignment,
)


def _custom_role(role: Resource, _config: dict[str, Any]) -> Iterator[str]:
    permissions = unwrap(role.get("permissions"))
    if isinstance(permissions, list):
        for index, permission in enumerate(permissions):
            for key in ("actions", "dataActions"):
                for action in strings(get(permission, key)):
                    if action.strip() == "*" or action.strip().startswith("*/"):
                        yield f"{role.label}: permissions[{index}].{key} contains {action!r}; list the actions the role needs"
    scopes = role.get("assignableScopes")
    for scope in strings(scopes):
        if _wide(scope):
            yield f"{role.label}: assignableScopes contains {scope!r}; make the role assignable at resource-group scope only"


custom_role_least_privilege = resource_policy(
    PolicyInfo(
        name="azml-rbac-custom-role-least-privilege",
        description="Custom roles list explicit actions and are assignable only below subscription scope.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation="Replace wildcard actions with the actions the persona needs; set assignableScopes to the resource group.",
        resource_types=(ROLE_DEFINITION,),
        properties=("permissions[].actions", "permissions[].dataActions", "assignableScopes"),
        tags=("rbac",),
    ),
    _custom_role,
)

POLICIES = [no_privileged_subscription_roles, custom_role_least_privilege]
