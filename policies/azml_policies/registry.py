"""Container registry: no shared admin credentials, no anonymous pulls,
private, Premium with retention, quarantine where a scanner releases images."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import REGISTRY
from .checks import expect_bool, expect_value, info_for, resource_policy
from .topology import Resource
from .values import UNKNOWN, same, show


_info = info_for(REGISTRY, "registry")


admin_user_disabled = resource_policy(
    _info(
        "azml-registry-admin-user-disabled",
        "Container registries have no admin user (a shared username/password).",
        checks.LEAST_PRIVILEGE,
        Severity.HIGH,
        "Set adminUserEnabled: false; grant AcrPull/AcrPush to identities instead.",
        ("adminUserEnabled",),
        tags=("identity",),
    ),
    lambda cr, _config: expect_bool(cr, "adminUserEnabled", False, unset_ok=True),
)

anonymous_pull_disabled = resource_policy(
    _info(
        "azml-registry-anonymous-pull-disabled",
        "Container registries do not serve anonymous pulls.",
        checks.LEAST_PRIVILEGE,
        Severity.HIGH,
        "Set anonymousPullEnabled: false.",
        ("anonymousPullEnabled",),
        tags=("identity",),
    ),
    lambda cr, _config: expect_bool(cr, "anonymousPullEnabled", False, unset_ok=True),
)

public_network_disabled = resource_policy(
    _info(
        "azml-registry-public-network-disabled",
        "Container registries are reachable only through their private endpoint.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set publicNetworkAccess: 'Disabled' (Premium SKU) and reach the registry through its private endpoint; "
        "build images on compute inside the network (azml:workspace.imageBuildCompute).",
        ("publicNetworkAccess",),
        tags=("network",),
    ),
    lambda cr, _config: expect_value(cr, "publicNetworkAccess", "Disabled", azure_default="Enabled"),
)


def _premium_retention(cr: Resource, config: dict[str, Any]) -> Iterator[str]:
    yield from expect_value(cr, "sku.name", config["requiredSku"])
    if not config["requireRetention"]:
        return
    status = cr.get("policies.retentionPolicy.status")
    if status is not UNKNOWN and not same(status, "enabled"):
        yield f"{cr.label}: policies.retentionPolicy.status is {show(status)}; must be 'enabled' (untagged manifests expire)"


premium_retention = resource_policy(
    _info(
        "azml-registry-premium-retention",
        "Container registries are Premium (private endpoints, quarantine) and expire untagged manifests.",
        checks.APPROVED_IMAGES,
        Severity.MEDIUM,
        "Set sku.name: 'Premium' and policies.retentionPolicy: {status: 'enabled', days: N} "
        "(azml:registry.retentionDays).",
        ("sku.name", "policies.retentionPolicy.status"),
        config={
            "requiredSku": {"type": "string", "enum": ["Basic", "Standard", "Premium"], "default": "Premium", "description": "Required SKU."},
            "requireRetention": {"type": "boolean", "default": True, "description": "Require the untagged-manifest retention policy."},
        },
    ),
    _premium_retention,
)


def _quarantine(cr: Resource, config: dict[str, Any]) -> Iterator[str]:
    if not config["required"]:
        return
    status = cr.get("policies.quarantinePolicy.status")
    if status is not UNKNOWN and not same(status, "enabled"):
        yield f"{cr.label}: policies.quarantinePolicy.status is {show(status)}; must be 'enabled' (images stay unusable until a scanner releases them)"


quarantine = resource_policy(
    _info(
        "azml-registry-quarantine",
        "Pushed images stay quarantined until a vulnerability scanner releases them (when configured as required).",
        checks.APPROVED_IMAGES,
        Severity.MEDIUM,
        "Wire up a scanner that releases quarantined images (e.g. Microsoft Defender for Containers), then set "
        "azml:registry.quarantine: true (policies.quarantinePolicy.status: 'enabled').",
        ("policies.quarantinePolicy.status",),
        config={
            "required": {
                "type": "boolean",
                # Strictest by default: a stack without a releasing scanner accepts the risk in its
                # config (prod: a dated exemptResources entry; dev: required false).
                "default": True,
                "description": "Require quarantine (only with a scanner that releases images).",
            }
        },
    ),
    _quarantine,
)

POLICIES = [admin_user_disabled, anonymous_pull_disabled, public_network_disabled, premium_retention, quarantine]
