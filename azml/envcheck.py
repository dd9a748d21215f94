"""Does the running environment match the lock file? (``azml env check``,
:mod:`azml.cli.env`)

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

import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable

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


def default_lock(lock: Path | None) -> Path:
    """``lock``, else requirements.lock in the current directory, else beside Pulumi.yaml."""
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
