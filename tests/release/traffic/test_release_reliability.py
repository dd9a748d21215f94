"""Reliability of `azml release advance`: concurrent runs on one stack (one
wins, the other is refused) and kill -9 at any moment of a write (the stack
file is the old bytes or the new bytes, never anything else)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from azml.config import load_stack
from azml.config.stackfile import available_stacks
from azml.release.traffic.stackedit import edit_traffic_text, lock_path, rewrite_traffic, temp_files
from azml.release.evidence.verdict import Decision, file_sha256

from ...conftest import ROOT
from .test_release_ladder import (  # noqa: F401 - mlflow_template is a fixture
    ENDPOINT,
    canary_stack_text,
    log_verdict,
    make_project,
    mlflow_template,
    traffic_runs,
)

# A real `advance` in its own process, run once per round: everything is
# imported once, and each round starts when its file appears, so that two
# processes reach the lock together. Each round prints one JSON line.
RACER = textwrap.dedent(
    """
    import contextlib, io, json, sys, time
    from pathlib import Path
    import mlflow  # noqa: F401 - imported before the start signal
    from azml.release import store  # noqa: F401
    from azml.release.traffic import advance, stackedit  # noqa: F401
    from azml.cli.release.traffic import _standalone

    app = _standalone()
    signals, rounds, args = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    print("ready", flush=True)
    for number in range(rounds):
        go = signals / f"go-{number}"
        while not go.exists():
            time.sleep(0.001)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                app(args, prog_name="azml release")
                code = 0
            except SystemExit as exit:
                code = exit.code or 0
        print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}), flush=True)
    """
)

# Rewrites the stack file back and forth between two splits until killed.
# before_replace announces itself and sleeps a little, so that a kill can be
# aimed between the temporary file and the replace.
WRITER = textwrap.dedent(
    """
    import random, sys, time
    from pathlib import Path
    from azml.release.traffic.stackedit import rewrite_traffic
    from azml.release.evidence.verdict import file_sha256

    path = Path(sys.argv[1])
    a = {"blue": 90, "green": 10}
    b = {"blue": 75, "green": 25}
    def announce(sha):
        print("replacing", flush=True)
        time.sleep(random.uniform(0.02, 0.05))

    print("ready", flush=True)
    while True:
        text = path.read_text(encoding="utf-8")
        target = b if "        green: 10\\n" in text else a
        rewrite_traffic(path, "credit-risk-endpoint", target, {}, expected_sha256=file_sha256(path),
                        before_replace=announce)
    """
)

# An advance that stops right before replacing the file, to be killed there.
STALLED_ADVANCE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from azml.release.traffic.advance import advance

    def stall():
        print("replacing", flush=True)
        time.sleep(60)

    advance("prod", "credit-risk-endpoint", project_dir=Path(sys.argv[1]), before_replace=stall)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _wait_for(process: subprocess.Popen[str], line: str, timeout: float = 60) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = process.stdout.readline()
        if got.strip() == line:
            return
        if not got and process.poll() is not None:
            raise AssertionError(f"child exited {process.returncode}: {process.stderr.read() if process.stderr else ''}")
    raise AssertionError(f"child did not print {line!r} in {timeout}s")


def test_concurrent_advances_one_wins_the_other_is_refused(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    # PROMOTE 10 -> 25 -> 50 -> 100, then a ROLLBACK to 0.
    rounds = [
        (Decision.PROMOTE, 75, 25),
        (Decision.PROMOTE, 50, 50),
        (Decision.PROMOTE, 0, 100),
        (Decision.ROLLBACK, 100, 0),
    ]
    signals = tmp_path / "signals"
    signals.mkdir()
    args = ("advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project))
    racers = [_start(RACER, str(signals), str(len(rounds)), *args) for _ in range(2)]
    try:
        for racer in racers:
            _wait_for(racer, "ready")
        for number, (decision, blue, green) in enumerate(rounds):
            log_verdict(project, decision)
            (signals / f"go-{number}").touch()
            outcomes = [json.loads(racer.stdout.readline()) for racer in racers]  # type: ignore[union-attr]
            assert sorted(o["code"] for o in outcomes) == [0, 1], outcomes
            (loser,) = [o["err"] for o in outcomes if o["code"] == 1]
            assert (
                "another `azml release advance` holds the lock on" in loser
                or "changed since the verdict was computed" in loser
            ), loser
            assert f"        blue: {blue}\n        green: {green}\n" in path.read_text(encoding="utf-8")
            assert len(traffic_runs(project)) == number + 1
            load_stack("prod", project)
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
            racer.wait(timeout=30)
    assert temp_files(path) == []


def test_kill_9_while_rewriting_leaves_the_old_or_the_new_file(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    old = path.read_bytes()
    new = edit_traffic_text(old.decode(), ENDPOINT, {"blue": 75, "green": 25}, {}).encode()
    assert old != new
    rng = random.Random(20261126)
    kills, interrupted_writes = 14, 0
    for round_ in range(kills):
        writer = _start(WRITER, str(path))
        _wait_for(writer, "ready")
        if round_ % 2:
            time.sleep(rng.uniform(0.0, 0.35))  # anywhere in the loop
        else:
            _wait_for(writer, "replacing")  # between the temporary file and the replace
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        assert writer.returncode == -signal.SIGKILL, writer.stderr.read() if writer.stderr else ""
        content = path.read_bytes()
        assert content in (old, new), "the stack file is neither the old nor the new content"
        load_stack("prod", project)  # parses and validates
        leftovers = temp_files(path)
        interrupted_writes += bool(leftovers)
        extra = {p.name for p in project.iterdir()} - {
            "Pulumi.yaml", "Pulumi.prod.yaml", "serving", "mlruns.db", lock_path(path).name
        }
        assert extra == {p.name for p in leftovers}, extra
        assert available_stacks(project) == ["prod"]  # leftovers are not mistaken for stacks
    assert interrupted_writes >= 1, "no kill landed between a temporary file and its replace"
    # The next writer removes what killed writers left behind.
    current = path.read_bytes()
    target = {"blue": 90, "green": 10} if current == new else {"blue": 75, "green": 25}
    rewrite_traffic(path, ENDPOINT, target, {}, expected_sha256=file_sha256(path))
    assert temp_files(path) == [] and path.read_bytes() in (old, new) and path.read_bytes() != current


def test_kill_9_of_an_advance_before_the_replace(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    verdict = log_verdict(project, Decision.PROMOTE)
    stalled = _start(STALLED_ADVANCE, str(project))
    _wait_for(stalled, "replacing")
    assert len(temp_files(path)) == 1  # written, validated, recorded, not yet in place
    stalled.send_signal(signal.SIGKILL)
    stalled.wait(timeout=30)
    assert path.read_bytes() == before
    (phantom,) = traffic_runs(project)
    assert phantom["verdict"] == verdict.run_id and phantom["applied"] is None  # recorded, never confirmed
    # The lock died with the process: the same verdict applies now, and the leftover is removed.
    # First the phantom is settled from the file, which still holds the split from before it.
    from azml.release.traffic.advance import advance

    settled: list[str] = []
    result = advance("prod", ENDPOINT, project_dir=project, on_settled=settled.append)
    assert result.applied and "        green: 25\n" in path.read_text(encoding="utf-8")
    assert temp_files(path) == []
    assert [(r["applied"], r["status"]) for r in traffic_runs(project)] == [("false", "FAILED"), ("true", "FINISHED")]
    (line,) = settled
    assert line.endswith("marked not applied: the stack file still holds the split from before it for "
                         "credit-risk-endpoint: its process stopped before replacing the file"), line


def test_a_failed_replace_is_marked_in_the_audit_trail(tmp_path: Path, mlflow_template: Path) -> None:
    from azml.release.traffic.advance import advance

    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.PROMOTE)

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        advance("prod", ENDPOINT, project_dir=project, before_replace=broken)
    assert path.read_bytes() == before and temp_files(path) == []
    (run,) = traffic_runs(project)
    assert (run["status"], run["applied"]) == ("FAILED", "false")


def test_an_unreachable_store_changes_nothing(tmp_path: Path, mlflow_template: Path) -> None:
    """The change is recorded before the file is replaced: no record, no change."""
    from azml.release import store
    from azml.release.traffic.advance import AdvanceError, advance

    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.PROMOTE)
    original = store.log_traffic_change

    def unreachable(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise store.StoreError("connection refused")

    store.log_traffic_change = unreachable  # type: ignore[assignment]
    try:
        with pytest.raises(AdvanceError) as raised:
            advance("prod", ENDPOINT, project_dir=project)
    finally:
        store.log_traffic_change = original  # type: ignore[assignment]
    assert raised.value.code == 1
    assert "cannot record the traffic change" in str(raised.value) and "was not changed" in str(raised.value)
    assert path.read_bytes() == before and temp_files(path) == []


# An advance that stops right after replacing the file, before it tags its
# traffic run applied, to be killed there.
STOPPED_AFTER_REPLACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from azml.release.traffic.advance import advance

    def stall():
        print("replaced", flush=True)
        time.sleep(60)

    advance("prod", "credit-risk-endpoint", project_dir=Path(sys.argv[1]), after_replace=stall)
    """
)

