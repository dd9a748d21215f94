"""Dashboards as code: one Azure Monitor workbook per stack over the stack's
Log Analytics workspace, and the export of the subscription's activity log
into that workspace (the deployment-changes view reads it).

The workbook has four views, each a group of KQL items:

1. ``latency-errors``: p95 latency and 5xx rate over time per endpoint/deployment
   (``AmlOnlineEndpointTrafficLog``, the table the log alerts read);
2. ``canary-vs-champion``: requests, traffic share, p95 and error rate per
   deployment side by side;
3. ``drift-fairness``: App Insights custom metrics (``AppMetrics``) with the
   configured names. Azure ML model monitor results and the release
   controller's MLflow metrics do not reach Log Analytics (docs/dashboards.md);
4. ``deployment-changes``: writes and deletes of online endpoints and
   deployments from ``AzureActivity``, with caller and time: traffic moves by
   approvers show up here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pulumi
from pulumi_azure_native import applicationinsights, monitor

from azml.config.platform.dashboards import TIME_RANGES_MS, DashboardsConfig
from azml.naming import Names, endpoint_name

from .alert_rules import TRAFFIC_TABLE, traffic_source

if TYPE_CHECKING:
    from azml.config.schema import StackConfig

    from .workspace import MlWorkspace

#: Activity log categories exported: Administrative holds every control-plane
#: write (endpoint traffic changes included), Policy the deny/audit effects of
#: our policy assignments, Security the Defender alerts.
ACTIVITY_CATEGORIES = ("Administrative", "Policy", "Security")
ACTIVITY_TABLE = "AzureActivity"
#: Workspace-based App Insights writes custom metrics to this Log Analytics table.
METRICS_TABLE = "AppMetrics"
ENDPOINT_OPERATIONS = (
    "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/WRITE",
    "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/DELETE",
    "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/DEPLOYMENTS/WRITE",
    "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/DEPLOYMENTS/DELETE",
)
WORKBOOK_SCHEMA = "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json"
_LOG_ANALYTICS = "microsoft.operationalinsights/workspaces"
# Fixed forever: changing it renames (replaces) every stack's workbook.
_NAMESPACE = uuid.UUID("8a4f7c2e-1d3b-4e59-9c6a-2b7e0f5d3a91")


def workbook_name(names: Names) -> str:
    """Azure requires a GUID as a workbook's resource name: derive it from the
    stack's names so every run (and every machine) asks for the same one."""
    return str(uuid.uuid5(_NAMESPACE, f"workbook|{names.resource_group}|{names.base}"))


def subscription_of(resource_id: str) -> str:
    """``/subscriptions/<id>/resourceGroups/...`` -> ``/subscriptions/<id>``."""
    parts = resource_id.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions":
        raise ValueError(f"not an Azure resource id: {resource_id!r}")
    return f"/subscriptions/{parts[2]}"


# --------------------------------------------------------------------------- KQL


def _source(endpoint_names: Sequence[str]) -> str:
    # No endpoints: read the whole (stack-owned) table rather than emit an empty `in ()`.
    return traffic_source(list(endpoint_names)) if endpoint_names else TRAFFIC_TABLE


def latency_query(endpoint_names: Sequence[str]) -> str:
    return (
        f"{_source(endpoint_names)}\n"
        "| summarize P95Ms = percentile(TotalDurationMs, 95) "
        "by bin(TimeGenerated, {TimeRange:grain}), Deployment = strcat(EndpointName, \"/\", DeploymentName)\n"
        "| render timechart"
    )


def error_rate_query(endpoint_names: Sequence[str]) -> str:
    return (
        f"{_source(endpoint_names)}\n"
        "| summarize ErrorRatePercent = 100.0 * countif(toint(ResponseCode) >= 500) / count() "
        "by bin(TimeGenerated, {TimeRange:grain}), Deployment = strcat(EndpointName, \"/\", DeploymentName)\n"
        "| render timechart"
    )


def comparison_query(endpoint_names: Sequence[str]) -> str:
    """One row per deployment; per endpoint the busiest deployment is the
    champion and the others canaries (what the traffic split makes them)."""
    return (
        f"let traffic = {_source(endpoint_names)};\n"
        "traffic\n"
        "| summarize Requests = count(), P95Ms = percentile(TotalDurationMs, 95), "
        "Errors = countif(toint(ResponseCode) >= 500) by EndpointName, DeploymentName\n"
        "| join kind=inner (traffic | summarize EndpointRequests = count() by EndpointName) on EndpointName\n"
        "| extend SharePercent = round(100.0 * Requests / EndpointRequests, 1), "
        "ErrorRatePercent = round(100.0 * Errors / Requests, 2)\n"
        "| order by EndpointName asc, Requests desc\n"
        "| extend Role = iff(row_number(1, prev(EndpointName) != EndpointName) == 1, \"champion\", \"canary\")\n"
        "| project EndpointName, DeploymentName, Role, Requests, SharePercent, P95Ms, ErrorRatePercent"
    )


