"""``azml release scoreboard``: per model version its accuracy, parity
difference, PSI, p95 latency and status, from MLflow observation runs.

:func:`register` adds the command to the ``release`` sub-app. Exit codes:
0 the scoreboard printed (and its page written, but for json); 1 the tracking store cannot be read;
2 bad input (unknown stack or endpoint, bad --window-days or --format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..common import EXIT_INVALID_INPUT, Experiment, OutputFormat, ProjectDir, TrackingUri, fail, format_option

#: text: a table; markdown: a table for a pull request; html: only the page's path;
#: json: on stdout, and no page written.
ScoreboardFormat = format_option(OutputFormat.text, OutputFormat.markdown, OutputFormat.html, OutputFormat.json)


def scoreboard_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", "-e", help="Only this online endpoint (default: all).")
    ] = None,
    output_format: ScoreboardFormat = OutputFormat.text,
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
    with --format json, which prints the scoreboard on stdout only; html
    prints only the page's path)."""
    from ...release.reports.scoreboard import ScoreboardError, build_scoreboard, render_markdown, render_text
    from ...release.reports.scoreboard_html import write_html

    chosen = output_format
    try:
        board = build_scoreboard(
            stack, endpoint=endpoint, window_days=window_days, project_dir=project_dir,
            tracking_uri=tracking_uri, experiment=experiment,
        )
    except ScoreboardError as error:
        fail(error.code, error.problems)
    if chosen is OutputFormat.json:  # machine-readable: stdout only, no page written
        typer.echo(json.dumps(board.to_json(), indent=2, ensure_ascii=False))
        return
    try:
        page = write_html(board, out)
    except OSError as error:
        fail(EXIT_INVALID_INPUT, [f"--out: cannot write {out / (board.stack + '.html')} ({error.strerror or error})"])
    if chosen is OutputFormat.markdown:
        typer.echo(render_markdown(board), nl=False)
    elif chosen is OutputFormat.html:
        typer.echo(str(page))
    else:
        render_text(board, page)


def register(app: typer.Typer) -> None:
    """Add ``scoreboard`` to the ``release`` sub-app."""
    app.command("scoreboard")(scoreboard_command)
