"""``azml release kpis``: delivery KPIs of a stack from the release audit
trail in MLflow, beside the platform's targets.

Exit codes: 0 printed (whatever the KPIs say); 1 the tracking store cannot be
read; 2 bad input (unknown stack, a malformed or empty period).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Optional

import typer

from ..common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, Experiment, OutputFormat, ProjectDir, TextJsonOrMarkdown, TrackingUri, fail



def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(EXIT_INVALID_INPUT, [f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T09:00:00Z)"])
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def kpis_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    since: Annotated[
        Optional[str], typer.Option("--since", help="Start of the period, ISO 8601 (default: 28 days before --until).")
    ] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="End of the period, ISO 8601 (default: now).")] = None,
    output_format: TextJsonOrMarkdown = OutputFormat.text,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
) -> None:
    """Report a stack's delivery KPIs against their targets.

    Lead time, deployment frequency, change failure rate, time to restore
    and drift reaction time of STACK, with their targets: met, NOT met, or
    no data."""
    from ...release.traffic.advance import AdvanceError
    from ...release.reports.kpis import delivery_kpis, markdown, rows

    start, end = _time(since, "--since"), _time(until, "--until")
    if start is not None and end is not None and start >= end:
        fail(EXIT_INVALID_INPUT, [f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})"])
    if start is not None and end is None and start >= dt.datetime.now(dt.timezone.utc):
        fail(EXIT_INVALID_INPUT, [f"--since ({start.isoformat()}) must be in the past"])
    try:
        report = delivery_kpis(
            stack, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment, since=start, until=end
        )
    except AdvanceError as error:
        fail(error.code, error.problems)
    except Exception as error:  # the tracking store unreachable or unreadable
        fail(EXIT_PROGRAM_ERROR, [f"cannot read the release audit trail: {str(error).splitlines()[0]}"])
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    if output_format is OutputFormat.markdown:
        typer.echo(markdown(report), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "KPI", "value", "n", "target", "status", "note",
        title=f"delivery KPIs of {report.stack}, {report.since.isoformat(timespec='minutes')} → "
        f"{report.until.isoformat(timespec='minutes')}",
        title_justify="left",
    )
    for row in rows(report):
        table.add_row(*row)
    console = Console(width=200)
    console.print(table)
    console.print(f"from MLflow experiment {report.experiment} of {report.tracking_uri}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``kpis`` to the ``release`` sub-app."""
    app.command("kpis")(kpis_command)
