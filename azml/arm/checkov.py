"""Run checkov over an ARM template and read its results.

checkov pins many packages that clash with ours, so it lives in its own
virtualenv, ``<project>/.venv-checkov`` (built by ``make`` from
``requirements-checkov.lock``); ``AZML_CHECKOV`` may name another executable.
We run::

    checkov -f template.json [-f Pulumi.<stack>.yaml] --framework arm secrets \
            --external-checks-dir checkov_checks \
            -o json -o sarif --output-file-path <dir> --skip-download --soft-fail

read the JSON, apply the curated skips of :mod:`azml.arm.skips` (a matching
failure becomes a skipped result with its reason) and write
``<out_dir>/checkov.sarif`` with the skipped results marked as suppressed.
``--skip-download`` keeps checkov offline (no platform metadata, so built-in
checks carry no guideline link); ``--soft-fail`` makes a non-zero exit mean
that checkov itself broke, not that a check failed.

The ``secrets`` framework (detect-secrets plugins: private keys, Azure storage
keys, AWS keys, JWTs, basic-auth URLs, keyword plus entropy, ...; ids
``CKV_SECRET_*``) runs offline: without a platform API key checkov uses only
its bundled detectors. It scans the template and, from ``azml plan``, the
stack file (``secure:`` values there are ciphertext and match no detector). A
secret's result names the ARM resource whose object holds the line (or the
stack file), so skips and plan resources apply to it as to any other result;
checkov prints only a masked prefix of the secret itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .export import ExportedResource, resource_line_ranges
from ..files import write_atomically
from .skips import SKIPS, Skip, find_skip

ENV_CHECKOV = "AZML_CHECKOV"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CUSTOM_CHECKS_DIR = PROJECT_ROOT / "checkov_checks"
SARIF_NAME = "checkov.sarif"
REPORT_NAME = "checkov.json"
#: checkov's start-up alone takes a few seconds; a whole template well under a minute.
TIMEOUT_SECONDS = 600


class CheckovError(RuntimeError):
    """checkov could not run or produced no readable result."""


class CheckovNotInstalled(CheckovError):
    pass


def checkov_executable() -> Path:
    """``$AZML_CHECKOV`` or ``<project>/.venv-checkov/bin/checkov``; a clear error if it is missing."""
    override = os.environ.get(ENV_CHECKOV)
    path = Path(override) if override else PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
    if not (path.is_file() and os.access(path, os.X_OK)):
        origin = f"{ENV_CHECKOV}={override}" if override else str(path)
        raise CheckovNotInstalled(
            f"checkov is not installed ({origin} is not an executable); run `make plan` or `make test`, which "
            f"build .venv-checkov from requirements-checkov.lock, or point {ENV_CHECKOV} at a checkov executable"
        )
    return path


@dataclass
class CheckRecord:
    """One check result on one ARM resource."""

    check_id: str
    check_name: str
    result: str  # "passed" | "failed" | "skipped"
    resource: str  # checkov's id: "<ARM type>.<ARM name>"
    file_path: str
    file_line_range: tuple[int, int]
    guideline: str | None = None
    severity: str | None = None
    reason: str | None = None  # why it is skipped
    urn: str | None = None  # the plan resource behind it, when known
    pulumi_name: str | None = None
    framework: str = "arm"  # or "secrets"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "checkId": self.check_id,
            "checkName": self.check_name,
            "result": self.result,
            "resource": self.resource,
            "file": self.file_path,
            "lines": list(self.file_line_range),
        }
        if self.framework != "arm":
            document["framework"] = self.framework
        if self.urn:
            document["urn"] = self.urn
            document["pulumiName"] = self.pulumi_name
        if self.guideline:
            document["guideline"] = self.guideline
        if self.severity:
            document["severity"] = self.severity
        if self.reason:
            document["reason"] = self.reason
        return document


@dataclass
class CheckovReport:
    template: Path
    sarif: Path
    checkov_version: str
    passed: list[CheckRecord] = field(default_factory=list)
    failed: list[CheckRecord] = field(default_factory=list)
    skipped: list[CheckRecord] = field(default_factory=list)
    resource_count: int = 0
    parsing_errors: list[str] = field(default_factory=list)
    unused_skips: list[Skip] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failed check outside the skip list, and the template parsed."""
        return not self.failed and not self.parsing_errors

    def check_ids(self, result: str | None = None) -> set[str]:
        records = {"passed": self.passed, "failed": self.failed, "skipped": self.skipped}
        chosen = [records[result]] if result else list(records.values())
        return {record.check_id for group in chosen for record in group}

    def summary(self) -> dict[str, int]:
        return {
            "passed": len(self.passed),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "resources": self.resource_count,
            "parsingErrors": len(self.parsing_errors),
        }

    def to_json(self) -> dict[str, Any]:
        """The ``checkov`` section of plan.json: counts, failures, and skips with their reasons."""
        return {
            "checkovVersion": self.checkov_version,
            # relative to the directory of checkov.sarif, so plan.json stays the same on every machine
            "template": _relative(self.template, self.sarif.parent),
            "sarif": self.sarif.name,
            "ok": self.ok,
            "summary": self.summary(),
            "failed": [record.to_json() for record in self.failed],
            "skipped": [record.to_json() for record in self.skipped],
            "parsingErrors": list(self.parsing_errors),
            "unusedSkips": [skip.to_json() for skip in self.unused_skips],
        }

    def summary_lines(self) -> list[str]:
        counts = self.summary()
        lines = [
            f"checkov {self.checkov_version} on the ARM export: {counts['passed']} passed, "  # arm and secrets checks
            f"{counts['failed']} failed, {counts['skipped']} skipped ({counts['resources']} resources)"
        ]
        lines += [f"    FAILED {line}" for line in self.failure_lines()]
        lines += [f"    skipped {r.check_id} on {r.resource}: {_brief(r.reason)}" for r in self.skipped]
        return lines

    def failure_lines(self) -> list[str]:
        lines = [f"checkov could not parse {error}" for error in self.parsing_errors]
        for record in self.failed:
            where = f" ({record.pulumi_name})" if record.pulumi_name else ""
            lines.append(
                f"{record.check_id} {record.check_name}: {record.resource}{where}, lines {record.file_line_range[0]}-{record.file_line_range[1]}"
            )
        return lines


