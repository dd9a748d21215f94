"""Where ``azml retrain check`` reads its inputs.

- Drift: a report file written by ``azml drift`` (``--drift-report``), else
  the latest kind=drift MLflow run of the stack and endpoint (metrics
  ``psi.<feature>`` and ``max_psi``), else the latest kind=drift run tagged
  with no stack and no endpoint (``azml drift`` run without ``--stack`` /
  ``--endpoint``), named as such in the check's source. A report or run whose
  status is ``inconclusive`` (a sample below the minimum sample size) makes
  the drift trigger INCONCLUSIVE.
- Live accuracy: the kind=observation runs of the deployment inside the
  release window (``azml:release.windowMinutes``) ending at the check time,
  ``accuracy`` weighted by ``accuracy_n``.
- Training accuracy and time: a lineage record (``--lineage``, else the
  deployment's configured ``lineage``), else the latest kind=lineage run of
  the model version, else the registered model version's training run
  (metric ``accuracy``, end time).

Every reader raises :class:`SourceError` (one line naming the option or
file) for input it cannot use; absent evidence is ``None``, not an error.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jsonfile import JsonInputError, read_json
from ..lineage import LineageError, iso, parse_time, read_record
from ..naming import label as model_version_label
from .. import tracking

if TYPE_CHECKING:
    from mlflow import MlflowClient

PSI_PREFIX = "psi."
TAG_DRIFT_STATUS = "azml.drift.status"  # written by azml.drift.output.mlflow_log
DRIFT_METRICS = ("JensenShannonDistance", "PopulationStabilityIndex", "NormalizedWassersteinDistance",
                 "TwoSampleKolmogorovSmirnovTest", "PearsonsChiSquaredTest")
MAX_PSI = "max_psi"
TRAINING_ACCURACY = "accuracy"  # metric of the training run


class SourceError(ValueError):
    """Unusable input; the message is one line naming the option or file."""


@dataclass(frozen=True)
class DriftReading:
    psi: dict[str, float]
    max_psi: float | None
    source: str
    time: dt.datetime | None = None
    inconclusive: str | None = None  # why the report cannot say (too few rows)
    breaches: tuple[str, ...] = ()  # a model monitor's breached thresholds
    judged: bool = False  # a model monitor's verdict: no breach means within its thresholds


@dataclass(frozen=True)
class AccuracyReading:
    accuracy: float | None
    n: int
    source: str
    runs: int = 0


@dataclass(frozen=True)
class TrainingReading:
    accuracy: float | None = None
    trained_at: dt.datetime | None = None
    run: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- drift


def _number(value: Any, where: str) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
        return math.inf  # `azml drift` writes non-finite values as text
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise SourceError(f"{where}: PSI must be a number >= 0, got {value!r}")
    return float(value)


def _report_psi(document: dict[str, Any], where: str) -> tuple[dict[str, float], float | None]:
    """PSI per feature from the shapes a drift report may take:
    ``features: [{feature|name, psi}]``, ``features: {name: {psi}|number}``,
    ``psi: {name: number}`` or ``metrics: {"psi.<name>": number, "max_psi": number}``;
    plus ``maxPsi``/``max_psi`` at the top."""
    psi: dict[str, float] = {}
    features = document.get("features")
    if features == [] or features == {}:
        raise SourceError(f"{where}: the report covers no features")
    if isinstance(features, list):
        for index, item in enumerate(features):
            if not isinstance(item, dict):
                raise SourceError(f"{where}: features[{index}] must be an object with feature and psi")
            name = item.get("feature", item.get("name"))
            if not isinstance(name, str) or "psi" not in item:
                raise SourceError(f"{where}: features[{index}] needs 'feature' (or 'name') and 'psi'")
            psi[name] = _number(item["psi"], f"{where}: features[{index}].psi")
    elif isinstance(features, dict):
        for name, value in features.items():
            value = value.get("psi") if isinstance(value, dict) else value
            psi[str(name)] = _number(value, f"{where}: features.{name}.psi")
    if isinstance(document.get("psi"), dict):
        for name, value in document["psi"].items():
            psi[str(name)] = _number(value, f"{where}: psi.{name}")
    metrics = document.get("metrics")
    top = document.get("maxPsi", document.get("max_psi"))
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            if key.startswith(PSI_PREFIX):
                psi[key[len(PSI_PREFIX):]] = _number(value, f"{where}: metrics.{key}")
        if top is None:
            top = metrics.get(MAX_PSI)
    max_psi = _number(top, f"{where}: maxPsi") if top is not None else None
    if max_psi is not None and psi and max_psi + 1e-12 < max(psi.values()):
        raise SourceError(f"{where}: maxPsi {max_psi} is below a feature's PSI {max(psi.values())}")
    return psi, max_psi


def read_drift_report(path: Path, stack: str, endpoint: str, deployment: str) -> DriftReading:
    where = f"--drift-report {path}"
    try:  # strict and bounded: a report file is input like any other
        document = read_json(path, name=where)
    except JsonInputError as error:
        raise SourceError(error.problems[0]) from None
    if not isinstance(document, dict):
        raise SourceError(f"{where}: must be a JSON object")
    for key, expected in (("stack", stack), ("endpoint", endpoint), ("deployment", deployment)):
        stated = document.get(key)
        if isinstance(stated, str) and stated and stated != expected:
            raise SourceError(f"{where}: the report is for {key} {stated!r}, not {expected!r}")
    psi, max_psi = _report_psi(document, where)
    if not psi and max_psi is None:
        raise SourceError(f"{where}: holds no PSI (features[].psi, psi.<feature> or maxPsi)")
    time = None
    for key in ("createdAt", "generatedAt", "time", "timestamp"):
        if isinstance(document.get(key), str):
            try:
                time = parse_time(document[key], f"{where}: {key}")
            except LineageError as error:
                raise SourceError(str(error)) from None
            break
    inconclusive = None
    if document.get("status") == "inconclusive":
        inconclusive = f"the drift report is INCONCLUSIVE: a sample has fewer than {document.get('min_samples', '?')} rows"
    return DriftReading(psi, max_psi, f"drift report {path}" + (f" ({iso(time)})" if time else ""), time, inconclusive)


def read_monitor_results(path: Path) -> DriftReading:
    """An Azure ML model monitor run's signal metrics (:mod:`azml.drift.monitor_results`)."""
    from ..drift.monitor_results import MonitorResultsError, read_monitor_results as read

    try:
        results = read(path)
    except MonitorResultsError as error:
        raise SourceError(str(error)) from None
    if not results.psi and not results.breaches and results.unknown == results.rows:
        raise SourceError(f"--monitor-results {path}: holds no data drift metric (metric_name {', '.join(sorted(DRIFT_METRICS))})")
    max_psi = max(results.psi.values()) if results.psi else None
    source = f"model monitor signal metrics {path} ({results.rows} rows, {len(results.breaches)} breach(es))"
    return DriftReading(results.psi, max_psi, source, breaches=results.breaches, judged=True)


