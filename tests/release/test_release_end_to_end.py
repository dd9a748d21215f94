"""A release as an operator runs it, every step through the `azml` command and
one real MLflow store: record what each deployment served, evaluate, advance
— from blue 90 / green 10 to green 100 — and a failing canary rolled back."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from azml.cli import app
from azml import tracking as t

from ..release_support import ENDPOINT, canary_project
from .evidence.test_release_gate import record, request_log

RUNNER = CliRunner()


def azml(project: Path, uri: str, *args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--project-dir", str(project), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_healthy_canary_walks_the_whole_ladder(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    stack = project / "Pulumi.prod.yaml"
    comments = [line for line in stack.read_text().splitlines() if line.strip().startswith("#")]
    record(project, mlflow_uri, "blue", request_log(tmp_path / "b.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=21))
    record(project, mlflow_uri, "green", request_log(tmp_path / "g.csv", rows=3000, accuracy=0.91, latency_ms=100, error_rate=0.003, seed=22))

    shares = []
    for _ in range(3):
        verdict = json.loads(azml(project, mlflow_uri, "release", "evaluate", "prod", "-e", ENDPOINT, "--canary", "green", "--format", "json"))
        assert verdict["decision"] == "PROMOTE", verdict
        azml(project, mlflow_uri, "release", "advance", "prod", "-e", ENDPOINT)
        status = json.loads(azml(project, mlflow_uri, "release", "status", "prod", "--format", "json"))
        (endpoint,) = status["endpoints"]
        shares.append((endpoint["traffic"]["blue"], endpoint["traffic"]["green"]))
    assert shares == [(75, 25), (50, 50), (0, 100)]
    text = stack.read_text()
    assert "        blue: 0\n        green: 100\n" in text
    assert [line for line in text.splitlines() if line.strip().startswith("#")] == comments

    # The audit trail: every traffic change names the verdict run it applied, logged before it.
    client = t.client(mlflow_uri)
    experiment = client.get_experiment_by_name("credit-risk-release").experiment_id
    changes = client.search_runs([experiment], f"tags.`{t.TAG_KIND}` = '{t.KIND_TRAFFIC}'", order_by=["attributes.start_time ASC"])
    assert len(changes) == 3
    for change in changes:
        verdict_run = client.get_run(change.data.tags["azml.verdict_run"])
        assert verdict_run.data.params["promotion_gate"] == "PASSED"
        assert verdict_run.info.end_time <= change.info.start_time


def test_a_failing_canary_is_rolled_back(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 75, "green": 25})
    record(project, mlflow_uri, "blue", request_log(tmp_path / "b.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=23))
    record(project, mlflow_uri, "green", request_log(tmp_path / "g.csv", rows=3000, accuracy=0.84, latency_ms=100, error_rate=0.003, seed=24))
    verdict = json.loads(azml(project, mlflow_uri, "release", "evaluate", "prod", "-e", ENDPOINT, "--canary", "green", "--format", "json"))
    assert verdict["decision"] == "ROLLBACK" and "rollback:accuracy" in verdict["gate"]
    azml(project, mlflow_uri, "release", "advance", "prod", "-e", ENDPOINT)
    status = json.loads(azml(project, mlflow_uri, "release", "status", "prod", "--format", "json"))
    (endpoint,) = status["endpoints"]
    assert endpoint["traffic"] == {"blue": 100, "green": 0}
    assert endpoint["lastVerdict"]["decision"] == "ROLLBACK"


def test_declared_data_validation_joins_the_gate(tmp_path: Path, mlflow_uri: str) -> None:
    """A model that declares validation cannot be promoted until its canary's
    batch has been validated: INCONCLUSIVE (HOLD), then PASS (PROMOTE)."""
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    stack = project / "Pulumi.prod.yaml"
    stack.write_text(
        stack.read_text()
        + "  azml:dataValidation:\n"
        + "    credit-risk:\n"
        + "      columns:\n"
        + "        income: {dtype: float, min: 0}\n"
        + "        debt_ratio: {dtype: float, min: 0, max: 1}\n"
    )
    record(project, mlflow_uri, "blue", request_log(tmp_path / "b.csv", rows=6000, accuracy=0.9, latency_ms=100, error_rate=0.003, seed=25))
    green_log = request_log(tmp_path / "g.csv", rows=3000, accuracy=0.91, latency_ms=100, error_rate=0.003, seed=26)
    record(project, mlflow_uri, "green", green_log)

    held = json.loads(azml(project, mlflow_uri, "release", "evaluate", "prod", "-e", ENDPOINT, "--canary", "green", "--format", "json"))
    rows = {m["name"]: m["outcome"] for m in held["metrics"]}
    assert rows["dataValidation"] == "INCONCLUSIVE" and held["decision"] == "HOLD"

    azml(project, mlflow_uri, "release", "validate", "prod", "-e", ENDPOINT, "-d", "green", "--batch", str(green_log))
    promoted = json.loads(azml(project, mlflow_uri, "release", "evaluate", "prod", "-e", ENDPOINT, "--canary", "green", "--format", "json"))
    rows = {m["name"]: m["outcome"] for m in promoted["metrics"]}
    assert rows["dataValidation"] == "PASS" and promoted["decision"] == "PROMOTE", promoted
