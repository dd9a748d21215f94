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
from ...drift.defaults import DEFAULT_PSI_LIMIT, PsiLimit
from ..base import Model
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

    jensen_shannon_distance: Probability | None = Field(
        default=None, alias="JensenShannonDistance", description="Jensen-Shannon distance, all features; alert above."
    )
    population_stability_index: PsiLimit | None = Field(
        default=None, alias="PopulationStabilityIndex", description="Population stability index, all features; alert above."
    )
    normalized_wasserstein_distance: NonNegative | None = Field(
        default=None, alias="NormalizedWassersteinDistance",
        description="Normalized Wasserstein distance, numerical features only; alert above.",
    )
    two_sample_kolmogorov_smirnov_test: Probability | None = Field(
        default=None, alias="TwoSampleKolmogorovSmirnovTest",
        description="Two-sample Kolmogorov-Smirnov test p-value, numerical features only; alert below.",
    )
    pearsons_chi_squared_test: Probability | None = Field(
        default=None, alias="PearsonsChiSquaredTest",
        description="Pearson's chi-squared test p-value, categorical features only; alert below.",
    )


class DataQualityThresholds(_Thresholds):
    """Rates are fractions of rows (0..1)."""

    null_value_rate: Probability | None = Field(
        default=None, alias="NullValueRate", description="Share of rows with a missing value; alert above."
    )
    data_type_error_rate: Probability | None = Field(
        default=None, alias="DataTypeErrorRate", description="Share of values of another type than the reference's; alert above."
    )
    out_of_bounds_rate: Probability | None = Field(
        default=None, alias="OutOfBoundsRate",
        description="Share of values outside the reference's range or categories; alert above.",
    )


def _default_data_drift() -> DriftThresholds:
    # PSI: the one PSI limit default (azml.drift.defaults.DEFAULT_PSI_LIMIT, also the
    # default of azml:release.gate.maxPsi and azml:retraining.triggers.maxPsi); Azure's
    # own defaults are Wasserstein 0.1 (numerical) and Jensen-Shannon 0.1 (categorical).
    return DriftThresholds.model_validate(
        {"PopulationStabilityIndex": DEFAULT_PSI_LIMIT, "JensenShannonDistance": 0.1, "NormalizedWassersteinDistance": 0.1}
    )


def _default_prediction_drift() -> DriftThresholds:
    return DriftThresholds.model_validate({"PopulationStabilityIndex": DEFAULT_PSI_LIMIT, "JensenShannonDistance": 0.1})


def _default_data_quality() -> DataQualityThresholds:
    return DataQualityThresholds.model_validate(
        {"NullValueRate": 0.05, "DataTypeErrorRate": 0.01, "OutOfBoundsRate": 0.02}
    )


_SIGNAL_ON = "Compute this signal; false turns it off."
_THRESHOLDS = "Metric -> threshold; only the metrics listed are computed."


class DriftSignal(Model):
    enabled: bool = Field(default=True, description=_SIGNAL_ON)
    thresholds: DriftThresholds = Field(default_factory=_default_data_drift, description=_THRESHOLDS)


class PredictionDriftSignal(Model):
    enabled: bool = Field(default=True, description=_SIGNAL_ON)
    thresholds: DriftThresholds = Field(default_factory=_default_prediction_drift, description=_THRESHOLDS)


class DataQualitySignal(Model):
    enabled: bool = Field(default=True, description=_SIGNAL_ON)
    thresholds: DataQualityThresholds = Field(default_factory=_default_data_quality, description=_THRESHOLDS)


class FeatureAttributionSignal(Model):
    """Runs only when ``trainingData`` (with ``targetColumn``) is given."""

    enabled: bool = Field(default=True, description=_SIGNAL_ON)
    threshold: Probability = Field(default=0.9, description="NormalizedDiscountedCumulativeGain; alert below.")


class TrainingData(Model):
    """The registered training data asset: the reference the production data
    is compared with."""

    name: AssetName = Field(description="Registered data asset name.")
    version: AssetVersion = Field(description="Data asset version.")
    type: Literal["mltable", "uri_folder", "uri_file"] = Field(default="mltable", description="Data asset type.")
    target_column: Annotated[str, StringConstraints(pattern=_FEATURE.pattern)] | None = Field(
        default=None, description="Label column; feature attribution drift needs it."
    )


WeekDay = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class MonitorFrequency(Model):
    """When monitors run (UTC unless ``timeZone``): every ``interval`` hours,
    days or weeks; daily and weekly runs start at ``hour``:``minute``."""

    interval: int = Field(default=1, ge=1, le=365, description="Run every this many units.")
    unit: Literal["hour", "day", "week"] = Field(default="day", description="Unit of interval.")
    hour: int = Field(default=3, ge=0, le=23, description="Hour daily and weekly runs start at.")
    minute: int = Field(default=15, ge=0, le=59, description="Minute daily and weekly runs start at.")
    week_days: list[WeekDay] = Field(
        default_factory=lambda: ["Monday"], description="Days weekly runs start on; each once."
    )
    time_zone: str = Field(default="UTC", description="Time zone of hour and minute.")

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
    instance_type: str = Field(
        default="standard_e4s_v3", description=f"Serverless Spark VM size: {', '.join(MONITOR_INSTANCE_TYPES)}."
    )
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

    enabled: bool = Field(
        default=True, description="One monitor schedule per online deployment with dataCollection on."
    )
    endpoints: list[EndpointName] | None = Field(
        default=None, description="Online endpoints (short names) to monitor; default all."
    )
    frequency: MonitorFrequency = Field(
        default_factory=MonitorFrequency,
        description="When monitors run (default daily, 03:15 UTC); the production window is one period, at least a day.",
    )
    task_type: Literal["Classification", "Regression"] = Field(default="Classification", description="The model's task.")
    features: list[str] = Field(
        default_factory=list, description="Input features to monitor (column names, unique); required when enabled."
    )
    training_data: TrainingData | None = Field(
        default=None,
        description="Reference data; without it, drift and quality compare with the preceding production window.",
    )
    data_drift: DriftSignal = Field(default_factory=DriftSignal, description="Data drift of the features.")
    prediction_drift: PredictionDriftSignal = Field(
        default_factory=PredictionDriftSignal, description="Prediction drift: the outputs against the preceding window."
    )
    data_quality: DataQualitySignal = Field(default_factory=DataQualitySignal, description="Data quality of the features.")
    feature_attribution_drift: FeatureAttributionSignal = Field(
        default_factory=FeatureAttributionSignal,
        description="Feature attribution drift; needs trainingData.targetColumn.",
    )
    compute: MonitorCompute = Field(default_factory=MonitorCompute, description="Serverless Spark the monitors run on.")
    emails: list[Email] | None = Field(
        default=None,
        description="Who Azure ML notifies of breached thresholds (unique, at most 499 characters in total); "
        "default azml:alerts.emails.",
    )
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