# --------------------------------------------------------------------------- MLflow


def _time(millis: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc) if millis else None


def experiment_ids(client: "MlflowClient", name: str | None) -> list[str]:
    """The named experiment (none if it does not exist), or every active one."""
    if name is not None:
        found = client.get_experiment_by_name(name)
        return [found.experiment_id] if found is not None else []
    return [e.experiment_id for e in client.search_experiments()]


def _search(client: "MlflowClient", ids: list[str], query: str, limit: int = 1000) -> list[Any]:
    if not ids:
        return []
    return list(client.search_runs(ids, query, max_results=limit, order_by=["attributes.start_time DESC"]))


def latest_drift_run(
    client: "MlflowClient", ids: list[str], stack: str, endpoint: str, deployment: str, now: dt.datetime
) -> DriftReading | None:
    """The newest kind=drift run of the endpoint started by ``now``, of this
    deployment (or not tagged with one); without one, the newest run tagged with
    no stack and no endpoint (``azml drift`` without ``--stack``/``--endpoint``),
    whose source says so."""
    until = f" and attributes.start_time <= {tracking.millis(now)}"
    query = tracking.run_filter(tracking.KIND_DRIFT, stack=stack, endpoint=endpoint) + until
    found = _first_drift(_search(client, ids, query, limit=200), deployment, "")
    if found is not None:
        return found
    untagged = [
        run for run in _search(client, ids, tracking.run_filter(tracking.KIND_DRIFT) + until, limit=200)
        if not run.data.tags.get(tracking.TAG_STACK) and not run.data.tags.get(tracking.TAG_ENDPOINT)
    ]
    note = f"; untagged (azml drift without --stack/--endpoint), taken as {stack}/{endpoint}'s"
    return _first_drift(untagged, deployment, note)


