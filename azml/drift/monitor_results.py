"""The signal metrics an Azure ML model monitor run writes, read as drift evidence.

What Microsoft documents of a monitor's output is the ``signal_metrics`` table of
a monitoring signal component (articles/machine-learning/
how-to-monitor-model-performance.md, "signal_metrics schema"): one row per
metric of a feature, columns ``group`` (the feature), ``metric_name``,
``metric_value`` and ``threshold_value``. The built-in data drift component
(Azure/azureml-assets, assets/model_monitoring/components/src/
data_drift_compute_metrics/io_utils.py) writes the same table with
``feature_name`` and ``data_type`` beside them, as an MLTable folder of Parquet
files. This reader takes that table exported as one CSV, Parquet or JSON Lines
file (``az ml job download`` of the monitor run's output, or the folder's data
file), with ``feature_name`` or ``group`` naming the feature.

A row breaches when its metric is a distance above ``threshold_value`` or a
test's p-value below it (:data:`azml.drift.metrics.METRICS`); rows of metrics
azml does not know (another signal's) are counted, not judged. That the files
the service writes keep this shape is what only a run in Azure can prove.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .metrics import METRICS, PSI, breached

REQUIRED = ("metric_name", "metric_value", "threshold_value")


class MonitorResultsError(ValueError):
    """An unusable signal metrics file; one line naming the file and the problem."""


@dataclass(frozen=True)
class MonitorResults:
    psi: dict[str, float]  # feature -> PopulationStabilityIndex, when the monitor computes it
    breaches: tuple[str, ...]  # "<feature>: <metric> <value> > <threshold>"
    rows: int
    unknown: int  # rows of metrics this reader does not judge


def _table(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pq.read_table(path)
    if name.endswith((".jsonl", ".json")):
        return pjson.read_json(path)
    if name.endswith(".csv"):
        return pcsv.read_csv(path)
    raise MonitorResultsError(f"{path}: expected a .csv, .parquet or .jsonl export of the monitor's signal_metrics table")


def read_monitor_results(path: Path) -> MonitorResults:
    where = f"--monitor-results {path}"
    if not path.is_file():
        raise MonitorResultsError(f"{where}: no such file")
    try:
        table = _table(path)
    except MonitorResultsError:
        raise
    except Exception as error:  # noqa: BLE001 - pyarrow raises many kinds for unreadable files
        raise MonitorResultsError(f"{where}: unreadable ({str(error).splitlines()[0][:200]})") from None
    names = set(table.column_names)
    feature_column = "feature_name" if "feature_name" in names else "group" if "group" in names else None
    missing = [c for c in REQUIRED if c not in names]
    if feature_column is None or missing:
        needed = ", ".join(missing + ([] if feature_column else ["feature_name or group"]))
        raise MonitorResultsError(f"{where}: not a signal_metrics table (no column {needed})")
    rows = table.select([feature_column, *REQUIRED]).to_pylist()
    if not rows:
        raise MonitorResultsError(f"{where}: holds no metric rows")
    psi: dict[str, float] = {}
    breaches: list[str] = []
    unknown = 0
    for index, row in enumerate(rows, start=1):
        feature, metric = row[feature_column], row["metric_name"]
        value, threshold = row["metric_value"], row["threshold_value"]
        if metric not in METRICS:
            unknown += 1
            continue
        for label, number in (("metric_value", value), ("threshold_value", threshold)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
                raise MonitorResultsError(f"{where}: row {index} ({feature} {metric}) has {label} {number!r}, not a number")
        below = METRICS[metric][1]
        if breached(metric, value, threshold):
            breaches.append(f"{feature}: {metric} {value:.4g} {'<' if below else '>'} {threshold:g}")
        if metric == PSI:
            psi[str(feature)] = float(value)
    return MonitorResults(psi, tuple(breaches), len(rows), unknown)
