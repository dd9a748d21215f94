"""checkov over many ARM templates in one process, and the ids of the checks it knows.

checkov spends several seconds starting up (imports, check registries) and
well under a second per extra template, so scanning many variants of a plan
(the mutation matrix in tests/) runs it once over a directory::

    checkov -d <dir> --framework arm --external-checks-dir checkov_checks -o json \\
            --output-file-path <raw> --skip-download --soft-fail

and splits the results by file. Skips are applied exactly as
:func:`azml.arm.checkov.run_checkov` applies them for ``azml plan``: a failed
check matching an entry of :mod:`azml.arm.skips` for the template's stack
becomes a skipped result with that entry's reason.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from .checkov import (
    CUSTOM_CHECKS_DIR,
    TIMEOUT_SECONDS,
    CheckovError,
    CheckovReport,
    _record,
    _reports,
    checkov_executable,
)
from .skips import SKIPS, Skip, find_skip

_ENV = {
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no PyPI look-up on each run
    "BC_SKIP_MAPPING": "TRUE",  # no platform id mapping download
    "LOG_LEVEL": "ERROR",
}


def _run(arguments: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(checkov_executable()), *arguments],
            cwd=cwd,
            env={**os.environ, **_ENV},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckovError(f"checkov did not run: {error}") from None


def scan_templates(
    directory: Path,
    stacks: Mapping[str, str],
    skips: Sequence[Skip] = SKIPS,
    *,
    external_checks_dir: Path | None = CUSTOM_CHECKS_DIR,
) -> dict[str, CheckovReport]:
    """Run checkov once over every ``*.json`` template in ``directory``.

    ``stacks`` maps each template's file name to the stack (environment)
    whose skips apply to it. Returns one curated report per file name;
    reports carry no SARIF (``sarif`` names the directory's would-be file and
    nothing is written there).
    """
    directory = Path(directory).resolve()
    names = sorted(path.name for path in directory.glob("*.json"))
    missing = sorted(set(stacks) - set(names))
    if missing:
        raise CheckovError(f"no template {missing[0]} in {directory}")
    reports = {
        name: CheckovReport(template=directory / name, sarif=directory / "checkov.sarif", checkov_version="")
        for name in names
    }
    with tempfile.TemporaryDirectory(prefix="checkov-batch-") as raw_dir:
        arguments = ["-d", str(directory), "--framework", "arm", "-o", "json", "--output-file-path", raw_dir]
        arguments += ["--skip-download", "--soft-fail"]
        if external_checks_dir is not None:
            arguments += ["--external-checks-dir", str(external_checks_dir)]
        # Run inside the directory: checkov then names each file "/<name>.json".
        completed = _run(arguments, cwd=directory)
        json_path = Path(raw_dir) / "results_json.json"
        if completed.returncode != 0 or not json_path.is_file():
            detail = (completed.stderr or completed.stdout or "").strip().splitlines()
            raise CheckovError(f"checkov failed (exit {completed.returncode}): {detail[-1] if detail else 'no output'}")
        if "Cannot load external check" in completed.stderr:
            raise CheckovError("checkov could not load a custom check from " + str(external_checks_dir))
        document = json.loads(json_path.read_text())

    for raw_report in _reports(document):
        summary = raw_report.get("summary") or {}
        version = str(summary.get("checkov_version") or "")
        results = raw_report.get("results") or {}
        for key, result in (("passed_checks", "passed"), ("failed_checks", "failed"), ("skipped_checks", "skipped")):
            for raw in results.get(key) or []:
                record = _record(raw, result)
                name = Path(record.file_path).name
                report = reports.get(name)
                if report is None:
                    raise CheckovError(f"checkov reported on {record.file_path}, which is not a template of {directory}")
                report.checkov_version = version
                if result == "failed":
                    skip = find_skip(tuple(skips), record.check_id, record.resource, stacks.get(name))
                    if skip is not None:
                        record.result, record.reason = "skipped", skip.reason
                        report.skipped.append(record)
                        continue
                getattr(report, result).append(record)
        for error in results.get("parsing_errors") or []:
            report = reports.get(Path(str(error)).name)
            if report is None:
                raise CheckovError(f"checkov could not parse {error}")
            report.parsing_errors.append(str(error))
    return reports


_CUSTOM_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def custom_check_ids(checks_dir: Path = CUSTOM_CHECKS_DIR) -> set[str]:
    """The ids our own checks declare (``id="CKV_AZML_…"`` in ``checkov_checks/*.py``), read without checkov."""
    ids: set[str] = set()
    for path in sorted(Path(checks_dir).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.keyword) and node.arg == "id" and isinstance(node.value, ast.Constant):
                if isinstance(node.value.value, str) and _CUSTOM_ID.match(node.value.value):
                    ids.add(node.value.value)
    return ids


@lru_cache(maxsize=1)
def builtin_arm_checks() -> dict[str, frozenset[str]]:
    """checkov's own ARM checks: id → the resource types it reads (``checkov --list --framework arm``).

    ``--list`` leaves out external checks: see :func:`custom_check_ids`.
    """
    completed = _run(["--list", "--framework", "arm"], cwd=Path(tempfile.gettempdir()))
    if completed.returncode != 0:
        raise CheckovError(f"checkov --list failed (exit {completed.returncode})")
    checks: dict[str, set[str]] = {}
    for line in completed.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        # | n | Id | Type | Entity | Policy | IaC | Resource Link |
        if len(cells) >= 7 and _CUSTOM_ID.match(cells[2]) and cells[6] == "arm":
            checks.setdefault(cells[2], set()).update(e.strip() for e in cells[4].split(",") if e.strip())
    if not checks:
        raise CheckovError("checkov --list printed no ARM checks")
    return {check: frozenset(types) for check, types in checks.items()}


def known_check_ids() -> set[str]:
    """Every checkov id ``azml plan`` can report: checkov's ARM checks and ours."""
    return set(builtin_arm_checks()) | custom_check_ids()
