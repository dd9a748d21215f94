"""Hostile and malformed input never hangs a command or ends it in a traceback.

A stack file arrives in a pull request and the PR preview runs ``azml plan``
on it. Every case of the corpus (tests/fuzz/stackfiles, written by
tests/fuzz/make_stackfiles.py) must exit 2 within a per-case time limit with
one ``error:`` line naming the file (or, for a value the schema refuses, the
key) and write nothing. The same holds for the JSON files the commands read,
and a write killed half-way leaves nothing the next run trips on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from azml import yamlfile
from azml.cli import app
from azml.config import read_stack_file
from azml.files import stale_temp_files, write_atomically
from azml.jsonfile import JsonInputError, read_json
from azml.lineage import LineageError, read_record
from azml.policy.pack_config import PackConfigError, load_config_file
from azml.release.traffic.stackedit import LockHeld, locked, lock_path, temp_files

from ..conftest import ROOT as REPO

FUZZ = REPO / "tests" / "fuzz"
CORPUS = FUZZ / "stackfiles"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
AZML = Path(sys.executable).with_name("azml")
#: Seconds one case may take in-process (the refusals take 0.01-0.5 s; the
#: margin is for a loaded CI machine). A hang is cut off by the alarm.
CASE_SECONDS = 3.0
runner = CliRunner()


def test_the_corpus_covers_every_case_and_nothing_else() -> None:
    assert sorted(p.stem for p in CORPUS.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 40


def test_the_corpus_is_what_the_script_writes(tmp_path: Path) -> None:
    """Deterministic: the committed files are the script's output, byte for byte."""
    sys.path.insert(0, str(FUZZ))
    try:
        import make_stackfiles
    finally:
        sys.path.remove(str(FUZZ))
    assert make_stackfiles.write(tmp_path / "a") == EXPECTED
    for case in EXPECTED:
        assert (tmp_path / "a" / f"{case}.yaml").read_bytes() == (CORPUS / f"{case}.yaml").read_bytes(), case


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def expired(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def _check_one_line(output: str, case: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in output, output
    assert EXPECTED[case] in line, line
    if not EXPECTED[case].startswith("azml:"):  # a value the schema refuses is named by its key
        assert f"{case}.yaml" in line, line
    return line


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_azml_plan_refuses_each_case_in_one_line_quickly_writing_nothing(case: str, tmp_path: Path) -> None:
    before = _listing(CORPUS)
    out = tmp_path / "build"
    started = time.monotonic()
    with alarm(CASE_SECONDS * 3):
        result = runner.invoke(
            app, ["plan", str(CORPUS / f"{case}.yaml"), "--project-dir", str(REPO), "--out", str(out), "--no-checkov"]
        )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, (result.output, result.exception)
    _check_one_line(result.output, case)
    assert elapsed < CASE_SECONDS, f"{case}: {elapsed:.2f} s"
    assert not out.exists() and _listing(CORPUS) == before


SUBPROCESS_SAMPLE = [
    "alias-bomb-azml",
    "alias-bomb-other-namespace",
    "alias-recursive-list",
    "latin1-in-comment",
    "utf16-with-bom",
    "truncated-utf8",
    "tag-set",
    "integer-5000-digits",
    "deep-flow-lists",
    "infinite-alert-threshold",
]


@pytest.mark.parametrize("case", SUBPROCESS_SAMPLE)
def test_the_real_command_refuses_a_sample_in_one_line(case: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(AZML), "plan", str(CORPUS / f"{case}.yaml"), "--project-dir", str(REPO), "--out", str(tmp_path / "build")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    _check_one_line(result.stderr, case)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("command", [["release", "status"], ["release", "kpis"]])
@pytest.mark.parametrize("case", ["alias-bomb-azml", "alias-recursive-map", "latin1-in-value", "tag-binary", "several-documents"])
def test_release_commands_read_stack_files_through_the_same_checks(command: list[str], case: str) -> None:
    with alarm(CASE_SECONDS * 3):
        result = runner.invoke(app, [*command, str(CORPUS / f"{case}.yaml"), "--project-dir", str(REPO)])
    assert result.exit_code == 2, result.output
    _check_one_line(result.output, case)


# --- what a stack file may still be -------------------------------------------------


def _variant(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_bytes(data)
    return path


def test_valid_spellings_of_the_same_stack_read_the_same_config(tmp_path: Path) -> None:
    """A UTF-8 byte order mark, CRLF line ends, explicit document markers,
    merge keys and anchors are YAML a stack file may hold: read as the plain file."""
    base_text = (FUZZ / "base.yaml").read_text(encoding="utf-8")
    expected = read_stack_file(str(FUZZ / "base.yaml"), REPO).config
    merged = base_text.replace(
        "  azml:tags:\n    cost-center: ml-platform\n",
        "  azml:tags:\n    <<: &shared {cost-center: ml-platform}\n",
        1,
    )
    assert merged != base_text
    variants = {
        "bom": b"\xef\xbb\xbf" + base_text.encode("utf-8"),
        "crlf": base_text.replace("\n", "\r\n").encode("utf-8"),
        "markers": ("---\n" + base_text + "...\n").encode("utf-8"),
        "merge": merged.encode("utf-8"),
        "trailing-comments": (base_text + "# end\n" * 50).encode("utf-8"),
    }
    for name, data in variants.items():
        assert read_stack_file(str(_variant(tmp_path, name, data)), REPO).config == expected, name


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("config:\n  other:x: " + "[" * yamlfile.MAX_DEPTH + "]" * yamlfile.MAX_DEPTH + "\n", False),  # config + 32
        ("other: " + "[" * (yamlfile.MAX_DEPTH - 1) + "]" * (yamlfile.MAX_DEPTH - 1) + "\n", True),  # 32 levels
        ("other: " + "[" * yamlfile.MAX_DEPTH + "]" * yamlfile.MAX_DEPTH + "\n", False),  # 33 levels
        ("x: [" + ",".join(["1"] * (yamlfile.MAX_VALUES - 3)) + "]\n", True),  # mapping, key, list and items
        ("x: [" + ",".join(["1"] * (yamlfile.MAX_VALUES - 2)) + "]\n", False),
        ("x: " + "9" * yamlfile.MAX_NUMBER_CHARS + "\n", True),
        ("x: " + "9" * (yamlfile.MAX_NUMBER_CHARS + 1) + "\n", False),
        ("x: '" + "9" * 5000 + "'\n", True),  # a quoted string of digits is a string
    ],
    ids=["depth-33-under-config", "depth-32", "depth-33", "values-at-limit", "values-over", "number-at-limit", "number-over", "quoted-digits"],
)
def test_the_limits_are_where_the_docs_say(text: str, accepted: bool) -> None:
    if accepted:
        assert yamlfile.load_text(text, "f.yaml") is not None
    else:
        with pytest.raises(yamlfile.YamlInputError):
            yamlfile.load_text(text, "f.yaml")


# --- JSON inputs -------------------------------------------------------------------


JSON_CASES = {
    "latin1": (b'{"all": "advisory", "x": "caf\xe9"}', "byte 0xe9 is not UTF-8"),
    "utf16": ('{"all": "advisory"}'.encode("utf-16"), "UTF-16"),
    "nan": (b'{"all": NaN}', "NaN is not a JSON number"),
    "infinity": (b'{"all": -Infinity}', "-Infinity is not a JSON number"),
    "overflow": (b'{"all": 1e999}', "1e999 is too large"),
    "huge-integer": (b'{"all": ' + b"9" * 5000 + b"}", "a number of 5000 digits"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "duplicate-key": (b'{"all": "advisory", "all": "disabled"}', "key 'all' appears twice"),
    "truncated": (b'{"all": ', "line 1: not JSON"),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_policy_configs_are_refused_in_one_line(case: str, tmp_path: Path) -> None:
    data, fragment = JSON_CASES[case]
    path = tmp_path / "config.prod.json"
    path.write_bytes(data)
    with alarm(CASE_SECONDS), pytest.raises(PackConfigError) as raised:
        load_config_file(path)
    assert len(raised.value.problems) == 1 and fragment in raised.value.problems[0], raised.value.problems
    assert raised.value.problems[0].startswith("policy config config.prod.json: ")


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_lineage_records_are_refused_in_one_line(case: str, tmp_path: Path) -> None:
    data, fragment = JSON_CASES[case]
    path = tmp_path / "lineage.json"
    path.write_bytes(data)
    with alarm(CASE_SECONDS), pytest.raises(LineageError) as raised:
        read_record(path)
    assert str(raised.value).startswith(str(path)) and fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_json_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2048 + b"{}")
    with pytest.raises(JsonInputError, match="larger than"):
        read_json(path, max_bytes=2048)
    assert read_json(path, max_bytes=4096) == {}


# --- what a killed writer leaves behind ---------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_write_atomically_removes_only_a_dead_writers_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    dead = tmp_path / f".plan.json.{_dead_pid()}.abc123.tmp"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".plan.json.{sleeper.pid}.def456.tmp"  # a concurrent writer, still running
        unnamed = tmp_path / ".plan.json.xyz.tmp"  # no writer id: cannot be told stale, kept
        other = tmp_path / ".graph.mmd.1.abc.tmp"  # another file's
        for path in (dead, live, unnamed, other):
            path.write_text("half", encoding="utf-8")
        assert stale_temp_files(target) == [dead]
        write_atomically(target, "{}\n")
        assert target.read_text(encoding="utf-8") == "{}\n"
        assert not dead.exists() and live.exists() and unnamed.exists() and other.exists()
        assert [p.name for p in tmp_path.glob(f".plan.json.{os.getpid()}.*")] == []  # its own is gone
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_stack_lock_holder_removes_leftovers_of_its_own_pattern_only(tmp_path: Path) -> None:
    """Only a holder of the stack file's lock writes ``.<file>.*.tmp``: whoever
    holds it next knows every such file is a killed writer's. Other files stay."""
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text("config: {}\n", encoding="utf-8")
    leftover = tmp_path / ".Pulumi.prod.yaml.k1ll3d.tmp"
    unrelated = [tmp_path / ".Pulumi.dev.yaml.k1ll3d.tmp", tmp_path / ".Pulumi.prod.yaml.swp", tmp_path / "Pulumi.prod.yaml.tmp"]
    for path in (leftover, *unrelated):
        path.write_text("x", encoding="utf-8")
    with locked(stack):
        assert temp_files(stack) == []
    assert all(path.exists() for path in unrelated)


def test_a_live_writers_temporary_file_is_not_touched_while_it_holds_the_lock(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text("config: {}\n", encoding="utf-8")
    live = tmp_path / ".Pulumi.prod.yaml.writing.tmp"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
            "open(sys.argv[2], 'w').write('live'); print('held', flush=True); time.sleep(30)",
            str(lock_path(stack)),
            str(live),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld):
            with locked(stack):
                pass
        assert live.read_text(encoding="utf-8") == "live"
    finally:
        holder.kill()
        holder.wait()
    with locked(stack):  # the holder died (kill -9 drops the lock): its file is a leftover now
        pass
    assert not live.exists()


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("nan.json", b'{"resources": NaN}', "NaN is not a JSON number"),
        ("latin1.json", b'{"a": "\xe9"}', "is not UTF-8"),
        ("dupes.json", b'{"resources": [], "resources": []}', "resources"),
    ],
)
def test_azml_checkov_refuses_a_hostile_plan_document_in_one_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    source = tmp_path / name
    source.write_bytes(data)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "azml"), "checkov", "--plan-json", str(source), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and result.stdout == "", result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --plan-json: {source}") and message in line, line
    assert not (tmp_path / "out").exists()
