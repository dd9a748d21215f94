"""The promotion gate and rollback triggers (pure), and `azml release
evaluate` / `record` end to end against a real local MLflow store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from azml.cli import app
from azml.config.releases.release import ReleaseConfig
from azml.release import store
from azml import tracking as t
from azml.release.evidence.gate import evaluate
from azml.release.evidence.observations import Measure, Observation, combine
from azml.release.evidence.verdict import Decision, Outcome

from ...release_support import ENDPOINT, canary_project

CONFIG = ReleaseConfig()  # the platform defaults: -0.01, 350 ms, 2 %, 0.2, 0.08
RUNNER = CliRunner()


def observation(name: str, **metrics: tuple[float, int]) -> Observation:
    return Observation(name, {metric: Measure(value, n) for metric, (value, n) in metrics.items()}, 1)


def healthy(name: str, accuracy: float = 0.90, n: int = 5000, **overrides: tuple[float, int]) -> Observation:
    metrics = {
        t.METRIC_ACCURACY: (accuracy, n),
        t.METRIC_LATENCY_P95: (120.0, n),
        t.METRIC_ERROR_RATE: (0.004, n),
        t.METRIC_PSI: (0.03, n),
        t.METRIC_PARITY: (0.02, n),
    }
    metrics.update(overrides)
    return observation(name, **metrics)


def verdict_of(champion: Observation, canary: Observation, config: ReleaseConfig = CONFIG):
    return evaluate(
        config, stack="prod", endpoint=ENDPOINT, champion=champion, canary=canary, phase="live",
        traffic={"blue": 90, "green": 10}, mirror_traffic={}, stack_file_sha256="0" * 64,
        computed_at="2026-11-26T10:00:00+00:00",
    )


def outcomes(verdict) -> dict[str, Outcome]:
    return {m.name: m.outcome for m in verdict.metrics}


def test_every_metric_passing_promotes() -> None:
    verdict = verdict_of(healthy("blue"), healthy("green", accuracy=0.895))
    assert verdict.decision is Decision.PROMOTE
    assert set(outcomes(verdict).values()) == {Outcome.PASS}
    assert verdict.gate_param() == "PASSED"
    delta = next(m for m in verdict.metrics if m.name == "accuracyDelta")
    assert delta.value == pytest.approx(-0.005) and delta.champion == pytest.approx(0.90)


def test_a_metric_below_its_sample_size_is_inconclusive_never_a_pass() -> None:
    # Perfect numbers on 50 requests prove nothing: HOLD, and the gate param says why.
    canary = healthy("green", n=50)
    verdict = verdict_of(healthy("blue"), canary)
    assert verdict.decision is Decision.HOLD
    assert set(outcomes(verdict).values()) == {Outcome.INCONCLUSIVE}
    assert verdict.gate_param().startswith("FAILED:accuracyDelta(inconclusive)")


def test_an_unobserved_metric_is_inconclusive() -> None:
    canary = observation("green", **{t.METRIC_LATENCY_P95: (100.0, 5000), t.METRIC_ERROR_RATE: (0.0, 5000)})
    verdict = verdict_of(healthy("blue"), canary)
    result = outcomes(verdict)
    assert result["accuracyDelta"] is result["psi"] is result["parityDifference"] is Outcome.INCONCLUSIVE
    assert verdict.decision is Decision.HOLD


@pytest.mark.parametrize(
    ("override", "failed"),
    [
        ({t.METRIC_PSI: (0.25, 5000)}, "psi"),
        ({t.METRIC_PARITY: (0.09, 5000)}, "parityDifference"),
        ({t.METRIC_LATENCY_P95: (360.0, 5000)}, "latencyP95Ms"),
        ({t.METRIC_ERROR_RATE: (0.021, 5000)}, "errorRate"),  # over 2 %, under 3x the champion's 0.008
    ],
)
def test_a_failing_gate_metric_holds(override: dict, failed: str) -> None:
    champion = healthy("blue", **{t.METRIC_ERROR_RATE: (0.008, 5000)})
    verdict = verdict_of(champion, healthy("green", **override))
    assert verdict.failed == [failed]
    assert verdict.decision is Decision.HOLD
    assert verdict.gate_param() == f"FAILED:{failed}"


def test_thresholds_are_inclusive_or_strict_as_documented() -> None:
    at_limits = healthy("green", accuracy=0.89, **{t.METRIC_PARITY: (0.08, 5000), t.METRIC_PSI: (0.2, 5000)})
    result = outcomes(verdict_of(healthy("blue"), at_limits))
    assert result["accuracyDelta"] is Outcome.PASS  # delta -0.01 >= -0.01
    assert result["parityDifference"] is Outcome.PASS  # 0.08 <= 0.08
    assert result["psi"] is Outcome.PASS  # PSI 0.2 <= 0.2: drift only above the limit


@pytest.mark.parametrize(
    ("champion", "canary", "trigger"),
    [
        (healthy("blue"), healthy("green", **{t.METRIC_ERROR_RATE: (0.0125, 5000)}), "errorRate"),
        (healthy("blue"), healthy("green", **{t.METRIC_LATENCY_P95: (440.0, 5000)}), "latencyP95Ms"),
        (healthy("blue", accuracy=0.92), healthy("green", accuracy=0.895), "accuracy"),
    ],
)
def test_rollback_triggers(champion: Observation, canary: Observation, trigger: str) -> None:
    verdict = verdict_of(champion, canary)
    assert verdict.decision is Decision.ROLLBACK
    assert [line.split(" ", 1)[0] for line in verdict.rollback_triggers] == [trigger]
    assert f"rollback:{trigger}" in verdict.gate_param()


def test_latency_just_inside_sla_plus_25_percent_does_not_roll_back() -> None:
    verdict = verdict_of(healthy("blue"), healthy("green", **{t.METRIC_LATENCY_P95: (437.0, 5000)}))
    assert verdict.decision is Decision.HOLD and not verdict.rollback_triggers


def test_a_flawless_champion_does_not_make_one_canary_error_a_rollback() -> None:
    champion = healthy("blue", **{t.METRIC_ERROR_RATE: (0.0, 5000)})
    canary = healthy("green", **{t.METRIC_ERROR_RATE: (0.0002, 5000)})  # 1 error in 5000
    assert verdict_of(champion, canary).decision is Decision.PROMOTE
    worse = healthy("green", **{t.METRIC_ERROR_RATE: (0.004, 5000)})  # above 3x the 0.1 % floor
    assert verdict_of(champion, worse).decision is Decision.ROLLBACK


def test_no_rollback_on_too_few_samples() -> None:
    canary = healthy("green", n=40, **{t.METRIC_ERROR_RATE: (0.5, 40)})
    verdict = verdict_of(healthy("blue"), canary)
    assert verdict.decision is Decision.HOLD and not verdict.rollback_triggers


def test_parity_regression_is_critical_only_when_configured() -> None:
    champion, canary = healthy("blue"), healthy("green", **{t.METRIC_PARITY: (0.05, 5000)})
    assert verdict_of(champion, canary).decision is Decision.PROMOTE  # default critical: accuracy only
    config = ReleaseConfig.model_validate({"rollback": {"criticalMetrics": ["accuracy", "parityDifference"]}})
    assert verdict_of(champion, canary, config).decision is Decision.ROLLBACK


def test_observations_pool_rates_and_keep_the_worst_percentile() -> None:
    combined = combine(
        "green",
        [
            {t.METRIC_ACCURACY: Measure(0.9, 1000), t.METRIC_LATENCY_P95: Measure(100, 1000)},
            {t.METRIC_ACCURACY: Measure(0.8, 3000), t.METRIC_LATENCY_P95: Measure(300, 3000)},
        ],
    )
    assert combined.get(t.METRIC_ACCURACY) == Measure(pytest.approx(0.825), 4000)
    assert combined.get(t.METRIC_LATENCY_P95) == Measure(300, 4000)


def test_verdict_json_round_trips() -> None:
    verdict = verdict_of(healthy("blue"), healthy("green", **{t.METRIC_PSI: (0.3, 5000)}))
    from azml.release.evidence.verdict import Verdict

    assert Verdict.from_json(json.loads(json.dumps(verdict.to_json()))) == verdict


# --- end to end: request logs -> observations -> verdict in MLflow ----------------------------


def features(rng: np.random.Generator, rows: int, income_shift: float = 0.0) -> dict[str, np.ndarray]:
    """The prod stack's monitored features (modelMonitoring.features)."""
    return {
        "income": rng.lognormal(10.5 + income_shift, 0.4, rows),
        "debt_ratio": rng.beta(2, 5, rows),
        "credit_score": rng.normal(680, 50, rows).round(),
    }


