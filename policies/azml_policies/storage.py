"""Storage accounts (the workspace's and the retraining function's): encrypted
in transit and at rest, no anonymous or key-based access, private only."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import STORAGE_ACCOUNT
from .checks import expect_bool, expect_value, info_for, resource_policy
from .topology import Resource
from .values import UNKNOWN, one_of, show

TLS_VERSIONS = ["TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"]


_info = info_for(STORAGE_ACCOUNT, "storage")


https_only = resource_policy(
    _info(
        "azml-storage-https-only",
        "Storage accounts accept HTTPS only.",
        checks.ENCRYPTION,
        Severity.HIGH,
        "Set enableHttpsTrafficOnly: true on the storage account.",
        ("enableHttpsTrafficOnly",),
        tags=("encryption",),
    ),
    lambda st, _config: expect_bool(st, "enableHttpsTrafficOnly", True),
)


def _min_tls(st: Resource, config: dict[str, Any]) -> Iterator[str]:
    version = st.get("minimumTlsVersion")
    if version is UNKNOWN or one_of(version, config["allowedVersions"]):
        return
    yield f"{st.label}: minimumTlsVersion is {show(version)}; must be one of {', '.join(config['allowedVersions'])}"


min_tls = resource_policy(
    _info(
        "azml-storage-min-tls",
        "Storage accounts refuse TLS older than 1.2.",
        checks.ENCRYPTION,
        Severity.HIGH,
        "Set minimumTlsVersion: 'TLS1_2' on the storage account.",
        ("minimumTlsVersion",),
        config={
            "allowedVersions": {
                "type": "array",
                "items": {"type": "string", "enum": TLS_VERSIONS},
                "default": ["TLS1_2", "TLS1_3"],
                "description": "Minimum TLS versions an account may declare.",
            }
        },
        tags=("encryption",),
    ),
    _min_tls,
)

no_public_blob_access = resource_policy(
    _info(
        "azml-storage-no-public-blob-access",
        "Storage accounts never allow anonymous (public) blob access.",
        checks.PUBLIC_ACCESS,
        Severity.CRITICAL,
        "Set allowBlobPublicAccess: false on the storage account.",
        ("allowBlobPublicAccess",),
        tags=("network",),
    ),
    lambda st, _config: expect_bool(st, "allowBlobPublicAccess", False),
)

shared_key_disabled = resource_policy(
    _info(
        "azml-storage-shared-key-disabled",
        "Storage accounts accept Entra ID only: shared keys and SAS signed with them are disabled.",
        checks.LEAST_PRIVILEGE,
        Severity.HIGH,
        "Set allowSharedKeyAccess: false (and defaultToOAuthAuthentication: true); grant data roles to identities instead.",
        ("allowSharedKeyAccess",),
        tags=("identity",),
    ),
    lambda st, _config: expect_bool(st, "allowSharedKeyAccess", False, azure_default=True),
)

public_network_disabled = resource_policy(
    _info(
        "azml-storage-public-network-disabled",
        "Storage accounts are reachable only through private endpoints.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set publicNetworkAccess: 'Disabled' on the storage account and reach it through its blob/file private endpoints.",
        ("publicNetworkAccess",),
        tags=("network",),
    ),
    lambda st, _config: expect_value(st, "publicNetworkAccess", "Disabled", azure_default="Enabled"),
)

network_default_deny = resource_policy(
    _info(
        "azml-storage-network-default-deny",
        "Storage account firewalls deny by default.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set networkRuleSet: {defaultAction: 'Deny', bypass: 'AzureServices'} on the storage account.",
        ("networkRuleSet.defaultAction",),
        tags=("network",),
    ),
    lambda st, _config: expect_value(st, "networkRuleSet.defaultAction", "Deny", azure_default="Allow"),
)


def _infrastructure_encryption(st: Resource, config: dict[str, Any]) -> Iterator[str]:
    if config["required"]:
        yield from expect_bool(st, "encryption.requireInfrastructureEncryption", True, azure_default=False)


infrastructure_encryption = resource_policy(
    _info(
        "azml-storage-infrastructure-encryption",
        "Storage accounts encrypt data at rest twice (service and infrastructure level).",
        checks.ENCRYPTION,
        Severity.MEDIUM,
        "Set encryption.requireInfrastructureEncryption: true. It can only be set when the account is created: "
        "an existing account must be recreated.",
        ("encryption.requireInfrastructureEncryption",),
        config={"required": {"type": "boolean", "default": True, "description": "Require infrastructure encryption."}},
        tags=("encryption",),
    ),
    _infrastructure_encryption,
)

POLICIES = [
    https_only,
    min_tls,
    no_public_blob_access,
    shared_key_disabled,
    public_network_disabled,
    network_default_deny,
    infrastructure_encryption,
]
