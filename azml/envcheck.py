"""``azml env check``: does the running environment match the lock file?

Compares the installed distributions (``importlib.metadata``, names
normalised per PEP 503) with the lock's exact ``name==version`` pins and
reports three kinds of drift:

- *unlocked*: installed but not pinned in the lock;
- *version*: pinned, but installed at another version (PEP 440 equality,
  so ``1.0`` equals ``1.0.0``);
- *missing*: pinned (for this platform, markers evaluated) but not installed.

Any of them is a mismatch (exit 1): a lock promises the exact set of
packages, and a missing pin means the environment was not built from it.
Not counted: the project itself (``azml``, installed editable from the
checkout) and the installer's bootstrap packages (pip, setuptools, wheel),
which virtual environments carry whatever the lock says; ``--ignore`` adds
names. See docs/retraining-and-lineage.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Iterable, Optional

import typer

from .cli.common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, fail

#: Never counted as drift: the project (editable install) and installer bootstrap.
DEFAULT_IGNORED = ("azml", "pip", "setuptools", "wheel")
DEFAULT_LOCK = "requirements.lock"
#: Exit code when the environment differs from the lock.
from .errors import EXIT_MISMATCH  # noqa: E402,F401

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*(?:;(?P<marker>.*))?$"
)


class LockError(ValueError):
    """The lock file cannot be read as exact pins (one line naming where)."""


def normalize(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become ``-``, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str  # normalised
    version: str
    line: int


def parse_lock(text: str, source: str = DEFAULT_LOCK) -> dict[str, Pin]:
    """``{normalised name: Pin}`` of a pip-compile / ``pip freeze`` style lock.
    Comments, blank lines, ``--hash`` continuations and pip options are
    skipped; pins whose environment marker is false here are left out.
    Anything else that is not ``name==version`` is an error."""
    pins: dict[str, Pin] = {}
    logical = _logical_lines(text)
    for number, raw in logical:
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line or line.startswith("-"):
            continue  # blank, comment, or a pip option (-r, --index-url, --hash ...)
        line = re.sub(r"\s+--hash[= ]\S+", "", line).strip()
        match = _PIN.match(line)
        if match is None:
            raise LockError(f"{source} line {number}: {line!r} is not an exact pin name==version")
        marker = (match["marker"] or "").strip()
        if marker and not _marker_applies(marker, source, number):
            continue
        name = normalize(match["name"])
        if name in pins and pins[name].version != match["version"]:
            raise LockError(
                f"{source} line {number}: {name} pinned twice ({pins[name].version} at line {pins[name].line}, {match['version']})"
            )
        pins[name] = Pin(name, match["version"], number)
    return pins


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered by their first line."""
    buffer, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        yield start, buffer + line
        buffer = ""
    if buffer:
        yield start, buffer


def _marker_applies(marker: str, source: str, number: int) -> bool:
    try:
        from packaging.markers import InvalidMarker, Marker
    except ImportError:  # without packaging, keep the pin
        return True
    try:
        return Marker(marker).evaluate()
    except InvalidMarker:
        raise LockError(f"{source} line {number}: invalid environment marker {marker!r}") from None


def installed_distributions(path: list[str] | None = None) -> dict[str, list[str]]:
    """``{normalised name: [versions]}``: more than one version means two
    copies of a distribution are installed side by side (a broken environment)."""
    found: dict[str, list[str]] = {}
    for dist in metadata.distributions(**({"path": path} if path is not None else {})):
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        versions = found.setdefault(normalize(name), [])
        if dist.version not in versions:
            versions.append(dist.version)
    return found


def same_version(a: str, b: str) -> bool:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return a == b
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


@dataclass
class Report:
    lock: str
    unlocked: list[tuple[str, str]] = field(default_factory=list)  # (name, installed version)
    version: list[tuple[str, str, str]] = field(default_factory=list)  # (name, installed, pinned)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (name, pinned)
    ignored: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.unlocked or self.version or self.missing)

    def to_json(self) -> dict:
        return {
            "lock": self.lock,
            "ok": self.ok,
            "checked": self.checked,
            "unlocked": [{"name": n, "installed": v} for n, v in self.unlocked],
            "version": [{"name": n, "installed": i, "locked": p} for n, i, p in self.version],
            "missing": [{"name": n, "locked": p} for n, p in self.missing],
            "ignored": self.ignored,
        }

    def lines(self) -> list[str]:
        out = [f"  unlocked  {n}=={v} (installed, not in the lock)" for n, v in self.unlocked]
        out += [f"  version   {n}: installed {i}, locked {p}" for n, i, p in self.version]
        out += [f"  missing   {n}=={p} (locked, not installed)" for n, p in self.missing]
        return out


def compare(pins: dict[str, Pin], installed: dict[str, list[str]], ignore: Iterable[str], lock: str) -> Report:
    ignored = {normalize(n) for n in ignore}
    report = Report(lock=lock, ignored=sorted(ignored))
    for name in sorted(set(pins) | set(installed)):
        if name in ignored:
            continue
        report.checked += 1
        versions = installed.get(name, [])
        pin = pins.get(name)
        if pin is None:
            report.unlocked.extend((name, v) for v in versions)
        elif not versions:
            report.missing.append((name, pin.version))
        else:
            for version in versions:
                if not same_version(version, pin.version):
                    report.version.append((name, version, pin.version))
    return report



env_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="The Python environment against the lock file.",
)


@env_app.callback()
def _env() -> None:
    """Subcommands: check."""


def _default_lock(lock: Path | None) -> Path:
    if lock is not None:
        return lock
    here = Path(DEFAULT_LOCK)
    if here.is_file():
        return here
    from .config.stackfile import find_project_dir
    from .config import ConfigError

    try:
        return find_project_dir() / DEFAULT_LOCK
    except ConfigError:
        return here


@env_app.command("check")
def check(
    lock: Annotated[
        Optional[Path],
        typer.Option("--lock", help="Lock file of exact pins (default: requirements.lock here, else beside Pulumi.yaml)."),
    ] = None,
    ignore: Annotated[
        list[str], typer.Option("--ignore", help="Another distribution not to count (repeatable); azml, pip, setuptools, wheel never count.")
    ] = [],  # noqa: B006 - typer needs a literal default
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="text or json.")] = OutputFormat.text,
) -> None:
    """Compare the installed packages with the lock file.

    Report installed packages that are not in the lock, at another version
    than locked, or locked but not installed. Exit 1 on any of them, 0 when
    the environment matches, 2 when the lock cannot be read."""
    path = _default_lock(lock)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        fail(EXIT_INVALID_INPUT, [f"--lock: cannot read {path}: {error.strerror or error}"])
    except UnicodeDecodeError:
        fail(EXIT_INVALID_INPUT, [f"--lock: {path} is not UTF-8 text"])
    try:
        pins = parse_lock(text, str(path))
    except LockError as error:
        fail(EXIT_INVALID_INPUT, [f"--lock: {error}"])
    if not pins:
        fail(EXIT_INVALID_INPUT, [f"--lock: {path} pins no packages"])
    try:
        installed = installed_distributions()
    except Exception as error:  # noqa: BLE001 - broken metadata on disk
        fail(EXIT_PROGRAM_ERROR, [f"cannot list installed distributions: {error}"])
    report = compare(pins, installed, [*DEFAULT_IGNORED, *ignore], str(path))

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