def reference_data(path: Path) -> Path:
    pd.DataFrame(features(np.random.default_rng(0), 20_000)).to_parquet(path)
    return path


def request_log(
    path: Path, *, rows: int, accuracy: float, latency_ms: float, error_rate: float, seed: int, income_shift: float = 0.0
) -> Path:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    correct = rng.random(rows) < accuracy
    frame = pd.DataFrame(
        {
            **features(rng, rows, income_shift),
            "label": label,
            "prediction": np.where(correct, label, 1 - label),
            "latency_ms": rng.gamma(4.0, latency_ms / 4.0, rows),
            "status_code": np.where(rng.random(rows) < error_rate, 500, 200),
            "segment": rng.choice(["a", "b"], rows),
        }
    )
    frame.to_csv(path, index=False)
    return path


def record(project: Path, uri: str, deployment: str, log: Path, *extra: str) -> None:
    reference = project / "reference.parquet"
    if not reference.exists():
        reference_data(reference)
    result = RUNNER.invoke(
        app,
        ["release", "record", "prod", "--project-dir", str(project), "--tracking-uri", uri, "-e", ENDPOINT,
         "-d", deployment, "--requests", str(log), "--sensitive-column", "segment", "--reference", str(reference), *extra],
    )
    assert result.exit_code == 0, result.output


