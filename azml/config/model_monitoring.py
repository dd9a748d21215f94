"""Stack config ``azml:modelMonitoring``: Azure ML model monitors on online
deployments (signals, thresholds, schedule, Spark compute).

Metric names are exactly the values of azure-native's
``machinelearningservices`` enums (``NumericalDataDriftMetric``,
``CategoricalDataDriftMetric``, ``*PredictionDriftMetric``,
``*DataQualityMetric``, ``FeatureAttributionMetric``); a test compares the
tables here with the installed SDK, so the config layer does not have to
import the (slow) SDK module.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .alerts import Email, unique_emails
from .base import Model
from .serving import AssetName, AssetVersion, EndpointName

# ---------------------------------------------------------------------------
# Model monitoring
# ---------------------------------------------------------------------------

#: Drift metrics per feature type (data drift and prediction drift share them).
NUMERICAL_DRIFT_METRICS = (
    "JensenShannonDistance",
    "PopulationStabilityIndex",
    "NormalizedWassersteinDistance",
    "TwoSampleKolmogorovSmirnovTest",
)
CATEGORICAL_DRIFT_METRICS = ("JensenShannonDistance", "PopulationStabilityIndex", "PearsonsChiSquaredTest")
#: Data quality metrics, the same for numerical and categorical features.
DATA_QUALITY_METRICS = ("NullValueRate", "DataTypeErrorRate", "OutOfBoundsRate")
FEATURE_ATTRIBUTION_METRICS = ("NormalizedDiscountedCumulativeGain",)

#: Serverless Spark instance types model monitoring runs on (Azure ML docs:
#: "Model monitoring jobs are scheduled to run on serverless Spark compute pools
#: with support for ... Standard_E4s_v3 ... Standard_E64s_v3").
MONITOR_INSTANCE_TYPES = ("standard_e4s_v3", "standard_e8s_v3", "standard_e16s_v3", "standard_e32s_v3", "standard_e64s_v3")

_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .()-]{0,127}$")

Probability = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class _Thresholds(Model):
    """Metric name -> threshold. Only the metrics listed are computed; keys are
    Azure's metric names exactly (unknown names are refused)."""

    def metrics(self) -> dict[str, float]:
        return {
            (field.alias or name): value
            for name, field in type(self).model_fields.items()
            if (value := getattr(self, name)) is not None
        }

    @model_validator(mode="after")
    def _not_empty(self) -> "_Thresholds":
        if not self.metrics():
            allowed = ", ".join(f.alias or n for n, f in type(self).model_fields.items())
            raise ValueError(f"give at least one metric and its threshold (allowed: {allowed})")
        return self


class DriftThresholds(_Thresholds):
    """Data and prediction drift. Distances alert above the threshold; the
    statistical tests' thresholds are p-values (alert below)."""

    jensen_shannon_distance: Probability | None = Field(default=None, alias="JensenShannonDistance")
    population_stability_index: NonNegative | None = Field(default=None, alias="PopulationStabilityIndex")
    normalized_wasserstein_distance: NonNegative | None = Field(default=None, alias="NormalizedWassersteinDistance")
    two_sample_kolmogorov_smirnov_test: Probability | None = Field(default=None, alias="TwoSampleKolmogorovSmirnovTest")
    pearsons_chi_squared_test: Probability | None = Field(default=None, alias="PearsonsChiSquaredTest")


class DataQualityThresholds(_Thresholds):
    """Rates are fractions of rows (0..1)."""

    null_value_rate: Probability | None = Field(default=None, alias="NullValueRate")
    data_type_error_rate: Probability | None = Field(default=None, alias="DataTypeErrorRate")
    out_of_bounds_rate: Probability | None = Field(default=None, alias="OutOfBoundsRate")


def _default_data_drift() -> DriftThresholds:
    # PSI 0.2 is the promotion gate's drift limit (DESIGN.md); Azure's own
    # defaults are Wasserstein 0.1 (numerical) and Jensen-Shannon 0.1 (categorical).
    return DriftThresholds.model_validate(
        {"PopulationStabilityIndex": 0.2, "JensenShannonDistance": 0.1, "NormalizedWassersteinDistance": 0.1}
    )


def _default_prediction_drift() -> DriftThresholds:
    return DriftThresholds.model_validate({"PopulationStabilityIndex": 0.2, "JensenShannonDistance": 0.1})


def _default_data_quality() -> DataQualityThresholds:
    return DataQualityThresholds.model_validate(
        {"NullValueRate": 0.05, "DataTypeErrorRate": 0.01, "OutOfBoundsRate": 0.02}
    )


class DriftSignal(Model):
    enabled: bool = True
    thresholds: DriftThresholds = Field(default_factory=_default_data_drift)


