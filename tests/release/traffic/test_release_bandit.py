"""The bandit strategy: Thompson sampling on observation runs in a real MLflow
store, the split written into a copy of the prod stack by the real command."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from azml.config import ConfigError, load_stack
from azml.config.releases.release import ReleaseConfig
from azml import tracking as t
from azml.release.traffic.advance import AdvanceError, advance
from azml.release.traffic.bandit import BanditError, allocate, bounded_shares, probability_best, run_bandit
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.sources import log_observation
import typer
from typer.testing import CliRunner

from azml.cli.release.bandit import register
from tests.release_support import ENDPOINT, canary_project, prod_stack_document

PROD_MIN = {"accuracy": 2000, "parity": 1000, "errors": 2000}  # the prod stack's minSamples


def bandit_project(tmp_path: Path, mlflow_uri: str, bandit: dict | None = None, traffic: dict | None = None) -> Path:
    """The prod stack with blue and green live and the endpoint in bandit mode
    (added with a round-trip edit, so every comment of the file stays)."""
    project = canary_project(tmp_path / "project", traffic or {"blue": 50, "green": 50}, metrics={"trackingUri": mlflow_uri})
    with prod_stack_document(project) as document:
        document["config"]["azml:release"]["bandits"] = {ENDPOINT: bandit if bandit is not None else {"minSamples": 500}}
    return project


def observe(uri: str, deployment: str, accuracy: float, n: int = 2000, parity: float = 0.02, error_rate: float = 0.001) -> None:
    log_observation(
        uri, "credit-risk-release", stack="prod", endpoint=ENDPOINT, deployment=deployment,
        measures={
            t.METRIC_ACCURACY: Measure(accuracy, n),
            t.METRIC_PARITY: Measure(parity, PROD_MIN["parity"]),
            t.METRIC_ERROR_RATE: Measure(error_rate, PROD_MIN["errors"]),
        },
    )


def run_cli(*args: str):
    """The real `azml release bandit` command, in-process (MLflow imported once per worker)."""
    app = typer.Typer()
    register(app)
    app.command("unused")(lambda: None)  # two commands: typer keeps the `bandit` name on the command line
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def split_of(project: Path) -> dict[str, int]:
    _, config = load_stack("prod", project)
    return dict(config.online_endpoints[0].traffic)


def comment_lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.lstrip().startswith("#"))


def bandit_runs(uri: str) -> list:
    client = t.client(uri)
    experiment = client.get_experiment_by_name("credit-risk-release")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=t.run_filter(t.KIND_BANDIT, stack="prod", endpoint=ENDPOINT))


# --- the allocation itself ------------------------------------------------------


def test_bounded_shares_keep_floor_ceiling_and_sum_for_any_weights() -> None:
    rng = random.Random(7)
    for _ in range(300):
        k = rng.randint(2, 6)
        floor = rng.randint(1, 100 // k)
        ceiling = rng.randint(max(floor, -(-100 // k)), 100)
        weights = [rng.choice([0.0, rng.random(), rng.random() * 1e-6]) for _ in range(k)]
        shares = bounded_shares(weights, floor, ceiling)
        assert sum(shares) == 100, (weights, floor, ceiling, shares)
        assert all(floor <= s <= ceiling for s in shares), (weights, floor, ceiling, shares)


def test_bounded_shares_follow_the_weights_where_the_bounds_allow() -> None:
    assert bounded_shares([0.5, 0.3, 0.2], 5, 90) == [50, 30, 20]
    assert bounded_shares([0.98, 0.01, 0.01], 5, 90) == [90, 5, 5]
    assert bounded_shares([1.0, 0.0], 5, 90) == [90, 10]  # the ceiling's rest goes to the other arm
    assert bounded_shares([0.2, 0.8], 5, 30) == [50, 50]  # too few arms for the ceiling: 100/2 each at most


def test_probability_best_favours_the_better_posterior_and_is_reproducible_by_seed() -> None:
    p = probability_best([1600, 1800, 1700], [2000, 2000, 2000], 10_000, seed=3)
    assert p[1] > 0.99 and abs(sum(p) - 1) < 1e-9
    close = probability_best([900, 905], [1000, 1000], 10_000, seed=11)
    assert 0.2 < close[0] < close[1] < 0.8  # near-equal posteriors keep exploring both
    assert close == probability_best([900, 905], [1000, 1000], 10_000, seed=11)


def test_allocate_excludes_gate_failures_and_gives_warming_deployments_the_floor() -> None:
    release = ReleaseConfig.model_validate({"bandits": {ENDPOINT: {"minSamples": 500, "floorPercent": 10}}})
    bandit = release.bandits[ENDPOINT]
    observations = {
        "a": Observation("a", {t.METRIC_ACCURACY: Measure(0.85, 3000)}),
        "b": Observation("b", {t.METRIC_ACCURACY: Measure(0.95, 3000), t.METRIC_ERROR_RATE: Measure(0.05, 1000)}),
        "c": Observation("c", {t.METRIC_ACCURACY: Measure(0.99, 100)}),  # too few samples to be scored
        "d": Observation("d", {t.METRIC_ACCURACY: Measure(0.80, 3000)}),
    }
    arms = allocate(release, bandit, {"a": 25, "b": 25, "c": 25, "d": 25}, {}, observations, seed=1)
    by_name = {a.deployment: a for a in arms}
    assert by_name["b"].status == "excluded" and by_name["b"].after == 0 and "errorRate" in by_name["b"].reason
    assert by_name["c"].status == "warming" and by_name["c"].after == 10
    assert by_name["a"].after > by_name["d"].after >= 10
    assert sum(a.after for a in arms) == 100


# --- the command, a real store and the stack file ----------------------------------


def test_bandit_moves_traffic_to_the_better_deployment_and_logs_the_allocation(tmp_path: Path, mlflow_uri: str) -> None:
    project = bandit_project(tmp_path, mlflow_uri, {"minSamples": 500, "floorPercent": 5, "ceilingPercent": 80})
    observe(mlflow_uri, "blue", 0.86)
    observe(mlflow_uri, "green", 0.91)
    path = project / "Pulumi.prod.yaml"
    old = path.read_text()

    result = run_cli("bandit", "prod", "--endpoint", ENDPOINT, "--seed", "5", "--project-dir", str(project))

    assert result.exit_code == 0, result.output
    assert split_of(project) == {"blue": 20, "green": 80}  # green is best with P~1: capped at the ceiling
    new = path.read_text()
    assert comment_lines(new) == comment_lines(old)
    changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines()) if a != b]
    assert changed == [("        blue: 50", "        blue: 20"), ("        green: 50", "        green: 80")]
    assert "apply it with: pulumi up --stack prod" in result.stdout
    (run,) = bandit_runs(mlflow_uri)
    assert run.data.tags[t.TAG_ENDPOINT] == ENDPOINT and run.data.tags["azml.applied"] == "true"
    assert json.loads(run.data.params["before"]) == {"blue": 50, "green": 50}
    assert json.loads(run.data.params["after"]) == {"blue": 20, "green": 80}
    assert run.data.params["seed"] == "5"
    assert run.data.metrics["p_best.green"] > 0.99 and run.data.metrics["share.blue"] == 20


def test_deployment_failing_fairness_gets_no_traffic(tmp_path: Path, mlflow_uri: str) -> None:
    project = bandit_project(tmp_path, mlflow_uri)
    observe(mlflow_uri, "blue", 0.86)
    observe(mlflow_uri, "green", 0.93, parity=0.15)  # the better model, but unfair beyond maxParityDifference 0.08

    allocation = run_bandit("prod", ENDPOINT, seed=1, project_dir=project)

    assert split_of(project) == {"blue": 100, "green": 0}
    (run,) = bandit_runs(mlflow_uri)
    assert run.info.run_id == allocation.run_id
    assert "parityDifference 0.15 > maxParityDifference 0.08" in json.loads(run.data.params["excluded"])["green"]


def test_refused_when_every_deployment_is_excluded_or_too_thin(tmp_path: Path, mlflow_uri: str) -> None:
    project = bandit_project(tmp_path, mlflow_uri)
    observe(mlflow_uri, "blue", 0.86, error_rate=0.03)  # fails the error-rate gate (maxErrorRate 0.02)
    observe(mlflow_uri, "green", 0.93, n=100)  # below the bandit's minSamples
    before = (project / "Pulumi.prod.yaml").read_bytes()

    result = run_cli("bandit", "prod", "-e", ENDPOINT, "--project-dir", str(project))

    assert result.exit_code == 1
    assert "no deployment is eligible with enough samples" in result.stderr
    assert "blue: errorRate 0.03 >= maxErrorRate 0.02" in result.stderr
    assert "green: 100 accuracy samples < minSamples 500" in result.stderr
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert bandit_runs(mlflow_uri) == []


def test_dry_run_writes_and_logs_nothing(tmp_path: Path, mlflow_uri: str) -> None:
    project = bandit_project(tmp_path, mlflow_uri)
    observe(mlflow_uri, "blue", 0.92)
    observe(mlflow_uri, "green", 0.86)
    before = (project / "Pulumi.prod.yaml").read_bytes()

    allocation = run_bandit("prod", ENDPOINT, seed=2, dry_run=True, project_dir=project)

    assert allocation.after == {"blue": 90, "green": 10}  # default ceiling 90
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert bandit_runs(mlflow_uri) == []


def test_endpoint_not_in_bandit_mode_is_bad_input(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "p", {"blue": 50, "green": 50}, metrics={"trackingUri": mlflow_uri})
    with pytest.raises(BanditError) as raised:
        run_bandit("prod", ENDPOINT, project_dir=project)
    assert raised.value.code == 2 and "not in bandit mode" in raised.value.problems[0]


def test_advance_refuses_an_endpoint_in_bandit_mode(tmp_path: Path, mlflow_uri: str) -> None:
    project = bandit_project(tmp_path, mlflow_uri)
    before = (project / "Pulumi.prod.yaml").read_bytes()
    with pytest.raises(AdvanceError) as raised:
        advance("prod", ENDPOINT, project_dir=project)
    assert raised.value.code == 1
    assert "bandit mode" in raised.value.problems[0] and "azml release bandit prod" in raised.value.problems[0]
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


# --- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bandit", "traffic", "key", "message"),
    [
        ({"floorPercent": 40}, {"blue": 50, "green": 30, "red": 20}, "floorPercent", "exceeds 100; at most 33"),
        ({"ceilingPercent": 30}, {"blue": 50, "green": 30, "red": 20}, "ceilingPercent", "below 100; at least 34"),
        ({}, {"blue": 100}, "", "at least 2 live deployments"),
    ],
)
def test_config_cross_checks_name_the_key(tmp_path: Path, mlflow_uri: str, bandit, traffic, key, message) -> None:
    project = bandit_project(tmp_path, mlflow_uri, bandit, traffic={"blue": 50, "green": 50} if "red" in traffic else traffic)
    if "red" in traffic:  # a third deployment: green's copy, renamed
        text = (project / "Pulumi.prod.yaml").read_text()
        green = text[text.index("        - name: green"):text.index("      # The split")]
        text = text.replace("      # The split", green.replace("name: green", "name: red") + "      # The split", 1)
        text = text.replace("        green: 50\n", "        green: 30\n        red: 20\n", 1)
        (project / "Pulumi.prod.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_stack("prod", project)
    expected = f"azml:release.bandits.{ENDPOINT}" + (f".{key}" if key else "")
    assert any(p.startswith(expected + ":") and message in p for p in raised.value.problems), raised.value.problems


def test_bandit_for_an_undeclared_endpoint_and_inverted_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="floorPercent .* must not exceed ceilingPercent"):
        ReleaseConfig.model_validate({"bandits": {ENDPOINT: {"floorPercent": 60, "ceilingPercent": 50}}})
    from azml.config.releases.bandit import bandit_problems

    _, config = load_stack("prod")
    config = config.model_copy(update={"release": ReleaseConfig.model_validate({"bandits": {"nope": {}}})})
    assert [k for k, _ in bandit_problems(config)] == ["release.bandits.nope"]