def evaluate_cli(project: Path, uri: str, *extra: str):
    return RUNNER.invoke(
        app,
        ["release", "evaluate", "prod", "--project-dir", str(project), "--tracking-uri", uri, "-e", ENDPOINT,
         "--canary", "green", "--format", "json", *extra],
    )


def test_evaluate_promotes_from_recorded_requests_and_logs_the_verdict(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=1))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=3000, accuracy=0.91, latency_ms=110, error_rate=0.003, seed=2))

    result = evaluate_cli(project, mlflow_uri)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["decision"] == "PROMOTE" and document["gate"] == "PASSED", document
    assert document["champion"] == "blue" and document["phase"] == "live"

    client = t.client(mlflow_uri)
    run = client.get_run(document["run_id"])
    assert run.data.params["promotion_gate"] == "PASSED"
    assert run.data.tags[t.TAG_KIND] == t.KIND_VERDICT
    assert run.data.metrics["accuracyDelta_n"] == 2000 or run.data.metrics["accuracyDelta_n"] >= 2000
    stored = store.last_verdict(mlflow_uri, "credit-risk-release", "prod", ENDPOINT)
    assert stored is not None and stored.run_id == document["run_id"]
    from azml.release.evidence.verdict import file_sha256

    assert stored.stack_file_sha256 == file_sha256(project / "Pulumi.prod.yaml")


def test_evaluate_rolls_back_a_failing_canary(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.004, seed=3))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=3000, accuracy=0.9, latency_ms=100, error_rate=0.05, seed=4))
    document = json.loads(evaluate_cli(project, mlflow_uri).output)
    assert document["decision"] == "ROLLBACK"
    assert document["gate"].startswith("FAILED:errorRate")
    assert t.client(mlflow_uri).get_run(document["run_id"]).data.params["promotion_gate"] == document["gate"]


