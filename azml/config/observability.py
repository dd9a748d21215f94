"""Stack config for operations: ``azml:modelMonitoring``, ``azml:alerts`` and
``azml:alertWebhooks``.

Metric names are exactly the values of azure-native's
``machinelearningservices`` enums (``NumericalDataDriftMetric``,
``CategoricalDataDriftMetric``, ``*PredictionDriftMetric``,
``*DataQualityMetric``, ``FeatureAttributionMetric``); a test compares the
tables here with the installed SDK, so the config layer does not have to
import the (slow) SDK module.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Collection, Iterator, Literal, Mapping

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, StringConstraints, field_validator, model_validator

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
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")

Probability = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an email address like ml-oncall@example.com")
    return value


Email = Annotated[str, AfterValidator(_check_email)]


def _unique_emails(emails: list[str]) -> list[str]:
    lowered = [e.lower() for e in emails]
    duplicates = sorted({e for e in lowered if lowered.count(e) > 1})
    if duplicates:
        raise ValueError(f"email(s) listed twice: {', '.join(duplicates)}")
    return emails


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
            if not _FEATURE.match(feature):
                raise ValueError(f"feature {feature!r} must be a column name (letters, digits, _ . ( ) - and spaces)")
        duplicates = sorted({f for f in features if features.count(f) > 1})
        if duplicates:
            raise ValueError(f"feature(s) listed twice: {', '.join(duplicates)}")
        return features

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str] | None) -> list[str] | None:
        return None if emails is None else _unique_emails(emails)

    @model_validator(mode="after")
    def _monitorable(self) -> "ModelMonitoringConfig":
        if self.enabled and not self.features:
            raise ValueError("features: list the input features to monitor (at least one)")
        return self

    @property
    def monitors_feature_attribution(self) -> bool:
        data = self.training_data
        return self.feature_attribution_drift.enabled and data is not None and data.target_column is not None


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------

#: Metric alerts: evaluation frequencies and windows Azure Monitor accepts.
METRIC_FREQUENCIES = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H")
METRIC_WINDOWS = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D")
#: Log search (scheduled query) alerts.
LOG_FREQUENCIES = ("PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H", "P1D")
LOG_WINDOWS = (*LOG_FREQUENCIES, "P2D")

MetricFrequency = Literal["PT1M", "PT5M", "PT15M", "PT30M", "PT1H"]
MetricWindow = Literal["PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D"]
LogFrequency = Literal["PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H", "P1D"]
LogWindow = Literal[
    "PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M", "PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H", "P1D", "P2D"
]


def minutes(duration: str) -> int:
    """Minutes in one of the ISO 8601 durations above (PT5M, PT1H, P1D)."""
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", duration)
    if not match or duration in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {duration}")
    days, hours, mins = (int(part or 0) for part in match.groups())
    return days * 1440 + hours * 60 + mins


class _Rule(Model):
    enabled: bool = True
    severity: int = Field(default=2, ge=0, le=4, description="0 critical .. 4 verbose.")

    @model_validator(mode="after")
    def _window_covers_frequency(self) -> "_Rule":
        frequency, window = getattr(self, "frequency"), getattr(self, "window")
        if minutes(window) < minutes(frequency):
            raise ValueError(f"window ({window}) must be at least the evaluation frequency ({frequency})")
        return self


class MetricRule(_Rule):
    frequency: MetricFrequency = "PT1M"
    window: MetricWindow = "PT5M"


class LatencyMetricRule(MetricRule):
    threshold_ms: int = Field(default=350, ge=1, le=600_000)


class ServerErrorsMetricRule(MetricRule):
    threshold_per_minute: float = Field(default=5, gt=0, description="Average 5xx responses per minute.")


class UtilisationRule(MetricRule):
    frequency: MetricFrequency = "PT5M"
    window: MetricWindow = "PT15M"
    threshold_percent: float = Field(default=80, gt=0, le=100)


class LogRule(_Rule):
    frequency: LogFrequency = "PT5M"
    window: LogWindow = "PT5M"
    min_requests: int = Field(default=10, ge=1, description="Windows with fewer requests never alert.")


class LatencyLogRule(LogRule):
    threshold_ms: int = Field(default=350, ge=1, le=600_000)


class ErrorRateLogRule(LogRule):
    severity: int = Field(default=1, ge=0, le=4)
    threshold_percent: float = Field(default=2, gt=0, le=100, description="Share of 5xx responses.")


class AvailabilityBurnRule(LogRule):
    """Alert when the error budget of the availability objective burns
    ``burnRate`` times faster than allowed, over the window and over its
    last twelfth (a multi-window burn-rate alert)."""

    severity: int = Field(default=1, ge=0, le=4)
    window: LogWindow = "PT1H"
    objective_percent: float = Field(default=99.5, gt=50, lt=100)
    burn_rate: float = Field(default=14.4, gt=0, le=1000)


def _cpu() -> UtilisationRule:
    return UtilisationRule(threshold_percent=80)


def _memory() -> UtilisationRule:
    return UtilisationRule(threshold_percent=85)


def _disk() -> UtilisationRule:
    return UtilisationRule(threshold_percent=90)


class AlertsConfig(Model):
    """SLO alerts on online endpoints and deployments, all to one action group."""

    enabled: bool = True
    emails: list[Email] = Field(default_factory=list, description="Action group email receivers.")
    action_group_short_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_ -]{1,12}$")] | None = Field(
        default=None, description="Shown in notifications; at most 12 characters. Default <prefix><env>ops."
    )
    latency_p95: LatencyMetricRule = Field(default_factory=LatencyMetricRule)
    server_errors: ServerErrorsMetricRule = Field(default_factory=ServerErrorsMetricRule)
    log_latency_p95: LatencyLogRule = Field(default_factory=LatencyLogRule)
    error_rate: ErrorRateLogRule = Field(default_factory=ErrorRateLogRule)
    availability: AvailabilityBurnRule = Field(default_factory=AvailabilityBurnRule)
    cpu: UtilisationRule = Field(default_factory=_cpu)
    memory: UtilisationRule = Field(default_factory=_memory)
    disk: UtilisationRule = Field(default_factory=_disk)

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        return _unique_emails(emails)


# ---------------------------------------------------------------------------
# Webhooks (secrets)
# ---------------------------------------------------------------------------

#: The top-level key holding webhook URLs; each value must be a Pulumi secret.
WEBHOOKS_KEY = "alertWebhooks"
_RECEIVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def _check_webhooks(hooks: dict[str, SecretStr]) -> dict[str, SecretStr]:
    for name, url in hooks.items():
        if not _RECEIVER_NAME.match(name):
            raise ValueError(f"receiver name {name!r} must be 1-32 letters, digits, hyphens or underscores")
        value = url.get_secret_value()
        # The offline plan sees only the placeholder; never echo the URL.
        if value != SECRET_PLACEHOLDER and not value.startswith("https://"):
            raise ValueError(f"{name}: a webhook URL must start with https://")
    return hooks


#: What an encrypted value becomes offline (kept in sync with stackfile.SECRET_PLACEHOLDER).
SECRET_PLACEHOLDER = "[secret]"

def _per_receiver(value: Any) -> Any:
    if value == SECRET_PLACEHOLDER:
        # The whole map encrypted at once: the offline plan cannot see the names.
        raise ValueError(
            f"encrypt each URL on its own so receiver names stay visible: {_set_secret_hint('<name>')}"
        )
    return value


Webhooks = Annotated[dict[str, SecretStr], BeforeValidator(_per_receiver), AfterValidator(_check_webhooks)]


def _set_secret_hint(name: str) -> str:
    return f"pulumi config set --secret --path 'azml:{WEBHOOKS_KEY}.{name}' <url>"


def webhook_secrecy_problems(raw: Any, secret_keys: Collection[str] | None) -> Iterator[tuple[str, str]]:
    """``(key path, message)`` for webhook URLs given in plain text.

    From a stack file (``secret_keys`` is None) every URL must have been a
    ``secure:`` value, which the reader turns into the placeholder. Inside a
    running program (``secret_keys`` are the secret top-level keys) the key
    itself must be secret.
    """
    if not isinstance(raw, Mapping):
        return
    if secret_keys is None:
        for name, value in raw.items():
            if value != SECRET_PLACEHOLDER:
                yield f"{WEBHOOKS_KEY}.{name}", (
                    f"webhook URLs are secrets and must not be stored in plain text; remove it and run "
                    f"{_set_secret_hint(name)}"
                )
    elif WEBHOOKS_KEY not in secret_keys:
        yield WEBHOOKS_KEY, (
            "webhook URLs are secrets and must not be stored in plain text; set each with "
            f"{_set_secret_hint('<name>')}"
        )


def webhook_urls_from_pulumi(names: Collection[str], namespace: str = "azml") -> dict[str, Any]:
    """Each webhook URL as a secret ``Output`` read from the running program's
    config (``{}`` when none are configured)."""
    if not names:
        return {}
    import pulumi

    hooks = pulumi.Config(namespace).require_secret_object(WEBHOOKS_KEY)
    return {name: hooks.apply(lambda value, name=name: value[name]) for name in names}
