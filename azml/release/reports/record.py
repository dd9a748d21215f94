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

:func:`record_observation` is the whole command below its options: the
publishing options, the deployment, the measuring, the MLflow observation run
and, with ``--publish-to-app-insights``, the Application Insights metrics.
:mod:`azml.cli.release.app` only parses options, calls it and maps
:class:`RecordError` to its exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ... import tracking as t
from ...errors import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, CommandError, CommandErrors
from ..evidence.observations import Measure

#: Where ``--publish-to-app-insights`` reads the connection string by default.
DEFAULT_CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"


class RequestLogError(ValueError):
    """The request log cannot be read or lacks what was asked for."""


class RecordError(CommandErrors):
    """The observation cannot be recorded (or, once logged, published): its
    lines (``error: <line>`` each) and exit code."""


@dataclass
class Recorded:
    """One recorded window: its metrics, the MLflow run holding them and,
    when published, the number of metrics Application Insights accepted."""

    endpoint: str
    deployment: str
    measures: dict[str, Measure]
    notes: list[str]
    run_id: str
    published: int | None = None


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


# --- the command: options -> measures -> MLflow run -> App Insights -------------


def record_observation(
    resolve: Callable[[], tuple[Any, Any, Any]],
    *,
    endpoint: str,
    deployment: str,
    requests: Path,
    columns: Columns,
    reference: Path | None = None,
    features: str | None = None,
    publish: bool = False,
    connection_string_env: str | None = None,
    app_insights_auth: str | None = None,
    tracking_uri: str | None = None,
    echo: Callable[[str], None] = lambda line: None,
) -> Recorded:
    """Measure ``requests`` as one window of ``deployment`` and log it as an
    observation run; with ``publish``, then send the metrics to Application
    Insights. ``resolve`` returns ``(stack_file, config, endpoint_config)`` of
    ``endpoint``; it is called once the publishing options are checked, so
    that their errors come first. ``features``: comma-separated (default:
    ``modelMonitoring.features``). Each line of the report goes to ``echo``
    as soon as it is known (the run is logged before publishing starts).
    Raises :class:`RecordError`: bad input exit 2, nothing logged; a failed
    publication exit 1, the run stays logged."""
    from ... import naming
    from ..evidence.observations import ObservationError
    from ..evidence.sources import log_observation
    from ..target import tracking_uri_of

    target = _publish_target(publish, connection_string_env, app_insights_auth)
    notes: list[str] = []
    stack_file, config, declared = resolve()
    by_name = {d.name: d for d in declared.deployments}
    if deployment not in by_name:
        raise RecordError(EXIT_INVALID_INPUT, [
            f"--deployment: {deployment!r} is not a deployment of {endpoint} (declared: {', '.join(by_name)})"
        ])
    names = [f.strip() for f in features.split(",") if f.strip()] if features else list(config.model_monitoring.features or [])
    try:
        measures = measure_requests(read_table(requests), columns, reference=reference, features=names, notes=notes)
    except RequestLogError as error:
        raise RecordError(EXIT_INVALID_INPUT, [str(error)]) from None
    if not measures:
        raise RecordError(EXIT_INVALID_INPUT, [f"--requests: {requests.name} has none of the columns any metric needs"])
    model_ref = naming.model_ref(by_name[deployment].model)
    uri, experiment = tracking_uri_of(config, stack_file.project_dir, tracking_uri), config.release.metrics.experiment
    try:
        with t.store_errors(uri):
            run_id = log_observation(
                uri, experiment, stack=stack_file.stack, endpoint=endpoint, deployment=deployment,
                measures=measures, model=model_ref,
                params={"requests_file": requests.name},
            )
    except ObservationError as error:
        raise RecordError(EXIT_INVALID_INPUT, [f"--requests: {error}; nothing was logged"]) from None
    except CommandError as error:  # the tracking store refused or unreachable
        raise RecordError(error.exit_code, [f"{error}; nothing was logged"]) from None
    for metric, measure in measures.items():
        echo(f"{metric} = {measure.value:.6g} (n={measure.n})")
    for note in notes:
        echo(f"note: {note}")
    echo(f"Logged observation of {endpoint}/{deployment} to MLflow run {run_id}")
    recorded = Recorded(endpoint, deployment, measures, notes, run_id)
    if target is None:
        return recorded
    from .publish import PublishError, default_credential, metric_tags, publish_measures

    tags = metric_tags(
        stack=stack_file.stack, endpoint=naming.endpoint_name(config, endpoint), deployment=deployment,
        model=model_ref, run_id=run_id,
    )
    try:
        credential = default_credential() if app_insights_auth == "entra" else None
        sent = publish_measures(measures, tags, target, credential)
    except PublishError as error:
        raise RecordError(EXIT_PROGRAM_ERROR, [
            f"--publish-to-app-insights: {error}; the observation is logged in MLflow run {run_id}"
        ]) from None
    echo(f"Published {sent} metrics of {tags['endpoint']}/{deployment} to Application Insights")
    return Recorded(endpoint, deployment, measures, notes, run_id, sent)


def _publish_target(publish: bool, connection_string_env: str | None, app_insights_auth: str | None) -> Any:
    """The Application Insights target of ``--publish-to-app-insights`` (None
    without it); the App Insights options are refused without it."""
    if not publish:
        for option, given in (("--app-insights-connection-string-env", connection_string_env), ("--app-insights-auth", app_insights_auth)):
            if given is not None:
                raise RecordError(EXIT_INVALID_INPUT, [f"{option}: only used with --publish-to-app-insights"])
        return None
    from .publish import ConnectionStringError, connection_string_from_env

    if app_insights_auth not in (None, "key", "entra"):
        raise RecordError(EXIT_INVALID_INPUT, [f"--app-insights-auth: {app_insights_auth!r} is not key or entra"])
    try:
        return connection_string_from_env(connection_string_env or DEFAULT_CONNECTION_STRING_ENV)
    except ConnectionStringError as error:
        raise RecordError(EXIT_INVALID_INPUT, [f"--app-insights-connection-string-env: {error}"]) from None