def drift_query(metric_names: Sequence[str]) -> str:
    quoted = ", ".join(f'"{name}"' for name in metric_names)
    return (
        f"{METRICS_TABLE}\n"
        f"| where Name in ({quoted})\n"
        "| extend Deployment = strcat(tostring(Properties[\"endpoint\"]), \"/\", tostring(Properties[\"deployment\"]))\n"
        "| summarize Value = sum(Sum) / sum(ItemCount) "
        "by bin(TimeGenerated, {TimeRange:grain}), Series = strcat(Name, \" \", Deployment)\n"
        "| render timechart"
    )


def changes_query(workspace_name: str) -> str:
    operations = ", ".join(f'"{op}"' for op in ENDPOINT_OPERATIONS)
    return (
        f"{ACTIVITY_TABLE}\n"
        "| where CategoryValue == \"Administrative\"\n"
        f"| where OperationNameValue in~ ({operations})\n"
        # Start/Accept rows repeat the same request; the outcome is what an auditor reads.
        "| where ActivityStatusValue in (\"Success\", \"Failure\")\n"
        f"| where _ResourceId has \"/workspaces/{workspace_name.lower()}/\"\n"
        "| extend Endpoint = extract(@\"(?i)/onlineendpoints/([^/]+)\", 1, _ResourceId), "
        "Deployment = extract(@\"(?i)/deployments/([^/]+)\", 1, _ResourceId)\n"
        "| project TimeGenerated, Caller, Operation = OperationNameValue, Endpoint, Deployment, "
        "Status = ActivityStatusValue, CorrelationId\n"
        "| order by TimeGenerated desc"
    )


# --------------------------------------------------------------------------- workbook document


def _text(name: str, markdown: str) -> dict[str, Any]:
    return {"type": 1, "name": name, "content": {"json": markdown}}


def _query(name: str, title: str, query: str, visualization: str) -> dict[str, Any]:
    return {
        "type": 3,
        "name": name,
        "content": {
            "version": "KqlItem/1.0",
            "title": title,
            "query": query,
            "size": 0,
            "timeContextFromParameter": "TimeRange",
            "queryType": 0,
            "resourceType": _LOG_ANALYTICS,
            "visualization": visualization,
        },
    }


def _view(name: str, title: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": 12,
        "name": name,
        "content": {"version": "NotebookGroup/1.0", "groupType": "editable", "title": title, "items": items},
    }


def workbook_document(
    config: DashboardsConfig, endpoint_names: Sequence[str], workspace_name: str, log_analytics_id: str
) -> dict[str, Any]:
    """The workbook's ``serializedData`` (Notebook/1.0) as a dict."""
    time_range = {
        "id": "time-range",
        "version": "KqlParameterItem/1.0",
        "name": "TimeRange",
        "label": "Time range",
        "type": 4,
        "isRequired": True,
        "value": {"durationMs": config.time_range_ms},
        "typeSettings": {
            "selectableValues": [{"durationMs": ms} for ms in TIME_RANGES_MS.values()],
            "allowCustom": True,
        },
    }
    drift_note = (
        "Azure ML model monitor results stay in the workspace (studio, *Monitoring*) and the release "
        "controller's psi / parity_difference live in MLflow: neither reaches Log Analytics. This view charts "
        f"App Insights custom metrics named {', '.join(config.drift_metrics)} with customDimensions "
        "`endpoint` and `deployment`; it stays empty until a job publishes them (docs/dashboards.md)."
    )
    changes_note = (
        "Reads the subscription activity log (azml:dashboards.activityLog). An approver moving traffic is an "
        "onlineEndpoints/write by that approver."
    )
    if not config.activity_log:
        changes_note += " **activityLog is off for this stack: this view is empty unless another export exists.**"
    return {
        "version": "Notebook/1.0",
        "items": [
            {
                "type": 9,
                "name": "parameters",
                "content": {
                    "version": "KqlParameterItem/1.0",
                    "parameters": [time_range],
                    "style": "pills",
                    "queryType": 0,
                    "resourceType": _LOG_ANALYTICS,
                },
            },
            _view("latency-errors", "Latency and errors per deployment", [
                _query("p95-latency", "p95 request duration (ms)", latency_query(endpoint_names), "timechart"),
                _query("error-rate", "5xx responses (% of requests)", error_rate_query(endpoint_names), "timechart"),
            ]),
            _view("canary-vs-champion", "Canary vs champion", [
                _query("comparison", "Per deployment over the time range", comparison_query(endpoint_names), "table"),
            ]),
            _view("drift-fairness", "Drift and fairness metrics", [
                _text("drift-note", drift_note),
                _query("drift-metrics", "Drift and fairness", drift_query(config.drift_metrics), "timechart"),
            ]),
            _view("deployment-changes", "Deployment approvals and changes", [
                _text("changes-note", changes_note),
                _query("changes", "Endpoint and deployment writes", changes_query(workspace_name), "table"),
            ]),
        ],  # fmt: skip
        "fallbackResourceIds": [log_analytics_id],
        "$schema": WORKBOOK_SCHEMA,
    }