def test_evaluate_holds_on_a_canary_with_too_few_requests(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=5))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=300, accuracy=0.95, latency_ms=90, error_rate=0.0, seed=6))
    document = json.loads(evaluate_cli(project, mlflow_uri).output)
    assert document["decision"] == "HOLD"
    assert {m["outcome"] for m in document["metrics"]} == {"INCONCLUSIVE"}


def test_observations_outside_the_window_are_not_evaluated(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=7))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=3000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=8))
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat()
    document = json.loads(evaluate_cli(project, mlflow_uri, "--at", later).output)
    assert document["decision"] == "HOLD"
    assert all(m["value"] is None for m in document["metrics"])


def test_a_mirrored_canary_is_evaluated_in_the_shadow_phase(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 100}, mirror_traffic={"green": 20})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=9))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=3000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=10))
    document = json.loads(evaluate_cli(project, mlflow_uri).output)
    assert document["phase"] == "mirror" and document["decision"] == "PROMOTE"


def test_recorded_parity_difference_is_fairlearns(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    frame = pd.DataFrame(
        {"prediction": [1, 1, 1, 0, 1, 0, 0, 0], "label": [1, 1, 0, 0, 1, 0, 0, 1], "segment": list("aaaabbbb")}
    )
    frame.to_csv(tmp_path / "log.csv", index=False)
    result = RUNNER.invoke(
        app,
        ["release", "record", "prod", "--project-dir", str(project), "--tracking-uri", mlflow_uri, "-e", ENDPOINT,
         "-d", "green", "--requests", str(tmp_path / "log.csv"), "--sensitive-column", "segment"],
    )
    assert result.exit_code == 0, result.output
    from azml.release.evidence.sources import from_mlflow

    now = dt.datetime.now(dt.timezone.utc)
    observed = from_mlflow(
        mlflow_uri, "credit-risk-release", stack="prod", endpoint=ENDPOINT, deployments=["green"],
        start=now - dt.timedelta(hours=1), end=now + dt.timedelta(minutes=1),
    )["green"]
    # Selection rates: a 3/4, b 1/4 -> difference 0.5; accuracy 6/8.
    assert observed.get(t.METRIC_PARITY) == Measure(0.5, 8)
    assert observed.get(t.METRIC_ACCURACY) == Measure(0.75, 8)


def test_drifted_canary_inputs_hold_the_release(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=11))
    shifted = request_log(tmp_path / "green.csv", rows=3000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=12, income_shift=0.5)
    record(project, mlflow_uri, "green", shifted)
    document = json.loads(evaluate_cli(project, mlflow_uri).output)
    psi = next(m for m in document["metrics"] if m["name"] == "psi")
    assert psi["outcome"] == "FAIL" and psi["value"] > 0.2 and psi["n"] == 3000
    assert document["decision"] == "HOLD" and document["gate"] == "FAILED:psi"


