"""Operations: Azure ML model monitors on online deployments, SLO alert rules
on endpoints and deployments, and the stack's action group.

The component composes :mod:`components.alert_rules` and
:mod:`components.model_monitors`, which build the child resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import pulumi

from azml.config.schema import StackConfig
from azml.naming import Names

from .alert_rules import DEPLOYMENT_TYPE, ENDPOINT_TYPE, TRAFFIC_TABLE, AlertRules, burn_rate_query, traffic_source
from .diagnostics import send_to_log_analytics
from .model_monitors import COLLECTED_ASSET_VERSION, ModelMonitors, data_asset_uri

if TYPE_CHECKING:
    from .serving import Serving
    from .workspace import MlWorkspace

__all__ = [
    "COLLECTED_ASSET_VERSION",
    "DEPLOYMENT_TYPE",
    "ENDPOINT_TYPE",
    "TRAFFIC_TABLE",
    "Observability",
    "ObservabilityArgs",
    "burn_rate_query",
    "data_asset_uri",
    "traffic_source",
]


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of :class:`Observability`.

    ``endpoint_ids`` maps each configured online endpoint (short name) to its
    ARM id, ``deployment_ids`` to ``{deployment name: ARM id}`` (both from
    :class:`components.serving.Serving`); ``webhook_urls`` maps receiver name
    to its URL as a secret.
    """

    config: StackConfig
    names: Names
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    log_analytics_id: pulumi.Input[str]
    endpoint_ids: Mapping[str, pulumi.Input[str]]
    deployment_ids: Mapping[str, Mapping[str, pulumi.Input[str]]]
    webhook_urls: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    #: User-assigned identity the monitors' serverless Spark jobs run as.
    monitor_identity_id: pulumi.Input[str] | None = None

    @classmethod
    def wire(
        cls,
        config: StackConfig,
        names: Names,
        resource_group_name: pulumi.Input[str],
        workspace: "MlWorkspace",
        serving: "Serving",
        webhook_urls: Mapping[str, pulumi.Input[str]],
        tags: Mapping[str, str],
    ) -> "ObservabilityArgs":
        """The args from the workspace and serving components (keeps __main__ thin)."""
        return cls(
            config=config,
            names=names,
            resource_group_name=resource_group_name,
            workspace_name=workspace.workspace_name,
            workspace_id=workspace.workspace_id,
            log_analytics_id=workspace.log_analytics_id,
            endpoint_ids={name: e.endpoint_id for name, e in serving.online.items()},
            deployment_ids={name: dict(e.deployment_ids) for name, e in serving.online.items()},
            webhook_urls=webhook_urls,
            monitor_identity_id=workspace.compute_identity_id,
            tags=tags,
        )


class Observability(pulumi.ComponentResource):
    """Traffic logs of every online endpoint to Log Analytics; with
    ``azml:alerts`` one action group, metric alerts per endpoint (p95 latency,
    5xx rate) and per deployment (CPU, memory, disk), and log search alerts on
    the traffic log (p95 latency, 5xx share, availability burn rate); with
    ``azml:modelMonitoring`` one monitor schedule per monitored deployment.

    Outputs: ``action_group_id`` (None without alerts), ``monitor_names``,
    ``alert_rule_names``.
    """

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Observability", name, None, opts)
        self._args = args
        self._tags = dict(args.tags)
        config = args.config

        for short, endpoint_id in args.endpoint_ids.items():
            # The log alerts and the workbook read the traffic log; allLogs =
            # traffic, event and console logs. They query the resource-specific
            # table (AmlOnlineEndpointTrafficLog), which the setting only fills
            # with destination type Dedicated (else AzureDiagnostics).
            send_to_log_analytics(
                f"diag-{short}",
                target_id=endpoint_id,
                workspace_id=args.log_analytics_id,
                log_category_groups=("allLogs",),
                dedicated_tables=True,
                parent=self,
            )

        alert_rules = AlertRules(args, parent=self)
        self.alert_rule_names: list[str] = alert_rules.rule_names
        self.action_group_id: pulumi.Output[str] | None = None
        if config.alerts.enabled:
            group = alert_rules.action_group()
            self.action_group_id = group.id
            alert_rules.metric_alerts(group.id)
            alert_rules.log_alerts(group.id)

        monitors = ModelMonitors(args, parent=self)
        self.monitor_names: list[str] = monitors.names
        if config.model_monitoring.enabled:
            monitors.build(config.model_monitoring)

        self.register_outputs(
            {
                "actionGroupId": self.action_group_id,
                "monitors": self.monitor_names,
                "alertRules": self.alert_rule_names,
            }
        )
