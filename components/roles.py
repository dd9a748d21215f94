"""Azure RBAC role assignments with deterministic names.

Role assignment names must be GUIDs and stable across runs (a new GUID means
delete-and-recreate); we derive them from scope, role and principal labels.
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

#: Built-in role definition ids (the same in every Azure public-cloud tenant).
BUILTIN_ROLES: dict[str, str] = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage File Data Privileged Contributor": "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}

_NAMESPACE = uuid.UUID("9b0f0d38-3b5c-4f0e-8c53-6a3fd6e3c0d2")


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    if role not in BUILTIN_ROLES:
        raise ValueError(f"unknown built-in role {role!r}; known: {', '.join(BUILTIN_ROLES)}")
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", BUILTIN_ROLES[role]
    )


def assign_role(
    logical_name: str,
    *,
    scope: pulumi.Input[str],
    scope_label: str,
    role: str,
    principal_id: pulumi.Input[str],
    principal_label: str,
    principal_type: str,
    subscription_id: pulumi.Input[str],
    description: str,
    parent: pulumi.Resource,
    definition_id: pulumi.Input[str] | None = None,
) -> authorization.RoleAssignment:
    """Grant ``role`` on ``scope`` to ``principal_id``.

    ``scope_label`` and ``principal_label`` are stable strings (names known at
    plan time) from which the assignment's GUID name is derived.
    ``role`` names a built-in role, or labels a custom one whose id is
    ``definition_id``. ``principal_type`` must match the principal (Azure refuses a mismatch);
    for a freshly created managed identity, ``ServicePrincipal`` also avoids
    Entra ID replication-delay failures.
    """
    name = str(uuid.uuid5(_NAMESPACE, f"{scope_label}|{role}|{principal_label}"))
    return authorization.RoleAssignment(
        logical_name,
        role_assignment_name=name,
        scope=scope,
        role_definition_id=definition_id if definition_id is not None else role_definition_id(subscription_id, role),
        principal_id=principal_id,
        principal_type=principal_type,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )
