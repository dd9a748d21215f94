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
from .values import UNKNOWN, as_bool, get, unwrap

# --------------------------------------------------------------------------- diagnostic settings

_KINDS = {
    "workspace": WORKSPACE,
    "vault": VAULT,
    "storage": STORAGE_ACCOUNT,
    "registry": REGISTRY,
    "onlineEndpoint": ONLINE_ENDPOINT,
}
_KIND_OF = {token: kind for kind, token in _KINDS.items()}


# A storage account's logs are emitted by its services, each with its own diagnostic setting.
_STORAGE_SERVICES = ("blobServices", "fileServices", "queueServices", "tableServices")


def _sends_to_log_analytics(setting: Resource) -> bool:
    workspace = setting.get("workspaceId")
    if isinstance(workspace, str):
        return bool(workspace.strip())
    if workspace is UNKNOWN:
        return True
    return bool(setting.property_dependencies.get("workspaceId"))


# What counts as an audit log, per kind of resource: the category groups
# Microsoft documents for the type, or its audit categories named one by one
# (all of them). Built-in diagnostic-settings policies "exist for the following
# resources | Resource type | All logs | Audit logs": workspaces, vaults and
# registries have both groups; microsoft.machinelearningservices/workspaces/
# onlineendpoints has allLogs only (Microsoft lists no audit group), so an
# endpoint sends allLogs or its traffic log (AmlOnlineEndpointTrafficLog: every
# scoring request, "the request duration, the request failure reason")
# (learn.microsoft.com/azure/azure-monitor/platform/diagnostic-settings-policy-built-in#supported-resources,
# azure-monitor/reference/supported-logs/microsoft-machinelearningservices-workspaces-onlineendpoints-logs).
# Storage logs come from the account's services (blob, file, queue, table):
# StorageRead, StorageWrite, StorageDelete (supported-logs/microsoft-storage-
# storageaccounts-blobservices-logs), or a group holding them.
AUDIT_LOGS: dict[str, dict[str, list[str]]] = {
    "workspace": {"categoryGroups": ["audit", "allLogs"], "categories": []},
    "vault": {"categoryGroups": ["audit", "allLogs"], "categories": ["AuditEvent"]},
    "storage": {"categoryGroups": ["audit", "allLogs"], "categories": ["StorageRead", "StorageWrite", "StorageDelete"]},
    "registry": {
        "categoryGroups": ["audit", "allLogs"],
        "categories": ["ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents"],
    },
    "onlineEndpoint": {"categoryGroups": ["allLogs"], "categories": ["AmlOnlineEndpointTrafficLog"]},
}


def _sends_audit_logs(setting: Resource, accepted: dict[str, list[str]]) -> bool:
    """Whether the setting enables an accepted category group, or every accepted category."""
    logs = unwrap(setting.get("logs"))
    if logs is UNKNOWN:
        return True
    if not isinstance(logs, list):
        return False
    groups = {g.lower() for g in accepted.get("categoryGroups", [])}
    categories = {c.lower() for c in accepted.get("categories", [])}
    enabled_categories: set[str] = set()
    for entry in logs:
        enabled = as_bool(get(entry, "enabled"))
        group, category = get(entry, "categoryGroup"), get(entry, "category")
        if enabled is UNKNOWN or group is UNKNOWN or category is UNKNOWN:
            return True
        if enabled is not True:
            continue
        if isinstance(group, str) and group.lower() in groups:
            return True
        if isinstance(category, str):
            enabled_categories.add(category.lower())
    return bool(categories) and categories <= enabled_categories


def _what_counts(kind: str, accepted: dict[str, list[str]]) -> str:
    groups = " or ".join(f"'{g}'" for g in accepted.get("categoryGroups", []))
    categories = ", ".join(accepted.get("categories", []))
    options = [f"categoryGroup {groups}"] if groups else []
    if categories:
        options.append(f"every one of the categories {categories}")
    return " or ".join(options) or "nothing (no audit logs configured for this kind)"


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
        to_log_analytics = [s for s in linked if _sends_to_log_analytics(s)]
        if not to_log_analytics:
            yield target.urn, f"{target.label}: its diagnostic settings send nothing to Log Analytics (workspaceId not set)"
            continue
        if not config["requireLogs"]:
            continue
        kind = _KIND_OF[target.type]
        accepted = config["auditLogs"].get(kind) or AUDIT_LOGS[kind]
        if not any(_sends_audit_logs(s, accepted) for s in to_log_analytics):
            yield target.urn, (
                f"{target.label}: its diagnostic settings to Log Analytics send no audit logs; enable "
                f"{_what_counts(kind, accepted)} (logs[].categoryGroup / logs[].category, enabled: true)"
            )


diagnostic_settings = stack_policy(
    PolicyInfo(
        name="azml-diagnostic-settings",
        description="Every data-plane resource (workspace, vault, storage, registry, online endpoint) sends its audit logs to Log Analytics.",
        checklist=checks.AUDIT_LOGGING,
        severity=Severity.MEDIUM,
        remediation=(
            "Add a monitor:DiagnosticSetting with resourceUri the resource (for storage: the account and its "
            "blob/file/queue/table services), workspaceId the stack's Log Analytics workspace, logs "
            "[{categoryGroup: 'audit', enabled: true}] (online endpoints have no audit group: 'allLogs') and "
            "metrics AllMetrics (components/diagnostics.py)."
        ),
        resource_types=(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY, ONLINE_ENDPOINT, DIAGNOSTIC_SETTING),
        properties=(
            "DiagnosticSetting.resourceUri",
            "DiagnosticSetting.workspaceId",
            "DiagnosticSetting.logs[].enabled",
            "DiagnosticSetting.logs[].categoryGroup",
            "DiagnosticSetting.logs[].category",
        ),
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
                "description": "The settings to Log Analytics must send audit logs (metrics alone are not an audit log).",
            },
            "auditLogs": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "categoryGroups": {"type": "array", "items": {"type": "string"}},
                        "categories": {"type": "array", "items": {"type": "string"}},
                    },
                    "additionalProperties": False,
                },
                "default": AUDIT_LOGS,
                "description": (
                    "Per resource kind, what counts as audit logs: one of categoryGroups enabled, or every one of "
                    "categories (Microsoft's category groups per type by default)."
                ),
            },
        },
        kind="stack",
        tags=("logging",),
    ),
    _diagnostic_settings,
)

POLICIES = [diagnostic_settings]