def _brief(reason: str | None, limit: int = 100) -> str:
    """First clause of a skip reason; the full text is in plan.json and skips.py."""
    text = (reason or "").split(": ", 1)[0] if reason and ": " in reason[:40] else (reason or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return str(path)


def _template_stack(template_path: Path) -> str | None:
    try:
        metadata = json.loads(template_path.read_text()).get("metadata") or {}
    except (OSError, ValueError, AttributeError):
        return None
    stack = metadata.get("stack") if isinstance(metadata, dict) else None
    return stack if isinstance(stack, str) else None


FRAMEWORKS = ("arm", "secrets")


def _reports(document: Any) -> list[dict[str, Any]]:
    """checkov writes one report object per framework, or a list of them."""
    reports = document if isinstance(document, list) else [document]
    return [r for r in reports if isinstance(r, dict) and r.get("check_type", "arm") in FRAMEWORKS]


def _locate_secrets(
    records: Iterable[CheckRecord], template_path: Path, index: Sequence[ExportedResource] | None
) -> None:
    """checkov names a secret by a hash of its value; name it by where it is instead: the ARM resource whose
    object holds the line (its checkov id, and its plan resource when ``index`` is given), or the scanned
    file (the stack file)."""
    text = template_path.read_text()
    try:
        resources = json.loads(text).get("resources") or []
    except (ValueError, AttributeError):
        resources = []
    ranges = list(zip(resource_line_ranges(text), resources, index or [None] * len(resources)))
    for record in records:
        if Path(record.file_path).name != template_path.name:
            record.resource = Path(record.file_path).name
            continue
        line = record.file_line_range[0]
        for (first, last), resource, entry in ranges:
            if first <= line <= last and isinstance(resource, dict):
                record.resource = f"{resource.get('type')}.{resource.get('name')}"
                if entry is not None:
                    record.urn, record.pulumi_name = entry.urn, entry.pulumi_name
                break
        else:
            record.resource = template_path.name


def _record(raw: dict[str, Any], result: str) -> CheckRecord:
    first, last = (list(raw.get("file_line_range") or [0, 0]) + [0, 0])[:2]
    severity = raw.get("severity")
    return CheckRecord(
        framework=str(raw.get("check_type") or "arm"),
        check_id=str(raw.get("check_id")),
        check_name=str(raw.get("check_name") or ""),
        result=result,
        resource=str(raw.get("resource") or ""),
        file_path=str(raw.get("repo_file_path") or raw.get("file_path") or ""),
        file_line_range=(int(first or 0), int(last or 0)),
        guideline=raw.get("guideline") or None,
        severity=str(severity) if severity else None,
        reason=(raw.get("check_result") or {}).get("suppress_comment") if result == "skipped" else None,
    )


def _attach_resources(records: Iterable[CheckRecord], template_text: str, index: Sequence[ExportedResource]) -> None:
    """Tie results to plan resources by checkov's resource id and, among ARM resources that share one (diagnostic
    settings of the same name on different targets), by line: the resource whose object starts nearest.
    (checkov's graph checks report lines two above the object, its resource checks the object's own lines.)"""
    candidates: dict[str, list[tuple[int, ExportedResource]]] = {}
    for (first, _), entry in zip(resource_line_ranges(template_text), index):
        candidates.setdefault(entry.checkov_id, []).append((first, entry))
    for record in records:
        options = candidates.get(record.resource)
        if not options:
            continue
        _, entry = min(options, key=lambda option: abs(option[0] - record.file_line_range[0]))
        record.urn = entry.urn
        record.pulumi_name = entry.pulumi_name


def _suppress_in_sarif(sarif: dict[str, Any], skipped: Sequence[CheckRecord]) -> dict[str, Any]:
    reasons = {(r.check_id, r.file_line_range[0]): r.reason or "skipped" for r in skipped}
    for run in sarif.get("runs") or []:
        for result in run.get("results") or []:
            try:
                start = int(result["locations"][0]["physicalLocation"]["region"]["startLine"])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            reason = reasons.get((result.get("ruleId"), start))
            if reason is not None and not result.get("suppressions"):
                result["suppressions"] = [{"kind": "external", "justification": f"azml.arm.skips: {reason}"}]
    return sarif


def _working_dir(template_path: Path) -> Path:
    # checkov names files relative to its working directory (SARIF artifact URIs): use the project root when
    # the template lies inside it, so URIs read like build/dev/arm/template.json.
    try:
        template_path.relative_to(PROJECT_ROOT)
        return PROJECT_ROOT
    except ValueError:
        return template_path.parent


def run_checkov(
    template_path: Path,
    out_dir: Path,
    skips: Sequence[Skip] = SKIPS,
    *,
    stack: str | None = None,
    index: Sequence[ExportedResource] | None = None,
    external_checks_dir: Path | None = CUSTOM_CHECKS_DIR,
    secrets_in: Sequence[Path] = (),
) -> CheckovReport:
    """Run checkov on ``template_path``; write ``out_dir/checkov.sarif`` and return the curated report.

    ``stack`` selects stack-specific skips (default: the template's
    ``metadata.stack``); ``index`` (from :func:`azml.arm.export.export_resources`)
    ties each result to the plan resource it came from; ``secrets_in`` are
    more files (the stack file) for the secrets framework alone.
    """
    executable = checkov_executable()
    template_path = Path(template_path).resolve()
    # Absolute: checkov runs in another working directory (_working_dir), where a
    # relative output path would land somewhere else.
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stack = stack if stack is not None else _template_stack(template_path)
    env = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no PyPI look-up on each run
        "BC_SKIP_MAPPING": "TRUE",  # no platform id mapping download
        "LOG_LEVEL": "ERROR",  # dependsOn expressions on child resources make its graph builder chatty
    }
    with tempfile.TemporaryDirectory(prefix="checkov-", dir=out_dir) as raw_dir:
        command = [
            str(executable),
            "-f", str(template_path),
            *[argument for path in secrets_in for argument in ("-f", str(Path(path).resolve()))],
            "--framework", *FRAMEWORKS,
            "-o", "json",
            "-o", "sarif",
            "--output-file-path", raw_dir,
            "--skip-download",
            "--soft-fail",
        ]  # fmt: skip
        if external_checks_dir is not None:
            command += ["--external-checks-dir", str(external_checks_dir)]
        try:
            completed = subprocess.run(
                command,
                cwd=_working_dir(template_path),
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CheckovError(f"checkov did not run: {error}") from None
        json_path = Path(raw_dir) / "results_json.json"
        sarif_path = Path(raw_dir) / "results_sarif.sarif"
        if completed.returncode != 0 or not json_path.is_file() or not sarif_path.is_file():
            detail = (completed.stderr or completed.stdout or "").strip().splitlines()
            last = detail[-1] if detail else "no output"
            raise CheckovError(f"checkov failed (exit {completed.returncode}): {last}")
        if "Cannot load external check" in completed.stderr:
            # checkov logs a broken custom check and scans on without it: that must not pass silently.
            broken = [line for line in completed.stderr.splitlines() if "Cannot load external check" in line]
            raise CheckovError(f"checkov could not load a custom check: {broken[0].split('Cannot load', 1)[1].strip()}")
        document = json.loads(json_path.read_text())
        sarif = json.loads(sarif_path.read_text())

    report = CheckovReport(
        template=template_path,
        sarif=out_dir / SARIF_NAME,
        checkov_version="",
    )
    used: set[int] = set()
    for raw_report in _reports(document):
        # With nothing to scan checkov writes only the summary object.
        summary = raw_report.get("summary") or (raw_report if "checkov_version" in raw_report else {})
        report.checkov_version = str(summary.get("checkov_version") or report.checkov_version)
        report.resource_count += int(summary.get("resource_count") or 0)
        results = raw_report.get("results") or {}
        framework = str(raw_report.get("check_type") or "arm")
        records = {
            outcome: [_record(raw, outcome) for raw in results.get(f"{outcome}_checks") or []]
            for outcome in ("passed", "skipped", "failed")
        }
        for record in (r for group in records.values() for r in group):
            record.framework = framework
        if framework == "secrets":
            _locate_secrets([r for group in records.values() for r in group], template_path, index)
        report.passed += records["passed"]
        report.skipped += records["skipped"]
        for record in records["failed"]:
            skip = find_skip(tuple(skips), record.check_id, record.resource, stack)
            if skip is None:
                report.failed.append(record)
                continue
            used.add(id(skip))
            record.result = "skipped"
            record.reason = skip.reason
            report.skipped.append(record)
        errors = results.get("parsing_errors") or []
        report.parsing_errors += [str(e) for e in errors]
    report.unused_skips = [skip for skip in skips if id(skip) not in used and (not skip.stacks or stack in skip.stacks)]
    if index is not None:
        arm = [r for r in (*report.passed, *report.failed, *report.skipped) if r.framework == "arm"]
        _attach_resources(arm, template_path.read_text(), index)
    for group in (report.passed, report.failed, report.skipped):
        group.sort(key=lambda r: (r.file_line_range[0], r.check_id))

    write_atomically(report.sarif, json.dumps(_suppress_in_sarif(sarif, report.skipped), indent=2) + "\n")
    write_atomically(out_dir / REPORT_NAME, json.dumps(report.to_json(), indent=2) + "\n")
    return report