def test_metrics_file_sources(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 75, "green": 25})
    good = {"accuracy": 0.9, "accuracy_n": 5000, "latency_p95_ms": 120, "requests": 5000, "error_rate": 0.003,
            "psi": 0.05, "psi_n": 5000, "parity_difference": 0.03, "parity_n": 5000}
    (tmp_path / "m.json").write_text(json.dumps({"deployments": {"blue": good, "green": good}}))
    document = json.loads(evaluate_cli(project, mlflow_uri, "--metrics-file", str(tmp_path / "m.json")).output)
    assert document["decision"] == "PROMOTE"

    rows = ["deployment,metric,value,n"] + [
        f"{d},{m},{v},5000" for d in ("blue", "green")
        for m, v in (("accuracy", 0.9), ("latency_p95_ms", 120), ("error_rate", 0.003), ("psi", 0.3), ("parity_difference", 0.01))
    ]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    document = json.loads(evaluate_cli(project, mlflow_uri, "--metrics-file", str(tmp_path / "m.csv")).output)
    assert document["decision"] == "HOLD" and document["gate"] == "FAILED:psi"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "nope", "--canary", "green"], "--endpoint: 'nope' is not an online endpoint of Pulumi.prod.yaml (declared: credit-risk-endpoint)"),
        (["-e", ENDPOINT, "--canary", "red"], "--canary: 'red' is not a deployment"),
        (["-e", ENDPOINT, "--canary", "green", "--champion", "green"], "must differ"),
        (["-e", ENDPOINT, "--canary", "green", "--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_evaluate_refuses_bad_input_in_one_line(tmp_path: Path, mlflow_uri: str, args: list[str], message: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    result = RUNNER.invoke(app, ["release", "evaluate", "prod", "--project-dir", str(project), "--tracking-uri", mlflow_uri, *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"deployments": {"green": {"accuracy": 0.9}}}, "deployments.green.accuracy: needs its sample size accuracy_n"),
        ({"deployments": {"green": {"acuracy": 0.9}}}, "unknown metric(s) acuracy"),
        ({"deployments": {"green": {"error_rate": 3, "requests": 10}}}, "error_rate: must lie in 0..1"),
        ({"blue": {}}, "needs a 'deployments' object"),
    ],
)
def test_malformed_metrics_files_are_named(tmp_path: Path, mlflow_uri: str, document: dict, message: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    (tmp_path / "m.json").write_text(json.dumps(document))
    result = evaluate_cli(project, mlflow_uri, "--metrics-file", str(tmp_path / "m.json"))
    assert result.exit_code == 2 and message in result.output, result.output
    assert store.last_verdict(mlflow_uri, "credit-risk-release", "prod", ENDPOINT) is None


def test_a_canary_without_traffic_cannot_be_evaluated(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 100})
    result = evaluate_cli(project, mlflow_uri)
    assert result.exit_code == 2 and "takes neither live nor mirrored traffic" in result.output


