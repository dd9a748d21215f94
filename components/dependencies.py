"""The workspace's dependent resources, each locked down by default:
Log Analytics + App Insights, storage, Key Vault and container registry.

Plain functions, called by :class:`components.workspace.MlWorkspace` with
itself as parent, so every resource stays in that component's tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi
from pulumi_azure_native import applicationinsights, containerregistry, keyvault, operationalinsights, storage

from azml.config.schema import KeyVaultConfig, MonitoringConfig, RegistryConfig, StorageConfig
from azml.naming import Names


@dataclass(frozen=True)
class Placement:
    """Where and how child resources are created."""

    resource_group_name: pulumi.Input[str]
    location: str
    tags: Mapping[str, str]
    parent: pulumi.Resource

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent)


def observability(
    names: Names, config: MonitoringConfig, at: Placement
) -> tuple[operationalinsights.Workspace, applicationinsights.Component]:
    workspace = operationalinsights.Workspace(
        "log",
        workspace_name=names.log_analytics,
        resource_group_name=at.resource_group_name,
        location=at.location,
        sku={"name": "PerGB2018"},
        retention_in_days=config.retention_days,
        workspace_capping={"daily_quota_gb": config.daily_quota_gb} if config.daily_quota_gb else None,
        # Queries only with Azure AD (RBAC), never with shared workspace keys.
        features={"disable_local_auth": True, "enable_log_access_using_only_resource_permissions": True},
        tags=dict(at.tags),
        opts=at.opts,
    )
    insights = applicationinsights.Component(
        "appi",
        resource_name_=names.app_insights,
        resource_group_name=at.resource_group_name,
        location=at.location,
        kind="web",
        application_type="web",
        # Workspace-based: telemetry lands in (and is retained by) Log Analytics.
        workspace_resource_id=workspace.id,
        ingestion_mode="LogAnalytics",
        tags=dict(at.tags),
        opts=at.opts,
    )
    return workspace, insights


def locked_down_storage_account(
    logical_name: str, account_name: str, sku: str, at: Placement, *, trusted_services: bool = False
) -> storage.StorageAccount:
    """A StorageV2 account reachable only through private endpoints and Entra ID.
    ``trusted_services``: its public endpoint stays on for trusted Azure
    services only (default deny, no IP or virtual-network rule), for a
    service that cannot use private endpoints (Event Grid delivery)."""
    network = (
        {"public_network_access": "Enabled", "network_rule_set": {
            "default_action": "Deny", "bypass": "AzureServices", "ip_rules": [], "virtual_network_rules": []}}
        if trusted_services
        else {"public_network_access": "Disabled", "network_rule_set": {"default_action": "Deny", "bypass": "AzureServices"}}
    )  # fmt: skip
    return storage.StorageAccount(
        logical_name,
        account_name=account_name,
        resource_group_name=at.resource_group_name,
        location=at.location,
        kind="StorageV2",
        sku={"name": sku},
        access_tier="Hot",
        enable_https_traffic_only=True,
        minimum_tls_version="TLS1_2",
        allow_blob_public_access=False,
        # Workspace datastores use identity-based access, so account keys and
        # SAS tokens signed with them are never needed.
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        **network,
        encryption={
            "key_source": "Microsoft.Storage",
            "require_infrastructure_encryption": True,
            "services": {
                "blob": {"enabled": True, "key_type": "Account"},
                "file": {"enabled": True, "key_type": "Account"},
            },
        },
        tags=dict(at.tags),
        opts=at.opts,
    )


def recoverable_blobs(
    logical_name: str, account: storage.StorageAccount, config: StorageConfig, at: Placement, *, versioning: bool
) -> storage.BlobServiceProperties:
    """The account's blob service with soft delete on blobs and containers
    (the stack's ``azml:storage`` retention): every account of the stack
    keeps deleted data recoverable (PSRule Azure.Storage.SoftDelete and
    Azure.Storage.ContainerSoftDelete; policy azml-storage-blob-soft-delete)."""
    return storage.BlobServiceProperties(
        logical_name,
        account_name=account.name,
        resource_group_name=at.resource_group_name,
        blob_services_name="default",
        is_versioning_enabled=versioning,
        delete_retention_policy={"enabled": True, "days": config.blob_soft_delete_days},
        container_delete_retention_policy={"enabled": True, "days": config.container_soft_delete_days},
        opts=at.opts,
    )


def storage_account(names: Names, config: StorageConfig, at: Placement) -> storage.StorageAccount:
    account = locked_down_storage_account("st", names.storage_account, config.sku, at)
    recoverable_blobs("st-blob", account, config, at, versioning=config.versioning)
    storage.FileServiceProperties(
        "st-file",
        account_name=account.name,
        resource_group_name=at.resource_group_name,
        file_services_name="default",
        share_delete_retention_policy={"enabled": True, "days": config.blob_soft_delete_days},
        opts=at.opts,
    )
    return account


def key_vault(
    names: Names, config: KeyVaultConfig, tenant_id: pulumi.Input[str], at: Placement
) -> keyvault.Vault:
    return keyvault.Vault(
        "kv",
        vault_name=names.key_vault,
        resource_group_name=at.resource_group_name,
        location=at.location,
        properties={
            "tenant_id": tenant_id,
            "sku": {"family": "A", "name": config.sku},
            # Access through Azure RBAC only; no vault access policies.
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "soft_delete_retention_in_days": config.soft_delete_retention_days,
            "enable_purge_protection": True,
            "public_network_access": "Disabled",
            "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
        },
        tags=dict(at.tags),
        opts=at.opts,
    )


def container_registry(
    names: Names, config: RegistryConfig, at: Placement
) -> containerregistry.Registry:
    return containerregistry.Registry(
        "cr",
        registry_name=names.registry,
        resource_group_name=at.resource_group_name,
        location=at.location,
        sku={"name": config.sku},
        admin_user_enabled=False,
        anonymous_pull_enabled=False,
        public_network_access="Disabled",
        network_rule_bypass_options="AzureServices",
        zone_redundancy="Enabled" if config.zone_redundant else "Disabled",
        policies={
            "retention_policy": {"days": config.retention_days, "status": "enabled"},
            # Quarantined images cannot be pulled until a scanner marks them
            # passed; enable only where such a scanner runs.
            "quarantine_policy": {"status": "enabled" if config.quarantine else "disabled"},
            # No artifact export out of the private registry (exfiltration guard).
            "export_policy": {"status": "disabled"},
        },
        tags=dict(at.tags),
        opts=at.opts,
    )
