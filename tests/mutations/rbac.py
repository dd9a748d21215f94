"""RBAC mutations: privileged or data-owning roles granted where the platform
never grants them, personas granted to people, and custom roles widened until
they can hand out access or reconfigure storage."""

from __future__ import annotations

from typing import Any, Callable

from azml.plan.model import Plan

from . import Mutation, added, one, put, setting

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
VAULT = "azure-native:keyvault:Vault"
WORKSPACE = "azure-native:machinelearningservices:Workspace"

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"

READER_PERSONA = "ra-reader-5c1e6f0a-2b3d-4e4f-8a5b-6c7d8e9f0a1b"
DATA_SCIENTIST_PERSONA = "ra-data-scientist-6d2f7a1b-3c4e-4f5a-9b6c-7d8e9f0a1b2c"
APPROVER_PERSONA = "ra-approver-7e3a8b2c-4d5f-4a6b-8c7d-8e9f0a1b2c3d"

PRIVILEGED = "azml-rbac-no-privileged-admin-roles"
WIDE_DATA = "azml-rbac-no-wide-data-roles"
GROUPS = "azml-rbac-personas-are-groups"
LEAST = "azml-rbac-custom-role-least-privilege"
AUTHZ = "azml-rbac-custom-role-no-authorization-writes"
STORAGE = "azml-rbac-custom-role-no-storage-writes"


def _group(plan: Plan) -> str:
    """The stack's resource group id, as the policy assignments scope it."""
    return str(plan.of_type(POLICY_ASSIGNMENT)[0].inputs["scope"])


def _subscription(plan: Plan) -> str:
    return _group(plan).split("/resourceGroups/")[0]


def _role_id(plan: Plan, role: str) -> str:
    return f"{_subscription(plan)}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def _grant(name: str, role: str, scope: Callable[[Plan], str]) -> Callable[[Plan], None]:
    """A new assignment of built-in ``role`` at ``scope(plan)``, made like the
    reader persona's (same principal, a group)."""

    def mutate(plan: Plan) -> None:
        added(ROLE_ASSIGNMENT, READER_PERSONA, name, roleDefinitionId=_role_id(plan, role), scope=scope(plan))(plan)

    return mutate


def _resource_scope(type_token: str) -> Callable[[Plan], str]:
    """The id of the stack's one resource of ``type_token``, read from a
    reference the plan already holds (a lock's or an assignment's scope)."""

    def scope(plan: Plan) -> str:
        marker = {VAULT: "/Microsoft.KeyVault/vaults/", WORKSPACE: "/Microsoft.MachineLearningServices/workspaces/"}[type_token]
        for r in plan.of_type(ROLE_ASSIGNMENT) + plan.of_type("azure-native:authorization:ManagementLockByScope"):
            value = r.inputs.get("scope")
            if isinstance(value, str) and marker in value and value.rsplit(marker, 1)[1].count("/") == 0:
                return value
        raise AssertionError(f"no scope of {type_token} in the plan")

    return scope


def _approver_permission(key: str, value: Any) -> Callable[[Plan], None]:
    """The approver custom role's permission gains ``value`` under ``key``."""
    return lambda plan: one(plan, ROLE_DEFINITION, "approver-role").inputs["permissions"][0].setdefault(key, []).append(value)


def _persona_role(name: str, role: str) -> Callable[[Plan], None]:
    return lambda plan: put(one(plan, ROLE_ASSIGNMENT, name).inputs, "roleDefinitionId", _role_id(plan, role))


def _drop_principal_type(plan: Plan) -> None:
    del one(plan, ROLE_ASSIGNMENT, APPROVER_PERSONA).inputs["principalType"]


