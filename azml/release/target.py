"""The release target, the floor every wing of the release controller stands
on: a loaded stack and one of its online endpoints with the MLflow store to
use, the exit codes of the release commands, and the errors they share.

These helpers lived in ``advance.py`` and ``evaluate.py``; the error budget,
the KPIs, the status and the evidence all need them, so they live here, below
both, and no wing imports another wing's command module for them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, StackConfig, StackFile, load_stack
from ..config.schema import OnlineEndpointConfig
from ..errors import ProblemsError
from ..tracking import TAG_GIT_COMMIT, TAG_GIT_COMMIT_TIME, resolve_tracking_uri
from .traffic.ladder import Split
from .evidence.verdict import Verdict, utc_now

#: Exit codes of ``advance`` and ``status``.
from ..errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_PROGRAM_ERROR, EXIT_REFUSED  # noqa: E402,F401


class AdvanceError(ProblemsError):
    """``advance`` stopped; ``code`` is the exit code, ``problems`` one line each."""

    def __init__(self, code: int, problems: list[str]):
        self.code = code
        super().__init__(problems)


@dataclass
class Target:
    """A loaded stack and one of its online endpoints, with the store to use."""

    stack_file: StackFile
    config: StackConfig
    endpoint: str
    tracking_uri: str
    experiment: str

    @property
    def endpoint_config(self):  # type: ignore[no-untyped-def]
        return next(e for e in self.config.online_endpoints if e.name == self.endpoint)

    @property
    def deployments(self) -> list[str]:
        return [d.name for d in self.endpoint_config.deployments]

    @property
    def split(self) -> Split:
        e = self.endpoint_config
        return Split.of(e.traffic, e.mirror_traffic)


def load_target(
    stack: str,
    endpoint: str | None,
    *,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> tuple[StackFile, StackConfig, str, str]:
    """Load and validate the stack, check ``endpoint`` is declared, and
    resolve the tracking store (option, else the stack's ``azml:release``;
    a relative sqlite path is relative to the project directory)."""
    try:
        stack_file, config = load_stack(stack, project_dir)
    except ConfigError as error:
        raise AdvanceError(EXIT_INVALID_INPUT, error.problems) from None
    if endpoint is not None:
        declared = [e.name for e in config.online_endpoints]
        if endpoint not in declared:
            raise AdvanceError(
                EXIT_INVALID_INPUT,
                [
                    f"stack {stack_file.stack} declares no online endpoint {endpoint!r} "
                    f"(declared: {', '.join(declared) or 'none'})"
                ],
            )
    metrics = config.release.metrics
    uri = resolve_tracking_uri(tracking_uri or metrics.tracking_uri, stack_file.project_dir, config)
    return stack_file, config, uri, experiment or metrics.experiment


def missing_sqlite_store(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI that does not exist yet
    (reading it would create an empty store), else None."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path = Path(uri[len(prefix):].split("?", 1)[0])
        if not path.exists():
            return path
    return None


def verdict_age(verdict: Verdict, now: dt.datetime | None = None) -> dt.timedelta:
    return max((now or utc_now()) - verdict.computed(), dt.timedelta(0))


def _minutes(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d {(minutes % 1440) // 60} h"


class EvaluationError(ProblemsError):
    """Evaluation cannot run (bad input); ``problems`` holds one line each."""


def find_endpoint(config: StackConfig, name: str, stack_file: StackFile) -> OnlineEndpointConfig:
    for endpoint in config.online_endpoints:
        if endpoint.name == name:
            return endpoint
    declared = ", ".join(e.name for e in config.online_endpoints) or "none"
    raise EvaluationError([f"--endpoint: {name!r} is not an online endpoint of {stack_file.path.name} (declared: {declared})"])


def tracking_uri_of(config: StackConfig, project_dir: Path, override: str | None) -> str:
    return resolve_tracking_uri(override or config.release.metrics.tracking_uri, project_dir, config)


def commit_tags(directory: Path | None = None) -> dict[str, str]:
    """The HEAD commit of the Git checkout holding ``directory`` (default: the
    working directory) and its committer time, as run tags. Empty when git is
    missing or the directory is no checkout: the lead time then says so."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory or Path.cwd()), "log", "-1", "--format=%H%n%cI"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return {}
    return {TAG_GIT_COMMIT: lines[0], TAG_GIT_COMMIT_TIME: lines[1]}