# --------------------------------------------------------------------------- component


@dataclass(frozen=True)
class DashboardsArgs:
    """Inputs of :class:`Dashboards`. ``endpoint_names`` are full online
    endpoint names (``<prefix>-<env>-<name>``), ``workspace_name`` the ML
    workspace's name (the activity view filters on it)."""

    config: DashboardsConfig
    names: Names
    location: str
    resource_group_name: pulumi.Input[str]
    log_analytics_id: pulumi.Input[str]
    workspace_name: str
    endpoint_names: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def wire(
        cls,
        config: "StackConfig",
        names: Names,
        resource_group_name: pulumi.Input[str],
        workspace: "MlWorkspace",
        tags: Mapping[str, str],
    ) -> "DashboardsArgs":
        """The args from the stack config and the workspace component (keeps __main__ thin)."""
        return cls(
            config=config.dashboards,
            names=names,
            location=config.location,
            resource_group_name=resource_group_name,
            log_analytics_id=workspace.log_analytics_id,
            workspace_name=names.workspace,
            endpoint_names=tuple(endpoint_name(config, e.name) for e in config.online_endpoints),
            tags=tags,
        )


class Dashboards(pulumi.ComponentResource):
    """With ``azml:dashboards`` on (the default): the workbook and, with
    ``activityLog``, a subscription diagnostic setting sending the activity log
    to the stack's Log Analytics workspace.

    Outputs: ``workbook_id`` and ``workbook_name`` (None when off)."""

    def __init__(self, name: str, args: DashboardsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Dashboards", name, None, opts)
        config = args.config
        self.workbook_id: pulumi.Output[str] | None = None
        self.workbook_name: str | None = None
        if config.enabled:
            if config.activity_log:
                self._activity_log(args)
            title = config.display_name or f"{args.names.base} ML operations"
            self.workbook_name = workbook_name(args.names)
            workbook = applicationinsights.Workbook(
                "workbook",
                resource_name_=self.workbook_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                kind="shared",
                category="workbook",
                display_name=title,
                description="SLOs, canary vs champion, drift and fairness, deployment changes (azml dashboards).",
                version="Notebook/1.0",
                source_id=args.log_analytics_id,
                serialized_data=pulumi.Output.from_input(args.log_analytics_id).apply(
                    lambda log_id: json.dumps(
                        workbook_document(config, args.endpoint_names, args.workspace_name, log_id), indent=None
                    )
                ),
                # Azure adds hidden-title (the display name) itself; declaring it avoids a diff on every preview.
                tags={**args.tags, "hidden-title": title},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.workbook_id = workbook.id
        self.register_outputs({"workbookId": self.workbook_id, "workbookName": self.workbook_name})

    def _activity_log(self, args: DashboardsArgs) -> monitor.DiagnosticSetting:
        # A subscription diagnostic setting is the same ARM type as a resource's
        # (Microsoft.Insights/diagnosticSettings, same API version) with the
        # subscription as its scope; categories only, subscriptions have no metrics.
        return monitor.DiagnosticSetting(
            "activity-log",
            name=f"{args.names.base}-activity-log",
            # The subscription of the stack's own workspace: the one the stack deploys into.
            resource_uri=pulumi.Output.from_input(args.log_analytics_id).apply(subscription_of),
            workspace_id=args.log_analytics_id,
            logs=[{"category": category, "enabled": True} for category in ACTIVITY_CATEGORIES],
            opts=pulumi.ResourceOptions(parent=self),
        )