HALF = "      traffic:\n        blue: 50\n        green: 50\n"


def _azml(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "azml.cli", *args], capture_output=True, text=True, env=_env(), cwd=ROOT,
        timeout=120, **kwargs,
    )


def _kill_after_the_replace(project: Path) -> None:
    stopped = _start(STOPPED_AFTER_REPLACE, str(project))
    _wait_for(stopped, "replaced")
    stopped.send_signal(signal.SIGKILL)
    stopped.wait(timeout=30)
    assert stopped.returncode == -signal.SIGKILL


def _settled_tags(project: Path) -> list[dict[str, str]]:
    from azml import tracking as t
    from azml.release.store import TAG_SETTLED

    from .test_release_ladder import EXPERIMENT, tracking_uri

    client = t.client(tracking_uri(project))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], f"tags.`{t.TAG_KIND}` = 'traffic'",
                              order_by=["attributes.start_time ASC"])
    return [{k: v for k, v in r.data.tags.items() if k in (t.TAG_APPLIED, TAG_SETTLED)} for r in runs]


def _completions(project: Path) -> tuple[int, int]:
    """(deployment frequency samples, change failure rate samples) of `azml release kpis`."""
    done = _azml("release", "kpis", "prod", "--project-dir", str(project), "--format", "json")
    assert done.returncode == 0, done.stderr
    kpis = {k["key"]: k for k in json.loads(done.stdout)["kpis"]}
    return kpis["deploymentFrequency"]["samples"], kpis["changeFailureRate"]["samples"]