class PredictionDriftSignal(Model):
    enabled: bool = True
    thresholds: DriftThresholds = Field(default_factory=_default_prediction_drift)


class DataQualitySignal(Model):
    enabled: bool = True
    thresholds: DataQualityThresholds = Field(default_factory=_default_data_quality)


class FeatureAttributionSignal(Model):
    """Runs only when ``trainingData`` (with ``targetColumn``) is given."""

    enabled: bool = True
    threshold: Probability = Field(default=0.9, description="NormalizedDiscountedCumulativeGain; alert below.")


class TrainingData(Model):
    """The registered training data asset: the reference the production data
    is compared with."""

    name: AssetName
    version: AssetVersion
    type: Literal["mltable", "uri_folder", "uri_file"] = "mltable"
    target_column: Annotated[str, StringConstraints(pattern=_FEATURE.pattern)] | None = Field(
        default=None, description="Label column; feature attribution drift needs it."
    )


WeekDay = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class MonitorFrequency(Model):
    """When monitors run (UTC unless ``timeZone``): every ``interval`` hours,
    days or weeks; daily and weekly runs start at ``hour``:``minute``."""

    interval: int = Field(default=1, ge=1, le=365)
    unit: Literal["hour", "day", "week"] = "day"
    hour: int = Field(default=3, ge=0, le=23)
    minute: int = Field(default=15, ge=0, le=59)
    week_days: list[WeekDay] = Field(default_factory=lambda: ["Monday"])
    time_zone: str = "UTC"

    @field_validator("week_days")
    @classmethod
    def _days(cls, days: list[str]) -> list[str]:
        if not days:
            raise ValueError("give at least one day")
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return days

    @property
    def lookback_days(self) -> int:
        """Production data window matching one period (at least a day)."""
        return {"hour": 1, "day": self.interval, "week": 7 * self.interval}[self.unit]


class MonitorCompute(Model):
    instance_type: str = Field(default="standard_e4s_v3", description="Serverless Spark VM size.")
    runtime_version: Literal["3.3", "3.4"] = Field(default="3.4", description="Azure Synapse Spark runtime.")

    @field_validator("instance_type")
    @classmethod
    def _instance(cls, value: str) -> str:
        if value.lower() not in MONITOR_INSTANCE_TYPES:
            raise ValueError(f"must be one of {', '.join(MONITOR_INSTANCE_TYPES)} (serverless Spark sizes)")
        return value.lower()


class ModelMonitoringConfig(Model):
    """Azure ML model monitors: one schedule per monitored online deployment
    (data collection on), comparing its collected inputs/outputs with the
    training data (or, without it, with the preceding production window)."""

    enabled: bool = True
    endpoints: list[EndpointName] | None = Field(
        default=None, description="Online endpoints (short names) to monitor; default all."
    )
    frequency: MonitorFrequency = Field(default_factory=MonitorFrequency)
    task_type: Literal["Classification", "Regression"] = "Classification"
    features: list[str] = Field(default_factory=list, description="Input features to monitor.")
    training_data: TrainingData | None = None
    data_drift: DriftSignal = Field(default_factory=DriftSignal)
    prediction_drift: PredictionDriftSignal = Field(default_factory=PredictionDriftSignal)
    data_quality: DataQualitySignal = Field(default_factory=DataQualitySignal)
    feature_attribution_drift: FeatureAttributionSignal = Field(default_factory=FeatureAttributionSignal)
    compute: MonitorCompute = Field(default_factory=MonitorCompute)
    emails: list[Email] | None = Field(default=None, description="Who Azure ML notifies; default azml:alerts.emails.")
    preprocessing_component_id: (
        Annotated[str, StringConstraints(pattern=r"^azureml://registries/[^/]+/components/[^/]+/(versions|labels)/[^/]+$")]
        | None
    ) = Field(default=None, description="Component that turns collected JSONL into a table; unset = Azure's default.")

    @field_validator("features")
    @classmethod
    def _features(cls, features: list[str]) -> list[str]:
        for feature in features:
            if not _FEATURE.fullmatch(feature):
                raise ValueError(f"feature {feature!r} must be a column name (letters, digits, _ . ( ) - and spaces)")
        duplicates = sorted({f for f in features if features.count(f) > 1})
        if duplicates:
            raise ValueError(f"feature(s) listed twice: {', '.join(duplicates)}")
        return features

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str] | None) -> list[str] | None:
        return None if emails is None else unique_emails(emails)

    @model_validator(mode="after")
    def _monitorable(self) -> "ModelMonitoringConfig":
        if self.enabled and not self.features:
            raise ValueError("features: list the input features to monitor (at least one)")
        return self

    @property
    def monitors_feature_attribution(self) -> bool:
        data = self.training_data
        return self.feature_attribution_drift.enabled and data is not None and data.target_column is not None