def _first_drift(runs: list[Any], deployment: str, note: str) -> DriftReading | None:
    for run in runs:
        tagged = run.data.tags.get(tracking.TAG_DEPLOYMENT)
        if tagged and tagged != deployment:
            continue
        metrics = run.data.metrics
        where = f"MLflow drift run {run.info.run_id}"
        psi = {k[len(PSI_PREFIX):]: _number(v, where) for k, v in metrics.items() if k.startswith(PSI_PREFIX)}
        max_psi = _number(metrics[MAX_PSI], where) if MAX_PSI in metrics else None
        if not psi and max_psi is None:
            continue
        time = _time(run.info.start_time)
        inconclusive = None
        if run.data.tags.get(TAG_DRIFT_STATUS) == "inconclusive":
            minimum = run.data.params.get("min_samples", "?")
            inconclusive = f"the drift run is INCONCLUSIVE: a sample has fewer than {minimum} rows"
        return DriftReading(psi, max_psi, (f"{where} ({iso(time)})" if time else where) + note, time, inconclusive)
    return None


def live_accuracy(
    client: "MlflowClient", ids: list[str], stack: str, endpoint: str, deployment: str, now: dt.datetime, window_minutes: int
) -> AccuracyReading:
    """Accuracy of the deployment over (now - window, now], weighted by sample size.
    Observation runs without ``accuracy_n`` carry no weight and are left out."""
    start = now - dt.timedelta(minutes=window_minutes)
    query = tracking.run_filter(tracking.KIND_OBSERVATION, stack=stack, endpoint=endpoint, deployment=deployment)
    query += f" and attributes.start_time > {tracking.millis(start)} and attributes.start_time <= {tracking.millis(now)}"
    total, weight, runs = 0.0, 0, 0
    for run in _search(client, ids, query):
        metrics = run.data.metrics
        accuracy, n = metrics.get(tracking.METRIC_ACCURACY), metrics.get(tracking.METRIC_ACCURACY_N)
        if accuracy is None or n is None or not math.isfinite(accuracy) or n <= 0:
            continue
        total += accuracy * int(n)
        weight += int(n)
        runs += 1
    window = f"{window_minutes} min window to {iso(now)}"
    if weight == 0:
        return AccuracyReading(None, 0, f"no MLflow observation runs with accuracy in the {window}")
    return AccuracyReading(total / weight, weight, f"{runs} MLflow observation run(s), {window}", runs)


def training_from_mlflow(client: "MlflowClient", ids: list[str], model: tuple[str, str]) -> TrainingReading | None:
    """The latest kind=lineage run of the model version, else the registered
    model version's training run."""
    label = model_version_label(*model)
    for run in _search(client, ids, tracking.run_filter(tracking.KIND_LINEAGE, model=label), limit=1):
        params = run.data.params
        accuracy = params.get("training_accuracy")
        trained = params.get("trained_at")
        return TrainingReading(
            float(accuracy) if accuracy else None,
            parse_time(trained, "trained_at") if trained else None,
            params.get("training_run") or None,
            f"MLflow lineage run {run.info.run_id}",
        )
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version(model[0], model[1])
    except MlflowException:
        return None
    if not version.run_id:
        return None
    try:
        run = client.get_run(version.run_id)
    except MlflowException:
        return None
    accuracy = run.data.metrics.get(TRAINING_ACCURACY)
    return TrainingReading(
        accuracy,
        _time(run.info.end_time or run.info.start_time),
        version.run_id,
        f"registered model {label}, training run {version.run_id}",
    )


# --------------------------------------------------------------------------- lineage files


def training_from_lineage(path: Path, model: tuple[str, str], option: str) -> TrainingReading:
    try:
        record = read_record(path)
    except LineageError as error:
        raise SourceError(f"{option}: {error}") from None
    recorded = (record["model"]["name"], record["model"]["version"])
    if recorded != model:
        raise SourceError(
            f"{option}: {path} records model {model_version_label(*recorded)} but the deployment serves {model_version_label(*model)}"
        )
    training = record.get("training") or {}
    trained = training.get("trainedAt")
    return TrainingReading(
        training.get("accuracy"),
        parse_time(trained, "trainedAt") if trained else None,
        training.get("run"),
        f"lineage {path}",
        {"lineageSha256": record["lineageSha256"]},
    )
