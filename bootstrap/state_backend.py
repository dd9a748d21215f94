"""The azml stacks' state backend and secrets provider, as a small Pulumi program.

What it creates, in one resource group:

- a StorageV2 account for Pulumi state (``pulumi login azblob://<container>?storage_account=<account>``):
  HTTPS only, TLS 1.2, no public blob access, no shared keys (Entra ID only,
  so nothing can be read with an account key or a SAS signed by one),
  infrastructure encryption, no cross-tenant replication, blob versioning and
  soft delete of blobs and containers (a bad ``pulumi stack rm`` or an
  overwritten checkpoint is recoverable), and a private container;
- a Key Vault with RBAC authorization, soft delete and purge protection,
  holding an RSA key for ``--secrets-provider azurekeyvault://<vault>.vault.azure.net/keys/<key>``;
- for each identity that runs Pulumi: Storage Blob Data Contributor on the
  container only, Key Vault Crypto User on the key only;
- CanNotDelete locks on the account and the vault (on by default), and, when
  a Log Analytics workspace is given, audit logs of the blobs and the vault.

Network: with ``allowedIpRanges`` empty the account and vault accept any
network (GitHub-hosted runners have no fixed addresses) and rely on Entra ID
alone; with ranges, every other network is denied. For private-endpoint-only
state, run the pipelines on self-hosted runners inside the network.

The bootstrap's own state cannot live in the backend it creates: keep it in a
local backend (``pulumi login file://...``) and export it afterwards
(docs/cicd.md, "State backend").
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import authorization, keyvault, monitor, resources, storage

#: Built-in role definition GUIDs (the same in every tenant).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"

PRINCIPAL_TYPES = ("ServicePrincipal", "Group", "User")
_NAMESPACE = uuid.UUID("0b6f3f7e-5a2c-4f47-9d7e-6c1f6f0c2a51")


class BootstrapConfigError(ValueError):
    """Invalid bootstrap config; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Principal:
    object_id: str
    type: str = "ServicePrincipal"


@dataclass(frozen=True)
class BootstrapConfig:
    location: str
    storage_account_name: str
    key_vault_name: str
    prefix: str = "azml"
    container_name: str = "pulumi-state"
    key_name: str = "pulumi-secrets"
    storage_sku: str = "Standard_ZRS"
    soft_delete_days: int = 30
    key_vault_retention_days: int = 90
    state_users: tuple[Principal, ...] = ()
    allowed_ip_ranges: tuple[str, ...] = ()
    log_analytics_workspace_id: str | None = None
    locks: bool = True
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not re.fullmatch(r"[a-z0-9]{3,24}", self.storage_account_name):
            problems.append(f"storageAccountName: 3-24 lowercase letters and digits (got {self.storage_account_name!r})")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]", self.key_vault_name) or "--" in self.key_vault_name:
            problems.append(
                f"keyVaultName: 3-24 letters, digits and single hyphens, starting with a letter (got {self.key_vault_name!r})"
            )
        if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", self.container_name):
            problems.append(f"containerName: 3-63 lowercase letters, digits and hyphens (got {self.container_name!r})")
        if not re.fullmatch(r"[A-Za-z0-9-]{1,127}", self.key_name):
            problems.append(f"keyName: letters, digits and hyphens (got {self.key_name!r})")
        if not 1 <= self.soft_delete_days <= 365:
            problems.append(f"softDeleteDays: 1-365 (got {self.soft_delete_days})")
        if not 7 <= self.key_vault_retention_days <= 90:
            problems.append(f"keyVaultRetentionDays: 7-90 (got {self.key_vault_retention_days})")
        for principal in self.state_users:
            try:
                uuid.UUID(principal.object_id)
            except ValueError:
                problems.append(f"stateUsers: {principal.object_id!r} is not an object id (a GUID)")
            if principal.type not in PRINCIPAL_TYPES:
                problems.append(f"stateUsers: type {principal.type!r} is not one of {', '.join(PRINCIPAL_TYPES)}")
        for cidr in self.allowed_ip_ranges:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                problems.append(f"allowedIpRanges: {cidr!r} is not an IPv4 address or CIDR")
                continue
            if network.version != 4 or network.is_private:
                # Azure's IP rules take public IPv4 only; private ranges need a private endpoint.
                problems.append(f"allowedIpRanges: {cidr!r} must be a public IPv4 address or range")
        if problems:
            raise BootstrapConfigError(problems)

    @classmethod
    def from_pulumi_config(cls, config: pulumi.Config) -> "BootstrapConfig":
        def principal(entry: Any) -> Principal:
            if isinstance(entry, str):
                return Principal(entry)
            return Principal(str(entry.get("objectId", "")), str(entry.get("type", "ServicePrincipal")))

        return cls(
            location=config.require("location"),
            storage_account_name=config.require("storageAccountName"),
            key_vault_name=config.require("keyVaultName"),
            prefix=config.get("prefix") or "azml",
            container_name=config.get("containerName") or "pulumi-state",
            key_name=config.get("keyName") or "pulumi-secrets",
            storage_sku=config.get("storageSku") or "Standard_ZRS",
            soft_delete_days=_default(config.get_int("softDeleteDays"), 30),
            key_vault_retention_days=_default(config.get_int("keyVaultRetentionDays"), 90),
            state_users=tuple(principal(e) for e in (config.get_object("stateUsers") or [])),
            allowed_ip_ranges=tuple(config.get_object("allowedIpRanges") or []),
            log_analytics_workspace_id=config.get("logAnalyticsWorkspaceId"),
            locks=_default(config.get_bool("locks"), True),
            tags=dict(config.get_object("tags") or {}),
        )

    @property
    def backend_url(self) -> str:
        return f"azblob://{self.container_name}?storage_account={self.storage_account_name}"

    @property
    def secrets_provider(self) -> str:
        return f"azurekeyvault://{self.key_vault_name}.vault.azure.net/keys/{self.key_name}"


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _role_definition(subscription_id: pulumi.Input[str], role_guid: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role_guid
    )


