"""Key Vault: RBAC-authorized, undeletable by accident, private only."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import VAULT
from .checks import expect_bool, expect_value, info_for, resource_policy
from .topology import Resource
from .values import UNKNOWN, as_number, known, show


_info = info_for(VAULT, "keyvault")


rbac_authorization = resource_policy(
    _info(
        "azml-keyvault-rbac-authorization",
        "Key Vault data access is authorized with Azure RBAC, not access policies.",
        checks.LEAST_PRIVILEGE,
        Severity.HIGH,
        "Set properties.enableRbacAuthorization: true and grant Key Vault data roles (e.g. Key Vault Secrets User) "
        "to identities at vault scope.",
        ("properties.enableRbacAuthorization",),
        tags=("identity",),
    ),
    lambda kv, _config: expect_bool(kv, "properties.enableRbacAuthorization", True, azure_default=False),
)

purge_protection = resource_policy(
    _info(
        "azml-keyvault-purge-protection",
        "Key Vaults have purge protection: deleted secrets and keys cannot be purged before their retention ends.",
        checks.SECRETS,
        Severity.HIGH,
        "Set properties.enablePurgeProtection: true (it cannot be turned off again).",
        ("properties.enablePurgeProtection",),
        tags=("resilience",),
    ),
    lambda kv, _config: expect_bool(kv, "properties.enablePurgeProtection", True, azure_default=False),
)


def _soft_delete(kv: Resource, config: dict[str, Any]) -> Iterator[str]:
    yield from expect_bool(kv, "properties.enableSoftDelete", True, unset_ok=True)
    days = as_number(kv.get("properties.softDeleteRetentionInDays"))
    if days is UNKNOWN:
        return
    minimum = config["minRetentionDays"]
    effective = days if known(days) else 90.0  # Azure's default retention
    if effective < minimum:
        yield f"{kv.label}: properties.softDeleteRetentionInDays is {show(days)}; must be at least {minimum}"


soft_delete = resource_policy(
    _info(
        "azml-keyvault-soft-delete",
        "Key Vaults keep deleted objects recoverable (soft delete) for at least the configured retention.",
        checks.SECRETS,
        Severity.MEDIUM,
        "Leave properties.enableSoftDelete unset or true and set properties.softDeleteRetentionInDays "
        "(azml:keyVault.softDeleteRetentionDays) to at least the minimum.",
        ("properties.enableSoftDelete", "properties.softDeleteRetentionInDays"),
        config={
            "minRetentionDays": {
                "type": "integer",
                "minimum": 7,
                "maximum": 90,
                # Strictest by default (prod): Azure's maximum; dev lowers it in config.dev.json.
                "default": 90,
                "description": "Minimum soft-delete retention in days.",
            }
        },
        tags=("resilience",),
    ),
    _soft_delete,
)

public_network_disabled = resource_policy(
    _info(
        "azml-keyvault-public-network-disabled",
        "Key Vaults are reachable only through their private endpoint.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set properties.publicNetworkAccess: 'Disabled' on the vault.",
        ("properties.publicNetworkAccess",),
        tags=("network",),
    ),
    lambda kv, _config: expect_value(kv, "properties.publicNetworkAccess", "Disabled", azure_default="Enabled"),
)

network_default_deny = resource_policy(
    _info(
        "azml-keyvault-network-default-deny",
        "Key Vault firewalls deny by default.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set properties.networkAcls: {defaultAction: 'Deny', bypass: 'AzureServices'} on the vault.",
        ("properties.networkAcls.defaultAction",),
        tags=("network",),
    ),
    lambda kv, _config: expect_value(kv, "properties.networkAcls.defaultAction", "Deny", azure_default="Allow"),
)

POLICIES = [rbac_authorization, purge_protection, soft_delete, public_network_disabled, network_default_deny]
