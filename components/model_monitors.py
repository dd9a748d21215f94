"""Azure ML model monitors of :class:`components.observability.Observability`:
one monitor ``Schedule`` per monitored online deployment with data collection,
comparing collected inputs/outputs with the training data (or the preceding
production window) for drift, data quality and feature attribution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import pulumi
from pulumi_azure_native import machinelearningservices as ml

from azml.config.platform.observability import CATEGORICAL_DRIFT_METRICS, NUMERICAL_DRIFT_METRICS, ModelMonitoringConfig
from azml.config.platform.serving import OnlineDeploymentConfig
from azml.naming import endpoint_name

from .serving_assets import model_asset_id

if TYPE_CHECKING:
    from .observability import ObservabilityArgs

#: The data collector registers what it collects as data assets named
#: <endpoint>-<deployment>-<collection>, version 1 (observed; Azure names them).
COLLECTED_ASSET_VERSION = "1"


class ModelMonitors:
    """Builds the monitor schedules as children of ``parent`` (the
    Observability component); ``names`` lists the schedules created."""

    def __init__(self, args: "ObservabilityArgs", parent: pulumi.Resource) -> None:
        self._args = args
        self._parent = parent
        self._tags = dict(args.tags)
        self.names: list[str] = []

    def build(self, monitoring: ModelMonitoringConfig) -> None:
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
                    opts=pulumi.ResourceOptions(parent=self._parent),
                )
                self.names.append(schedule_name)

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
                compute_identity=_compute_identity(args.monitor_identity_id),
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


def _compute_identity(identity_id: pulumi.Input[str] | None) -> object:
    """The identity the monitoring Spark jobs run as. The workspace storage
    takes no shared key: "Monitoring (evaluating model quality/perf) |
    User-assigned managed identity | Storage Blob Data Contributor"
    (how-to-disable-local-auth-storage). The AML token (the submitter's
    identity) is left only for a stack that gives no identity."""
    if identity_id is None:
        return ml.AmlTokenComputeIdentityArgs(compute_identity_type="AmlToken")
    return ml.ManagedComputeIdentityArgs(
        compute_identity_type="ManagedIdentity",
        identity=ml.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[identity_id]),
    )


def data_asset_uri(workspace_id: pulumi.Input[str], name: str, version: str) -> pulumi.Output[str]:
    """A data asset version as a job input URI: ``azureml:<ARM id>``."""
    return pulumi.Output.concat("azureml:", workspace_id, f"/data/{name}/versions/{version}")


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
