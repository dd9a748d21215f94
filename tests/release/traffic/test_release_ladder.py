"""The traffic ladder: pure ladder rules, the comment-preserving stack file
edit, and `advance` / `status` against a real sqlite MLflow store on a copy of
the prod stack."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azml.release.traffic.ladder import LadderError, Split, infer_roles, next_split, position
from azml.release.traffic.stackedit import (
    EditRefused,
    LockHeld,
    StackChanged,
    edit_traffic_text,
    lock_path,
    rewrite_traffic,
    temp_files,
)
from azml.release.evidence.verdict import Decision, Verdict, file_sha256, utc_now

from ... import release_support
from ...release_support import ENDPOINT, GREEN, canary_stack_text

EXPERIMENT = "credit-risk-release"  # the prod stack's azml:release metrics.experiment
LADDER = [10, 25, 50, 100]


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated sqlite MLflow store per worker, copied by each test."""
    from azml import tracking

    db = tmp_path_factory.mktemp("mlflow") / "mlruns.db"
    uri = f"sqlite:///{db}"
    tracking.experiment_id(tracking.client(uri), EXPERIMENT)
    return db


def make_project(directory: Path, mlflow_template: Path, stack_text: str) -> Path:
    return release_support.make_project(directory, stack_text, mlflow_template)


@pytest.fixture
def project(tmp_path: Path, mlflow_template: Path) -> Path:
    return make_project(tmp_path / "project", mlflow_template, canary_stack_text())


def tracking_uri(project_dir: Path) -> str:
    return f"sqlite:///{project_dir / 'mlruns.db'}"


