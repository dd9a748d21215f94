"""What a person sees on long work: phases on a terminal, nothing extra elsewhere."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
from pathlib import Path

from azml.progress import PLAIN, RICH, TIMINGS_ENV, Phases, display_mode

from ..conftest import AZML, ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLAN_PHASES = ("Pulumi program under mocks", "day-two simulation",
               "policy packs: security checklist, Azure platform rules", "ARM export", "checkov")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_display_mode_follows_the_terminal_ci_and_no_color() -> None:
    assert display_mode(io.StringIO(), {}) is None  # a pipe or a log file
    assert display_mode(Terminal(), {"CI": "true"}) is None
    assert display_mode(Terminal(), {"NO_COLOR": "1"}) == PLAIN
    assert display_mode(Terminal(), {"TERM": "dumb"}) == PLAIN
    assert display_mode(Terminal(), {"TERM": "xterm-256color"}) == RICH


def test_phases_write_nothing_off_a_terminal_and_plain_lines_without_colour() -> None:
    quiet = io.StringIO()
    with Phases("azml plan", quiet) as phases:
        phases.start("checkov")
    assert quiet.getvalue() == "" and [name for name, _ in phases.done] == ["checkov"]

    plain = Terminal()
    with Phases("azml plan", plain, mode=PLAIN) as phases:
        phases.start("ARM export")
        phases.start("checkov")
    assert plain.getvalue() == "azml plan: ARM export...\nazml plan: checkov...\n"

    rich = Terminal()
    with Phases("azml plan", rich, mode=RICH) as phases:
        phases.start("ARM export")
    assert "ARM export" in ANSI.sub("", rich.getvalue()) and ANSI.search(rich.getvalue())


def _plan(tmp_path: Path, *, stderr_tty: bool, timings: Path | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "TERM", TIMINGS_ENV)}
    if timings is not None:
        env[TIMINGS_ENV] = str(timings)
    command = [str(AZML), "plan", "dev", "--out", str(tmp_path)]
    if not stderr_tty:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        return result.returncode, result.stdout, result.stderr
    master, slave = pty.openpty()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = process.communicate(timeout=600)[0]
    return process.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_plan_names_each_phase_on_a_terminal_and_keeps_stdout_and_pipes_clean(tmp_path: Path) -> None:
    code, stdout, stderr = _plan(tmp_path / "tty", stderr_tty=True)
    assert code == 0, stderr
    shown = ANSI.sub("", stderr)
    for phase in PLAN_PHASES:
        assert f"azml plan: {phase}" in shown and f"✓ {phase} (" in shown, phase
    assert shown.index("✓ Pulumi program under mocks") < shown.index("✓ ARM export") < shown.index("✓ checkov")
    assert "\x1b" not in stdout  # the report itself never carries terminal codes

    # Asked for (the plan benchmark does), the phase breakdown goes to its own file, not into the plan.
    timings = tmp_path / "timings.json"
    code, piped_stdout, piped_stderr = _plan(tmp_path / "pipe", stderr_tty=False, timings=timings)
    assert code == 0 and "\x1b" not in piped_stdout + piped_stderr
    assert not any(phase in piped_stderr for phase in PLAN_PHASES)
    assert piped_stdout == stdout.replace(str(tmp_path / "tty"), str(tmp_path / "pipe"))
    breakdown = json.loads(timings.read_text())
    assert list(breakdown["phases"]) == list(PLAN_PHASES) and all(s >= 0 for s in breakdown["phases"].values())
    assert set(breakdown["packs"]) == {"policy", "platform"}
    assert all(set(pack) == {"startSeconds", "analyzeSeconds"} for pack in breakdown["packs"].values())
    assert (tmp_path / "tty" / "dev" / "plan.json").read_text() == (tmp_path / "pipe" / "dev" / "plan.json").read_text()