@pytest.mark.parametrize("next_run", ["kpis", "status", "advance"])
def test_kill_9_after_the_replace_is_settled_by_the_next_run(
    tmp_path: Path, mlflow_template: Path, next_run: str
) -> None:
    """Killed between the replace and the `azml.applied` tag: the file holds
    the change, the run does not say so; the next run marks it from the file
    and the KPIs count the release."""
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text(HALF))
    path = project / "Pulumi.prod.yaml"
    log_verdict(project, Decision.PROMOTE)
    _kill_after_the_replace(project)
    assert "        blue: 0\n        green: 100\n" in path.read_text(encoding="utf-8")
    (run,) = traffic_runs(project)
    assert run["applied"] is None and run["sha"] == file_sha256(path)  # replaced, never tagged

    args = ("--project-dir", str(project))
    if next_run == "kpis":
        assert _completions(project) == (1, 1)
    elif next_run == "status":
        done = _azml("release", "status", "prod", *args, "--format", "json")
        assert done.returncode == 0, done.stderr
        (endpoint,) = json.loads(done.stdout)["endpoints"]
        assert endpoint["lastVerdict"]["applied"] is True and endpoint["lastTrafficChangeAt"]
    else:
        # The same verdict again: the file already holds its split, so nothing is applied
        # twice, and the run says what it settled on the way.
        done = _azml("release", "advance", "prod", "--endpoint", ENDPOINT, *args)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "nothing to apply: PROMOTE: green already serves 100% (ladder complete)" in done.stdout
        assert (
            "audit trail: traffic run " in done.stdout
            and "(credit-risk-endpoint) marked applied: the stack file is byte for byte the one it wrote" in done.stdout
        ), done.stdout
    (run,) = traffic_runs(project)
    assert (run["applied"], run["status"]) == ("true", "FINISHED")
    (tags,) = _settled_tags(project)
    assert "the stack file is byte for byte the one it wrote" in tags["azml.applied_settled"]
    # Settled once: a later run leaves the mark and its reason as they are.
    assert _completions(project) == (1, 1)
    assert _settled_tags(project) == [tags] and len(traffic_runs(project)) == 1


