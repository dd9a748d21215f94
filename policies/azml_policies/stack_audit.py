"""Stack policy on audit logging: every data-plane resource (workspace,
vault, storage account, registry, online endpoint) has a diagnostic setting
sending its logs to Log Analytics.

A storage account counts as logged through a setting on the account or on one
of its services. Links are read by :class:`~azml_policies.topology.Stack`
(known ids, or recorded dependencies while ids are unknown); a setting whose
destination or logs are unknown counts as sending them.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import checks
from .azure import DIAGNOSTIC_SETTING, ONLINE_ENDPOINT, REGISTRY, STORAGE_ACCOUNT, VAULT, WORKSPACE
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .topology import Resource, Stack
from .values import UNKNOWN, as_bool, get, known, unwrap

# --------------------------------------------------------------------------- diagnostic settings

_KINDS = {
    "workspace": WORKSPACE,
    "vault": VAULT,
    "storage": STORAGE_ACCOUNT,
    "registry": REGISTRY,
    "onlineEndpoint": ONLINE_ENDPOINT,
}


# A storage account's logs are emitted by its services, each with its own diagnostic setting.
_STORAGE_SERVICES = ("blobServices", "fileServices", "queueServices", "tableServices")


def _sends_to_log_analytics(setting: Resource) -> bool:
    workspace = setting.get("workspaceId")
    if isinstance(workspace, str):
        return bool(workspace.strip())
    if workspace is UNKNOWN:
        return True
    return bool(setting.property_dependencies.get("workspaceId"))


def _logs_enabled(setting: Resource) -> bool:
    logs = unwrap(setting.get("logs"))
    if logs is UNKNOWN:
        return True
    if not isinstance(logs, list):
        return False
    for entry in logs:
        enabled = as_bool(get(entry, "enabled"))
        if enabled is UNKNOWN or (enabled is True and (known(get(entry, "category")) or known(get(entry, "categoryGroup")))):
            return True
    return False


def _diagnostic_settings(stack: Stack, config: dict[str, Any]) -> Finding:
    types = [_KINDS[k] for k in config["resourceKinds"] if k in _KINDS]
    for target in stack.of_type(*types):
        if exempt(config, target.name, target.arm_name):
            continue
        children = _STORAGE_SERVICES if target.type == STORAGE_ACCOUNT else ()
        linked = stack.linking(target, (DIAGNOSTIC_SETTING,), "resourceUri", children=children)
        if not linked:
            yield target.urn, (
                f"{target.label}: no diagnostic setting (monitor:DiagnosticSetting whose resourceUri is the resource "
                "or one of its services)"
            )
            continue
        if not any(_sends_to_log_analytics(s) for s in linked):
            yield target.urn, f"{target.label}: its diagnostic settings send nothing to Log Analytics (workspaceId not set)"
        elif config["requireLogs"] and not any(_logs_enabled(s) for s in linked):
            yield target.urn, f"{target.label}: its diagnostic settings enable no log category (e.g. categoryGroup 'audit')"


diagnostic_settings = stack_policy(
    PolicyInfo(
        name="azml-diagnostic-settings",
        description="Every data-plane resource (workspace, vault, storage, registry, online endpoint) sends its audit logs to Log Analytics.",
        checklist=checks.AUDIT_LOGGING,
        severity=Severity.MEDIUM,
        remediation=(
            "Add a monitor:DiagnosticSetting with resourceUri the resource (for storage: the account and its "
            "blob/file/queue/table services), workspaceId the stack's Log Analytics workspace, logs "
            "[{categoryGroup: 'audit', enabled: true}] and metrics AllMetrics (components/diagnostics.py)."
        ),
        resource_types=(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY, ONLINE_ENDPOINT, DIAGNOSTIC_SETTING),
        properties=("DiagnosticSetting.resourceUri", "DiagnosticSetting.workspaceId", "DiagnosticSetting.logs[].enabled"),
        config={
            "resourceKinds": {
                "type": "array",
                "items": {"type": "string", "enum": sorted(_KINDS)},
                "default": ["workspace", "vault", "storage", "registry", "onlineEndpoint"],
                "description": "Kinds of resources that need a diagnostic setting.",
            },
            "requireLogs": {
                "type": "boolean",
                "default": True,
                "description": "At least one log category or group enabled (metrics alone are not an audit log).",
            },
        },
        kind="stack",
        tags=("logging",),
    ),
    _diagnostic_settings,
)

POLICIES = [diagnostic_settings]