def _network_rules(config: BootstrapConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(storage network rule set, vault network ACLs)."""
    if not config.allowed_ip_ranges:
        return {"default_action": "Allow", "bypass": "AzureServices"}, {"default_action": "Allow", "bypass": "AzureServices"}
    return (
        {
            "default_action": "Deny",
            "bypass": "AzureServices",
            "ip_rules": [{"i_p_address_or_range": c, "action": "Allow"} for c in config.allowed_ip_ranges],
        },
        {
            "default_action": "Deny",
            "bypass": "AzureServices",
            "ip_rules": [{"value": c} for c in config.allowed_ip_ranges],
        },
    )


def build(config: BootstrapConfig) -> dict[str, pulumi.Output[Any]]:
    """Declare the bootstrap resources; returns (and exports) the stack outputs."""
    client = authorization.get_client_config_output()
    tags = {"managed-by": "azml-bootstrap", "purpose": "pulumi-state", **config.tags}
    storage_rules, vault_acls = _network_rules(config)

    group = resources.ResourceGroup(
        "rg-state", resource_group_name=f"rg-{config.prefix}-pulumi-state", location=config.location, tags=tags
    )
    account = storage.StorageAccount(
        "st-state",
        account_name=config.storage_account_name,
        resource_group_name=group.name,
        location=config.location,
        kind="StorageV2",
        sku={"name": config.storage_sku},
        access_tier="Hot",
        enable_https_traffic_only=True,
        minimum_tls_version="TLS1_2",
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        public_network_access="Enabled",
        network_rule_set=storage_rules,
        encryption={
            "key_source": "Microsoft.Storage",
            "require_infrastructure_encryption": True,
            "services": {"blob": {"enabled": True, "key_type": "Account"}},
        },
        tags=tags,
    )
    blob_service = storage.BlobServiceProperties(
        "st-state-blob",
        account_name=account.name,
        resource_group_name=group.name,
        blob_services_name="default",
        is_versioning_enabled=True,
        delete_retention_policy={"enabled": True, "days": config.soft_delete_days},
        container_delete_retention_policy={"enabled": True, "days": config.soft_delete_days},
    )
    container = storage.BlobContainer(
        "state",
        container_name=config.container_name,
        account_name=account.name,
        resource_group_name=group.name,
        public_access="None",
        opts=pulumi.ResourceOptions(depends_on=[blob_service]),
    )
    vault = keyvault.Vault(
        "kv-state",
        vault_name=config.key_vault_name,
        resource_group_name=group.name,
        location=config.location,
        properties={
            "tenant_id": client.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "soft_delete_retention_in_days": config.key_vault_retention_days,
            "enable_purge_protection": True,
            "public_network_access": "Enabled",
            "network_acls": vault_acls,
        },
        tags=tags,
    )
    # Pulumi encrypts each stack's data key with this key (RSA-OAEP-256); no
    # secret value ever lives in the vault or in the repository.
    key = keyvault.Key(
        "pulumi-secrets",
        key_name=config.key_name,
        vault_name=vault.name,
        resource_group_name=group.name,
        properties={
            "kty": "RSA",
            "key_size": 4096,
            "key_ops": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
        },
        tags=tags,
        # Deleting the key makes every stack's secrets unreadable.
        opts=pulumi.ResourceOptions(protect=True),
    )

    for principal in config.state_users:
        for label, scope, role, why in (
            ("state", container.id, STORAGE_BLOB_DATA_CONTRIBUTOR, "read and write Pulumi checkpoints and locks"),
            ("key", key.id, KEY_VAULT_CRYPTO_USER, "encrypt and decrypt stack secrets with the key"),
        ):
            authorization.RoleAssignment(
                f"ra-{label}-{principal.object_id}",
                role_assignment_name=str(uuid.uuid5(_NAMESPACE, f"{label}|{role}|{principal.object_id}")),
                scope=scope,
                role_definition_id=_role_definition(client.subscription_id, role),
                principal_id=principal.object_id,
                principal_type=principal.type,
                description=f"azml-bootstrap: {why}",
            )

    if config.log_analytics_workspace_id:
        for label, target in (("blob", blob_service.id), ("kv", vault.id)):
            monitor.DiagnosticSetting(
                f"diag-{label}",
                name="to-log-analytics",
                resource_uri=target,
                workspace_id=config.log_analytics_workspace_id,
                logs=[{"category_group": "audit", "enabled": True}],
            )

    if config.locks:
        for label, target in (("st", account.id), ("kv", vault.id)):
            authorization.ManagementLockByScope(
                f"lock-{label}",
                lock_name="azml-state-cannot-delete",
                scope=target,
                level="CanNotDelete",
                notes="Holds the Pulumi state or secrets key of every azml stack.",
            )

    outputs: dict[str, pulumi.Output[Any]] = {
        "backendUrl": pulumi.Output.from_input(config.backend_url),
        "secretsProvider": pulumi.Output.from_input(config.secrets_provider),
        "storageAccountName": account.name,
        "containerName": container.name,
        "keyVaultName": vault.name,
        "keyId": key.id,
    }
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
