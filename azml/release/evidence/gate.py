"""The composite promotion gate and the rollback triggers.

Pure functions from two observations (champion, canary) and the stack's
``azml:release`` config to a :class:`Verdict`:

* every gate metric PASSes → PROMOTE;
* any rollback trigger fires → ROLLBACK (whatever else holds);
* otherwise (a FAIL, or a metric INCONCLUSIVE for want of samples) → HOLD.

A metric below its minimum sample size is INCONCLUSIVE, never a pass; a
rollback trigger only fires on a metric with enough samples on both sides it
compares, so a few unlucky requests cannot roll a release back either.
"""

from __future__ import annotations

from typing import Mapping

from ...config.releases.release import ReleaseConfig
from ...drift.defaults import psi_breaches
from ... import tracking as t
from .observations import Measure, Observation
from .verdict import Decision, MetricResult, Outcome, Phase, Verdict


def _outcome(value: float | None, n: int, min_n: int, passes: bool) -> Outcome:
    if value is None or n < min_n:
        return Outcome.INCONCLUSIVE
    return Outcome.PASS if passes else Outcome.FAIL


def gate_metrics(config: ReleaseConfig, champion: Observation, canary: Observation) -> tuple[MetricResult, ...]:
    gate, minimum = config.gate, config.min_samples
    rows: list[MetricResult] = []

    champ_acc, canary_acc = champion.get(t.METRIC_ACCURACY), canary.get(t.METRIC_ACCURACY)
    if champ_acc is not None and canary_acc is not None:
        # Rounded so that 0.89 - 0.90 sits exactly on a -0.01 margin, as a reader expects.
        delta: float | None = round(canary_acc.value - champ_acc.value, 12)
        n = min(champ_acc.n, canary_acc.n)
    else:
        delta, n = None, min((m.n for m in (champ_acc, canary_acc) if m is not None), default=0)
    rows.append(
        MetricResult(
            "accuracyDelta", delta, gate.min_accuracy_delta, ">=",
            _outcome(delta, n, minimum.accuracy, delta is not None and delta >= gate.min_accuracy_delta),
            n, minimum.accuracy, champ_acc.value if champ_acc else None,
        )
    )
    for name, metric, threshold, comparison, min_n in (
        ("latencyP95Ms", t.METRIC_LATENCY_P95, gate.max_latency_p95_ms, "<", minimum.latency),
        ("errorRate", t.METRIC_ERROR_RATE, gate.max_error_rate, "<", minimum.error_rate),
        ("psi", t.METRIC_PSI, gate.max_psi, "<=", minimum.psi),
        ("parityDifference", t.METRIC_PARITY, gate.max_parity_difference, "<=", minimum.parity_difference),
    ):
        measure, reference = canary.get(metric), champion.get(metric)
        value = measure.value if measure else None
        if value is None:
            passes = False
        elif name == "psi":
            passes = not psi_breaches(value, threshold)
        else:
            passes = value < threshold if comparison == "<" else value <= threshold
        rows.append(
            MetricResult(
                name, value, threshold, comparison,  # type: ignore[arg-type]
                _outcome(value, measure.n if measure else 0, min_n, passes),
                measure.n if measure else 0, min_n, reference.value if reference else None,
            )
        )
    return tuple(rows)


def _enough(measure: Measure | None, min_n: int) -> bool:
    return measure is not None and measure.n >= min_n


def rollback_triggers(config: ReleaseConfig, champion: Observation, canary: Observation) -> tuple[str, ...]:
    """Each fired trigger as one line: ``<name> <evidence>``."""
    rules, gate, minimum = config.rollback, config.gate, config.min_samples
    fired: list[str] = []

    canary_err, champ_err = canary.get(t.METRIC_ERROR_RATE), champion.get(t.METRIC_ERROR_RATE)
    if _enough(canary_err, minimum.error_rate) and _enough(champ_err, minimum.error_rate):
        assert canary_err is not None and champ_err is not None
        baseline = max(champ_err.value, rules.error_rate_floor)
        if canary_err.value > rules.error_rate_multiple * baseline:
            fired.append(
                f"errorRate {canary_err.value:.4g} > {rules.error_rate_multiple:g}x the champion's "
                f"{champ_err.value:.4g} (floor {rules.error_rate_floor:g})"
            )

    latency = canary.get(t.METRIC_LATENCY_P95)
    limit = gate.max_latency_p95_ms * (1 + rules.latency_over_sla_percent / 100)
    if _enough(latency, minimum.latency) and latency is not None and latency.value > limit:
        fired.append(
            f"latencyP95Ms {latency.value:.4g} > SLA {gate.max_latency_p95_ms:g} + "
            f"{rules.latency_over_sla_percent:g}% ({limit:.4g})"
        )

    # Critical metrics: how much worse the canary is than the champion.
    worse_by = {
        "accuracy": (t.METRIC_ACCURACY, minimum.accuracy, lambda champ, cand: champ - cand),
        "parityDifference": (t.METRIC_PARITY, minimum.parity_difference, lambda champ, cand: cand - champ),
    }
    for name in rules.critical_metrics:
        metric, min_n, regression = worse_by[name]
        champ, cand = champion.get(metric), canary.get(metric)
        if _enough(champ, min_n) and _enough(cand, min_n):
            assert champ is not None and cand is not None
            amount = round(regression(champ.value, cand.value), 12)
            if amount > rules.critical_regression:
                fired.append(
                    f"{name} regressed by {amount:.4g} (champion {champ.value:.4g}, canary {cand.value:.4g}; "
                    f"limit {rules.critical_regression:g})"
                )
    return tuple(fired)


def decide(metrics: tuple[MetricResult, ...], triggers: tuple[str, ...]) -> Decision:
    if triggers:
        return Decision.ROLLBACK
    if all(m.outcome is Outcome.PASS for m in metrics):
        return Decision.PROMOTE
    return Decision.HOLD


def evaluate(
    config: ReleaseConfig,
    *,
    stack: str,
    endpoint: str,
    champion: Observation,
    canary: Observation,
    phase: Phase,
    traffic: Mapping[str, int],
    mirror_traffic: Mapping[str, int],
    stack_file_sha256: str,
    computed_at: str,
    notes: tuple[str, ...] = (),
    extra_metrics: tuple[MetricResult, ...] = (),
    extra_triggers: tuple[str, ...] = (),
) -> Verdict:
    """The verdict. ``extra_metrics`` are further gate rows computed elsewhere
    (e.g. a load test, data validation, attribution stability): they count
    like the five built-in ones; ``extra_triggers`` like rollback triggers."""
    metrics = gate_metrics(config, champion, canary) + tuple(extra_metrics)
    triggers = rollback_triggers(config, champion, canary) + tuple(extra_triggers)
    return Verdict(
        stack=stack,
        endpoint=endpoint,
        champion=champion.deployment,
        canary=canary.deployment,
        phase=phase,
        decision=decide(metrics, triggers),
        metrics=metrics,
        rollback_triggers=triggers,
        traffic=dict(traffic),
        mirror_traffic=dict(mirror_traffic),
        stack_file_sha256=stack_file_sha256,
        computed_at=computed_at,
        window_minutes=config.window_minutes,
        notes=notes,
    )
