"""azml drift measures drift as the stack's Azure ML model monitors do: the
monitors' metrics against reference implementations, thresholds from
azml:modelMonitoring.dataDrift.thresholds, INCONCLUSIVE below
azml:release.minSamples.psi, the stack's MLflow store, and `azml retrain check`
reading what it writes (tagged or not)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance
from typer.testing import CliRunner

from azml.cli import app
from azml.drift import compute_drift
from azml.drift.metrics import CHI2, JSD, KS, NWD, PSI, chi_squared_pvalue, jensen_shannon

from ..conftest import load_stack
from ..retrain.test_retrain_check import ENDPOINT, project_with

runner = CliRunner()


def _frames(n: int = 3000, shift: float = 0.0, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({
        "income": rng.lognormal(10, 0.6, n), "score": rng.normal(600, 50, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
    })
    cur = pd.DataFrame({
        "income": rng.lognormal(10 + shift, 0.6, n), "score": rng.normal(600 + 50 * shift, 50, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
    })
    ref.loc[::97, "score"] = np.nan  # a missing bin on one side
    return ref, cur


def _values(frame: pd.DataFrame, name: str) -> np.ndarray:
    values = frame[name].to_numpy(dtype=float)
    return values[~np.isnan(values)]


# --------------------------------------------------------------------------- each metric against its reference


def test_jensen_shannon_is_scipys_base_2_over_the_psi_bins() -> None:
    ref, cur = _frames(shift=0.3)
    report = compute_drift(ref, cur)
    for feature in report.features:
        expected = distance.jensenshannon(feature.reference_counts, feature.current_counts, base=2)
        assert feature.jensen_shannon == pytest.approx(expected, rel=1e-12, abs=1e-15), feature.name
        assert feature.metrics[JSD] == feature.jensen_shannon
    assert jensen_shannon(np.array([5, 0]), np.array([0, 5])) == 1.0  # disjoint: the maximum, base 2


def test_normalized_wasserstein_is_scipys_w1_over_the_reference_std() -> None:
    ref, cur = _frames(shift=0.2)
    report = compute_drift(ref, cur)
    for name in ("income", "score"):
        a, b = _values(ref, name), _values(cur, name)
        expected = stats.wasserstein_distance(a, b) / max(np.std(a, ddof=1), 0.001)
        assert report.feature(name).wasserstein == pytest.approx(expected, rel=1e-9), name
    assert report.feature("plan").wasserstein is None and NWD not in report.feature("plan").metrics


def test_a_constant_reference_is_normalised_by_the_floor_and_infinities_give_no_distance() -> None:
    ref = pd.DataFrame({"x": [2.0] * 600})
    cur = pd.DataFrame({"x": [2.0] * 300 + [3.0] * 300})
    assert compute_drift(ref, cur).feature("x").wasserstein == pytest.approx(0.5 / 0.001)
    infinite = pd.DataFrame({"x": [1.0, 2.0, np.inf] * 200})
    assert compute_drift(ref, infinite).feature("x").wasserstein is None


def test_chi_squared_is_scipys_goodness_of_fit_against_the_reference_shares() -> None:
    ref, cur = _frames(shift=0.2)
    feature = compute_drift(ref, cur).feature("plan")
    observed = np.array(feature.current_counts, dtype=float)
    expected_counts = np.array(feature.reference_counts, dtype=float)
    keep = expected_counts > 0
    expected = stats.chisquare(observed[keep], expected_counts[keep] / expected_counts.sum() * observed.sum())
    assert feature.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert feature.metrics[CHI2] == feature.chi2_pvalue and KS not in feature.metrics
    # A category the reference never had cannot come from its distribution; one bin says nothing.
    assert chi_squared_pvalue(np.array([10, 10, 0]), np.array([10, 10, 1])) == 0.0
    assert chi_squared_pvalue(np.array([10, 0]), np.array([7, 0])) == 1.0


def test_the_streamed_path_gives_the_new_metrics_bit_for_bit(tmp_path: Path) -> None:
    ref, cur = _frames(n=20_000, shift=0.1)
    ref.loc[::50, "income"] = 1000.0  # a heavy key
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    whole = compute_drift(tmp_path / "ref.parquet", tmp_path / "cur.csv", chunk_rows=100_000)
    for chunk_rows in (997, 4093):
        streamed = compute_drift(tmp_path / "ref.parquet", tmp_path / "cur.csv", chunk_rows=chunk_rows)
        assert streamed.streamed and streamed.features == whole.features


# --------------------------------------------------------------------------- thresholds and sample size


def test_the_configured_metrics_decide_and_each_breach_is_named() -> None:
    ref, cur = _frames(shift=0.15)
    thresholds = {PSI: 0.2, JSD: 0.2, NWD: 0.1, CHI2: 0.05}
    report = compute_drift(ref, cur, metric_thresholds=thresholds)
    score = report.feature("score")
    assert score.psi < 0.2 and score.jensen_shannon < 0.2 and score.wasserstein > 0.1  # only Wasserstein is crossed
    assert score.drifted and score.breaches == (f"{NWD} {score.wasserstein:.4g} > 0.1",)
    plan = report.feature("plan")
    assert plan.chi2_pvalue < 0.05 and plan.psi < 0.2  # a p-value breaches below its threshold
    assert plan.drifted and plan.breaches == (f"{CHI2} {plan.chi2_pvalue:.4g} < 0.05",)
    assert not compute_drift(ref, cur).feature("score").drifted  # PSI alone: within 0.2
    with pytest.raises(ValueError, match="unknown drift metric"):
        compute_drift(ref, cur, metric_thresholds={"ChebyshevDistance": 0.1})


def test_below_the_minimum_sample_size_the_result_is_inconclusive_never_ok() -> None:
    ref, _ = _frames()
    one_row = ref.iloc[:1]
    report = compute_drift(ref, one_row, min_samples=500)
    assert report.status == "inconclusive" and not report.drifted
    assert {f.status for f in report.features} == {"inconclusive"}
    assert compute_drift(ref, ref, min_samples=500).status == "ok"


def _drift(*args: str, cwd: Path | None = None) -> Any:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, ["drift", *args])
    finally:
        os.chdir(old)


def _files(directory: Path, shift: float, n: int = 3000) -> tuple[Path, Path]:
    ref, cur = _frames(n=n, shift=shift)
    ref.to_parquet(directory / "ref.parquet", index=False)
    cur.to_csv(directory / "cur.csv", index=False)
    return directory / "ref.parquet", directory / "cur.csv"


def test_a_one_row_sample_exits_5_naming_the_minimum(tmp_path: Path) -> None:
    ref, _ = _files(tmp_path, 0.0)
    (tmp_path / "one.csv").write_text("income,score,plan\n22000,600,basic\n")
    result = _drift("-r", str(ref), "-c", str(tmp_path / "one.csv"), "--no-log", "--out", str(tmp_path / "o"))
    assert result.exit_code == 5, result.output
    assert "INCONCLUSIVE: 3000 reference and 1 current rows, fewer than the 500 required" in result.output
    assert json.loads((tmp_path / "o" / "drift.json").read_text())["status"] == "inconclusive"


def test_with_a_stack_the_monitors_thresholds_min_samples_and_store_are_used(tmp_path: Path, mlflow_template: Path) -> None:
    from azml import tracking

    document = load_stack("prod")
    monitors = document["config"]["azml:modelMonitoring"]["dataDrift"]["thresholds"]
    document["config"]["azml:release"]["minSamples"]["psi"] = 2500
    document["config"]["azml:release"]["metrics"]["trackingUri"] = "sqlite:///store/runs.db"
    project = project_with(tmp_path, document, name="variant")
    (project / "store").mkdir()
    (project / "store" / "runs.db").write_bytes(mlflow_template.read_bytes())
    ref, cur = _files(tmp_path, 0.15)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _drift("-r", str(ref), "-c", str(cur), "--stack", "variant", "--project-dir", str(project),
                    "--endpoint", ENDPOINT, "--out", str(tmp_path / "o"), cwd=elsewhere)
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "o" / "drift.json").read_text())
    assert report["metric_thresholds"] == monitors and report["min_samples"] == 2500
    assert "score" in report["drifted"] and any(b.startswith(NWD) for b in report["features"][1]["breaches"])
    assert not (elsewhere / "mlruns.db").exists() and os.listdir(elsewhere) == []
    assert f"to {project / 'store' / 'runs.db'}" in result.output
    client = tracking.client(f"sqlite:///{project / 'store' / 'runs.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("azml-drift").experiment_id])
    assert run.data.tags["azml.stack"] == "variant" and run.data.tags["azml.drift.status"] == "drift"
    assert run.data.metrics["nwd.score"] == pytest.approx(report["features"][1]["metrics"][NWD])

    small = _drift("-r", str(ref), "-c", str(cur), "--stack", "variant", "--project-dir", str(project), "--no-log",
                   "--out", str(tmp_path / "p"))
    assert small.exit_code == 3  # 3000 rows >= 2500: conclusive
    refused = _drift("-r", str(ref), "-c", str(cur), "--stack", "variant", "--project-dir", str(project),
                     "--threshold", "0.3", "--no-log")
    assert refused.exit_code == 2 and "azml:modelMonitoring.dataDrift.thresholds" in refused.output


def test_without_a_stack_the_output_names_the_store_it_wrote(tmp_path: Path) -> None:
    ref, cur = _files(tmp_path, 0.0)
    result = _drift("-r", str(ref), "-c", str(cur), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert f"to {tmp_path / 'mlruns.db'} (created)" in result.output


# --------------------------------------------------------------------------- azml retrain check reads it


def test_retrain_check_accepts_a_drift_run_made_without_stack_or_endpoint(tmp_path: Path, mlflow_template: Path) -> None:
    store = tmp_path / "mlruns.db"
    store.write_bytes(mlflow_template.read_bytes())
    uri = f"sqlite:///{store}"
    ref, cur = _files(tmp_path, 1.0)
    assert _drift("-r", str(ref), "-c", str(cur), "--tracking-uri", uri, "--out", str(tmp_path / "o")).exit_code == 3
    result = runner.invoke(app, ["retrain", "check", "dev", "--endpoint", ENDPOINT, "--tracking-uri", uri, "--no-log",
                                 "-f", "json"])
    drift = json.loads(result.output)["checks"][0]
    assert drift["outcome"] == "TRIGGERED", drift
    assert "untagged (azml drift without --stack/--endpoint)" in drift["source"]


def test_retrain_check_says_what_is_missing_and_honours_an_inconclusive_run(tmp_path: Path, mlflow_template: Path) -> None:
    store = tmp_path / "mlruns.db"
    store.write_bytes(mlflow_template.read_bytes())
    uri = f"sqlite:///{store}"
    check = ["retrain", "check", "dev", "--endpoint", ENDPOINT, "--tracking-uri", uri, "--no-log", "-f", "json"]
    missing = json.loads(runner.invoke(app, check).output)["checks"][0]
    assert missing["outcome"] == "INCONCLUSIVE"
    assert f"run `azml drift --stack dev --endpoint {ENDPOINT}` or pass --drift-report" in missing["source"]

    ref, _ = _files(tmp_path, 0.0)
    (tmp_path / "one.csv").write_text("income,score,plan\n22000,600,basic\n")
    result = _drift("-r", str(ref), "-c", str(tmp_path / "one.csv"), "--stack", "dev", "--endpoint", ENDPOINT,
                    "--tracking-uri", uri, "--out", str(tmp_path / "o"))
    assert result.exit_code == 5, result.output
    drift = json.loads(runner.invoke(app, check).output)["checks"][0]
    assert drift["outcome"] == "INCONCLUSIVE" and "fewer than 100 rows" in drift["detail"]  # dev: minSamples.psi 100


# --------------------------------------------------------------------------- the monitors' own results


def _signal_metrics(path: Path, rows: list[tuple[str, str, float, float]]) -> Path:
    """A stand-in of a data drift monitor run's signal_metrics table, in the column layout
    Microsoft's data drift component writes (feature_name, metric_value, data_type,
    metric_name, group, group_pivot, threshold_value)."""
    frame = pd.DataFrame(
        [{"feature_name": f, "metric_value": v, "data_type": "numerical", "metric_name": m, "group": "", "group_pivot": "",
          "threshold_value": t} for f, m, v, t in rows]
    )
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _check_with(results: Path, store: str) -> dict[str, Any]:
    result = runner.invoke(app, ["retrain", "check", "dev", "--endpoint", ENDPOINT, "--monitor-results", str(results),
                                 "--accuracy", "0.9", "--accuracy-n", "5000", "--tracking-uri", store, "--no-log", "-f", "json"])
    assert result.exit_code in (0, 4, 5), result.output
    return json.loads(result.output)["checks"][0]


def test_retrain_check_takes_the_monitors_verdict_from_its_signal_metrics(tmp_path: Path, mlflow_uri: str) -> None:
    breached = _signal_metrics(tmp_path / "signal.parquet", [
        ("income", PSI, 0.05, 0.2), ("income", NWD, 0.31, 0.1), ("plan", CHI2, 0.2, 0.05),
    ])
    drift = _check_with(breached, mlflow_uri)
    assert drift["outcome"] == "TRIGGERED" and "income: NormalizedWassersteinDistance 0.31 > 0.1" in drift["detail"]
    assert drift["source"].startswith(f"model monitor signal metrics {breached}")
    within = _check_with(_signal_metrics(tmp_path / "signal.csv", [("income", NWD, 0.05, 0.1), ("plan", CHI2, 0.2, 0.05)]), mlflow_uri)
    assert within["outcome"] == "OK" and within["detail"] == "model monitor: every drift metric within its threshold"
    p_value = _check_with(_signal_metrics(tmp_path / "p.csv", [("plan", CHI2, 0.01, 0.05)]), mlflow_uri)
    assert p_value["outcome"] == "TRIGGERED" and "PearsonsChiSquaredTest 0.01 < 0.05" in p_value["detail"]


def test_a_table_that_is_not_signal_metrics_is_refused_in_one_line(tmp_path: Path, mlflow_uri: str) -> None:
    (tmp_path / "other.csv").write_text("feature,value\nincome,0.3\n")
    result = runner.invoke(app, ["retrain", "check", "dev", "--endpoint", ENDPOINT, "--monitor-results",
                                 str(tmp_path / "other.csv"), "--tracking-uri", mlflow_uri, "--no-log"])
    assert result.exit_code == 2
    assert "not a signal_metrics table (no column metric_name, metric_value, threshold_value, feature_name or group)" in result.output
