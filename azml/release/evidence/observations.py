"""A deployment's measured behaviour over the evaluation window.

Each metric is a value with the sample size behind it, so the gate can call a
metric INCONCLUSIVE instead of trusting a handful of requests. Several
observation records of one deployment inside the window are combined:

* accuracy and error rate: weighted by their sample sizes (exact pooling);
* p95 latency, PSI and parity difference: the worst record (percentiles and
  these divergences do not pool; the worst is the conservative reading);
* sample sizes: summed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ... import tracking as t

#: Observation metric -> its sample-size metric, in tracking-store names.
SAMPLE_SIZE_OF = {
    t.METRIC_ACCURACY: t.METRIC_ACCURACY_N,
    t.METRIC_LATENCY_P95: t.METRIC_REQUESTS,
    t.METRIC_ERROR_RATE: t.METRIC_REQUESTS,
    t.METRIC_PSI: t.METRIC_PSI_N,
    t.METRIC_PARITY: t.METRIC_PARITY_N,
}
POOLED = (t.METRIC_ACCURACY, t.METRIC_ERROR_RATE)
WORST = (t.METRIC_LATENCY_P95, t.METRIC_PSI, t.METRIC_PARITY)


class ObservationError(ValueError):
    """An observation record is malformed (message names the record and key)."""


class SourceUnavailable(Exception):
    """A metric source could not be read (service error, authentication)."""


@dataclass(frozen=True)
class Measure:
    value: float
    n: int


@dataclass(frozen=True)
class Observation:
    """Combined metrics of one deployment; a missing metric was never observed."""

    deployment: str
    measures: Mapping[str, Measure] = field(default_factory=dict)
    records: int = 0

    def get(self, metric: str) -> Measure | None:
        return self.measures.get(metric)


def parse_record(deployment: str, values: Mapping[str, object], where: str) -> dict[str, Measure]:
    """One record (metric name -> number, sample sizes beside) into measures.
    A metric without its sample size is an error, and so is any value
    :func:`check_measure` refuses."""
    unknown = sorted(set(values) - set(SAMPLE_SIZE_OF) - set(SAMPLE_SIZE_OF.values()))
    if unknown:
        allowed = ", ".join(sorted(set(SAMPLE_SIZE_OF) | set(SAMPLE_SIZE_OF.values())))
        raise ObservationError(f"{where}: unknown metric(s) {', '.join(unknown)}; allowed: {allowed}")
    measures: dict[str, Measure] = {}
    for metric, size_key in SAMPLE_SIZE_OF.items():
        if metric not in values:
            continue
        if values.get(size_key) is None:
            raise ObservationError(f"{where}.{metric}: needs its sample size {size_key}")
        measures[metric] = check_measure(metric, values[metric], values[size_key], where)
    return measures


def check_measure(metric: str, value: object, size: object, where: str) -> Measure:
    """``value`` of ``metric`` with its sample size, as a Measure, or
    ObservationError naming ``where``: numbers must be finite (NaN, Infinity
    and 1e400 are refused, as are booleans), sample sizes whole and >= 0,
    rates and differences in 0..1, latency and PSI >= 0. The same rules hold
    when an observation is recorded and when one is read, so a bad value is
    refused before it is logged rather than blocking every later evaluation."""
    size_key = SAMPLE_SIZE_OF[metric]
    number = _finite(value)
    if number is None:
        raise ObservationError(f"{where}.{metric}: must be a finite number (got {_shown(value)})")
    count = _finite(size)
    if count is None or count < 0 or count != int(count):
        raise ObservationError(f"{where}.{size_key}: must be a finite whole number >= 0 (got {_shown(size)})")
    if metric in (t.METRIC_ACCURACY, t.METRIC_ERROR_RATE, t.METRIC_PARITY) and not 0 <= number <= 1:
        raise ObservationError(f"{where}.{metric}: must lie in 0..1 (got {_shown(value)})")
    if number < 0:
        raise ObservationError(f"{where}.{metric}: must be >= 0 (got {_shown(value)})")
    return Measure(number, int(count))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, NaN, infinite,
    or an integer beyond float range)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def combine(deployment: str, records: Iterable[Mapping[str, Measure]]) -> Observation:
    """Pool the records of one deployment (see the module docstring)."""
    collected: dict[str, list[Measure]] = {}
    count = 0
    for record in records:
        count += 1
        for metric, measure in record.items():
            collected.setdefault(metric, []).append(measure)
    combined: dict[str, Measure] = {}
    for metric, measures in collected.items():
        n = sum(m.n for m in measures)
        if metric in POOLED:
            value = sum(m.value * m.n for m in measures) / n if n else measures[-1].value
        else:
            value = max(m.value for m in measures)
        combined[metric] = Measure(value, n)
    return Observation(deployment, combined, count)


def with_overrides(observation: Observation, overrides: Mapping[str, Measure]) -> Observation:
    """``observation`` with some metrics replaced (e.g. latency and error rate
    from Azure Monitor)."""
    return Observation(observation.deployment, {**observation.measures, **overrides}, observation.records)
