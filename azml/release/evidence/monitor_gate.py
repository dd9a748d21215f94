"""The canary's own Azure ML model monitor as a gate row.

The stack gives every online deployment with data collection its model monitor
(components/model_monitors.py: one schedule per deployment, thresholds from
``azml:modelMonitoring.dataDrift.thresholds``). When the canary's monitor has
run, ``azml release evaluate --monitor-results FILE`` takes its data drift
``signal_metrics`` table (read by :mod:`azml.drift.monitor_results`, the same
reader as ``azml retrain check``) as one more gate row, ``monitorDataDrift``:

* value: how many (feature, metric) rows breach the threshold the monitor ran
  with; it passes at 0 (``<=`` 0), so any breach HOLDs the release;
* n: how many drift rows the monitor judged; a table with no data drift
  metric at all is refused (exit 2), never read as a pass.

A breach holds rather than rolls back: the monitor compares the canary's
inputs with its training data, which says the model is seeing unfamiliar
traffic, not that it serves it worse than the champion (the live metrics and
rollback triggers answer that). The breaches are named in the verdict's notes.
"""

from __future__ import annotations

from pathlib import Path

from ...drift.metrics import METRICS
from ...drift.monitor_results import MonitorResultsError, read_monitor_results
from .verdict import MetricResult, Outcome

ROW = "monitorDataDrift"
#: How many breaches the verdict's notes name before summarising the rest.
NAMED_BREACHES = 5


class MonitorGateError(ValueError):
    """The file cannot serve as monitor evidence; one line naming it."""


def monitor_gate_row(path: Path) -> tuple[MetricResult, tuple[str, ...]]:
    """The ``monitorDataDrift`` row and the note naming its evidence."""
    try:
        results = read_monitor_results(path)
    except MonitorResultsError as error:
        raise MonitorGateError(str(error)) from None
    judged = results.rows - results.unknown
    if judged == 0:
        raise MonitorGateError(
            f"--monitor-results {path}: holds no data drift metric (metric_name {', '.join(sorted(METRICS))})"
        )
    breaches = results.breaches
    row = MetricResult(
        ROW, float(len(breaches)), 0.0, "<=", Outcome.PASS if not breaches else Outcome.FAIL, judged, 1
    )
    if breaches:
        named = "; ".join(breaches[:NAMED_BREACHES])
        more = len(breaches) - NAMED_BREACHES
        detail = f"{len(breaches)} breach(es): {named}" + (f"; and {more} more" if more > 0 else "")
    else:
        detail = "every drift metric within its threshold"
    return row, (f"canary's model monitor signal metrics {path.name} ({judged} drift rows): {detail}",)
