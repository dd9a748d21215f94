"""Stack config for the release controller: ``azml:release``.

Every threshold the promotion gate, the rollback triggers and the traffic
ladder use lives here, per stack, so dev can move faster than prod. Defaults
are the platform's baseline (docs/release.md, "Release controller").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from ...drift.defaults import DEFAULT_PSI_LIMIT, PsiLimit
from ..base import Model
from .attribution import AttributionConfig
from .bandit import BanditConfig
from .loadtest import LoadTestConfig
from .release_policy import ErrorBudgetConfig, MaxCanaryMinutes

#: Gate metrics, in the order the verdict table shows them.
GATE_METRICS = ("accuracyDelta", "latencyP95Ms", "errorRate", "psi", "parityDifference")
#: Metrics a "critical regression" may be measured on (champion vs canary).
CRITICAL_METRICS = ("accuracy", "parityDifference")

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AzureMonitorSource(Model):
    """Latency and error rate from the stack's Log Analytics workspace (the
    endpoint's ``AmlOnlineEndpointTrafficLog``), instead of MLflow runs."""

    workspace_id: Annotated[str, StringConstraints(pattern=_GUID)] = Field(
        description="Log Analytics workspace (customer) id, a GUID: the stack output logAnalyticsWorkspaceId."
    )


class MetricsSource(Model):
    """Where champion and canary metrics come from."""

    source: Literal["mlflow", "file"] = Field(
        default="mlflow", description="mlflow: observation runs in the tracking store; file: a JSON/CSV metrics file (CI)."
    )
    tracking_uri: str = Field(
        default="sqlite:///mlruns.db",
        description="MLflow tracking URI; a relative sqlite path is relative to the project directory. "
        "`workspace`: the MLflow store of the workspace this stack deploys (azureml://..., subscription from "
        "ARM_SUBSCRIPTION_ID or AZURE_SUBSCRIPTION_ID); the release workflow always uses it (AZML_TRACKING_URI).",
    )
    experiment: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        default="azml-release", description="MLflow experiment of observations, verdicts and traffic changes."
    )
    file: str | None = Field(default=None, description="Metrics file for source: file (path relative to the project).")
    azure_monitor: AzureMonitorSource | None = Field(
        default=None, description="When set, p95 latency and error rate come from Azure Monitor."
    )

    @field_validator("tracking_uri")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters (NUL, newline, ...)")
        return value

    @model_validator(mode="after")
    def _file_named(self) -> "MetricsSource":
        if self.source == "file" and not self.file:
            raise ValueError("source: file needs file: <path to a JSON or CSV metrics file>")
        return self


class GateThresholds(Model):
    """Promotion gate: the canary passes only if every metric passes.

    Each bound keeps the gate a gate: no value can widen a threshold into
    "always pass" (an accuracy margin of -1, a 100 % error rate, a p95 SLA
    of a day)."""

    min_accuracy_delta: float = Field(default=-0.01, ge=-0.1, le=0.1, description="Non-inferiority margin: canary - champion.")
    max_latency_p95_ms: float = Field(default=350, gt=0, le=60_000, description="p95 latency SLA in milliseconds (strictly below).")
    max_error_rate: float = Field(default=0.02, ge=0, le=0.5, description="Share of failed requests (strictly below).")
    max_psi: PsiLimit = Field(default=DEFAULT_PSI_LIMIT, description="Input drift PSI of canary traffic vs the reference (passes at <=; drift above).")
    max_parity_difference: float = Field(
        default=0.08, ge=0, le=0.5, description="Demographic parity difference between groups (at most; fairlearn's definition)."
    )


class MinSamples(Model):
    """Below these counts a metric is INCONCLUSIVE, never a pass."""

    accuracy: int = Field(default=1000, ge=1, description="Labelled predictions.")
    latency: int = Field(default=500, ge=1, description="Requests.")
    error_rate: int = Field(default=1000, ge=1, description="Requests.")
    psi: int = Field(default=500, ge=1, description="Rows of canary input.")
    parity_difference: int = Field(default=500, ge=1, description="Predictions with a sensitive-feature value.")


class RollbackTriggers(Model):
    """Any one of these turns the verdict into ROLLBACK (given enough samples).

    Bounded so that no value switches a trigger off (a multiple of 10^9, a
    regression margin of 100 %)."""

    error_rate_multiple: float = Field(default=3.0, gt=1, le=100, description="Canary error rate above this multiple of the champion's.")
    latency_over_sla_percent: float = Field(default=25, ge=0, le=1000, description="Canary p95 above the SLA by more than this percentage.")
    error_rate_floor: float = Field(
        default=0.001, ge=0, le=0.1,
        description="The champion's error rate counts as at least this, so one canary error beside a flawless champion is no rollback.",
    )
    critical_regression: float = Field(
        default=0.02, gt=0, le=0.5, description="A critical metric worse than the champion's by more than this (absolute)."
    )
    critical_metrics: list[Literal["accuracy", "parityDifference"]] = Field(
        default_factory=lambda: ["accuracy"], description="Metrics whose criticalRegression rolls back."
    )


class ReleaseConfig(Model):
    """The release controller's control panel for one stack."""

    metrics: MetricsSource = Field(
        default_factory=MetricsSource, description="Where champion and canary observations come from."
    )
    window_minutes: int = Field(default=1440, ge=1, le=43_200, description="Observations younger than this are evaluated.")
    gate: GateThresholds = Field(
        default_factory=GateThresholds, description="Promotion gate: every metric must pass to PROMOTE."
    )
    min_samples: MinSamples = Field(
        default_factory=MinSamples, description="Sample sizes below which a metric is INCONCLUSIVE, never a pass."
    )
    rollback: RollbackTriggers = Field(
        default_factory=RollbackTriggers, description="Triggers that turn the verdict into ROLLBACK."
    )
    ladder: list[int] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        description="Canary live-traffic steps, strictly increasing whole percentages 1..100 ending at 100; "
        "PROMOTE moves one step up.",
    )
    verdict_max_age_minutes: int = Field(
        default=1440, ge=1, description="advance refuses a verdict older than this (evaluate again)."
    )
    load_test: LoadTestConfig | None = Field(default=None, description="Pre-promotion load test; unset: no load-test gate rows.")
    error_budget: ErrorBudgetConfig = Field(default_factory=ErrorBudgetConfig, description="Freeze promotions while the month's availability error budget is spent.")
    max_canary_minutes: MaxCanaryMinutes = None
    bandits: dict[str, BanditConfig] = Field(default_factory=dict, description="Endpoints (short name) whose live split is set by Thompson sampling (azml release bandit), not the ladder.")
    attribution: AttributionConfig | None = Field(default=None, description="Attribution stability gate (top-N mean |SHAP| overlap); unset: no gate row.")

    @field_validator("ladder")
    @classmethod
    def _ladder(cls, steps: list[int]) -> list[int]:
        if not steps:
            raise ValueError("needs at least one step, ending at 100")
        if any(not 1 <= s <= 100 for s in steps):
            raise ValueError(f"steps must be whole percentages 1..100 (got {steps})")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"steps must strictly increase (got {steps})")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (got {steps[-1]})")
        return steps


class RetrainTriggers(Model):
    """``azml retrain check``: any of these gives a retraining reason."""

    max_psi: PsiLimit = Field(default=DEFAULT_PSI_LIMIT, description="Any feature's PSI above this: drift.")
    max_accuracy_drop: float = Field(
        default=0.03, gt=0, le=1, description="Accuracy below the training-time accuracy by more than this: performance."
    )
    max_model_age_days: int = Field(default=30, ge=1, description="Deployed model trained longer ago than this: staleness.")