MUTATIONS: list[Mutation] = [
    Mutation("rbac-owner-at-subscription", "rbac", "break-glass Owner on the whole subscription",
             _grant("ra-owner-subscription", OWNER, _subscription), (PRIVILEGED,)),
    Mutation("rbac-owner-on-resource-group", "rbac", "Owner on the stack's resource group \"to unblock a deploy\"",
             _grant("ra-owner-group", OWNER, _group), (PRIVILEGED,)),
    Mutation("rbac-contributor-on-workspace", "rbac", "Contributor on the workspace for the data scientists",
             _grant("ra-contributor-workspace", CONTRIBUTOR, _resource_scope(WORKSPACE)), (PRIVILEGED,)),
    Mutation("rbac-user-access-admin-on-resource-group", "rbac", "User Access Administrator on the resource group",
             _grant("ra-uaa-group", USER_ACCESS_ADMINISTRATOR, _group), (PRIVILEGED,)),
    Mutation("rbac-rbac-admin-on-vault", "rbac", "Role Based Access Control Administrator on the Key Vault",
             _grant("ra-rbac-admin-vault", RBAC_ADMINISTRATOR, _resource_scope(VAULT)), (PRIVILEGED,)),
    Mutation("rbac-reader-persona-becomes-owner", "rbac", "the reader persona's role id swapped for Owner",
             _persona_role(READER_PERSONA, OWNER), (PRIVILEGED,)),
    Mutation("rbac-key-vault-admin-on-resource-group", "rbac", "Key Vault Administrator on the resource group",
             _grant("ra-kv-admin-group", KEY_VAULT_ADMINISTRATOR, _group), (WIDE_DATA,)),
    Mutation("rbac-blob-data-owner-on-subscription", "rbac", "Storage Blob Data Owner on the subscription",
             _grant("ra-blob-owner-subscription", STORAGE_BLOB_DATA_OWNER, _subscription), (WIDE_DATA,)),
    Mutation("rbac-storage-account-contributor-on-resource-group", "rbac",
             "Storage Account Contributor (account keys) on the resource group",
             _grant("ra-st-contributor-group", STORAGE_ACCOUNT_CONTRIBUTOR, _group), (WIDE_DATA,)),
    Mutation("rbac-data-scientist-persona-to-a-user", "rbac", "the data-scientist persona granted to one person",
             setting(ROLE_ASSIGNMENT, "principalType", "User", DATA_SCIENTIST_PERSONA), (GROUPS,)),
    Mutation("rbac-approver-principal-type-dropped", "rbac", "the approver assignment loses its principalType",
             _drop_principal_type, (GROUPS,)),
    Mutation("rbac-approver-role-full-wildcard", "rbac", "the approver role gains '*'",
             _approver_permission("actions", "*"), (LEAST, AUTHZ)),
    Mutation("rbac-approver-role-assignable-at-subscription", "rbac", "the approver role assignable on the subscription",
             lambda plan: one(plan, ROLE_DEFINITION, "approver-role").inputs["assignableScopes"].append(_subscription(plan)),
             (LEAST,)),
    Mutation("rbac-approver-role-authorization-wildcard", "rbac", "the approver role gains Microsoft.Authorization/*",
             _approver_permission("actions", "Microsoft.Authorization/*"), (AUTHZ,)),
    Mutation("rbac-approver-role-assigns-roles", "rbac", "the approver role gains roleAssignments/write",
             _approver_permission("actions", "Microsoft.Authorization/roleAssignments/write"), (AUTHZ,)),
    Mutation("rbac-approver-role-deletes-locks", "rbac", "the approver role gains Microsoft.Authorization/locks/*",
             _approver_permission("actions", "Microsoft.Authorization/locks/*"), (AUTHZ,)),
    Mutation("rbac-approver-role-star-write", "rbac", "the approver role gains */write",
             _approver_permission("actions", "*/write"), (AUTHZ, STORAGE, LEAST)),
    Mutation("rbac-approver-role-storage-wildcard", "rbac", "the approver role gains Microsoft.Storage/*",
             _approver_permission("actions", "Microsoft.Storage/*"), (STORAGE,)),
    Mutation("rbac-approver-role-storage-account-writes", "rbac", "the approver role gains storageAccounts/*/write",
             _approver_permission("actions", "Microsoft.Storage/storageAccounts/*/write"), (STORAGE,)),
    Mutation("rbac-approver-role-lists-storage-keys", "rbac", "the approver role may list the storage account keys",
             _approver_permission("actions", "Microsoft.Storage/storageAccounts/listKeys/action"), (STORAGE,)),
    Mutation("rbac-approver-role-blob-data-wildcard", "rbac", "the approver role gains blobs/* as a data action",
             _approver_permission("dataActions", "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"),
             (STORAGE,)),
]
