"""`azml release scoreboard`: per model version pooled metrics and status from
a seeded real MLflow store and a copy of the prod stack with a canary; the
text, markdown, JSON and HTML outputs; the HTML page rendered by headless
Chromium; bad input."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azml.cli import app
from azml import tracking as t
from azml.release.evidence.observations import SAMPLE_SIZE_OF
from azml.release.reports.scoreboard import build_scoreboard
from azml.release.evidence.verdict import Decision, Verdict, file_sha256, utc_now

from ...conftest import run_cli
from ...release_support import ENDPOINT, canary_project

EXPERIMENT = "credit-risk-release"  # the prod stack's azml:release.metrics.experiment
RUNNER = CliRunner()

#: Observation windows: (deployment, model tag, {metric: (value, n)}, days ago).
#: blue served credit-risk:2 before :3 (retired: its deployment serves another
#: version); red served the legacy model and was removed (retired); green's
#: canary never measured parity (must show "—", not 0).
WINDOWS = [
    ("blue", "credit-risk:3", {"accuracy": (0.90, 2000), "latency_p95_ms": (180.0, 2000), "error_rate": (0.004, 2000),
                               "psi": (0.01, 2000), "parity_difference": (0.03, 2000)}, 3),
    ("blue", "credit-risk:3", {"accuracy": (0.92, 3000), "latency_p95_ms": (190.0, 3000), "error_rate": (0.002, 3000),
                               "psi": (0.02, 3000), "parity_difference": (0.05, 3000)}, 1),
    ("green", "credit-risk:4", {"accuracy": (0.915, 1500), "latency_p95_ms": (210.5, 1500), "error_rate": (0.005, 1500),
                                "psi": (0.06, 1500)}, 1),
    ("blue", "credit-risk:2", {"accuracy": (0.88, 4000), "latency_p95_ms": (170.0, 4000), "error_rate": (0.003, 4000),
                               "psi": (0.11, 4000), "parity_difference": (0.07, 4000)}, 20),
    ("red", "credit-risk-legacy:9", {"accuracy": (0.85, 1000), "psi": (0.25, 1000), "parity_difference": (0.09, 1000)}, 25),
    ("red", "credit-risk-legacy:10", {"accuracy": (0.86, 1200), "latency_p95_ms": (260.0, 1200)}, 22),
]
#: Outside the default 30-day window, or another stack: must not count.
IGNORED = [("blue", "credit-risk:3", {"accuracy": (0.5, 90000)}, 40, "prod"),
           ("blue", "credit-risk:3", {"accuracy": (0.6, 90000)}, 1, "dev")]
#: Expected status of each version with blue 90 / green 10, in the order the
#: table must show them (model name, then numeric version).
STATUS = [("credit-risk", "2", "retired"), ("credit-risk", "3", "champion"), ("credit-risk", "4", "canary"),
          ("credit-risk-legacy", "9", "retired"), ("credit-risk-legacy", "10", "retired")]
POOLED = ("accuracy", "error_rate")
SIZE = {"accuracy": "accuracy_n", "latency_p95_ms": "requests", "error_rate": "requests", "psi": "psi_n",
        "parity_difference": "parity_n"}


def expected(model: str, days: int = 30) -> dict[str, tuple[float, int] | None]:
    """Pooled by hand from WINDOWS: accuracy and error rate weighted by n, the
    other metrics the worst window, sample sizes summed."""
    windows = [m for _, tag, m, ago in WINDOWS if tag == model and ago <= days]
    result: dict[str, tuple[float, int] | None] = {}
    for metric in SIZE:
        values = [w[metric] for w in windows if metric in w]
        if not values:
            result[metric] = None
            continue
        n = sum(size for _, size in values)
        value = sum(v * size for v, size in values) / n if metric in POOLED else max(v for v, _ in values)
        result[metric] = (value, n)
    return result


def _log(uri: str, deployment: str, model: str, metrics: dict, days_ago: float, stack: str = "prod") -> None:
    """One observation run as `log_observation` writes it, started ``days_ago``
    (as a pipeline backfilling past windows would): the window filters on start time."""
    client = t.client(uri)
    tags = {t.TAG_KIND: t.KIND_OBSERVATION, t.TAG_STACK: stack, t.TAG_ENDPOINT: ENDPOINT,
            t.TAG_DEPLOYMENT: deployment, t.TAG_MODEL: model}
    started = t.millis(utc_now() - dt.timedelta(days=days_ago))
    run_id = client.create_run(t.experiment_id(client, EXPERIMENT), start_time=started, tags=tags).info.run_id
    for metric, (value, n) in metrics.items():
        client.log_metric(run_id, metric, value)
        client.log_metric(run_id, SAMPLE_SIZE_OF[metric], float(n))
    client.set_terminated(run_id, status="FINISHED", end_time=started + 60_000)


def _verdict(project: Path, uri: str, decision: Decision, minutes_ago: int) -> None:
    from azml.config import load_stack
    from azml.release import store

    stack_file, config = load_stack("prod", project)
    endpoint = config.online_endpoints[0]
    store.log_verdict(uri, EXPERIMENT, Verdict(
        stack="prod", endpoint=ENDPOINT, champion="blue", canary="green",
        phase="live" if endpoint.traffic.get("green") else "mirror", decision=decision, metrics=(),
        rollback_triggers=(), traffic=dict(endpoint.traffic), mirror_traffic=dict(endpoint.mirror_traffic),
        stack_file_sha256=file_sha256(stack_file.path),
        computed_at=(utc_now() - dt.timedelta(minutes=minutes_ago)).isoformat(), window_minutes=1440,
    ))


def seed(uri: str, project: Path) -> None:
    for deployment, model, metrics, days in WINDOWS:
        _log(uri, deployment, model, metrics, days)
    for deployment, model, metrics, days, stack in IGNORED:
        _log(uri, deployment, model, metrics, days, stack)
    _verdict(project, uri, Decision.PROMOTE, minutes_ago=120)
    _verdict(project, uri, Decision.HOLD, minutes_ago=5)


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> tuple[Path, Path]:
    """The seeded project and store, built once per worker (seeding takes seconds)."""
    base = tmp_path_factory.mktemp("scoreboard")
    project = canary_project(base / "project", {"blue": 90, "green": 10})
    db = base / "mlruns.db"  # verdict artifacts stay beside it, where each copy's experiment points
    shutil.copy(mlflow_template, db)
    seed(f"sqlite:///{db}", project)
    return project, db


@pytest.fixture
def seeded(tmp_path: Path, seeded_template: tuple[Path, Path]) -> tuple[Path, str]:
    """A private copy of the seeded project and store for one test."""
    project = shutil.copytree(seeded_template[0], tmp_path / "project")
    shutil.copy(seeded_template[1], tmp_path / "mlruns.db")
    return project, f"sqlite:///{tmp_path / 'mlruns.db'}"


def scoreboard(project: Path, uri: str, *args: str, code: int = 0):  # type: ignore[no-untyped-def]
    result = RUNNER.invoke(app, ["release", "scoreboard", "prod", "--project-dir", str(project),
                                 "--tracking-uri", uri, "--out", str(project / "out"), *args])
    assert result.exit_code == code, result.output
    return result


def fmt(value: tuple[float, int] | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value[0]:.{digits}f} (n={value[1]})"


def test_text_table_shows_each_version_pooled_with_its_status(seeded: tuple[Path, str]) -> None:
    project, uri = seeded
    out = scoreboard(project, uri).stdout
    lines = [line for line in out.splitlines() if re.search(r"credit-risk", line) and "│" in line]
    # One row per version, sorted by model then numeric version (10 after 9).
    assert [tuple(c.strip() for c in line.split("│")[1:3]) for line in lines] == [(m, v) for m, v, _ in STATUS]
    for line, (model, version, status) in zip(lines, STATUS):
        cells = [c.strip() for c in line.split("│")[1:-1]]
        want = expected(f"{model}:{version}")
        assert cells[3].split()[0] == status
        assert cells[5:10] == [fmt(want["accuracy"]), fmt(want["parity_difference"]), fmt(want["psi"]),
                               fmt(want["latency_p95_ms"], 1), fmt(want["error_rate"])], line
    champion, canary = lines[1], lines[2]
    assert "champion 90%" in champion and "canary 10%" in canary
    assert "HOLD" in canary and "HOLD" not in champion  # the newest verdict, on the canary it judged
    assert canary.split("│")[7].strip() == "—"  # parity never measured on green: a dash, not 0
    assert f"HTML scoreboard: {project / 'out' / 'prod.html'}" in out


def test_json_and_the_window(seeded: tuple[Path, str]) -> None:
    project, uri = seeded
    document = json.loads(scoreboard(project, uri, "--format", "json").stdout)
    rows = {row["model"]: row for row in document["rows"]}
    assert [(r["name"], r["version"], r["status"]) for r in document["rows"]] == STATUS
    for model, row in rows.items():
        for metric, want in expected(model).items():
            got = row["metrics"][metric]
            assert (got if got is None else (pytest.approx(got["value"]), got["n"])) == want, (model, metric)
    assert rows["credit-risk:3"]["deployments"] == ["blue"] and rows["credit-risk:3"]["runs"] == 2
    assert rows["credit-risk-legacy:9"]["deployments"] == ["red"]  # retired: where MLflow saw it
    assert rows["credit-risk:4"]["lastVerdict"]["decision"] == "HOLD"
    assert document["gate"]["maxPsi"] == 0.2 and document["gate"]["maxErrorRate"] == pytest.approx(0.02)
    # --format json is for machines: stdout only, no HTML page written
    assert "html" not in document and not (project / "out").exists()

    # A 21-day window drops the windows logged 22 and 25 days ago: the legacy
    # model is gone from MLflow's view and from the stack: no row at all.
    narrow = json.loads(scoreboard(project, uri, "--format", "json", "--window-days", "21").stdout)
    assert [r["model"] for r in narrow["rows"]] == ["credit-risk:2", "credit-risk:3", "credit-risk:4"]


def test_markdown_table(seeded: tuple[Path, str]) -> None:
    project, uri = seeded
    text = scoreboard(project, uri, "--format", "markdown").stdout
    rows = [line for line in text.splitlines() if line.startswith("| credit-risk")]
    assert len(rows) == len(STATUS)
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    want = expected("credit-risk:3")
    assert cells[:4] == ["credit-risk", "3", ENDPOINT, "champion 90%"]
    assert cells[5] == fmt(want["accuracy"]) and cells[8] == fmt(want["latency_p95_ms"], 1)
    assert "| model | version |" in text and "HTML scoreboard" not in text  # stdout stays pastable


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "blue", "green"),
    [
        ({"blue": 100}, {"green": 20}, "champion", "shadow"),
        ({"blue": 100, "green": 0}, None, "champion", "retired"),  # at 0 %: retired, still declared
        ({"blue": 10, "green": 90}, None, "canary", "champion"),
    ],
)
def test_status_follows_the_stack_file(tmp_path: Path, mlflow_uri: str, traffic, mirror_traffic, blue, green) -> None:  # type: ignore[no-untyped-def]
    project = canary_project(tmp_path / "project", traffic, mirror_traffic)
    _log(mlflow_uri, "blue", "credit-risk:3", {"accuracy": (0.9, 100)}, 1)
    board = build_scoreboard("prod", project_dir=project, tracking_uri=mlflow_uri)
    statuses = {row.model: row.status for row in board.rows}
    assert statuses == {"credit-risk:3": blue, "credit-risk:4": green}
    unobserved = next(row for row in board.rows if row.model == "credit-risk:4")
    assert unobserved.observation.records == 0 and unobserved.measure("accuracy") is None


def test_html_page_has_one_chart_the_table_and_escaped_names(seeded: tuple[Path, str]) -> None:
    project, uri = seeded
    _log(uri, "red", "<b>evil</b>&co:1", {"accuracy": (0.8, 10)}, 2)
    page_path = Path(scoreboard(project, uri, "--format", "html").stdout.strip())
    assert page_path == project / "out" / "prod.html"
    page = page_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 1 and "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)|url\((?!#)|@import", page), "the page loads something"
    assert "<b>evil</b>" not in page and html.escape("<b>evil</b>&co") in page
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert body.count("<tr") == len(STATUS) + 1
    want = expected("credit-risk:3")
    assert f'{want["accuracy"][0]:.4f}<small>n={want["accuracy"][1]}</small>' in body
    assert '<span class="badge canary">canary 10%</span>' in body
    # the error-rate gate metric has its panel, with the gate's threshold line (maxErrorRate)
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert "error rate (share of failed requests)" in chart and "gate &lt; 0.02" in chart
    assert not list(page_path.parent.glob(".*tmp"))  # written atomically: no temporary file left


def test_real_console_script(seeded: tuple[Path, str]) -> None:
    project, uri = seeded
    result = run_cli("release", "scoreboard", "prod", "--project-dir", str(project), "--tracking-uri", uri,
                     "--out", str(project / "out"), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[2].strip() for line in result.stdout.splitlines() if line.startswith("| credit-risk")] == [
        v for _, v, _ in STATUS
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "nope"], "--endpoint: 'nope' is not an online endpoint of stack prod (declared: credit-risk-endpoint)"),
        (["--window-days", "0"], "--window-days: must be a whole number of days >= 1 (got 0)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_writing_nothing(tmp_path: Path, mlflow_uri: str, args, message) -> None:  # type: ignore[no-untyped-def]
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    result = scoreboard(project, mlflow_uri, *args, code=2)
    assert result.stderr == f"error: {message}\n" and result.stdout == ""
    assert not (project / "out").exists()


# --- The page in a real browser ------------------------------------------------


def _chromium() -> str:
    """Chromium's path. CI (``.ci/run``) installs it and sets
    ``AZML_REQUIRE_CHROMIUM=1``, so there a missing browser fails; elsewhere
    the test is skipped with the way to install it (``make test`` never needs
    root)."""
    found = shutil.which("chromium")
    if found is None:
        reason = ("chromium is not installed: `make chromium` (root, or SUDO=sudo) or "
                  "`apt-get install --no-install-recommends chromium` installs Debian's package")
        if os.environ.get("AZML_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + " (AZML_REQUIRE_CHROMIUM=1: required here)")
        pytest.skip(reason)
    return found


def test_html_scoreboard_renders_in_headless_chromium(seeded: tuple[Path, str], tmp_path: Path) -> None:
    import matplotlib.image
    import numpy as np

    project, uri = seeded
    page = Path(scoreboard(project, uri, "--format", "html").stdout.strip())
    shot = tmp_path / "scoreboard.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,1600",
         page.as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    pixels = matplotlib.image.imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (1600, 1280)
    chart = pixels[120:760, 40:1240]  # below the heading: the chart fills the page width
    assert (chart.min(axis=2) < 0.9).mean() > 0.02, "the chart region is blank"
    colours = {tuple(c) for c in (chart * 255).round().astype(int).reshape(-1, 3)[::7]}
    assert len(colours) > 20
    # Each status in the seeded data appears as its badge/marker colour somewhere on the page.
    from azml.release.reports.scoreboard_html import STATUS_COLOURS

    for status in ("champion", "canary", "retired"):
        rgb = np.array([int(STATUS_COLOURS[status][i:i + 2], 16) / 255 for i in (1, 3, 5)])
        close = (np.abs(pixels - rgb).max(axis=2) < 0.04).sum()
        assert close > 30, f"no {status} colour {STATUS_COLOURS[status]} on the rendered page"


def test_a_missing_sqlite_store_is_reported_not_created(tmp_path: Path) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    db = tmp_path / "never.db"
    board = build_scoreboard("prod", project_dir=project, tracking_uri=f"sqlite:///{db}")
    assert not db.exists()
    assert [(r.model, r.status, r.observation.records) for r in board.rows] == [
        ("credit-risk:3", "champion", 0), ("credit-risk:4", "canary", 0)
    ]
    assert any(str(db) in note for note in board.notes)


def test_an_unsupported_format_fails_as_every_command_does(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    result = scoreboard(project, mlflow_uri, "--format", "pdf", code=2)
    error = " ".join(result.stderr.replace("│", " ").split())
    assert "'pdf' is not one of 'text', 'markdown', 'html', 'json'" in error and result.stdout == ""
