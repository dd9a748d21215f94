"""``azml release scoreboard``: per model version its accuracy, parity
difference, PSI, p95 latency and status, from MLflow observation runs.

:func:`register` adds the command to the ``release`` sub-app. Exit codes:
0 the scoreboard printed (and its page written, but for json); 1 the tracking store cannot be read;
2 bad input (unknown stack or endpoint, bad --window-days or --format).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..common import EXIT_INVALID_INPUT, Experiment, ProjectDir, TrackingUri, fail


class ScoreboardFormat(str, enum.Enum):
    text = "text"
    markdown = "markdown"
    html = "html"
    json = "json"


def scoreboard_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", "-e", help="Only this online endpoint (default: all).")
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", "-f",
            help="text|markdown|html|json. text: a table; markdown: a table for a pull request; html: only the page's path; json: on stdout, and no page written.",
        ),
    ] = "text",
    out: Annotated[
        Path, typer.Option("--out", help="Directory of the HTML page <out>/<stack>.html (every format but json).")
    ] = Path("build/scoreboard"),
    window_days: Annotated[
        int, typer.Option("--window-days", help="Observation runs started in the last N days (default 30).")
    ] = 30,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
) -> None:
    """Show each model version's quality metrics and status.

    Quality scoreboard: per model version (sorted by model, then version)
    pooled accuracy, parity difference, PSI, p95 latency and error rate with
    sample sizes, and its status — champion, canary, shadow or retired — from
    the stack file. Writes a self-contained HTML page with a chart (except
    with --format json)."""
    from ...release.reports.scoreboard import ScoreboardError, build_scoreboard, render_markdown, render_text
    from ...release.reports.scoreboard_html import write_html

    # Checked here rather than by typer so the error is one line naming the choices.
    allowed = [f.value for f in ScoreboardFormat]
    if output_format not in allowed:
        fail(EXIT_INVALID_INPUT, [f"--format: {output_format!r} is not one of {', '.join(allowed)}"])
    chosen = ScoreboardFormat(output_format)
    try:
        board = build_scoreboard(
            stack, endpoint=endpoint, window_days=window_days, project_dir=project_dir,
            tracking_uri=tracking_uri, experiment=experiment,
        )
    except ScoreboardError as error:
        fail(error.code, error.problems)
    if chosen is ScoreboardFormat.json:  # machine-readable: stdout only, no page written
        typer.echo(json.dumps(board.to_json(), indent=2, ensure_ascii=False))
        return
    try:
        page = write_html(board, out)
    except OSError as error:
        fail(EXIT_INVALID_INPUT, [f"--out: cannot write {out / (board.stack + '.html')} ({error.strerror or error})"])
    if chosen is ScoreboardFormat.markdown:
        typer.echo(render_markdown(board), nl=False)
    elif chosen is ScoreboardFormat.html:
        typer.echo(str(page))
    else:
        render_text(board, page)


def register(app: typer.Typer) -> None:
    """Add ``scoreboard`` to the ``release`` sub-app."""
    app.command("scoreboard")(scoreboard_command)
