"""The retraining decision, from measured inputs to reasons (no I/O).

Three triggers, thresholds from ``azml:retraining.triggers``:

- drift: any feature's PSI strictly above ``maxPsi``;
- performance: live accuracy below the training-time accuracy by strictly
  more than ``maxAccuracyDrop`` (absolute: 0.03 is three points);
- staleness: the deployed model was trained strictly more than
  ``maxModelAgeDays`` days before ``now``.

A trigger whose input is missing (no drift report, no or too few labelled
observations, no training accuracy or time) is INCONCLUSIVE: it never passes
silently, and the decision says so.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from ..drift.defaults import psi_breaches

DRIFT = "drift"
PERFORMANCE = "performance"
STALENESS = "staleness"
TRIGGERS = (DRIFT, PERFORMANCE, STALENESS)


class Outcome(str, enum.Enum):
    TRIGGERED = "TRIGGERED"
    OK = "OK"
    INCONCLUSIVE = "INCONCLUSIVE"


class Status(str, enum.Enum):
    RETRAIN = "retrain"  # at least one trigger fired
    NONE = "none"  # every trigger measured and none fired
    INCONCLUSIVE = "inconclusive"  # none fired, but at least one could not be measured


@dataclass(frozen=True)
class Thresholds:
    max_psi: float
    max_accuracy_drop: float
    max_model_age_days: float
    min_accuracy_samples: int = 1


@dataclass(frozen=True)
class Inputs:
    now: dt.datetime
    #: feature -> PSI; an empty mapping with ``max_psi`` set means only the maximum is known.
    psi: dict[str, float] | None = None
    max_psi: float | None = None
    drift_source: str = ""
    drift_inconclusive: str | None = None  # the drift report says it cannot tell (too few rows)
    drift_breaches: tuple[str, ...] = ()  # the model monitor's own breached thresholds (its signal metrics)
    drift_judged: bool = False  # drift evidence is a model monitor's signal metrics
    accuracy: float | None = None  # live, weighted over the observation window
    accuracy_n: int = 0
    accuracy_source: str = ""
    training_accuracy: float | None = None
    trained_at: dt.datetime | None = None
    training_source: str = ""


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    value: float | None
    threshold: float
    detail: str
    source: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "value": self.value,
            "threshold": self.threshold,
            "comparison": ">",
            "detail": self.detail,
            "source": self.source,
        }


@dataclass(frozen=True)
class Decision:
    checks: tuple[Check, ...]
    reasons: tuple[str, ...] = field(default=())

    @property
    def status(self) -> Status:
        if self.reasons:
            return Status.RETRAIN
        if any(c.outcome is Outcome.INCONCLUSIVE for c in self.checks):
            return Status.INCONCLUSIVE
        return Status.NONE

    @property
    def inconclusive(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.outcome is Outcome.INCONCLUSIVE)

    def reason_text(self) -> str:
        return ",".join(self.reasons) if self.reasons else "none"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def drift_check(inputs: Inputs, t: Thresholds) -> Check:
    psi = inputs.psi or {}
    worst = max(psi.values()) if psi else inputs.max_psi
    if inputs.drift_breaches and not (worst is not None and psi_breaches(worst, t.max_psi)):
        # The monitor judged drift by its configured metrics: the same definition, its verdict.
        listed = "; ".join(inputs.drift_breaches[:5]) + (" ..." if len(inputs.drift_breaches) > 5 else "")
        return Check(DRIFT, Outcome.TRIGGERED, worst, t.max_psi, f"model monitor thresholds breached: {listed}", inputs.drift_source)
    if worst is None and inputs.drift_judged:
        return Check(DRIFT, Outcome.OK, None, t.max_psi, "model monitor: every drift metric within its threshold", inputs.drift_source)
    if worst is None:
        return Check(DRIFT, Outcome.INCONCLUSIVE, None, t.max_psi, "no drift report (run `azml drift`)", inputs.drift_source)
    if inputs.drift_inconclusive:
        return Check(DRIFT, Outcome.INCONCLUSIVE, worst, t.max_psi, inputs.drift_inconclusive, inputs.drift_source)
    over = sorted(((f, v) for f, v in psi.items() if psi_breaches(v, t.max_psi)), key=lambda item: (-item[1], item[0]))
    if psi_breaches(worst, t.max_psi):
        features = ", ".join(f"{f} {_fmt(v)}" for f, v in over) or "feature not named"
        return Check(DRIFT, Outcome.TRIGGERED, worst, t.max_psi, f"max PSI {_fmt(worst)} > {_fmt(t.max_psi)} ({features})", inputs.drift_source)
    return Check(DRIFT, Outcome.OK, worst, t.max_psi, f"max PSI {_fmt(worst)} <= {_fmt(t.max_psi)}", inputs.drift_source)


def performance_check(inputs: Inputs, t: Thresholds) -> Check:
    if inputs.accuracy is None or inputs.accuracy_n <= 0:
        return Check(PERFORMANCE, Outcome.INCONCLUSIVE, None, t.max_accuracy_drop, "no accuracy observations", inputs.accuracy_source)
    if inputs.accuracy_n < t.min_accuracy_samples:
        return Check(
            PERFORMANCE, Outcome.INCONCLUSIVE, None, t.max_accuracy_drop,
            f"accuracy {_fmt(inputs.accuracy)} on {inputs.accuracy_n} labels, fewer than the {t.min_accuracy_samples} required",
            inputs.accuracy_source,
        )
    if inputs.training_accuracy is None:
        return Check(
            PERFORMANCE, Outcome.INCONCLUSIVE, None, t.max_accuracy_drop,
            f"live accuracy {_fmt(inputs.accuracy)} but no training-time accuracy to compare with",
            inputs.training_source,
        )
    drop = round(inputs.training_accuracy - inputs.accuracy, 12)
    facts = f"{_fmt(inputs.accuracy)} on {inputs.accuracy_n} labels vs {_fmt(inputs.training_accuracy)} at training"
    source = "; ".join(s for s in (inputs.accuracy_source, inputs.training_source) if s)
    if drop > t.max_accuracy_drop:
        return Check(PERFORMANCE, Outcome.TRIGGERED, drop, t.max_accuracy_drop, f"accuracy drop {_fmt(drop)} > {_fmt(t.max_accuracy_drop)} ({facts})", source)
    return Check(PERFORMANCE, Outcome.OK, drop, t.max_accuracy_drop, f"accuracy drop {_fmt(drop)} <= {_fmt(t.max_accuracy_drop)} ({facts})", source)


def staleness_check(inputs: Inputs, t: Thresholds) -> Check:
    if inputs.trained_at is None:
        return Check(STALENESS, Outcome.INCONCLUSIVE, None, t.max_model_age_days, "training time of the deployed model unknown", inputs.training_source)
    age = (inputs.now - inputs.trained_at).total_seconds() / 86400
    when = inputs.trained_at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if age < 0:
        return Check(STALENESS, Outcome.INCONCLUSIVE, round(age, 3), t.max_model_age_days, f"trained at {when}, after the check time", inputs.training_source)
    if age > t.max_model_age_days:
        return Check(STALENESS, Outcome.TRIGGERED, round(age, 3), t.max_model_age_days, f"model age {age:.1f} days > {_fmt(t.max_model_age_days)} (trained {when})", inputs.training_source)
    return Check(STALENESS, Outcome.OK, round(age, 3), t.max_model_age_days, f"model age {age:.1f} days <= {_fmt(t.max_model_age_days)} (trained {when})", inputs.training_source)


def decide(inputs: Inputs, thresholds: Thresholds) -> Decision:
    checks = (drift_check(inputs, thresholds), performance_check(inputs, thresholds), staleness_check(inputs, thresholds))
    return Decision(checks, tuple(c.name for c in checks if c.outcome is Outcome.TRIGGERED))
