"""Operations: Azure ML model monitors on online deployments, SLO alert rules
on endpoints and deployments, and the stack's action group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import pulumi
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import monitor

from azml.config.observability import (
    CATEGORICAL_DRIFT_METRICS,
    NUMERICAL_DRIFT_METRICS,
    LogRule,
    MetricRule,
    ModelMonitoringConfig,
    minutes,
)
from azml.config.schema import StackConfig
from azml.config.serving import OnlineDeploymentConfig
from azml.naming import ENVIRONMENT_CODES, Names, endpoint_name

from .diagnostics import send_to_log_analytics
from .serving_assets import model_asset_id

if TYPE_CHECKING:
    from .serving import Serving
    from .workspace import MlWorkspace

ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = f"{ENDPOINT_TYPE}/deployments"
#: The online endpoint traffic log (diagnostic category AmlOnlineEndpointTrafficLog).
TRAFFIC_TABLE = "AmlOnlineEndpointTrafficLog"
#: The data collector registers what it collects as data assets named
#: <endpoint>-<deployment>-<collection>, version 1 (observed; Azure names them).
COLLECTED_ASSET_VERSION = "1"


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
            # The log alerts read the traffic log; allLogs = traffic, event and console logs.
            send_to_log_analytics(
                f"diag-{short}",
                target_id=endpoint_id,
                workspace_id=args.log_analytics_id,
                log_category_groups=("allLogs",),
                parent=self,
            )

        self.alert_rule_names: list[str] = []
        self.action_group_id: pulumi.Output[str] | None = None
        if config.alerts.enabled:
            group = self._action_group()
            self.action_group_id = group.id
            self._metric_alerts(group.id)
            self._log_alerts(group.id)

        self.monitor_names: list[str] = []
        if config.model_monitoring.enabled:
            self._monitors(config.model_monitoring)

        self.register_outputs(
            {
                "actionGroupId": self.action_group_id,
                "monitors": self.monitor_names,
                "alertRules": self.alert_rule_names,
            }
        )

    # -- action group ------------------------------------------------------

    def _action_group(self) -> monitor.ActionGroup:
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
            opts=pulumi.ResourceOptions(parent=self),
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
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alert_rule_names.append(rule_name)

    def _metric_alerts(self, action_group_id: pulumi.Input[str]) -> None:
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
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alert_rule_names.append(rule_name)

    def _log_alerts(self, action_group_id: pulumi.Input[str]) -> None:
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

    # -- model monitors ------------------------------------------------------

    def _monitors(self, monitoring: ModelMonitoringConfig) -> None:
        config = self._args.config
        wanted = set(monitoring.endpoints) if monitoring.endpoints is not None else None
        emails = monitoring.emails if monitoring.emails is not None else config.alerts.emails
        for endpoint in config.online_endpoints:
            if wanted is not None and endpoint.name not in wanted:
                continue
            full = endpoint_name(config, endpoint.name)
            for deployment in endpoint.deployments:
                if not deployment.data_collection:
                    continue  # nothing collected, nothing to compare
                schedule_name = f"monitor-{full}-{deployment.name}"
                ml.Schedule(
                    f"{endpoint.name}-{deployment.name}-monitor",
                    name=schedule_name,
                    resource_group_name=self._args.resource_group_name,
                    workspace_name=self._args.workspace_name,
                    # `properties`, its trigger and action are unions: typed Args only.
                    properties=ml.SchedulePropertiesArgs(
                        display_name=f"Model monitor {full}/{deployment.name}",
                        description=f"Drift and data quality of {full}/{deployment.name} (azml)",
                        is_enabled=True,
                        trigger=_trigger(monitoring),
                        action=ml.CreateMonitorActionArgs(
                            action_type="CreateMonitor",
                            monitor_definition=self._definition(monitoring, endpoint.name, full, deployment, list(emails)),
                        ),
                        tags=self._tags,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.monitor_names.append(schedule_name)

    def _definition(
        self,
        monitoring: ModelMonitoringConfig,
        short: str,
        full: str,
        deployment: OnlineDeploymentConfig,
        emails: list[str],
    ) -> ml.MonitorDefinitionArgs:
        args = self._args
        window = f"P{monitoring.frequency.lookback_days}D"

        def collected(collection: str, offset: str = "P0D") -> ml.RollingInputDataArgs:
            return ml.RollingInputDataArgs(
                input_data_type="Rolling",
                job_input_type="uri_folder",
                uri=data_asset_uri(args.workspace_id, f"{full}-{deployment.name}-{collection}", COLLECTED_ASSET_VERSION),
                data_context=collection,
                window_size=window,
                window_offset=offset,
                preprocessing_component_id=monitoring.preprocessing_component_id,
            )

        training = monitoring.training_data
        training_input = (
            ml.FixedInputDataArgs(
                input_data_type="Fixed",
                job_input_type=training.type,
                uri=data_asset_uri(args.workspace_id, training.name, training.version),
                data_context="training",
            )
            if training is not None
            else None
        )
        features = ml.FeatureSubsetArgs(filter_type="FeatureSubset", features=list(monitoring.features))
        notify = ["AmlNotification"]

        signals: dict[str, object] = {}
        if monitoring.data_drift.enabled:
            signals["dataDrift"] = ml.DataDriftMonitoringSignalArgs(
                signal_type="DataDrift",
                production_data=collected("model_inputs"),
                # Without training data: the preceding window of production inputs.
                reference_data=training_input or collected("model_inputs", offset=window),
                features=features,
                metric_thresholds=_drift_thresholds(
                    monitoring.data_drift.thresholds.metrics(),
                    ml.NumericalDataDriftMetricThresholdArgs,
                    ml.CategoricalDataDriftMetricThresholdArgs,
                ),
                notification_types=notify,
            )
        if monitoring.prediction_drift.enabled:
            signals["predictionDrift"] = ml.PredictionDriftMonitoringSignalArgs(
                signal_type="PredictionDrift",
                production_data=collected("model_outputs"),
                reference_data=collected("model_outputs", offset=window),
                metric_thresholds=_drift_thresholds(
                    monitoring.prediction_drift.thresholds.metrics(),
                    ml.NumericalPredictionDriftMetricThresholdArgs,
                    ml.CategoricalPredictionDriftMetricThresholdArgs,
                ),
                notification_types=notify,
            )
        if monitoring.data_quality.enabled:
            quality = monitoring.data_quality.thresholds.metrics()
            signals["dataQuality"] = ml.DataQualityMonitoringSignalArgs(
                signal_type="DataQuality",
                production_data=collected("model_inputs"),
                reference_data=training_input or collected("model_inputs", offset=window),
                features=features,
                metric_thresholds=[
                    cls(data_type=data_type, metric=metric, threshold=ml.MonitoringThresholdArgs(value=value))
                    for data_type, cls in (
                        ("Numerical", ml.NumericalDataQualityMetricThresholdArgs),
                        ("Categorical", ml.CategoricalDataQualityMetricThresholdArgs),
                    )
                    for metric, value in quality.items()
                ],
                notification_types=notify,
            )
        if monitoring.monitors_feature_attribution and training is not None and training_input is not None:
            signals["featureAttributionDrift"] = ml.FeatureAttributionDriftMonitoringSignalArgs(
                signal_type="FeatureAttributionDrift",
                production_data=[collected("model_inputs"), collected("model_outputs")],
                reference_data=training_input,
                feature_importance_settings=ml.FeatureImportanceSettingsArgs(
                    mode="Enabled", target_column=training.target_column
                ),
                metric_threshold=ml.FeatureAttributionMetricThresholdArgs(
                    metric="NormalizedDiscountedCumulativeGain",
                    threshold=ml.MonitoringThresholdArgs(value=monitoring.feature_attribution_drift.threshold),
                ),
                notification_types=notify,
            )

        return ml.MonitorDefinitionArgs(
            compute_configuration=ml.MonitorServerlessSparkComputeArgs(
                compute_type="ServerlessSpark",
                instance_type=monitoring.compute.instance_type,
                runtime_version=monitoring.compute.runtime_version,
                compute_identity=ml.AmlTokenComputeIdentityArgs(compute_identity_type="AmlToken"),
            ),
            monitoring_target=ml.MonitoringTargetArgs(
                task_type=monitoring.task_type,
                deployment_id=args.deployment_ids[short][deployment.name],
                model_id=model_asset_id(args.workspace_id, deployment.model),
            ),
            signals=signals,
            alert_notification_settings=(
                ml.MonitorNotificationSettingsArgs(
                    email_notification_settings=ml.MonitorEmailNotificationSettingsArgs(emails=emails)
                )
                if emails
                else None
            ),
        )


def data_asset_uri(workspace_id: pulumi.Input[str], name: str, version: str) -> pulumi.Output[str]:
    """A data asset version as a job input URI: ``azureml:<ARM id>``."""
    return pulumi.Output.concat("azureml:", workspace_id, f"/data/{name}/versions/{version}")


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


def _trigger(monitoring: ModelMonitoringConfig) -> ml.RecurrenceTriggerArgs:
    frequency = monitoring.frequency
    schedule = None
    if frequency.unit != "hour":
        schedule = ml.RecurrenceScheduleArgs(
            hours=[frequency.hour],
            minutes=[frequency.minute],
            week_days=list(frequency.week_days) if frequency.unit == "week" else None,
        )
    return ml.RecurrenceTriggerArgs(
        trigger_type="Recurrence",
        frequency=frequency.unit.capitalize(),
        interval=frequency.interval,
        schedule=schedule,
        time_zone=frequency.time_zone,
    )


def _drift_thresholds(metrics: Mapping[str, float], numerical: type, categorical: type) -> list:
    """Each metric applies to the feature types Azure defines it for."""
    thresholds = []
    for data_type, cls, allowed in (
        ("Numerical", numerical, NUMERICAL_DRIFT_METRICS),
        ("Categorical", categorical, CATEGORICAL_DRIFT_METRICS),
    ):
        thresholds += [
            cls(data_type=data_type, metric=metric, threshold=ml.MonitoringThresholdArgs(value=value))
            for metric, value in metrics.items()
            if metric in allowed
        ]
    return thresholds