def test_settling_reads_the_split_when_the_file_changed_since(tmp_path: Path, mlflow_template: Path) -> None:
    """After the crash a comment was edited (the hash no longer matches, the
    split does): applied. A split edited by hand cannot be told: left unmarked."""
    from azml.config import load_stack
    from azml.release.store import settle_changes

    from .test_release_ladder import EXPERIMENT, tracking_uri

    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    log_verdict(project, Decision.PROMOTE)
    _kill_after_the_replace(project)
    text = path.read_text(encoding="utf-8")
    assert "        blue: 75\n        green: 25\n" in text

    path.write_text(text.replace("        blue: 75\n        green: 25\n", "        blue: 70\n        green: 30\n"),
                    encoding="utf-8")
    stack_file, _ = load_stack("prod", project)
    assert settle_changes(tracking_uri(project), EXPERIMENT, stack_file) == []
    assert traffic_runs(project)[0]["applied"] is None

    path.write_text(text.replace("# Production:", "# Production (edited):"), encoding="utf-8")
    (settled,) = settle_changes(tracking_uri(project), EXPERIMENT, stack_file)
    assert settled.applied and settled.reason == "the stack file holds the split it wrote for credit-risk-endpoint"
    assert traffic_runs(project)[0]["applied"] == "true"
    assert settle_changes(tracking_uri(project), EXPERIMENT, stack_file) == []  # idempotent


def _limited_file_size(limit: int):  # type: ignore[no-untyped-def]
    """For a child process: writes past ``limit`` bytes fail with EFBIG (the
    kernel's file-size limit, which binds root too) instead of killing it."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_write_the_disk_refuses_is_one_error_line(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.PROMOTE)
    done = _azml("release", "advance", "prod", "--endpoint", ENDPOINT, "--project-dir", str(project),
                 preexec_fn=_limited_file_size(len(before) // 2))
    assert done.returncode == 1  # azml.errors.EXIT_PROGRAM_ERROR
    assert _one_error_line(done.stderr) == (
        f"error: cannot write the new {path}: File too large (EFBIG); Pulumi.prod.yaml was not changed"
    )
    assert path.read_bytes() == before and temp_files(path) == [] and traffic_runs(project) == []


def _read_only_directory_command(directory: Path, command: list[str]) -> list[str]:
    """``command`` run with ``directory`` read-only. Root writes through any
    mode bits, so for root the directory is bind-mounted read-only in a
    private mount namespace of the child (EROFS, as on a read-only volume);
    anyone else gets mode 0555 (EACCES)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return command
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("running as root without mount namespaces: no way to make a directory read-only for root")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(directory), *command]


def test_a_read_only_directory_is_one_error_line(tmp_path: Path, mlflow_template: Path) -> None:
    project = make_project(tmp_path / "project", mlflow_template, canary_stack_text())
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    log_verdict(project, Decision.PROMOTE)
    # The tracking store lives elsewhere: only the stack file's directory refuses writes.
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (project / "mlruns.db").rename(store_dir / "mlruns.db")
    uri = f"sqlite:///{store_dir / 'mlruns.db'}"
    command = [sys.executable, "-m", "azml.cli", "release", "advance", "prod", "--endpoint", ENDPOINT,
               "--project-dir", str(project), "--tracking-uri", uri]
    try:
        done = subprocess.run(_read_only_directory_command(project, command), capture_output=True, text=True,
                              env=_env(), cwd=ROOT, timeout=120)
    finally:
        project.chmod(0o755)
    assert done.returncode == 1, done.stderr  # azml.errors.EXIT_PROGRAM_ERROR
    line = _one_error_line(done.stderr)
    assert line.startswith(f"error: cannot create the lock file {lock_path(path)}: ") and line.endswith(
        "; Pulumi.prod.yaml was not changed"
    ), line
    assert ("(EROFS)" if os.geteuid() == 0 else "(EACCES)") in line
    assert path.read_bytes() == before and temp_files(path) == []
