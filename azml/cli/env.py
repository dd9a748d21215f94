"""``azml env check``: the installed distributions against the lock's exact pins
(the comparison is :mod:`azml.envcheck`'s)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import envcheck
from ..errors import EXIT_MISMATCH
from .common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, TextOrJson, fail

env_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="The Python environment against the lock file.",
)


@env_app.callback()
def _env() -> None:
    """Subcommands: check."""


@env_app.command("check")
def check(
    lock: Annotated[
        Optional[Path],
        typer.Option("--lock", help="Lock file of exact pins (default: requirements.lock here, else beside Pulumi.yaml)."),
    ] = None,
    ignore: Annotated[
        list[str], typer.Option("--ignore", help="Another distribution not to count (repeatable); azml, pip, setuptools, wheel never count.")
    ] = [],  # noqa: B006 - typer needs a literal default
    output_format: TextOrJson = OutputFormat.text,
) -> None:
    """Compare the installed packages with the lock file.

    Report installed packages that are not in the lock, at another version
    than locked, or locked but not installed. Exit 1 on any of them, 0 when
    the environment matches, 2 when the lock cannot be read."""
    path = envcheck.default_lock(lock)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        fail(EXIT_INVALID_INPUT, [f"--lock: cannot read {path}: {error.strerror or error}"])
    except UnicodeDecodeError:
        fail(EXIT_INVALID_INPUT, [f"--lock: {path} is not UTF-8 text"])
    try:
        pins = envcheck.parse_lock(text, str(path))
    except envcheck.LockError as error:
        fail(EXIT_INVALID_INPUT, [f"--lock: {error}"])
    if not pins:
        fail(EXIT_INVALID_INPUT, [f"--lock: {path} pins no packages"])
    try:
        installed = envcheck.installed_distributions()
    except Exception as error:  # noqa: BLE001 - broken metadata on disk
        fail(EXIT_PROGRAM_ERROR, [f"cannot list installed distributions: {error}"])
    report = envcheck.compare(pins, installed, [*envcheck.DEFAULT_IGNORED, *ignore], str(path))

    if output_format is OutputFormat.json:
        document = report.to_json()
        document["lockSha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        typer.echo(json.dumps(document, indent=2))
    else:
        if report.ok:
            typer.echo(f"Environment matches {path}: {report.checked} distributions checked ({len(pins)} pinned).")
        else:
            counts = f"{len(report.unlocked)} unlocked, {len(report.version)} at another version, {len(report.missing)} missing"
            typer.echo(f"Environment differs from {path}: {counts}")
            for line in report.lines():
                typer.echo(line)
    if not report.ok:
        raise typer.Exit(EXIT_MISMATCH)
