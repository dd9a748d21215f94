"""Attribution stability: do champion and canary rely on the same features?

``azml release attribution`` loads both models from MLflow, explains each on
the same sample with SHAP (``shap.Explainer``, the sample as the masker's
background, at most ``sampleRows`` rows), ranks features by mean absolute
SHAP value and compares the two top-N lists. The overlap is the share of the
champion's top N that is also in the canary's top N; it passes at
``minOverlap`` or above. Each comparison is one MLflow run (kind
``attribution``, tagged with the canary deployment), which :func:`gate_rows`
turns into the verdict's ``attributionOverlap`` row.

A canary whose accuracy matches the champion's but that leans on different
features (a leaked column, a proxy of a sensitive attribute, a broken
feature pipeline) is what this gate catches and the metric gates do not.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ...config.releases.attribution import AttributionConfig
from ...errors import ProblemsError
from ... import tracking as t
from .verdict import MetricResult, Outcome

if TYPE_CHECKING:
    import pandas as pd

    from .evaluate import Release

METRIC_OVERLAP = "attribution_overlap"
METRIC_ROWS = "attribution_rows"
ROW_NAME = "attributionOverlap"
ARTIFACT = "attribution.json"
TAG_OUTCOME = "azml.outcome"


class AttributionError(ProblemsError):
    """Bad input (exit 2): one line per problem, naming the option."""


@dataclass(frozen=True)
class Attribution:
    stack: str
    endpoint: str
    canary: str
    champion_model: str
    canary_model: str
    sample: str
    rows: int
    top_n: int
    min_overlap: float
    champion_importance: dict[str, float]  # feature -> mean |SHAP|, largest first
    canary_importance: dict[str, float]
    champion_top: list[str]
    canary_top: list[str]
    overlap: float
    computed_at: str
    run_id: str | None = None

    @property
    def passed(self) -> bool:
        return self.overlap >= self.min_overlap

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# --- pure parts -------------------------------------------------------------------


def top_features(importance: dict[str, float], n: int) -> list[str]:
    """The ``n`` features with the largest mean |SHAP| (ties by name, so the list is stable)."""
    return [name for name, _ in sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def overlap(champion_top: list[str], canary_top: list[str]) -> float:
    """Share of the champion's top features also in the canary's."""
    return len(set(champion_top) & set(canary_top)) / len(champion_top) if champion_top else 0.0


# --- data, models, SHAP ------------------------------------------------------------


def read_sample(path: Path, rows: int) -> "pd.DataFrame":
    """At most ``rows`` rows of a CSV or Parquet file (a fixed random subset
    when longer, so the same file always gives the same sample)."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise AttributionError([f"--sample: {path.name} must be a .csv or .parquet file"])
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise AttributionError([f"--sample: cannot read {path}: {str(error).splitlines()[0]}"]) from None
    if frame.empty:
        raise AttributionError([f"--sample: {path.name} has no rows"])
    return frame.sample(n=rows, random_state=0) if len(frame) > rows else frame


def load_model(uri: str, tracking_uri: str, option: str) -> tuple[Any, list[str] | None]:
    """The model in its native flavour when SHAP can read it (scikit-learn,
    else MLflow's generic pyfunc) and its input columns (signature, else
    ``feature_names_in_``, else None)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)  # models:/ and runs:/ URIs resolve against this store
    mlflow.set_registry_uri(tracking_uri)
    try:
        info = mlflow.models.get_model_info(uri)
        model = mlflow.sklearn.load_model(uri) if "sklearn" in info.flavors else mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as error:
        raise AttributionError([f"{option}: cannot load model {uri}: {str(error).splitlines()[0]}"]) from None
    columns = info.signature.inputs.input_names() if info.signature is not None else None
    if not columns and hasattr(model, "feature_names_in_"):
        columns = [str(c) for c in model.feature_names_in_]
    return model, [str(c) for c in columns] if columns else None


def _predictor(model: Any, columns: list[str]) -> Callable[[Any], Any]:
    """A function of a numpy matrix, for SHAP's model-agnostic explainers."""
    import pandas as pd

    method = getattr(model, "predict_proba", None) or model.predict
    return lambda matrix: method(pd.DataFrame(matrix, columns=columns))


def mean_abs_shap(model: Any, frame: "pd.DataFrame") -> dict[str, float]:
    """Mean |SHAP value| per feature over the rows of ``frame`` (and over the
    outputs, for a model with several: a classifier's class probabilities)."""
    import numpy as np
    import shap

    masker = shap.maskers.Independent(frame, max_samples=min(100, len(frame)))
    try:  # tree and linear models get their exact, fast explainers
        explanation = shap.Explainer(model, masker)(frame)
    except Exception:  # pipelines, pyfunc models: explain the prediction function
        explainer = shap.Explainer(_predictor(model, list(frame.columns)), masker)
        explanation = explainer(frame.to_numpy(), max_evals=max(500, 2 * frame.shape[1] + 1))
    values = np.abs(np.asarray(explanation.values, dtype=float))
    per_feature = values.mean(axis=0)
    if per_feature.ndim > 1:
        per_feature = per_feature.mean(axis=1)
    return {str(c): float(v) for c, v in zip(frame.columns, per_feature)}