def test_record_refuses_a_missing_reference_in_one_line(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    log = request_log(tmp_path / "green.csv", rows=100, accuracy=0.9, latency_ms=100, error_rate=0.0, seed=13)
    result = RUNNER.invoke(
        app,
        ["release", "record", "prod", "--project-dir", str(project), "--tracking-uri", mlflow_uri, "-e", ENDPOINT,
         "-d", "green", "--requests", str(log), "--reference", str(tmp_path / "missing.parquet")],
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --reference:"), result.output


def test_a_canary_held_past_its_time_limit_is_rolled_back(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    from azml.config import load_stack

    limit = load_stack("prod", project)[1].release.max_canary_minutes
    assert limit is not None
    # The canary's first verdict, logged longer ago than the stack allows.
    client = t.client(mlflow_uri)
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=limit + 60)
    run = client.create_run(
        t.experiment_id(client, "credit-risk-release"), start_time=t.millis(started),
        tags={t.TAG_KIND: t.KIND_VERDICT, t.TAG_STACK: "prod", t.TAG_ENDPOINT: ENDPOINT, t.TAG_DEPLOYMENT: "green",
              "azml.decision": "HOLD"},
    )
    client.set_terminated(run.info.run_id, end_time=t.millis(started))
    record(project, mlflow_uri, "blue", request_log(tmp_path / "blue.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=31))
    record(project, mlflow_uri, "green", request_log(tmp_path / "green.csv", rows=300, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=32))
    document = json.loads(evaluate_cli(project, mlflow_uri).output)
    assert document["decision"] == "ROLLBACK"
    assert any(trigger.startswith("timeLimit") for trigger in document["rollback_triggers"]), document


# --------------------------------------------------------------------------- the canary's own model monitor


def _signal_metrics(path: Path, rows: list[tuple[str, str, float, float]]) -> Path:
    """A stand-in of the canary's data drift monitor output, in the columns Microsoft's
    data drift component writes (feature_name, metric_value, data_type, metric_name,
    group, group_pivot, threshold_value)."""
    frame = pd.DataFrame(
        [{"feature_name": f, "metric_value": v, "data_type": "numerical", "metric_name": m, "group": "",
          "group_pivot": "", "threshold_value": th} for f, m, v, th in rows]
    )
    frame.to_parquet(path, index=False) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


def _good_metrics(path: Path) -> Path:
    good = {"accuracy": 0.9, "accuracy_n": 5000, "latency_p95_ms": 120, "requests": 5000, "error_rate": 0.003,
            "psi": 0.05, "psi_n": 5000, "parity_difference": 0.03, "parity_n": 5000}
    path.write_text(json.dumps({"deployments": {"blue": good, "green": good}}))
    return path


def test_a_breach_in_the_canarys_model_monitor_holds_a_release_the_live_metrics_would_promote(
    tmp_path: Path, mlflow_uri: str
) -> None:
    project = canary_project(tmp_path / "project", {"blue": 75, "green": 25})
    metrics = _good_metrics(tmp_path / "m.json")
    breached = _signal_metrics(tmp_path / "signal.parquet", [
        ("income", "NormalizedWassersteinDistance", 0.31, 0.1),
        ("income", "PopulationStabilityIndex", 0.05, 0.2),
        ("plan", "PearsonsChiSquaredTest", 0.2, 0.05),
        ("income", "NullValueRate", 0.9, 0.0),  # another signal's metric: counted, not judged
    ])
    document = json.loads(evaluate_cli(project, mlflow_uri, "--metrics-file", str(metrics), "--monitor-results", str(breached)).output)
    row = next(m for m in document["metrics"] if m["name"] == "monitorDataDrift")
    assert (row["value"], row["threshold"], row["comparison"], row["outcome"], row["n"]) == (1.0, 0.0, "<=", "FAIL", 3)
    assert document["decision"] == "HOLD" and document["gate"] == "FAILED:monitorDataDrift"
    assert any("income: NormalizedWassersteinDistance 0.31 > 0.1" in note for note in document["notes"])
    stored = store.last_verdict(mlflow_uri, "credit-risk-release", "prod", ENDPOINT)
    assert stored is not None and stored.run_id == document["run_id"] and "monitorDataDrift" in stored.failed

    within = _signal_metrics(tmp_path / "within.csv", [("income", "JensenShannonDistance", 0.05, 0.1), ("plan", "PearsonsChiSquaredTest", 0.3, 0.05)])
    document = json.loads(evaluate_cli(project, mlflow_uri, "--metrics-file", str(metrics), "--monitor-results", str(within)).output)
    assert document["decision"] == "PROMOTE"
    row = next(m for m in document["metrics"] if m["name"] == "monitorDataDrift")
    assert row["outcome"] == "PASS" and row["n"] == 2
    # Without the option the gate has no such row: the monitor is evidence only when given.
    document = json.loads(evaluate_cli(project, mlflow_uri, "--metrics-file", str(metrics)).output)
    assert "monitorDataDrift" not in {m["name"] for m in document["metrics"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("feature,value\nincome,0.3\n", "not a signal_metrics table (no column metric_name, metric_value, threshold_value, feature_name or group)"),
        ("feature_name,metric_name,metric_value,threshold_value\nincome,NullValueRate,0.1,0.0\n", "holds no data drift metric"),
        ("feature_name,metric_name,metric_value,threshold_value\nincome,JensenShannonDistance,high,0.1\n", "not a number"),
    ],
)
def test_monitor_results_that_cannot_be_evidence_are_refused_and_nothing_is_logged(
    tmp_path: Path, mlflow_uri: str, content: str, message: str
) -> None:
    project = canary_project(tmp_path / "project", {"blue": 75, "green": 25})
    (tmp_path / "signal.csv").write_text(content)
    result = evaluate_cli(project, mlflow_uri, "--metrics-file", str(_good_metrics(tmp_path / "m.json")),
                          "--monitor-results", str(tmp_path / "signal.csv"))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert store.last_verdict(mlflow_uri, "credit-risk-release", "prod", ENDPOINT) is None
