"""`azml release record`: turn a window of a deployment's scored requests into
one observation run in MLflow.

The request log is a CSV or Parquet file, one row per request (for example
the endpoint's collected ``model_inputs``/``model_outputs`` joined with the
labels that arrived since). Columns, each optional — a metric whose columns
are absent is simply not observed:

* ``prediction`` and ``label``: accuracy over rows with a label; a labelled
  row without a prediction counts as wrong (dropping it would raise the
  accuracy of a model that fails on hard cases), and the command says how many;
* ``latency_ms``: p95 latency (numpy's linear-interpolation percentile); every
  row needs a finite latency >= 0;
* ``status_code``: error rate = share of rows with status >= 500; every row
  needs an HTTP status (100..599).

A missing, non-numeric, negative or infinite latency or status is refused
with the first bad row, and nothing is logged: a p95 of -5 ms or NaN in the
store would make every evaluation of the window refuse it. (Leaving such rows
out instead would shift the metric: timeouts often have no latency.)
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
from typing import Any, Callable, Sequence

from ... import tracking as t
from ..evidence.observations import Measure


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
    if suffix not in (".csv", ".parquet"):
        raise RequestLogError(f"--requests: {path.name} must end in .csv or .parquet")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as error:  # UnicodeDecodeError and pandas' parser errors are ValueErrors
        raise RequestLogError(f"--requests: cannot read {path}: {str(error).splitlines()[0]}") from None
    if frame.empty:
        # A header without rows would otherwise read as "none of the columns any metric needs".
        raise RequestLogError(f"--requests: {path.name} has no request rows (only a header, or nothing); nothing was logged")
    return frame


def _same_values(left: Any, right: Any) -> Any:
    """Row-wise equality as numbers where both sides are numbers (a column with
    a missing cell is read as floats: 1.0 must still match a label 1), else as
    text; a missing value equals nothing."""
    import pandas as pd

    as_text = (left.astype("string").str.strip() == right.astype("string").str.strip()).fillna(False)
    as_number = (pd.to_numeric(left, errors="coerce") == pd.to_numeric(right, errors="coerce")).fillna(False)
    return (as_text | as_number).astype(bool)


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
    notes: list[str] | None = None,
) -> dict[str, Measure]:
    """The observation metrics this request log supports; what the user
    should know about how they were counted is appended to ``notes``.
    Raises RequestLogError for a latency or status that is missing, not a
    number, or out of range (see the module docstring)."""
    import numpy as np

    measures: dict[str, Measure] = {}
    present = set(frame.columns)
    if columns.sensitive is not None and columns.sensitive not in present:
        raise RequestLogError(f"--sensitive-column: no column {columns.sensitive!r} (columns: {', '.join(map(str, frame.columns))})")

    if {columns.prediction, columns.label} <= present:
        labelled = frame[frame[columns.label].notna()]
        if len(labelled):
            predicted = labelled[columns.prediction].notna()
            correct = predicted & _same_values(labelled[columns.prediction], labelled[columns.label])
            measures[t.METRIC_ACCURACY] = Measure(float(correct.mean()), int(len(labelled)))
            unanswered = int((~predicted).sum())
            if unanswered and notes is not None:
                notes.append(f"accuracy: {unanswered} labelled request(s) without a prediction counted as wrong")
    if columns.latency in present:
        latency = _checked_numbers(frame, columns.latency, "--latency-column", "latencies must be finite and >= 0", lambda v: v >= 0)
        if latency.size:
            measures[t.METRIC_LATENCY_P95] = Measure(float(np.percentile(latency, 95)), int(latency.size))
    if columns.status in present:
        status = _checked_numbers(
            frame, columns.status, "--status-column", "status codes must be HTTP statuses 100..599",
            lambda v: (v >= 100) & (v <= 599) & (v == np.floor(v)),
        )
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


def _checked_numbers(frame: Any, column: str, option: str, rule: str, valid: Callable[[Any], Any]) -> Any:
    """``column`` as floats, every row present, numeric, finite and ``valid``;
    else RequestLogError naming the column, the first bad row and the count."""
    import numpy as np
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | ~np.asarray(valid(values), dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[first]
        shown = "an empty cell" if pd.isna(shown) else repr(shown.item() if hasattr(shown, "item") else shown)
        raise RequestLogError(
            f"{option} {column!r}: data row {first + 1} has {shown} ({int(bad.sum())} bad row(s) in all); {rule} "
            "and present on every request; nothing was logged"
        )
    return values


def _psi(frame: Any, reference: Path, features: Sequence[str]) -> Measure:
    from ...drift import DriftInputError, compute_drift

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
