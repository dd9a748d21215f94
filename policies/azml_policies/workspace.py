"""Azure ML workspace: private, isolated, HBI where data demands it, identity-based storage access."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import WORKSPACE
from .checks import PolicyInfo, expect_value, resource_policy
from .topology import Resource
from .values import UNKNOWN, as_bool, get, known, one_of, show, unwrap

ISOLATION_MODES = ["AllowOnlyApprovedOutbound", "AllowInternetOutbound", "Disabled"]


def _public_network(ws: Resource, config: dict[str, Any]) -> Iterator[str]:
    yield from expect_value(ws, "publicNetworkAccess", "Disabled", azure_default="Enabled")
    behind_vnet = as_bool(ws.get("allowPublicAccessWhenBehindVnet"))
    if behind_vnet is True and not config["allowPublicAccessWhenBehindVnet"]:
        yield f"{ws.label}: allowPublicAccessWhenBehindVnet is true; must be false or unset"


public_network_disabled = resource_policy(
    PolicyInfo(
        name="azml-workspace-public-network-disabled",
        description="Azure ML workspaces are reachable only through their private endpoint.",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Set publicNetworkAccess: 'Disabled' on the workspace (components/workspace.py does) and leave "
            "allowPublicAccessWhenBehindVnet unset; reach the studio through the workspace private endpoint."
        ),
        resource_types=(WORKSPACE,),
        properties=("publicNetworkAccess", "allowPublicAccessWhenBehindVnet"),
        config={
            "allowPublicAccessWhenBehindVnet": {
                "type": "boolean",
                "default": False,
                "description": "Tolerate allowPublicAccessWhenBehindVnet: true.",
            }
        },
        tags=("workspace", "network"),
    ),
    _public_network,
)


def _managed_network(ws: Resource, config: dict[str, Any]) -> Iterator[str]:
    mode = ws.get("managedNetwork.isolationMode")
    if mode is UNKNOWN:
        return
    allowed = config["allowedIsolationModes"]
    if not one_of(mode, allowed):
        yield (
            f"{ws.label}: managedNetwork.isolationMode is {show(mode)}"
            f"{' (Azure default: Disabled)' if not known(mode) else ''}; must be one of {', '.join(allowed)}"
        )


managed_network_isolation = resource_policy(
    PolicyInfo(
        name="azml-workspace-managed-network-isolation",
        description="Azure ML workspaces run compute in a managed virtual network with controlled outbound access.",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Set azml:workspace.isolationMode to AllowOnlyApprovedOutbound (managedNetwork.isolationMode on the "
            "workspace) and approve the outbound rules jobs need."
        ),
        resource_types=(WORKSPACE,),
        properties=("managedNetwork.isolationMode",),
        config={
            "allowedIsolationModes": {
                "type": "array",
                "items": {"type": "string", "enum": ISOLATION_MODES},
                # Strictest by default (prod); dev also allows AllowInternetOutbound in config.dev.json.
                "default": ["AllowOnlyApprovedOutbound"],
                "description": "Isolation modes a workspace may use.",
            }
        },
        tags=("workspace", "network"),
    ),
    _managed_network,
)


def _hbi(ws: Resource, config: dict[str, Any]) -> Iterator[str]:
    tags = get(ws.props, "tags")
    classification = get(tags, config["classificationTag"]) if isinstance(tags, dict) else tags
    if classification is UNKNOWN:
        return
    reasons = []
    if config["required"]:
        reasons.append("HBI is required in this stack")
    if one_of(classification, config["requiredForClassifications"]):
        reasons.append(f"tag {config['classificationTag']} is {show(unwrap(classification))}")
    if not reasons:
        return
    hbi = as_bool(ws.get("hbiWorkspace"))
    if hbi is not UNKNOWN and hbi is not True:
        yield f"{ws.label}: hbiWorkspace is {show(hbi)}; must be true ({'; '.join(reasons)})"


hbi = resource_policy(
    PolicyInfo(
        name="azml-workspace-hbi",
        description="Workspaces holding high-business-impact data are HBI workspaces (encrypted scratch disks, less telemetry).",
        checklist=checks.ENCRYPTION,
        severity=Severity.MEDIUM,
        remediation=(
            "Set azml:workspace.hbi: true in the stack config (hbiWorkspace on the workspace). HBI cannot be "
            "changed after creation: a workspace created without it must be recreated."
        ),
        resource_types=(WORKSPACE,),
        properties=("hbiWorkspace", "tags"),
        config={
            "required": {"type": "boolean", "default": True, "description": "Every workspace must be HBI."},
            "classificationTag": {
                "type": "string",
                "default": "data-classification",
                "description": "Tag holding the data classification.",
            },
            "requiredForClassifications": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["confidential", "highly-confidential", "restricted"],
                "description": "Classifications that require HBI even when `required` is false.",
            },
        },
        tags=("workspace", "encryption"),
    ),
    _hbi,
)


def _identity_datastores(ws: Resource, _config: dict[str, Any]) -> Iterator[str]:
    yield from expect_value(ws, "systemDatastoresAuthMode", "identity", azure_default="accessKey")


identity_datastore_auth = resource_policy(
    PolicyInfo(
        name="azml-workspace-identity-datastore-auth",
        description="The workspace reaches its default datastores with its managed identity, never account keys.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Set systemDatastoresAuthMode: 'identity' on the workspace and grant its identity Storage Blob Data "
            "Contributor and Storage File Data Privileged Contributor on the account."
        ),
        resource_types=(WORKSPACE,),
        properties=("systemDatastoresAuthMode",),
        tags=("workspace", "identity"),
    ),
    _identity_datastores,
)

POLICIES = [public_network_disabled, managed_network_isolation, hbi, identity_datastore_auth]
