"""Attribution stability: real scikit-learn models logged to a real MLflow
store, explained with SHAP by the real command, and the verdict's row."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from azml import tracking as t
from azml.release.evidence.attribution import gate_rows, overlap, top_features
from azml.cli.release.attribution import register
from azml.release.evidence.evaluate import resolve_release
from azml.release.evidence.gate import evaluate
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.verdict import Decision, Outcome
from tests.release_support import ENDPOINT, canary_project, prod_stack_document

FEATURES = [f"f{i}" for i in range(8)]


def data(informative: list[int], seed: int, rows: int = 1000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    logits = sum((3 - k / 2) * frame[FEATURES[i]] for k, i in enumerate(informative))
    return frame, (logits + rng.normal(scale=0.3, size=rows) > 0).astype(int).to_numpy()


def log_model(uri: str, model: object, frame: pd.DataFrame) -> str:
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(uri)
    client = t.client(uri)
    with mlflow.start_run(experiment_id=t.experiment_id(client, "models")):
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(frame.head(5)), skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=["scikit-learn"],  # inferring them loads the model in a subprocess: slow
        )
    return info.model_uri


@pytest.fixture
def models(mlflow_uri: str) -> dict[str, str]:
    """champion: logistic regression on f0, f1, f2; same: a small forest on the
    same features (other data); different: a forest on f5, f6, f7."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    frame, y = data([0, 1, 2], seed=1)
    champion = LogisticRegression().fit(frame, y)
    frame_same, y_same = data([0, 1, 2], seed=2)
    same = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(frame_same, y_same)
    frame_diff, y_diff = data([5, 6, 7], seed=3)
    different = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(frame_diff, y_diff)
    return {
        "champion": log_model(mlflow_uri, champion, frame),
        "same": log_model(mlflow_uri, same, frame_same),
        "different": log_model(mlflow_uri, different, frame_diff),
    }


@pytest.fixture
def project(tmp_path: Path, mlflow_uri: str) -> Path:
    """The prod stack, green live at 10 %, the attribution gate on (top 3)."""
    root = canary_project(tmp_path / "project", {"blue": 90, "green": 10}, metrics={"trackingUri": mlflow_uri})
    with prod_stack_document(root) as document:
        document["config"]["azml:release"]["attribution"] = {"topN": 3, "minOverlap": 0.6, "sampleRows": 60, "minRows": 40}
    data([0, 1, 2], seed=9, rows=300)[0].assign(label=0).to_csv(root / "sample.csv", index=False)
    return root


def run_cli(*args: str):
    app = typer.Typer()
    register(app)
    app.command("unused")(lambda: None)  # two commands: typer keeps the `attribution` name on the command line
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def attribution(project: Path, champion: str, canary: str, *extra: str):
    return run_cli(
        "attribution", "prod", "--endpoint", ENDPOINT, "--champion-model", champion, "--canary-model", canary,
        "--sample", str(project / "sample.csv"), "--project-dir", str(project), *extra,
    )


def passing(name: str) -> Observation:
    return Observation(name, {
        t.METRIC_ACCURACY: Measure(0.9, 5000), t.METRIC_LATENCY_P95: Measure(100, 5000),
        t.METRIC_ERROR_RATE: Measure(0.001, 5000), t.METRIC_PSI: Measure(0.01, 5000),
        t.METRIC_PARITY: Measure(0.01, 5000),
    })


def verdict_with(rows: tuple) -> Decision:
    from azml.config.releases.release import ReleaseConfig

    return evaluate(
        ReleaseConfig(), stack="prod", endpoint=ENDPOINT, champion=passing("blue"), canary=passing("green"),
        phase="live", traffic={"blue": 90, "green": 10}, mirror_traffic={}, stack_file_sha256="x",
        computed_at="2026-01-01T00:00:00+00:00", extra_metrics=rows,
    ).decision


def test_top_features_and_overlap() -> None:
    assert top_features({"a": 0.1, "b": 0.5, "c": 0.5, "d": 0.0}, 2) == ["b", "c"]
    assert overlap(["a", "b", "c"], ["c", "a", "z"]) == pytest.approx(2 / 3)


def test_same_informative_features_pass_and_the_verdict_promotes(project: Path, models: dict, mlflow_uri: str) -> None:
    result = attribution(project, models["champion"], models["same"], "--format", "json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record["champion_top"]) == set(record["canary_top"]) == {"f0", "f1", "f2"}
    assert record["overlap"] == 1.0 and record["passed"] and record["rows"] == 60 and record["canary"] == "green"
    run = t.client(mlflow_uri).get_run(record["run_id"])
    assert run.data.tags[t.TAG_KIND] == t.KIND_ATTRIBUTION and run.data.tags[t.TAG_DEPLOYMENT] == "green"
    assert run.data.metrics["attribution_overlap"] == 1.0
    assert run.data.params["canary_model"] == models["same"]

    release = resolve_release("prod", ENDPOINT, "green", None, project)
    rows, notes = gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri)
    assert [(r.name, r.value, r.outcome) for r in rows] == [("attributionOverlap", 1.0, Outcome.PASS)]
    assert record["run_id"] in notes[0]
    assert verdict_with(rows) is Decision.PROMOTE


def test_different_features_fail_and_the_verdict_holds(project: Path, models: dict, mlflow_uri: str) -> None:
    result = attribution(project, models["champion"], models["different"])

    assert result.exit_code == 1, result.output
    assert "FAIL attributionOverlap 0.00 (min 0.6)" in result.stdout
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    rows, _ = gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri)
    assert rows[0].outcome is Outcome.FAIL and rows[0].value == 0.0
    assert verdict_with(rows) is Decision.HOLD
    # Too old for maxAgeMinutes at a later evaluation: no evidence, not a pass.
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    (stale,), _ = gate_rows(release, at=later, tracking_uri=mlflow_uri)
    assert stale.outcome is Outcome.INCONCLUSIVE and stale.value is None


def test_no_row_unless_configured_and_inconclusive_without_a_run(tmp_path: Path, mlflow_uri: str, project: Path) -> None:
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    (row,), notes = gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri)
    assert row.outcome is Outcome.INCONCLUSIVE and "no attribution run of green" in notes[0]
    assert verdict_with((row,)) is Decision.HOLD

    plain = canary_project(tmp_path / "plain", {"blue": 90, "green": 10}, metrics={"trackingUri": mlflow_uri})
    assert gate_rows(resolve_release("prod", ENDPOINT, "green", None, plain), at=dt.datetime.now(dt.timezone.utc),
                     tracking_uri=mlflow_uri) == ((), ())


def test_bad_input_exits_2_naming_the_option(project: Path, mlflow_uri: str) -> None:
    missing_model = attribution(project, "models:/nothing/1", "models:/nothing/2")
    assert missing_model.exit_code == 2 and "--champion-model: cannot load model models:/nothing/1" in missing_model.stderr
    wrong = run_cli("attribution", "prod", "-e", ENDPOINT, "--champion-model", "a", "--canary-model", "b",
                    "--sample", str(project / "nope.csv"), "--project-dir", str(project))
    assert wrong.exit_code == 2 and "--sample: no file" in wrong.stderr
    wrong = run_cli("attribution", "prod", "-e", ENDPOINT, "--champion-model", "a", "--canary-model", "b",
                    "--sample", str(project / "sample.csv"), "--canary", "red", "--project-dir", str(project))
    assert wrong.exit_code == 2 and "--canary: 'red' is not a deployment" in wrong.stderr
