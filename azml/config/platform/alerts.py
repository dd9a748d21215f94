"""Stack config ``azml:alerts`` (SLO alert rules and their action group) and
``azml:alertWebhooks`` (webhook receiver URLs, which must be Pulumi secrets),
plus the email address type shared with ``azml:modelMonitoring``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Collection, Iterator, Literal, Mapping

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, StringConstraints, field_validator, model_validator

from ...plan.model import SECRET_MARK
from ..base import Model

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address like ml-oncall@example.com")
    return value


Email = Annotated[str, AfterValidator(_check_email)]


def unique_emails(emails: list[str]) -> list[str]:
    lowered = [e.lower() for e in emails]
    duplicates = sorted({e for e in lowered if lowered.count(e) > 1})
    if duplicates:
        raise ValueError(f"email(s) listed twice: {', '.join(duplicates)}")
    return emails


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
    enabled: bool = Field(default=True, description="This rule exists; false removes it.")
    severity: int = Field(default=2, ge=0, le=4, description="0 critical .. 4 verbose.")

    @model_validator(mode="after")
    def _window_covers_frequency(self) -> "_Rule":
        frequency, window = getattr(self, "frequency"), getattr(self, "window")
        if minutes(window) < minutes(frequency):
            raise ValueError(f"window ({window}) must be at least the evaluation frequency ({frequency})")
        return self


_METRIC_FREQUENCY = "How often Azure Monitor evaluates the metric."
_METRIC_WINDOW = "Period the metric is aggregated over; at least the frequency."
_LOG_FREQUENCY = "How often the log query runs."
_LOG_WINDOW = "Period the log query reads; at least the frequency."
_SEVERITY = "0 critical .. 4 verbose."


class MetricRule(_Rule):
    frequency: MetricFrequency = Field(default="PT1M", description=_METRIC_FREQUENCY)
    window: MetricWindow = Field(default="PT5M", description=_METRIC_WINDOW)


class LatencyMetricRule(MetricRule):
    threshold_ms: int = Field(default=350, ge=1, le=600_000, description="RequestLatency_P95 above this many ms alerts.")


class ServerErrorsMetricRule(MetricRule):
    threshold_per_minute: float = Field(default=5, gt=0, description="Average 5xx responses per minute.")


class UtilisationRule(MetricRule):
    frequency: MetricFrequency = Field(default="PT5M", description=_METRIC_FREQUENCY)
    window: MetricWindow = Field(default="PT15M", description=_METRIC_WINDOW)
    threshold_percent: float = Field(default=80, gt=0, le=100, description="CPU utilisation above this percentage alerts.")


# Each resource has its own default threshold, also when its section is written
# without one (``memory: {severity: 3}`` keeps 85, not the CPU's 80).
class MemoryUtilisationRule(UtilisationRule):
    threshold_percent: float = Field(default=85, gt=0, le=100, description="Memory utilisation above this percentage alerts.")


class DiskUtilisationRule(UtilisationRule):
    threshold_percent: float = Field(default=90, gt=0, le=100, description="Disk utilisation above this percentage alerts.")


class LogRule(_Rule):
    frequency: LogFrequency = Field(default="PT5M", description=_LOG_FREQUENCY)
    window: LogWindow = Field(default="PT5M", description=_LOG_WINDOW)
    min_requests: int = Field(default=10, ge=1, description="Windows with fewer requests never alert.")


class LatencyLogRule(LogRule):
    threshold_ms: int = Field(
        default=350, ge=1, le=600_000, description="p95 of TotalDurationMs per deployment above this many ms alerts."
    )


class ErrorRateLogRule(LogRule):
    severity: int = Field(default=1, ge=0, le=4, description=_SEVERITY)
    threshold_percent: float = Field(default=2, gt=0, le=100, description="Share of 5xx responses.")


class AvailabilityBurnRule(LogRule):
    """Alert when the error budget of the availability objective burns
    ``burnRate`` times faster than allowed, over the window and over its
    last twelfth (a multi-window burn-rate alert)."""

    severity: int = Field(default=1, ge=0, le=4, description=_SEVERITY)
    window: LogWindow = Field(default="PT1H", description="Long window; the short window is its last twelfth.")
    objective_percent: float = Field(
        default=99.5, gt=50, lt=100, description="Availability objective: percent of requests without a 5xx."
    )
    burn_rate: float = Field(
        default=14.4, gt=0, le=1000,
        description="5xx share divided by the error budget (100 - objective) above this, in both windows, alerts.",
    )


class AlertsConfig(Model):
    """SLO alerts on online endpoints and deployments, all to one action group."""

    enabled: bool = Field(default=True, description="The action group and alert rules exist.")
    emails: list[Email] = Field(default_factory=list, description="Action group email receivers, unique.")
    action_group_short_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_ -]{1,12}$")] | None = Field(
        default=None, description="Shown in notifications; at most 12 characters. Default <prefix><env>ops."
    )
    latency_p95: LatencyMetricRule = Field(
        default_factory=LatencyMetricRule, description="Metric alert per endpoint on RequestLatency_P95."
    )
    server_errors: ServerErrorsMetricRule = Field(
        default_factory=ServerErrorsMetricRule,
        description="Metric alert per endpoint on RequestsPerMinute where statusCodeClass is 5xx.",
    )
    log_latency_p95: LatencyLogRule = Field(
        default_factory=LatencyLogRule,
        description="Log alert on Log Analytics: p95 of TotalDurationMs per deployment (AmlOnlineEndpointTrafficLog).",
    )
    error_rate: ErrorRateLogRule = Field(
        default_factory=ErrorRateLogRule, description="Log alert: share of ResponseCode >= 500 per deployment."
    )
    availability: AvailabilityBurnRule = Field(
        default_factory=AvailabilityBurnRule,
        description="Log alert: error-budget burn rate over the window and over its last twelfth.",
    )
    cpu: UtilisationRule = Field(
        default_factory=UtilisationRule, description="Metric alert per deployment on CpuUtilizationPercentage."
    )
    memory: MemoryUtilisationRule = Field(
        default_factory=MemoryUtilisationRule, description="Metric alert per deployment on CpuMemoryUtilizationPercentage."
    )
    disk: DiskUtilisationRule = Field(
        default_factory=DiskUtilisationRule, description="Metric alert per deployment on DiskUtilization."
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        return unique_emails(emails)


# ---------------------------------------------------------------------------
# Webhooks (secrets)
# ---------------------------------------------------------------------------

#: The top-level key holding webhook URLs; each value must be a Pulumi secret.
WEBHOOKS_KEY = "alertWebhooks"
_RECEIVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def _check_webhooks(hooks: dict[str, SecretStr]) -> dict[str, SecretStr]:
    for name, url in hooks.items():
        if not _RECEIVER_NAME.fullmatch(name):
            raise ValueError(f"receiver name {name!r} must be 1-32 letters, digits, hyphens or underscores")
        value = url.get_secret_value()
        # The offline plan sees only the placeholder; never echo the URL.
        if value != SECRET_PLACEHOLDER and not value.startswith("https://"):
            raise ValueError(f"{name}: a webhook URL must start with https://")
    return hooks


#: What an encrypted value becomes offline: the plan's secret mark.
SECRET_PLACEHOLDER = SECRET_MARK

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
