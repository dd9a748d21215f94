"""SLO alert rules of :class:`components.observability.Observability`: the
stack's action group, metric alerts per online endpoint (p95 latency, 5xx
rate) and per deployment (CPU, memory, disk), and log search alerts on the
endpoint traffic log (p95 latency, 5xx share, availability burn rate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import monitor

from azml.config.platform.observability import LogRule, MetricRule, minutes
from azml.naming import ENVIRONMENT_CODES, endpoint_name

if TYPE_CHECKING:
    from .observability import ObservabilityArgs

ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = f"{ENDPOINT_TYPE}/deployments"
#: The online endpoint traffic log (diagnostic category AmlOnlineEndpointTrafficLog).
TRAFFIC_TABLE = "AmlOnlineEndpointTrafficLog"


class AlertRules:
    """Builds the action group and alert rules as children of ``parent`` (the
    Observability component); ``rule_names`` lists the rules created."""

    def __init__(self, args: "ObservabilityArgs", parent: pulumi.Resource) -> None:
        self._args = args
        self._parent = parent
        self._tags = dict(args.tags)
        self.rule_names: list[str] = []

    # -- action group ------------------------------------------------------

    def action_group(self) -> monitor.ActionGroup:
        config, names = self._args.config, self._args.names
        alerts = config.alerts
        short_name = alerts.action_group_short_name or f"{config.prefix}{ENVIRONMENT_CODES[config.environment]}ops"[:12]
        return monitor.ActionGroup(
            "action-group",
            action_group_name=f"ag-{names.base}",
            resource_group_name=self._args.resource_group_name,
            location="Global",
            group_short_name=short_name,
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{index}", email_address=email, use_common_alert_schema=True
                )
                for index, email in enumerate(alerts.emails, start=1)
            ],
            webhook_receivers=[
                # The URL is a secret Output: Pulumi stores it encrypted.
                monitor.WebhookReceiverArgs(name=name, service_uri=url, use_common_alert_schema=True)
                for name, url in sorted(self._args.webhook_urls.items())
            ],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self._parent),
        )

    # -- metric alerts -----------------------------------------------------

    def _metric_alert(
        self,
        logical: str,
        rule_name: str,
        rule: MetricRule,
        *,
        scope: pulumi.Input[str],
        resource_type: str,
        metric: str,
        threshold: float,
        description: str,
        action_group_id: pulumi.Input[str],
        dimensions: list[monitor.MetricDimensionArgs] | None = None,
    ) -> None:
        if not rule.enabled:
            return
        monitor.MetricAlert(
            logical,
            rule_name=rule_name,
            resource_group_name=self._args.resource_group_name,
            location="global",
            description=description,
            severity=rule.severity,
            enabled=True,
            scopes=[scope],
            target_resource_type=resource_type,
            target_resource_region=self._args.config.location,
            evaluation_frequency=rule.frequency,
            window_size=rule.window,
            auto_mitigate=True,
            # `criteria` is a union: only the typed Args class reaches the provider in camelCase.
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name=metric.replace("_", ""),
                        metric_name=metric,
                        metric_namespace=resource_type,
                        operator="GreaterThan",
                        threshold=threshold,
                        time_aggregation="Average",
                        dimensions=dimensions,
                    )
                ],
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=action_group_id)],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self._parent),
        )
        self.rule_names.append(rule_name)

    def metric_alerts(self, action_group_id: pulumi.Input[str]) -> None:
        config = self._args.config
        alerts = config.alerts
        for endpoint in config.online_endpoints:
            full = endpoint_name(config, endpoint.name)
            endpoint_id = self._args.endpoint_ids[endpoint.name]
            self._metric_alert(
                f"{endpoint.name}-latency-p95",
                f"alert-{full}-latency-p95",
                alerts.latency_p95,
                scope=endpoint_id,
                resource_type=ENDPOINT_TYPE,
                metric="RequestLatency_P95",
                threshold=alerts.latency_p95.threshold_ms,
                description=f"p95 request latency of {full} above {alerts.latency_p95.threshold_ms} ms (SLO)",
                action_group_id=action_group_id,
            )
            self._metric_alert(
                f"{endpoint.name}-server-errors",
                f"alert-{full}-5xx",
                alerts.server_errors,
                scope=endpoint_id,
                resource_type=ENDPOINT_TYPE,
                metric="RequestsPerMinute",
                threshold=alerts.server_errors.threshold_per_minute,
                description=f"{full}: more than {alerts.server_errors.threshold_per_minute:g} responses a minute with status 5xx",
                action_group_id=action_group_id,
                dimensions=[monitor.MetricDimensionArgs(name="statusCodeClass", operator="Include", values=["5xx"])],
            )
            for deployment in endpoint.deployments:
                deployment_id = self._args.deployment_ids[endpoint.name][deployment.name]
                for key, rule, metric, what in (
                    ("cpu", alerts.cpu, "CpuUtilizationPercentage", "CPU"),
                    ("memory", alerts.memory, "CpuMemoryUtilizationPercentage", "memory"),
                    ("disk", alerts.disk, "DiskUtilization", "disk"),
                ):
                    self._metric_alert(
                        f"{endpoint.name}-{deployment.name}-{key}",
                        f"alert-{full}-{deployment.name}-{key}",
                        rule,
                        scope=deployment_id,
                        resource_type=DEPLOYMENT_TYPE,
                        metric=metric,
                        threshold=rule.threshold_percent,
                        description=f"{what} utilisation of {full}/{deployment.name} above {rule.threshold_percent:g} %",
                        action_group_id=action_group_id,
                    )

    # -- log search alerts ---------------------------------------------------

    def _log_alert(
        self,
        logical: str,
        rule: LogRule,
        *,
        query: str,
        measure: str,
        threshold: float,
        dimensions: tuple[str, ...],
        description: str,
        action_group_id: pulumi.Input[str],
    ) -> None:
        if not rule.enabled:
            return
        rule_name = f"alert-{self._args.names.base}-{logical}"
        monitor.ScheduledQueryRule(
            logical,
            rule_name=rule_name,
            display_name=rule_name,
            description=description,
            resource_group_name=self._args.resource_group_name,
            location=self._args.config.location,
            kind="LogAlert",
            scopes=[self._args.log_analytics_id],
            severity=rule.severity,
            enabled=True,
            evaluation_frequency=rule.frequency,
            window_size=rule.window,
            auto_mitigate=True,
            # The traffic table appears in Log Analytics with the first request;
            # without this Azure refuses a rule created before any traffic.
            skip_query_validation=True,
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=query,
                        time_aggregation="Maximum",
                        metric_measure_column=measure,
                        operator="GreaterThan",
                        threshold=threshold,
                        dimensions=[
                            monitor.DimensionArgs(name=dimension, operator="Include", values=["*"])
                            for dimension in dimensions
                        ],
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                        ),
                    )
                ]
            ),
            actions=monitor.ActionsArgs(action_groups=[action_group_id]),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self._parent),
        )
        self.rule_names.append(rule_name)

    def log_alerts(self, action_group_id: pulumi.Input[str]) -> None:
        config = self._args.config
        alerts = config.alerts
        full_names = [endpoint_name(config, e.name) for e in config.online_endpoints]
        if not full_names:
            return
        source = traffic_source(full_names)
        per_deployment = ("EndpointName", "DeploymentName")

        latency = alerts.log_latency_p95
        self._log_alert(
            "traffic-latency-p95",
            latency,
            query=(
                f"{source}\n| summarize Requests = count(), P95 = percentile(TotalDurationMs, 95) "
                f"by EndpointName, DeploymentName\n| where Requests >= {latency.min_requests}"
            ),
            measure="P95",
            threshold=latency.threshold_ms,
            dimensions=per_deployment,
            description=f"p95 total request duration above {latency.threshold_ms} ms (traffic log)",
            action_group_id=action_group_id,
        )

        errors = alerts.error_rate
        self._log_alert(
            "traffic-error-rate",
            errors,
            query=(
                f"{source}\n| summarize Requests = count(), Errors = countif(toint(ResponseCode) >= 500) "
                f"by EndpointName, DeploymentName\n| where Requests >= {errors.min_requests}\n"
                "| extend ErrorRatePercent = 100.0 * Errors / Requests"
            ),
            measure="ErrorRatePercent",
            threshold=errors.threshold_percent,
            dimensions=per_deployment,
            description=f"share of 5xx responses above {errors.threshold_percent:g} % (traffic log)",
            action_group_id=action_group_id,
        )

        availability = alerts.availability
        self._log_alert(
            "availability-burn-rate",
            availability,
            query=burn_rate_query(source, availability.objective_percent, availability.window, availability.min_requests),
            measure="BurnRate",
            threshold=availability.burn_rate,
            dimensions=("EndpointName",),
            description=(
                f"error budget of the {availability.objective_percent:g} % availability objective burning "
                f"{availability.burn_rate:g}x too fast over {availability.window} and its last twelfth"
            ),
            action_group_id=action_group_id,
        )


def traffic_source(endpoint_names: list[str]) -> str:
    quoted = ", ".join(f'"{name}"' for name in endpoint_names)
    return f"{TRAFFIC_TABLE}\n| where EndpointName in ({quoted})"


def burn_rate_query(source: str, objective_percent: float, window: str, min_requests: int) -> str:
    """Burn rate = observed 5xx share / error budget (1 - objective), over the
    whole window and over its last twelfth; the smaller of the two must exceed
    the threshold, so a short spike alone or an old burst alone stays quiet."""
    short_minutes = max(5, minutes(window) // 12)
    budget = round(1 - objective_percent / 100, 10)
    return (
        f"let budget = {budget:g};\n"
        f"let shortStart = now() - {short_minutes}m;\n"
        f"{source}\n"
        "| extend Failed = toint(ResponseCode) >= 500, Recent = TimeGenerated >= shortStart\n"
        "| summarize Requests = count(), Errors = countif(Failed), "
        "RecentRequests = countif(Recent), RecentErrors = countif(Recent and Failed) by EndpointName\n"
        f"| where Requests >= {min_requests}\n"
        "| extend LongBurn = todouble(Errors) / Requests / budget, "
        "ShortBurn = iff(RecentRequests == 0, 0.0, todouble(RecentErrors) / RecentRequests / budget)\n"
        "| extend BurnRate = min_of(LongBurn, ShortBurn)"
    )
