"""Paths in stack config stay inside the project.

A stack file arrives in pull requests, and the plan (and its artifact)
copies what some of these files hold — a conda spec becomes an input of the
environment resource. So every path in config is relative to ``Pulumi.yaml``,
uses ``/``, has no ``..`` segment, and — resolved, symbolic links followed —
stays under the project directory; anything else is refused naming the key,
before any file is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(relative: str, project_dir: Path | None) -> str | None:
    """Why ``relative`` is not a path inside the project, or ``None``."""
    shape = (
        not relative
        or "\x00" in relative
        or "\\" in relative
        or relative.startswith("/")
        or _DRIVE.match(relative) is not None
        or ".." in relative.split("/")
    )
    if shape:
        return (
            f"must be a path inside the project, relative to Pulumi.yaml, with '/' separators and no '..' "
            f"(got {relative!r})"
        )
    if project_dir is not None:
        root = project_dir.resolve()
        if not (root / relative).resolve().is_relative_to(root):
            return f"must be a path inside the project: {relative} leaves it through a symbolic link"
    return None


def config_paths(config: object) -> Iterator[tuple[str, str]]:
    """``(key path without namespace, path)`` of every file path in the stack config."""
    for collection in ("online_endpoints", "batch_endpoints"):
        key = "onlineEndpoints" if collection == "online_endpoints" else "batchEndpoints"
        for index, endpoint in enumerate(getattr(config, collection)):
            for d_index, deployment in enumerate(endpoint.deployments):
                where = f"{key}[{index}].deployments[{d_index}]"
                if deployment.environment.conda_file is not None:
                    yield f"{where}.environment.condaFile", deployment.environment.conda_file
                if getattr(deployment, "lineage", None) is not None:
                    yield f"{where}.lineage", deployment.lineage
    release = config.release  # type: ignore[attr-defined]
    if release.metrics.file is not None:
        yield "release.metrics.file", release.metrics.file
    if release.load_test is not None and release.load_test.requests_file is not None:
        yield "release.loadTest.requestsFile", release.load_test.requests_file
    for name, rules in config.data_validation.items():  # type: ignore[attr-defined]
        if rules.reference is not None:
            yield f"dataValidation.{name}.reference", rules.reference


def path_problems(config: object, project_dir: Path | None) -> Iterator[tuple[str, str]]:
    for key, relative in config_paths(config):
        problem = path_problem(relative, project_dir)
        if problem is not None:
            yield key, problem
