"""The ``azml`` command."""

from __future__ import annotations

import enum
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="azml: a secure Azure Machine Learning platform as code.",
)

EXIT_PROGRAM_ERROR = 1
EXIT_INVALID_INPUT = 2


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _fail(code: int, lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


@app.callback()
def _root() -> None:
    """Subcommands: plan."""


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name (reads Pulumi.STACK.yaml) or path to a stack config file.")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text: resource tree; json: plan.json on stdout.")
    ] = OutputFormat.text,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for <stack>/plan.json and graph.mmd.")] = Path(
        "build"
    ),
    project_dir: Annotated[
        Optional[Path], typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).")
    ] = None,
) -> None:
    """Offline plan: run the Pulumi program in-process under mocks and record
    every resource it would create, without the Pulumi CLI or Azure."""
    from .config import ConfigError, read_stack_file
    from .plan.engine import ProgramError, run_plan
    from .plan.render import mermaid, summary_lines, tree_lines

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        stack_file = read_stack_file(stack, project_dir)
        result = run_plan(stack_file)
    except ConfigError as error:
        _fail(EXIT_INVALID_INPUT, error.problems)
        return
    except ProgramError as error:
        _fail(EXIT_PROGRAM_ERROR, [f"the Pulumi program failed: {error}"])
        return

    document = json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n"
    target = out / result.stack
    write_atomically(target / "plan.json", document)
    write_atomically(target / "graph.mmd", mermaid(result))

    if output_format is OutputFormat.json:
        sys.stdout.write(document)
        return
    typer.echo(f"Offline plan of stack {result.project}/{result.stack} (no Azure calls; outputs mocked)\n")
    for line in tree_lines(result):
        typer.echo(line)
    typer.echo("")
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"\nWrote {target / 'plan.json'} and {target / 'graph.mmd'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
