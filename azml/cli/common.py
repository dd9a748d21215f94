"""Exit codes and error printing shared by every ``azml`` command."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Optional

import typer
from typer.core import TyperGroup

from ..errors import (  # noqa: F401  (the one exit-code table, re-exported for the commands)
    EXIT_DRIFT,
    EXIT_INCONCLUSIVE,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_PROGRAM_ERROR,
    EXIT_RETRAIN,
    CommandError,
)


def fail(code: int, lines: list[str]) -> NoReturn:
    """Print each line as ``error: <line>`` on stderr and exit with ``code``."""
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


class ErrorGroup(TyperGroup):
    """A command group whose commands end on a :class:`CommandError` with its
    one line and exit code, never a traceback, whichever command raised it."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except CommandError as error:
            fail(error.exit_code, error.lines)


class OutputFormat(str, enum.Enum):
    """What a command prints (``--format/-f``); each command accepts the values
    its :func:`format_option` lists, no others."""

    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


def _as_format(value: str | None) -> OutputFormat | None:
    return None if value is None else OutputFormat(value)


def _words(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def format_option(*accepted: OutputFormat) -> Any:
    """The one ``--format/-f`` option: ``Annotated[..., typer.Option(...)]`` accepting
    exactly ``accepted`` (in that order), its value an :class:`OutputFormat`. Any
    other value fails in typer's way: exit 2, naming the accepted values."""
    values = tuple(OutputFormat(a).value for a in accepted)
    return Annotated[
        Literal[values],  # type: ignore[valid-type]
        typer.Option("--format", "-f", help=f"Output format: {_words(values)}.", callback=_as_format),
    ]


#: ``--format`` of the commands that print text or a JSON document.
TextOrJson = format_option(OutputFormat.text, OutputFormat.json)
#: ``--format`` of the commands that also print Markdown (a pull request comment).
TextJsonOrMarkdown = format_option(OutputFormat.text, OutputFormat.json, OutputFormat.markdown)


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


# --- the one resolver: stack -> endpoint -> tracking store -----------------------


def load_stack_or_fail(stack: str, project_dir: Path | None):  # type: ignore[no-untyped-def]
    """The validated stack (``StackFile``, ``StackConfig``); a refused stack
    ends the command with exit 2 and its problems, in every command alike."""
    from ..config import ConfigError, load_stack

    try:
        return load_stack(stack, project_dir)
    except ConfigError as error:
        fail(EXIT_INVALID_INPUT, error.problems)


def resolve_endpoint(stack: str, endpoint: str, project_dir: Path | None):  # type: ignore[no-untyped-def]
    """``(stack_file, config, endpoint_config)`` of one declared online
    endpoint; an unknown stack or endpoint ends the command with exit 2."""
    from ..release.target import EvaluationError, find_endpoint

    stack_file, config = load_stack_or_fail(stack, project_dir)
    try:
        return stack_file, config, find_endpoint(config, endpoint, stack_file)
    except EvaluationError as error:
        fail(EXIT_INVALID_INPUT, error.problems)


def tracking_store(config, project_dir: Path, tracking_uri: str | None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The MLflow ``(tracking URI, experiment)`` of a command: ``--tracking-uri``
    else the stack's ``azml:release.metrics`` (a relative sqlite path is
    relative to the project directory)."""
    from ..release.target import tracking_uri_of

    return tracking_uri_of(config, project_dir, tracking_uri), config.release.metrics.experiment