def log_verdict(
    project_dir: Path,
    decision: Decision,
    *,
    champion: str = "blue",
    canary: str = "green",
    computed_at: dt.datetime | None = None,
    stack: str = "prod",
) -> Verdict:
    """A verdict on the stack file as it is now, logged like `evaluate` does."""
    from azml.config import load_stack
    from azml.release import store

    stack_file, config = load_stack(stack, project_dir)
    endpoint = next(e for e in config.online_endpoints if e.name == ENDPOINT)
    verdict = Verdict(
        stack=stack,
        endpoint=ENDPOINT,
        champion=champion,
        canary=canary,
        phase="live" if endpoint.traffic.get(canary) else "mirror",
        decision=decision,
        metrics=(),
        rollback_triggers=("errorRate 0.09 > 3 x champion 0.01",) if decision is Decision.ROLLBACK else (),
        traffic=dict(endpoint.traffic),
        mirror_traffic=dict(endpoint.mirror_traffic),
        stack_file_sha256=file_sha256(stack_file.path),
        computed_at=(computed_at or utc_now()).isoformat(),
        window_minutes=1440,
    )
    return store.log_verdict(tracking_uri(project_dir), EXPERIMENT, verdict)


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    import difflib

    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def traffic_runs(project_dir: Path) -> list[dict[str, object]]:
    from azml import tracking as t

    client = t.client(tracking_uri(project_dir))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{t.TAG_KIND}` = '{t.KIND_TRAFFIC}'",
        order_by=["attributes.start_time ASC"],
    )
    return [
        {
            "verdict": r.data.tags.get("azml.verdict_run"),
            "before": json.loads(r.data.params["before"]),
            "after": json.loads(r.data.params["after"]),
            "sha": r.data.params["stack_file_sha256"],
            "status": r.info.status,
            "applied": r.data.tags.get("azml.applied"),
        }
        for r in runs
    ]


def cli_app():  # type: ignore[no-untyped-def]
    import typer

    from azml.cli.release.traffic import register

    app = typer.Typer()
    register(app)
    return app


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli_app(), list(args), catch_exceptions=False)


# --- pure ladder rules ------------------------------------------------------


def promote(traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, **kw):  # type: ignore[no-untyped-def]
    return next_split(
        Split.of(traffic, mirror_traffic or {}), champion="blue", canary="green", ladder=LADDER, decision=Decision.PROMOTE, **kw
    )


def test_promote_walks_the_ladder_step_by_step() -> None:
    split = Split.of({"blue": 90, "green": 10}, {})
    seen = []
    for _ in range(5):
        move = next_split(split, champion="blue", canary="green", ladder=LADDER, decision=Decision.PROMOTE)
        seen.append(dict(move.after.traffic))
        split = move.after
    assert seen == [
        {"blue": 75, "green": 25},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
        {"blue": 0, "green": 100},
        {"blue": 0, "green": 100},
    ]
    final = promote({"blue": 0, "green": 100})
    assert not final.changed and final.complete
    assert "ladder complete" in final.summary


def test_promote_from_mirror_goes_live_at_the_first_step_and_removes_the_mirror() -> None:
    move = promote({"blue": 100}, {"green": 10})
    assert move.after == Split({"blue": 90, "green": 10}, {})
    assert move.position_before.label == "mirror 10% (before step 1/4)"
    assert move.position_after.label == "10% (step 1/4)"
    # No traffic at all for the canary yet: also the first step.
    assert promote({"blue": 100, "green": 0}).after.traffic == {"blue": 90, "green": 10}


def test_promote_between_steps_goes_to_the_next_step_above() -> None:
    assert promote({"blue": 85, "green": 15}).after.traffic == {"blue": 75, "green": 25}
    assert promote({"blue": 95, "green": 5}).after.traffic == {"blue": 90, "green": 10}
    assert promote({"blue": 1, "green": 99}).after.traffic == {"blue": 0, "green": 100}
    assert position(Split.of({"blue": 85, "green": 15}, {}), "green", LADDER).label == (
        "15% (between step 1/4 and step 2/4)"
    )
    assert position(Split.of({"blue": 95, "green": 5}, {}), "green", LADDER).label == "5% (below step 1/4)"


def test_promote_on_a_single_step_ladder_is_a_cut_over() -> None:
    move = next_split(
        Split.of({"blue": 100}, {}), champion="blue", canary="green", ladder=[100], decision=Decision.PROMOTE,
        deployments=["blue", "green"],
    )
    assert move.after.traffic == {"blue": 0, "green": 100} and move.complete


def test_hold_changes_nothing() -> None:
    split = Split.of({"blue": 75, "green": 25}, {})
    move = next_split(split, champion="blue", canary="green", ladder=LADDER, decision=Decision.HOLD)
    assert move.after == split and not move.changed
    assert move.summary == "HOLD: green stays at 25% (step 2/4)"


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "after"),
    [
        ({"blue": 50, "green": 50}, {}, Split({"blue": 100, "green": 0}, {})),
        ({"blue": 100}, {"green": 20}, Split({"blue": 100}, {})),
        ({"blue": 0, "green": 100}, {}, Split({"blue": 100, "green": 0}, {})),
        ({"green": 100}, {}, Split({"green": 0, "blue": 100}, {})),  # champion re-added, appended
    ],
)
def test_rollback_restores_the_champion_from_anywhere(
    traffic: dict[str, int], mirror_traffic: dict[str, int], after: Split
) -> None:
    move = next_split(
        Split.of(traffic, mirror_traffic), champion="blue", canary="green", ladder=LADDER, decision=Decision.ROLLBACK,
        deployments=["blue", "green"],
    )
    assert move.after == after and list(move.after.traffic) == list(after.traffic)


def test_rollback_when_already_rolled_back_changes_nothing() -> None:
    move = next_split(
        Split.of({"blue": 100, "green": 0}, {}), champion="blue", canary="green", ladder=LADDER,
        decision=Decision.ROLLBACK,
    )
    assert not move.changed and "already" in move.summary


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "deployments", "message"),
    [
        ({"blue": 100}, {}, ["blue"], "canary green is not a declared deployment (declared: blue)"),
        ({"green": 100}, {}, ["green"], "champion blue is not a declared deployment"),
        ({"blue": 80, "green": 10, "red": 10}, {}, ["blue", "green", "red"], "red holds 10% live"),
        ({"blue": 90, "green": 10}, {"red": 5}, ["blue", "green", "red"], "red holds 0% live and 5% mirror"),
        ({"blue": 80, "green": 10}, {}, ["blue", "green"], "values must sum to 0 or 100"),
        ({}, {}, ["blue", "green"], "routes no live traffic"),
    ],
)
def test_splits_the_ladder_refuses(
    traffic: dict[str, int], mirror_traffic: dict[str, int], deployments: list[str], message: str
) -> None:
    with pytest.raises(LadderError) as raised:
        promote(traffic, mirror_traffic, deployments=deployments)
    assert message in str(raised.value)


def test_a_third_deployment_at_zero_is_kept_and_ignored() -> None:
    move = promote({"blue": 75, "red": 0, "green": 25}, deployments=["blue", "green", "red"])
    assert move.after.traffic == {"blue": 50, "red": 0, "green": 50}


def test_same_champion_and_canary_is_refused() -> None:
    with pytest.raises(LadderError, match="same deployment"):
        next_split(Split.of({"blue": 100}, {}), champion="blue", canary="blue", ladder=LADDER, decision=Decision.PROMOTE)


def test_roles_inferred_from_the_split() -> None:
    assert infer_roles(Split.of({"blue": 75, "green": 25}, {})) == ("blue", "green")
    assert infer_roles(Split.of({"blue": 100}, {"green": 10})) == ("blue", "green")
    assert infer_roles(Split.of({"blue": 100, "green": 0}, {})) == ("blue", None)
    assert position(Split.of({"blue": 0, "green": 100}, {}), "green", LADDER).label == "100% (step 4/4, complete)"


# --- the text edit ------------------------------------------------------------


def test_edit_keeps_everything_but_the_changed_numbers() -> None:
    old = canary_stack_text()
    new = edit_traffic_text(old, ENDPOINT, {"blue": 75, "green": 25}, {})
    removed, added = changed_lines(old, new)
    assert removed == ["        blue: 90", "        green: 10"]
    assert added == ["        blue: 75", "        green: 25"]


def test_edit_keeps_flow_style_and_fills_an_empty_flow_mapping() -> None:
    old = canary_stack_text(traffic="      traffic: {blue: 100, green: 0}\n")
    new = edit_traffic_text(old, ENDPOINT, {"blue": 100, "green": 0}, {"green": 10})
    assert changed_lines(old, new) == (["      mirrorTraffic: {}"], ["      mirrorTraffic: {green: 10}"])
    newer = edit_traffic_text(new, ENDPOINT, {"blue": 90, "green": 10}, {})
    assert changed_lines(new, newer) == (
        ["      traffic: {blue: 100, green: 0}", "      mirrorTraffic: {green: 10}"],
        ["      traffic: {blue: 90, green: 10}", "      mirrorTraffic: {}"],
    )


def test_edit_moves_comments_that_followed_a_removed_mirror_entry() -> None:
    old = canary_stack_text(traffic="      traffic: {blue: 100}\n", mirror_traffic="\n        green: 10  # shadow first\n"
                            "      # about the next key\n      instanceHint: 1")
    old = old.replace("      instanceHint: 1\n", "")
    new = edit_traffic_text(old, ENDPOINT, {"blue": 90, "green": 10}, {})
    assert comment_lines(new) == comment_lines(old)
    assert "      mirrorTraffic: {}\n      # about the next key\n" in new


def test_edit_appends_a_new_key_before_following_comments() -> None:
    old = "config:\n  azml:onlineEndpoints:\n    - name: e\n      traffic:\n        blue: 100\n  # next section\n  azml:x: 1\n"
    new = edit_traffic_text(old, "e", {"blue": 90, "green": 10}, {})
    assert new == (
        "config:\n  azml:onlineEndpoints:\n    - name: e\n      traffic:\n        blue: 90\n        green: 10\n"
        "  # next section\n  azml:x: 1\n"
    )


def test_edit_of_an_unknown_endpoint_is_refused() -> None:
    with pytest.raises(EditRefused, match="no online endpoint 'nope'"):
        edit_traffic_text(canary_stack_text(), "nope", {"blue": 100}, {})


# --- the locked, checked write --------------------------------------------------


def test_rewrite_refuses_a_changed_file_and_an_invalid_result(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    original = path.read_bytes()
    with pytest.raises(StackChanged, match="changed since the verdict was computed at T; run `azml release evaluate`"):
        rewrite_traffic(path, ENDPOINT, {"blue": 75, "green": 25}, {}, expected_sha256="0" * 64, computed_at="T")
    # A split Azure would refuse (sum 90) fails validation before it can replace the file.
    with pytest.raises(EditRefused, match="values must sum to 0 or 100"):
        rewrite_traffic(path, ENDPOINT, {"blue": 80, "green": 10}, {}, expected_sha256=file_sha256(path))
    assert path.read_bytes() == original and temp_files(path) == []


def test_rewrite_refuses_while_the_lock_is_held_and_keeps_the_file_mode(project: Path) -> None:
    from filelock import FileLock

    path = project / "Pulumi.prod.yaml"
    path.chmod(0o640)
    with FileLock(str(lock_path(path))):
        pass  # the lock file exists from now on, unlocked
    holder = FileLock(str(lock_path(path)), thread_local=False)
    import threading

    errors: list[Exception] = []
    holder.acquire()
    try:
        thread = threading.Thread(
            target=lambda: errors.append(
                _try(lambda: rewrite_traffic(path, ENDPOINT, {"blue": 75, "green": 25}, {},
                                             expected_sha256=file_sha256(path)))
            )
        )
        thread.start()
        thread.join()
    finally:
        holder.release()
    assert isinstance(errors[0], LockHeld)
    assert "another `azml release advance` holds the lock on" in str(errors[0])
    result = rewrite_traffic(path, ENDPOINT, {"blue": 75, "green": 25}, {}, expected_sha256=file_sha256(path))
    assert result.after_sha256 == file_sha256(path)
    assert path.stat().st_mode & 0o777 == 0o640


def _try(action):  # type: ignore[no-untyped-def]
    try:
        action()
    except Exception as error:  # noqa: BLE001 - returned for the assertion
        return error
    return None


# --- advance and status on a copy of the prod stack --------------------------------


def test_full_ladder_walk_keeps_comments_and_changes_only_the_split(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    original = path.read_text(encoding="utf-8")
    original_comments = comment_lines(original)
    assert len(original_comments) > 10
    expected = [(90, 10), (75, 25), (50, 50), (0, 100)]
    verdicts = []
    for (blue_before, green_before), (blue, green) in zip(expected, expected[1:]):
        before = path.read_text(encoding="utf-8")
        verdicts.append(log_verdict(project, Decision.PROMOTE))
        result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
        assert result.exit_code == 0, result.output
        assert f"apply it with: pulumi up --stack prod --cwd {project}" in result.output
        after = path.read_text(encoding="utf-8")
        assert comment_lines(after) == original_comments
        removed, added = changed_lines(before, after)
        assert removed == [f"        blue: {blue_before}", f"        green: {green_before}"]
        assert added == [f"        blue: {blue}", f"        green: {green}"]
    assert "        blue: 0\n        green: 100\n" in path.read_text(encoding="utf-8")
    assert "green is the sole live deployment and becomes champion" in result.output
    # Against the original, the whole walk changed two numbers.
    assert changed_lines(original, path.read_text(encoding="utf-8")) == (
        ["        blue: 90", "        green: 10"], ["        blue: 0", "        green: 100"]
    )
    runs = traffic_runs(project)
    assert [r["verdict"] for r in runs] == [v.run_id for v in verdicts]
    assert [r["after"]["traffic"] for r in runs] == [{"blue": b, "green": g} for b, g in expected[1:]]
    assert runs[0]["before"] == {"traffic": {"blue": 90, "green": 10}, "mirrorTraffic": {}}
    assert runs[-1]["sha"] == file_sha256(path)
    assert {(r["status"], r["applied"]) for r in runs} == {("FINISHED", "true")}

    # One more PROMOTE at 100: nothing to apply.
    log_verdict(project, Decision.PROMOTE)
    done = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert done.exit_code == 0 and "nothing to apply" in done.output and "ladder complete" in done.output
    status = json.loads(run("status", "prod", "--project-dir", str(project), "--format", "json").output)
    (endpoint,) = status["endpoints"]
    assert endpoint["position"]["label"] == "100% (step 4/4, complete)"
    assert endpoint["lastVerdict"]["decision"] == "PROMOTE" and endpoint["lastVerdict"]["matchesStackFile"]


def test_rollback_from_mid_ladder_and_mirror_phase(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(
        tmp_path / "p", mlflow_template, canary_stack_text(traffic="      traffic: {blue: 50, green: 50}\n")
    )
    path = project / "Pulumi.prod.yaml"
    before = path.read_text(encoding="utf-8")
    log_verdict(project, Decision.ROLLBACK)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    assert "ROLLBACK: blue back to 100%, green to 0%, mirror removed" in result.output
    assert changed_lines(before, path.read_text(encoding="utf-8")) == (
        ["      traffic: {blue: 50, green: 50}"], ["      traffic: {blue: 100, green: 0}"]
    )
    # Mirror phase: the mirror goes, the live split stays.
    path.write_text(before.replace("traffic: {blue: 50, green: 50}", "traffic: {blue: 100}").replace(
        "mirrorTraffic: {}", "mirrorTraffic: {green: 20}"), encoding="utf-8")
    shadow = path.read_text(encoding="utf-8")
    log_verdict(project, Decision.ROLLBACK)
    assert run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project)).exit_code == 0
    assert changed_lines(shadow, path.read_text(encoding="utf-8")) == (
        ["      mirrorTraffic: {green: 20}"], ["      mirrorTraffic: {}"]
    )
    assert len(traffic_runs(project)) == 2


def test_hold_applies_nothing(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.HOLD)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 0
    assert "nothing to apply" in result.output and "HOLD for green" in result.output
    assert path.read_bytes() == before and traffic_runs(project) == []


def test_refuses_a_file_changed_after_the_verdict(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    verdict = log_verdict(project, Decision.PROMOTE)
    edited = path.read_text(encoding="utf-8").replace("# Production:", "# Production (edited):")
    path.write_text(edited, encoding="utf-8")
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 1
    assert (
        f"error: Pulumi.prod.yaml changed since the verdict was computed at {verdict.computed_at}; "
        "run `azml release evaluate` again"
    ) in result.output
    assert path.read_text(encoding="utf-8") == edited and traffic_runs(project) == []


def test_refuses_a_stale_verdict_and_a_missing_one(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    no_store = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project),
                   "--tracking-uri", "sqlite:///elsewhere.db")
    assert no_store.exit_code == 1 and "there is no tracking store at" in no_store.output
    assert not (project / "elsewhere.db").exists()  # reading did not create one
    missing = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert missing.exit_code == 1 and "no verdict for prod/credit-risk-endpoint" in missing.output
    log_verdict(project, Decision.PROMOTE, computed_at=utc_now() - dt.timedelta(minutes=1441))
    stale = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert stale.exit_code == 1
    assert "older than verdictMaxAgeMinutes (1440)" in stale.output and "evaluate prod" in stale.output
    assert path.read_bytes() == before


def test_refuses_a_verdict_whose_canary_is_gone(project: Path) -> None:
    log_verdict(project, Decision.PROMOTE, canary="green")
    path = project / "Pulumi.prod.yaml"
    # Same file bytes are not needed: the deployment check runs before the file check.
    text = path.read_text(encoding="utf-8").replace(GREEN, "").replace("        green: 10\n", "").replace(
        "        blue: 90\n", "        blue: 100\n")
    path.write_text(text, encoding="utf-8")
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 1
    assert "the verdict's canary green is no longer a deployment of credit-risk-endpoint (declared: blue)" in (
        result.output
    )


def test_bad_input_lists_what_is_declared(project: Path) -> None:
    unknown_endpoint = run("advance", "prod", "--endpoint", "nope", "--project-dir", str(project))
    assert unknown_endpoint.exit_code == 2
    assert "declares no online endpoint 'nope' (declared: credit-risk-endpoint)" in unknown_endpoint.output
    unknown_stack = run("status", "staging", "--project-dir", str(project))
    assert unknown_stack.exit_code == 2 and "stacks beside Pulumi.yaml: prod" in unknown_stack.output


def test_up_without_the_pulumi_cli_fails_after_updating_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(project))  # no pulumi here
    path = project / "Pulumi.prod.yaml"
    log_verdict(project, Decision.PROMOTE)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project), "--up", "--yes")
    assert result.exit_code == 1
    assert "error: --up needs the Pulumi CLI" in result.output
    assert f"the stack file was already updated: run `pulumi up --stack prod --cwd {project}`" in result.output
    assert "        green: 25\n" in path.read_text(encoding="utf-8")


def test_up_runs_the_automation_api_on_the_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What can be checked without the CLI: the stack and work dir handed to
    the Automation API, and that its output is streamed."""
    from pulumi import automation

    from azml.release.traffic import advance as advance_module

    calls: list[tuple[str, str]] = []

    class FakeStack:
        def up(self, on_output):  # type: ignore[no-untyped-def]
            on_output("Updating (prod)")
            return type("Result", (), {"summary": type("Summary", (), {"result": "succeeded"})()})()

    def select_stack(stack_name: str, work_dir: str) -> FakeStack:
        calls.append((stack_name, work_dir))
        return FakeStack()

    monkeypatch.setattr(advance_module, "find_pulumi", lambda: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    log_verdict(project, Decision.PROMOTE)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project), "--up", "--yes")
    assert result.exit_code == 0, result.output
    assert calls == [("prod", str(project.resolve()))]
    assert "Updating (prod)" in result.output and "pulumi up: succeeded" in result.output


def test_up_without_yes_off_a_terminal_does_not_deploy(project: Path) -> None:
    log_verdict(project, Decision.PROMOTE)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project), "--up")
    assert result.exit_code == 1 and "--up without --yes needs a terminal" in result.output


def test_status_shows_split_position_and_last_verdict(project: Path) -> None:
    none_yet = json.loads(run("status", "prod", "--project-dir", str(project), "--format", "json").output)
    assert none_yet["endpoints"][0]["lastVerdict"] is None
    assert none_yet["endpoints"][0]["position"]["label"] == "10% (step 1/4)"
    verdict = log_verdict(project, Decision.PROMOTE)
    assert run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project)).exit_code == 0
    status = json.loads(run("status", "prod", "--project-dir", str(project), "--format", "json").output)
    (endpoint,) = status["endpoints"]
    assert endpoint["traffic"] == {"blue": 75, "green": 25} and endpoint["mirrorTraffic"] == {}
    assert (endpoint["champion"], endpoint["canary"]) == ("blue", "green")
    assert endpoint["position"]["label"] == "25% (step 2/4)"
    assert endpoint["lastVerdict"]["computedAt"] == verdict.computed_at
    assert endpoint["lastVerdict"]["fresh"] is True
    assert endpoint["lastVerdict"]["matchesStackFile"] is False  # applied: evaluate again before the next step
    assert endpoint["lastTrafficChangeAt"] is not None and endpoint["lastVerdict"]["applied"] is True
    text = run("status", "prod", "--project-dir", str(project))
    assert text.exit_code == 0
    for fragment in ("credit-risk-endpoint", "blue 75%, green 25%", "25% (step 2/4)", "PROMOTE at", "applied"):
        assert fragment in text.output


def test_status_without_a_readable_store_still_shows_the_split(project: Path) -> None:
    (project / "broken.db").write_text("not a database\n" * 100)
    result = run("status", "prod", "--project-dir", str(project), "--tracking-uri", "sqlite:///broken.db")
    assert result.exit_code == 1
    assert "blue 90%, green 10%" in result.output and "cannot read the tracking store" in result.output


def test_refuses_a_read_only_stack_file(project: Path) -> None:
    """0444 says "do not change this file": refused before anything is
    recorded, also for root (who could write it): the mode bits are checked."""
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.PROMOTE)
    path.chmod(0o444)
    result = run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {path} is read-only (mode 0444): not rewriting it; make it writable "
        "(chmod u+w Pulumi.prod.yaml) to let the release controller change it"
    )
    assert path.read_bytes() == before and path.stat().st_mode & 0o777 == 0o444
    assert traffic_runs(project) == [] and temp_files(path) == []
    path.chmod(0o644)  # writable again: the same verdict applies
    assert run("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project)).exit_code == 0
    assert "        green: 25\n" in path.read_text(encoding="utf-8")
