"""Exit codes and error printing shared by every ``azml`` command."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from typer.core import TyperGroup

EXIT_PROGRAM_ERROR = 1
EXIT_INVALID_INPUT = 2
#: ``azml drift``: a feature is over its threshold.
EXIT_DRIFT = 3


def fail(code: int, lines: list[str]) -> NoReturn:
    """Print each line as ``error: <line>`` on stderr and exit with ``code``."""
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


class CommandError(Exception):
    """A refusal or failure whose message is one line for the user, with the
    exit code it ends the command with. Raised below the command layer (where
    no exit code is chosen) and turned into ``error: <message>`` by
    :class:`ErrorGroup` or by the command itself."""

    exit_code = EXIT_PROGRAM_ERROR


class ErrorGroup(TyperGroup):
    """A command group whose commands end on a :class:`CommandError` with its
    one line and exit code, never a traceback, whichever command raised it."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except CommandError as error:
            fail(error.exit_code, [str(error)])


class OutputFormat(str, enum.Enum):
    """``--format`` of commands that print either text or a JSON document."""

    text = "text"
    json = "json"


#: Options shared by the commands that read a stack.
ProjectDir = Annotated[
    Optional[Path], typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).")
]
TrackingUri = Annotated[
    Optional[str],
    typer.Option(
        "--tracking-uri",
        envvar="AZML_TRACKING_URI",
        help="MLflow tracking URI (default: the stack's azml:release.metrics.trackingUri; "
        "a relative sqlite path is relative to the project directory; `workspace`: the MLflow store of the "
        "stack's workspace, in the subscription of ARM_SUBSCRIPTION_ID or AZURE_SUBSCRIPTION_ID).",
    ),
]
Experiment = Annotated[
    Optional[str], typer.Option("--experiment", help="MLflow experiment (default: the stack's azml:release.metrics.experiment).")
]
