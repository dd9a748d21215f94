"""Release operations against a real sqlite MLflow store: the error-budget
freeze through `azml release advance`, the canary time limit on verdicts of
the real gate, and `azml release kpis` over a seeded audit trail."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from azure.core.credentials import AccessToken
from typer.testing import CliRunner

from azml.cli import app
from azml.config import load_stack
from azml.naming import endpoint_name
from azml.release import store
from azml import tracking as t
from azml.release.evidence.budget import error_budget, month_start, policy
from azml.release.evidence.evaluate import resolve_release
from azml.release.evidence.gate import evaluate as gate_evaluate
from azml.release.reports.kpis import TARGETS, commit_tags
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.timelimit import time_limit
from azml.release.evidence.verdict import Decision, Verdict, file_sha256, utc_now

from ..conftest import ROOT
from ..loganalytics_server import LogAnalyticsServer, loganalytics  # noqa: F401  (fixture)
from ..release_support import ENDPOINT, canary_project

EXPERIMENT = "credit-risk-release"  # the prod stack's azml:release.metrics.experiment


@pytest.fixture
def project(tmp_path: Path, mlflow_template: Path) -> Path:
    directory = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    shutil.copy(mlflow_template, directory / "mlruns.db")  # the stack's trackingUri: sqlite:///mlruns.db
    return directory


def uri_of(project: Path) -> str:
    return f"sqlite:///{project / 'mlruns.db'}"


def client_and_experiment(uri: str) -> tuple[Any, str]:
    client = t.client(uri)
    return client, t.experiment_id(client, EXPERIMENT)


def seed_run(
    uri: str, kind: str, at: dt.datetime, *, tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
) -> str:
    """A finished run of ``kind`` of prod started at ``at``."""
    client, experiment = client_and_experiment(uri)
    run = client.create_run(
        experiment, start_time=t.millis(at), tags={t.TAG_KIND: kind, t.TAG_STACK: "prod", **(tags or {})}
    )
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, value)
    for key, value in (metrics or {}).items():
        client.log_metric(run.info.run_id, key, value, timestamp=t.millis(at))
    client.set_terminated(run.info.run_id, end_time=t.millis(at) + 1000)
    return run.info.run_id


def observe(uri: str, deployment: str, at: dt.datetime, requests: int, failures: int) -> None:
    seed_run(
        uri, t.KIND_OBSERVATION, at, tags={t.TAG_ENDPOINT: ENDPOINT, t.TAG_DEPLOYMENT: deployment},
        metrics={t.METRIC_REQUESTS: requests, t.METRIC_ERROR_RATE: failures / requests, t.METRIC_LATENCY_P95: 120.0},
    )


def log_verdict(project: Path, decision: Decision) -> Verdict:
    """A verdict on the stack file as it is now, logged as `evaluate` logs it."""
    stack_file, config = load_stack("prod", project)
    endpoint = next(e for e in config.online_endpoints if e.name == ENDPOINT)
    verdict = Verdict(
        stack="prod", endpoint=ENDPOINT, champion="blue", canary="green", phase="live", decision=decision,
        metrics=(), rollback_triggers=("errorRate 0.09 > 3x the champion's 0.01",) if decision is Decision.ROLLBACK else (),
        traffic=dict(endpoint.traffic), mirror_traffic=dict(endpoint.mirror_traffic),
        stack_file_sha256=file_sha256(stack_file.path), computed_at=utc_now().isoformat(), window_minutes=1440,
    )
    return store.log_verdict(uri_of(project), EXPERIMENT, verdict, project_dir=project)


def azml(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def objective(project: Path) -> Decimal:
    _, config = load_stack("prod", project)
    return Decimal(str(policy(config)[1]))


def failures_allowed(project: Path, requests: int) -> Decimal:
    return requests * (100 - objective(project)) / 100


# --- error-budget freeze ------------------------------------------------------


def test_an_exhausted_budget_refuses_promote_and_still_applies_rollback(project: Path) -> None:
    uri, now = uri_of(project), utc_now()
    allowed = failures_allowed(project, 10_000)
    observe(uri, "blue", now - dt.timedelta(minutes=5), 9000, int(allowed))
    observe(uri, "green", now - dt.timedelta(minutes=5), 1000, 10)  # together over the budget
    # Last month: a flood of good requests that would dilute the failures if it counted.
    observe(uri, "blue", month_start(now) - dt.timedelta(hours=1), 1_000_000, 1)
    stack_file = project / "Pulumi.prod.yaml"
    before = stack_file.read_bytes()

    log_verdict(project, Decision.PROMOTE)
    refused = azml("release", "advance", "prod", "-e", ENDPOINT, "--project-dir", str(project))
    assert refused.exit_code == 1
    errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    consumed = (Decimal(int(allowed) + 10) / allowed * 100).quantize(Decimal("0.1"))
    for part in (f"objective {objective(project)}", "10000 requests", f"{int(allowed) + 10} failures",
                 f"budget {int(allowed)} failures", f"{consumed} % consumed", "frozen"):
        assert part in errors[0]
    assert stack_file.read_bytes() == before

    status = azml("release", "status", "prod", "--project-dir", str(project), "--format", "json")
    budget = json.loads(status.output)["errorBudget"]
    assert (budget["requests"], budget["failures"], budget["exhausted"], budget["freezesPromotion"]) == (
        10_000, int(allowed) + 10, True, True
    )
    text = azml("release", "status", "prod", "--project-dir", str(project))
    assert "EXHAUSTED" in text.output and "PROMOTE frozen" in text.output

    # The release job commits from a checkout: the traffic run carries its HEAD.
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                    "commit", "-q", "--allow-empty", "-m", "canary"], check=True)
    log_verdict(project, Decision.ROLLBACK)
    rolled_back = azml("release", "advance", "prod", "-e", ENDPOINT, "--project-dir", str(project))
    assert rolled_back.exit_code == 0, rolled_back.output
    _, config = load_stack("prod", project)
    assert config.online_endpoints[0].traffic == {"blue": 100, "green": 0}
    client, experiment = client_and_experiment(uri)
    [change] = client.search_runs([experiment], t.run_filter(t.KIND_TRAFFIC))
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert change.data.tags[t.TAG_GIT_COMMIT] == head and change.data.tags[t.TAG_APPLIED] == "true"


@pytest.mark.parametrize("over", [0, 1])
def test_the_budget_is_exhausted_exactly_at_the_boundary(project: Path, over: int) -> None:
    uri, now = uri_of(project), utc_now()
    allowed = failures_allowed(project, 20_000)
    assert allowed == int(allowed)  # 20 000 requests make a whole budget at 99.5 %
    failures = int(allowed) - 1 + over  # one under the budget, or exactly on it
    observe(uri, "blue", now - dt.timedelta(minutes=30), 12_000, failures // 2)
    observe(uri, "green", now - dt.timedelta(minutes=20), 8_000, failures - failures // 2)
    _, config = load_stack("prod", project)
    budget = error_budget(config, "prod", tracking_uri=uri, experiment=EXPERIMENT, now=now)
    assert (budget.requests, budget.failures) == (20_000, failures)
    assert budget.exhausted is bool(over)

    log_verdict(project, Decision.PROMOTE)
    result = azml("release", "advance", "prod", "-e", ENDPOINT, "--project-dir", str(project))
    _, after = load_stack("prod", project)
    if over:
        assert result.exit_code == 1 and "EXHAUSTED" in result.output
        assert after.online_endpoints[0].traffic == {"blue": 90, "green": 10}
    else:
        assert result.exit_code == 0, result.output
        assert "1 failures left" in result.output
        assert after.online_endpoints[0].traffic == {"blue": 75, "green": 25}


def test_an_unknown_budget_does_not_freeze_but_says_so(project: Path) -> None:
    log_verdict(project, Decision.PROMOTE)
    result = azml("release", "advance", "prod", "-e", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    assert "unknown, no requests recorded" in result.output and "not frozen" in result.output
    status = azml("release", "status", "prod", "--project-dir", str(project))
    assert "unknown, no requests recorded" in status.output


def test_the_freeze_follows_the_availability_alert_unless_set(project: Path) -> None:
    _, prod = load_stack("prod", project)
    _, dev = load_stack("dev", ROOT)
    assert policy(prod) == (True, prod.alerts.availability.objective_percent)
    assert policy(dev)[0] is False  # dev: errorBudget.enabled false, and no availability alert
    unset = prod.model_copy(update={"release": prod.release.model_copy(update={"error_budget": type(prod.release.error_budget)()})})
    off = unset.model_copy(update={"alerts": unset.alerts.model_copy(update={"enabled": False})})
    assert policy(unset)[0] is True and policy(off)[0] is False


def test_bad_budget_config_names_the_key(project: Path) -> None:
    stack_file = project / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text().replace("errorBudget: {enabled: true}", "errorBudget: {objectivePercent: 100}"))
    result = azml("release", "status", "prod", "--project-dir", str(project))
    assert result.exit_code == 2 and "objectivePercent" in result.output


class StaticCredential:
    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)


def test_the_budget_reads_log_analytics_month_to_date(tmp_path: Path, loganalytics: LogAnalyticsServer) -> None:
    project = canary_project(tmp_path / "p", {"blue": 90, "green": 10}, metrics={"azureMonitor": {"workspaceId": loganalytics.workspace_id}})
    _, config = load_stack("prod", project)
    full = endpoint_name(config, ENDPOINT)
    now = utc_now()
    rng = np.random.default_rng(7)
    blue = np.where(rng.random(4000) < 0.004, 503, 200)
    green = np.where(rng.random(1000) < 0.02, 500, 200)
    age = min(dt.timedelta(minutes=10), (now - month_start(now)) / 2)
    loganalytics.add_requests(full, "blue", rng.gamma(4, 25, 4000), blue, age)
    loganalytics.add_requests(full, "green", rng.gamma(4, 25, 1000), green, age)
    loganalytics.add_requests(full, "blue", np.full(500, 9.0), np.full(500, 503), (now - month_start(now)) + dt.timedelta(days=2))
    budget = error_budget(config, "prod", tracking_uri="sqlite:////nonexistent/mlruns.db", experiment=EXPERIMENT, now=utc_now(),
                          credential=StaticCredential(), logs_endpoint=loganalytics.endpoint)
    assert budget.source == "Azure Monitor" and budget.error is None
    assert (budget.requests, budget.failures) == (5000, int((blue >= 500).sum() + (green >= 500).sum()))


# --- canary time limit --------------------------------------------------------


def held_verdict(project: Path) -> tuple[Any, Verdict]:
    """The real gate on too few samples: every metric INCONCLUSIVE, so HOLD."""
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    few = {t.METRIC_ACCURACY: Measure(0.9, 10), t.METRIC_LATENCY_P95: Measure(100.0, 10), t.METRIC_ERROR_RATE: Measure(0.0, 10)}
    verdict = gate_evaluate(
        release.config.release, stack="prod", endpoint=ENDPOINT, champion=Observation("blue", few),
        canary=Observation("green", few), phase="live", traffic=release.endpoint.traffic,
        mirror_traffic=release.endpoint.mirror_traffic, stack_file_sha256="0" * 64, computed_at=utc_now().isoformat(),
    )
    assert verdict.decision is Decision.HOLD
    return release, verdict


def traffic_change(uri: str, at: dt.datetime, before: dict, after: dict, applied: str = "true") -> str:
    return seed_run(
        uri, t.KIND_TRAFFIC, at, tags={t.TAG_ENDPOINT: ENDPOINT, t.TAG_APPLIED: applied},
        params={"before": json.dumps(before), "after": json.dumps(after)},
    )


NONE = {"traffic": {"blue": 100, "green": 0}, "mirrorTraffic": {}}
MIRROR = {"traffic": {"blue": 100}, "mirrorTraffic": {"green": 10}}
STEP1 = {"traffic": {"blue": 90, "green": 10}, "mirrorTraffic": {}}


@pytest.mark.parametrize("past", [False, True])
def test_a_hold_past_the_limit_becomes_rollback_and_not_before(project: Path, past: bool) -> None:
    uri, now = uri_of(project), utc_now()
    release, verdict = held_verdict(project)
    limit = release.config.release.max_canary_minutes
    elapsed = limit + 5 if past else limit - 5
    # An earlier stint of green, rolled back: the limit counts from the latest start only.
    traffic_change(uri, now - dt.timedelta(minutes=limit * 3), NONE, MIRROR)
    traffic_change(uri, now - dt.timedelta(minutes=limit * 2), STEP1, NONE)
    traffic_change(uri, now - dt.timedelta(minutes=elapsed + 60), NONE, MIRROR, applied="false")  # never applied
    traffic_change(uri, now - dt.timedelta(minutes=elapsed), NONE, MIRROR)
    traffic_change(uri, now - dt.timedelta(minutes=elapsed - 1), MIRROR, STEP1)  # a ladder step: no new start

    decided = time_limit(release, verdict, tracking_uri=uri, now=now)
    if past:
        assert decided.decision is Decision.ROLLBACK
        assert decided.rollback_triggers == (f"timeLimit canary live for {elapsed} min > {limit}",)
        assert "rollback:timeLimit" in decided.gate_param()
    else:
        assert decided.decision is Decision.HOLD and decided.rollback_triggers == ()
        assert f"live for {elapsed} of {limit} min" in decided.notes[-1]
    assert decided.metrics == verdict.metrics


def test_without_a_traffic_change_the_first_verdict_starts_the_clock(project: Path) -> None:
    uri, now = uri_of(project), utc_now()
    release, verdict = held_verdict(project)
    limit = release.config.release.max_canary_minutes
    unchanged = time_limit(release, verdict, tracking_uri=uri, now=now)
    assert unchanged.decision is Decision.HOLD and "time limit not checked" in unchanged.notes[-1]

    tags = {t.TAG_ENDPOINT: ENDPOINT, t.TAG_DEPLOYMENT: "green", t.TAG_DECISION: "HOLD"}
    seed_run(uri, t.KIND_VERDICT, now - dt.timedelta(minutes=limit + 30), tags=tags)
    seed_run(uri, t.KIND_VERDICT, now - dt.timedelta(minutes=10), tags=tags)
    seed_run(uri, t.KIND_VERDICT, now - dt.timedelta(minutes=limit * 2), tags={**tags, t.TAG_DEPLOYMENT: "red"})
    decided = time_limit(release, verdict, tracking_uri=uri, now=now)
    assert decided.rollback_triggers == (f"timeLimit canary live for {limit + 30} min > {limit}",)

    promoted = Verdict(**{**verdict.__dict__, "decision": Decision.PROMOTE})
    assert time_limit(release, promoted, tracking_uri=uri, now=now) == promoted


# --- delivery KPIs ------------------------------------------------------------


def test_kpis_from_a_seeded_audit_trail(project: Path) -> None:
    uri = uri_of(project)
    until = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
    since = until - dt.timedelta(days=14)
    day = lambda n, minutes=0: since + dt.timedelta(days=n, minutes=minutes)  # noqa: E731
    end_point = {t.TAG_ENDPOINT: ENDPOINT}

    def verdict(at: dt.datetime, canary: str, decision: str, commit_at: dt.datetime | None) -> str:
        tags = {**end_point, t.TAG_DEPLOYMENT: canary, t.TAG_DECISION: decision}
        if commit_at is not None:
            tags |= {t.TAG_GIT_COMMIT: "f" * 40, t.TAG_GIT_COMMIT_TIME: commit_at.isoformat()}
        return seed_run(uri, t.KIND_VERDICT, at, tags=tags)

    def change(at: dt.datetime, verdict_run: str, before: dict, after: dict, applied: str = "true") -> None:
        seed_run(uri, t.KIND_TRAFFIC, at, tags={**end_point, t.TAG_VERDICT_RUN: verdict_run, t.TAG_APPLIED: applied},
                 params={"before": json.dumps({"traffic": before}), "after": json.dumps({"traffic": after})})

    # Before the period: green completes (a boundary, not counted).
    v = verdict(day(-3), "green", "PROMOTE", day(-4))
    change(day(-3, 5), v, {"blue": 50, "green": 50}, {"blue": 0, "green": 100})
    # Release 1: teal, two steps; committed at day 1 00:00, first verdict at day 1 +60 min.
    commit1 = day(1)
    v = verdict(day(1, 60), "teal", "PROMOTE", commit1)
    change(day(1, 70), v, {"green": 90, "teal": 10}, {"green": 50, "teal": 50})
    v = verdict(day(2, 60), "teal", "PROMOTE", day(2))  # HEAD moved on: the release's change is still commit1
    change(day(2, 75), v, {"green": 50, "teal": 50}, {"green": 0, "teal": 100})
    completions = [(day(2, 75), commit1)]
    # Release 2: red rolled back 12 min after its ROLLBACK verdict.
    v = verdict(day(4), "red", "ROLLBACK", day(3))
    change(day(4, 12), v, {"teal": 90, "red": 10}, {"teal": 100, "red": 0})
    restores = [12.0]
    # Release 3: cyan completes in one step, from a machine without git.
    v = verdict(day(6), "cyan", "PROMOTE", None)
    change(day(6, 3), v, {"teal": 50, "cyan": 50}, {"teal": 0, "cyan": 100})
    untagged = 1
    # A completion recorded but never applied (the writer died): no release.
    v = verdict(day(8), "lime", "PROMOTE", day(7))
    change(day(8, 1), v, {"cyan": 50, "lime": 50}, {"cyan": 0, "lime": 100}, applied="false")
    # Drift at day 9 and day 9 +2 h, answered by one retraining decision 5 h after the first;
    # a report under its threshold is no drift.
    drift = lambda at, psi: seed_run(uri, t.KIND_DRIFT, at, tags=end_point, params={"threshold": "0.2"}, metrics={"max_psi": psi})  # noqa: E731
    drift(day(9), 0.35)
    drift(day(9, 120), 0.5)
    seed_run(uri, t.KIND_RETRAIN, day(9, 300), tags=end_point)
    drift(day(10), 0.1)
    seed_run(uri, t.KIND_RETRAIN, day(10, 30), tags=end_point)
    reactions = [5.0]

    result = azml("release", "kpis", "prod", "--project-dir", str(project), "--since", since.isoformat(),
                  "--until", until.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    kpis = {k["key"]: k for k in json.loads(result.output)["kpis"]}
    completed = len(completions) + untagged
    expected = {
        "leadTime": (statistics.median([(done - commit).total_seconds() / 3600 for done, commit in completions]), len(completions)),
        "deploymentFrequency": (completed / ((until - since).days / 7), completed),
        "changeFailureRate": (100 * len(restores) / (completed + len(restores)), completed + len(restores)),
        "timeToRestore": (statistics.median(restores), len(restores)),
        "driftReactionTime": (statistics.median(reactions), len(reactions)),
    }
    targets = {key: (comparison, target) for key, _, _, comparison, target in TARGETS}
    for key, (value, samples) in expected.items():
        assert kpis[key]["value"] == pytest.approx(value) and kpis[key]["samples"] == samples, key
        comparison, target = targets[key]
        assert kpis[key]["met"] is (value < target if comparison == "<" else value >= target), key
    assert "without azml.git_commit_time" in kpis["leadTime"]["note"]

    text = azml("release", "kpis", "prod", "--project-dir", str(project), "--since", since.isoformat(), "--until", until.isoformat())
    assert text.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in text.output.splitlines() if line.count("│") > 5}
    for key, name, unit, comparison, target in TARGETS:
        value = expected[key][0]
        assert f"{value:.2f}" in rows[name] and f"{target:g}" in rows[name], name
        assert ("NOT met" in rows[name]) is not kpis[key]["met"], name


def test_kpis_without_data_are_no_data_never_met(project: Path) -> None:
    result = azml("release", "kpis", "prod", "--project-dir", str(project), "--format", "json")
    assert result.exit_code == 0
    assert {(k["status"], k["met"]) for k in json.loads(result.output)["kpis"]} == {("no data", None)}
    markdown = azml("release", "kpis", "prod", "--project-dir", str(project), "--format", "markdown")
    assert markdown.output.count("| no data |") >= len(TARGETS) and "| met |" not in markdown.output


def test_kpis_bad_input_exits_2_with_one_line(project: Path) -> None:
    for args, option in ((["--since", "last tuesday"], "--since"), (["--format", "yaml"], "--format"),
                         (["--since", "2026-11-02", "--until", "2026-11-01"], "--since")):
        result = azml("release", "kpis", "prod", "--project-dir", str(project), *args)
        assert result.exit_code == 2 and option in result.output, args
    unknown = azml("release", "kpis", "staging", "--project-dir", str(project))
    assert unknown.exit_code == 2 and "staging" in unknown.output


def test_commit_tags_name_head_or_nothing(tmp_path: Path) -> None:
    assert commit_tags(tmp_path) == {}  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True, env={"GIT_COMMITTER_DATE": "2026-11-02T10:00:00+00:00", "PATH": "/usr/bin:/bin"})
    tags = commit_tags(tmp_path)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags[t.TAG_GIT_COMMIT] == head
    assert dt.datetime.fromisoformat(tags[t.TAG_GIT_COMMIT_TIME]) == dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
