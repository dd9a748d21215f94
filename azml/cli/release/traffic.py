"""``azml release advance`` and ``azml release status``.

:func:`register` adds both commands to the ``release`` sub-app. Exit codes:
0 applied or nothing to apply; 1 refused (stack file changed since the
verdict or read-only, lock held, no or stale verdict, ``pulumi up`` missing or
failed) or the file system refused the write (read-only directory, disk
full); 2 bad input (unknown stack or endpoint, invalid stack config).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..common import OutputFormat, TextOrJson, fail



_PROJECT_DIR = typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).")
_TRACKING_URI = typer.Option(
    "--tracking-uri",
    help="MLflow tracking URI (default: the stack's azml:release metrics.trackingUri; "
    "a relative sqlite path is relative to the project directory).",
)
_EXPERIMENT = typer.Option("--experiment", help="MLflow experiment (default: the stack's metrics.experiment).")


def advance_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint whose last verdict to apply.")],
    project_dir: Annotated[Optional[Path], _PROJECT_DIR] = None,
    tracking_uri: Annotated[Optional[str], _TRACKING_URI] = None,
    experiment: Annotated[Optional[str], _EXPERIMENT] = None,
    up: Annotated[
        bool, typer.Option("--up", help="Then run `pulumi up` through the Automation API (needs the Pulumi CLI).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="With --up: deploy without asking (required when not on a terminal).")
    ] = False,
) -> None:
    """Apply the endpoint's last verdict to the stack file.

    Apply the endpoint's last verdict to Pulumi.STACK.yaml: PROMOTE moves
    the canary one ladder step up, ROLLBACK gives the champion 100% and
    removes the mirror, HOLD changes nothing. Prints the split's diff and
    the `pulumi up` that applies it."""
    from ...release.traffic.advance import AdvanceError, advance, command_text, run_pulumi_up

    try:
        result = advance(
            stack, endpoint, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment,
            on_settled=lambda line: typer.echo(f"audit trail: {line}"),
        )
    except AdvanceError as error:
        fail(error.code, error.problems)
    verdict = result.verdict
    typer.echo(
        f"verdict: {verdict.decision.value} for {verdict.canary} (champion {verdict.champion}), "
        f"computed at {verdict.computed_at}, run {verdict.run_id}"
    )
    if not result.applied:
        typer.echo(result.message)
        return
    assert result.move is not None
    typer.echo(result.message)
    typer.echo(f"  before: {result.move.before.text()}")
    typer.echo(f"  after:  {result.move.after.text()}")
    typer.echo(f"{result.target.stack_file.path.name} rewritten (traffic change recorded as run {result.traffic_run_id}):")
    for line in result.diff:
        typer.echo(f"  {line}")
    command = command_text(result.pulumi_command)
    if not up:
        typer.echo(f"apply it with: {command}")
        return
    if not yes:
        if not sys.stdin.isatty():
            fail(1, [f"--up without --yes needs a terminal to confirm; the stack file is updated: run `{command}`"])
        if not typer.confirm(f"run {command} now?", default=False):
            typer.echo(f"not deployed; apply it with: {command}")
            return
    try:
        outcome = run_pulumi_up(result.target.stack_file.stack, result.target.stack_file.project_dir)
    except AdvanceError as error:
        fail(error.code, error.problems)
    typer.echo(f"pulumi up: {outcome}")


def status_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", "-e", help="Only this online endpoint (default: all).")
    ] = None,
    output_format: TextOrJson = OutputFormat.text,
    project_dir: Annotated[Optional[Path], _PROJECT_DIR] = None,
    tracking_uri: Annotated[Optional[str], _TRACKING_URI] = None,
    experiment: Annotated[Optional[str], _EXPERIMENT] = None,
) -> None:
    """Show each endpoint's split, ladder position and last verdict.

    Per online endpoint: live and mirror split, canary and ladder
    position, and the last verdict with its age. Exit 1 when the tracking
    store cannot be read (the split is still shown)."""
    from ...release.traffic.advance import AdvanceError
    from ...release.traffic.status import render_text, stack_status

    try:
        status = stack_status(
            stack, endpoint, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
        )
    except AdvanceError as error:
        fail(error.code, error.problems)
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(status.to_json(), indent=2))
    else:
        render_text(status)
    if status.store_errors:
        fail(1, status.store_errors)


def register(app: typer.Typer) -> None:
    """Add ``advance`` and ``status`` to the ``release`` sub-app."""
    app.command("advance")(advance_command)
    app.command("status")(status_command)


def _standalone() -> typer.Typer:
    """The two commands on their own (``python -m azml.cli.release.traffic``)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
    register(app)
    return app


if __name__ == "__main__":
    _standalone()()
