"""Diagnostic settings that send audit logs and metrics to Log Analytics."""

from __future__ import annotations

from typing import Sequence

import pulumi
from pulumi_azure_native import monitor


def send_to_log_analytics(
    logical_name: str,
    *,
    target_id: pulumi.Input[str],
    workspace_id: pulumi.Input[str],
    log_category_groups: Sequence[str] = ("audit",),
    metrics: bool = True,
    dedicated_tables: bool = False,
    parent: pulumi.Resource,
) -> monitor.DiagnosticSetting:
    """Attach a diagnostic setting to ``target_id``.

    The ``audit`` category group is Azure's curated set of audit logs for each
    resource type (Key Vault AuditEvent, registry login/repository events,
    workspace access, storage read/write/delete). Pass no groups for resources
    that only emit metrics (a storage account itself; its logs live on the
    blob and file services).

    ``dedicated_tables``: logs land in the resource-specific tables
    (``AmlOnlineEndpointTrafficLog``...) rather than the shared
    ``AzureDiagnostics`` table, Azure's default: logAnalyticsDestinationType
    is "A string indicating whether the export to Log Analytics should use the
    default destination type, i.e. AzureDiagnostics, or use a destination
    type" (Microsoft.Insights diagnosticSettings REST spec).
    """
    return monitor.DiagnosticSetting(
        logical_name,
        name="to-log-analytics",
        resource_uri=target_id,
        workspace_id=workspace_id,
        log_analytics_destination_type="Dedicated" if dedicated_tables else None,
        logs=[{"category_group": group, "enabled": True} for group in log_category_groups],
        metrics=[{"category": "AllMetrics", "enabled": True}] if metrics else [],
        opts=pulumi.ResourceOptions(parent=parent),
    )
