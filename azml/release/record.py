"""`azml release record`: turn a window of a deployment's scored requests into
one observation run in MLflow.

The request log is a CSV or Parquet file, one row per request (for example
the endpoint's collected ``model_inputs``/``model_outputs`` joined with the
labels that arrived since). Columns, each optional — a metric whose columns
are absent is simply not observed:

* ``prediction`` and ``label``: accuracy over rows with a label;
* ``latency_ms``: p95 latency (numpy's linear-interpolation percentile);
* ``status_code``: error rate = share of rows with status >= 500;
* ``prediction`` and a sensitive-feature column (``--sensitive-column``):
  demographic parity difference, by fairlearn's own
  ``demographic_parity_difference`` (largest minus smallest selection rate
  across groups, "selected" meaning ``prediction == --positive-label``);
* the model's input features with ``--reference``: the worst feature's PSI
  of these inputs against the reference, by the drift engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from . import tracking as t
from .observations import Measure


class RequestLogError(ValueError):
    """The request log cannot be read or lacks what was asked for."""


@dataclass(frozen=True)
class Columns:
    prediction: str = "prediction"
    label: str = "label"
    latency: str = "latency_ms"
    status: str = "status_code"
    sensitive: str | None = None
    positive_label: str = "1"


def read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise RequestLogError(f"--requests: cannot read {path}: {str(error).splitlines()[0]}") from None
    raise RequestLogError(f"--requests: {path.name} must end in .csv or .parquet")


def _same_label(series: Any, positive: str) -> Any:
    """Compare as text so that 1, 1.0 and "1" all match --positive-label 1."""
    import pandas as pd

    text = series.astype("string").str.strip()
    numeric = pd.to_numeric(series, errors="coerce")
    try:
        as_number = float(positive)
    except ValueError:
        return text == positive
    return (numeric == as_number) | (text == positive)


def measure_requests(
    frame: Any,
    columns: Columns,
    *,
    reference: Path | None = None,
    features: Sequence[str] = (),
) -> dict[str, Measure]:
    """The observation metrics this request log supports."""
    import numpy as np

    measures: dict[str, Measure] = {}
    present = set(frame.columns)
    if columns.sensitive is not None and columns.sensitive not in present:
        raise RequestLogError(f"--sensitive-column: no column {columns.sensitive!r} (columns: {', '.join(map(str, frame.columns))})")

    if {columns.prediction, columns.label} <= present:
        labelled = frame[frame[columns.label].notna() & frame[columns.prediction].notna()]
        if len(labelled):
            correct = labelled[columns.prediction].astype("string").str.strip() == labelled[columns.label].astype("string").str.strip()
            measures[t.METRIC_ACCURACY] = Measure(float(correct.mean()), int(len(labelled)))
    if columns.latency in present:
        latency = frame[columns.latency].dropna().to_numpy(dtype=float)
        if latency.size:
            measures[t.METRIC_LATENCY_P95] = Measure(float(np.percentile(latency, 95)), int(latency.size))
    if columns.status in present:
        status = frame[columns.status].dropna().to_numpy(dtype=float)
        if status.size:
            measures[t.METRIC_ERROR_RATE] = Measure(float((status >= 500).mean()), int(status.size))
    if columns.sensitive is not None and columns.prediction in present:
        from fairlearn.metrics import demographic_parity_difference

        rows = frame[frame[columns.sensitive].notna() & frame[columns.prediction].notna()]
        if len(rows):
            selected = _same_label(rows[columns.prediction], columns.positive_label).astype(int).to_numpy()
            difference = demographic_parity_difference(
                selected, selected, sensitive_features=rows[columns.sensitive].astype("string").to_numpy()
            )
            measures[t.METRIC_PARITY] = Measure(float(difference), int(len(rows)))
    if reference is not None:
        measures[t.METRIC_PSI] = _psi(frame, reference, features)
    return measures


def _psi(frame: Any, reference: Path, features: Sequence[str]) -> Measure:
    from ..drift import DriftInputError, compute_drift

    if not features:
        raise RequestLogError("--features: name the model's input features (or set modelMonitoring.features) to measure PSI")
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise RequestLogError(f"--features: the request log has no column(s) {', '.join(missing)}")
    try:
        report = compute_drift(reference, frame[list(features)], features=list(features))
    except DriftInputError as error:
        raise RequestLogError(f"--reference: {error}") from None
    return Measure(float(report.max_psi), int(len(frame)))
