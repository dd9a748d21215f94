"""Exit codes and error printing shared by every ``azml`` command."""

from __future__ import annotations

import enum
from typing import NoReturn

import typer

EXIT_PROGRAM_ERROR = 1
EXIT_INVALID_INPUT = 2
#: ``azml drift``: a feature is over its threshold.
EXIT_DRIFT = 3


def fail(code: int, lines: list[str]) -> NoReturn:
    """Print each line as ``error: <line>`` on stderr and exit with ``code``."""
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


class OutputFormat(str, enum.Enum):
    """``--format`` of commands that print either text or a JSON document."""

    text = "text"
    json = "json"