def explain(uri: str, option: str, sample: "pd.DataFrame", tracking_uri: str) -> dict[str, float]:
    model, columns = load_model(uri, tracking_uri, option)
    if columns is None:
        columns = [c for c in sample.columns if sample[c].dtype.kind in "biuf"]
    missing = [c for c in columns if c not in sample.columns]
    if missing:
        raise AttributionError([f"--sample: lacks column(s) {', '.join(missing)} that {option} {uri} takes"])
    return mean_abs_shap(model, sample[columns])


def compare(
    *,
    stack: str,
    endpoint: str,
    canary: str,
    champion_model: str,
    canary_model: str,
    sample_path: Path,
    config: AttributionConfig,
    tracking_uri: str,
    experiment: str,
    at: dt.datetime | None = None,
) -> Attribution:
    """Explain both models on the sample, compare their top N, log the run."""
    from .verdict import utc_now

    sample = read_sample(sample_path, config.sample_rows)
    champion = explain(champion_model, "--champion-model", sample, tracking_uri)
    candidate = explain(canary_model, "--canary-model", sample, tracking_uri)
    champion_top, canary_top = top_features(champion, config.top_n), top_features(candidate, config.top_n)
    result = Attribution(
        stack, endpoint, canary, champion_model, canary_model, sample_path.name, len(sample), config.top_n,
        config.min_overlap, dict(sorted(champion.items(), key=lambda kv: -kv[1])),
        dict(sorted(candidate.items(), key=lambda kv: -kv[1])), champion_top, canary_top,
        overlap(champion_top, canary_top), (at or utc_now()).isoformat(),
    )
    return _log(result, tracking_uri, experiment)


def _log(result: Attribution, tracking_uri: str, experiment: str) -> Attribution:
    from dataclasses import replace

    client = t.client(tracking_uri)
    tags = {
        t.TAG_KIND: t.KIND_ATTRIBUTION, t.TAG_STACK: result.stack, t.TAG_ENDPOINT: result.endpoint,
        t.TAG_DEPLOYMENT: result.canary, TAG_OUTCOME: "PASS" if result.passed else "FAIL",
    }
    run = client.create_run(t.experiment_id(client, experiment), run_name=f"attribution-{result.endpoint}-{result.canary}", tags=tags)
    run_id = run.info.run_id
    try:
        for key, value in {
            "champion_model": result.champion_model, "canary_model": result.canary_model, "sample": result.sample,
            "top_n": str(result.top_n), "min_overlap": str(result.min_overlap),
            "champion_top": json.dumps(result.champion_top), "canary_top": json.dumps(result.canary_top),
        }.items():
            client.log_param(run_id, key, value[:6000])
        client.log_metric(run_id, METRIC_OVERLAP, result.overlap)
        client.log_metric(run_id, METRIC_ROWS, float(result.rows))
        recorded = replace(result, run_id=run_id)
        client.log_text(run_id, json.dumps(recorded.to_json(), indent=2), ARTIFACT)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return recorded


# --- the verdict's row ----------------------------------------------------------------


def gate_rows(
    release: "Release", *, at: dt.datetime, tracking_uri: str
) -> tuple[tuple[MetricResult, ...], tuple[str, ...]]:
    """``(rows, notes)`` for :func:`azml.release.evidence.gate.evaluate`: pass the rows
    as ``extra_metrics`` and the notes as ``notes`` (they are explanations,
    never rollback triggers). No row when ``azml:release.attribution`` is not
    set; INCONCLUSIVE when the canary has no attribution run younger than
    ``maxAgeMinutes`` at ``at``, when it explained fewer than ``minRows`` rows,
    or when it compared a different top N than the config now asks for."""
    config = release.config.release.attribution
    if config is None:
        return (), ()
    from ..target import missing_sqlite_store

    run = None
    if missing_sqlite_store(tracking_uri) is None:  # reading a missing sqlite store would create it
        start = at - dt.timedelta(minutes=config.max_age_minutes)
        query = t.run_filter(
            t.KIND_ATTRIBUTION, finished=True, stack=release.stack_file.stack, endpoint=release.endpoint.name,
            deployment=release.canary,
        ) + f" and attributes.start_time >= {t.millis(start)} and attributes.start_time <= {t.millis(at)}"
        run = t.newest_run(t.client(tracking_uri), release.config.release.metrics.experiment, query)

    def row(value: float | None, outcome: Outcome, n: int) -> MetricResult:
        return MetricResult(ROW_NAME, value, config.min_overlap, ">=", outcome, n, config.min_rows)

    if run is None:
        return (row(None, Outcome.INCONCLUSIVE, 0),), (
            f"no attribution run of {release.canary} in the last {config.max_age_minutes} min: run "
            f"`azml release attribution {release.stack_file.stack} --endpoint {release.endpoint.name} ...`",
        )
    value = run.data.metrics.get(METRIC_OVERLAP)
    rows = int(run.data.metrics.get(METRIC_ROWS, 0))
    params = run.data.params
    note = (
        f"attributionOverlap from run {run.info.run_id}: champion {params.get('champion_model')} "
        f"vs canary {params.get('canary_model')}, top {params.get('top_n')}"
    )
    if params.get("top_n") != str(config.top_n):
        return (row(value, Outcome.INCONCLUSIVE, rows),), (
            note, f"that run compared a top {params.get('top_n')}, the config asks for {config.top_n}: run it again",
        )
    if value is None or rows < config.min_rows:
        return (row(value, Outcome.INCONCLUSIVE, rows),), (note,)
    return (row(value, Outcome.PASS if value >= config.min_overlap else Outcome.FAIL, rows),), (note,)
