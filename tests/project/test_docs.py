"""The documentation: the README is a short front door, the config reference
and the security checklist table are generated from the code they describe
(and fail when stale), every schema field is described, and every link and
cited file stays inside this repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from azml.config import reference
from azml.policy import checklistdoc

from ..conftest import ROOT
from ..policies.checklist.test_policy_pack import POLICY_INFO

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


# --- the config reference -------------------------------------------------------------


def test_the_config_reference_is_generated_from_the_schema() -> None:
    page = reference.PAGE.read_text(encoding="utf-8")
    assert reference.render(page) == page, "docs/config.md is stale: run `make docs`"


def test_every_config_field_has_a_description() -> None:
    missing = sorted({e.owner for e in reference.entries() if not (e.description or "").strip()})
    assert not missing, f"add description= to these config fields: {', '.join(missing)}"


def test_the_reference_has_a_row_per_field_with_the_schema_bounds_and_defaults() -> None:
    rows = {e.path: e for e in reference.entries()}
    page = reference.PAGE.read_text(encoding="utf-8")
    for path in rows:
        assert f"| `{path}` |" in page, path
    # Bounds, literals, defaults and required keys as pydantic enforces them.
    soft_delete = rows["azml:storage.blobSoftDeleteDays"]
    assert (soft_delete.type, soft_delete.allowed, soft_delete.default) == ("integer", "1–365", "`7`")
    assert rows["azml:environment"].allowed == "`dev`, `test`, `staging`, `prod`"
    assert rows["azml:environment"].default == "required"
    assert rows["azml:monitoring.dailyQuotaGb"].allowed == "> 0" and rows["azml:monitoring.dailyQuotaGb"].default == "unset"
    # Camel-case aliases, list items and map keys as a stack file writes them.
    assert "azml:compute.clusters[].idleSecondsBeforeScaleDown" in rows
    assert "azml:dataValidation.<model>.columns.<column>.dtype" in rows
    assert "azml:modelMonitoring.dataDrift.thresholds.PopulationStabilityIndex" in rows
    # A section's default shows only what differs from its keys' own defaults.
    assert rows["azml:alerts"].default == "`{enabled: false}`"
    # Each utilisation rule's own threshold is its key's default, so its section adds none.
    assert rows["azml:alerts.memory"].default == "its keys' defaults"
    assert rows["azml:alerts.memory.thresholdPercent"].default == "`85`"
    assert rows["azml:storage"].default == "its keys' defaults"


def test_the_generator_reports_an_undescribed_field_and_reads_nested_models() -> None:
    class Inner(BaseModel):
        size: int = Field(default=3, ge=1, le=9, description="Size.")
        label: str | None = None

    class Outer(BaseModel):
        items: list[Inner] = Field(default_factory=list, description="Items.")

    rows = {e.path: e for e in reference.entries(Outer, "x:")}
    assert set(rows) == {"x:items", "x:items[].size", "x:items[].label"}
    assert rows["x:items[].size"].allowed == "1–9"
    assert rows["x:items[].label"].description is None
    assert rows["x:items[].label"].owner == "Inner.label"


def test_a_changed_description_makes_the_reference_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    from azml.config.schema import MonitoringConfig

    page = reference.PAGE.read_text(encoding="utf-8")
    field = MonitoringConfig.model_fields["retention_days"]
    monkeypatch.setattr(field, "description", "Something else.")
    assert reference.render(page) != page


# --- the security checklist table ------------------------------------------------------

CHECKLIST_PAGE = checklistdoc.PAGE


def test_the_security_checklist_table_is_generated_from_the_pack() -> None:
    page = CHECKLIST_PAGE.read_text(encoding="utf-8")
    assert checklistdoc.render(page) == page, "docs/security-checklist.md is stale: run `make docs`"


def test_the_checklist_table_names_every_policy_with_its_row_severity_and_remediation() -> None:
    page = CHECKLIST_PAGE.read_text(encoding="utf-8")
    lines = {line.split("|")[2].strip().split()[0].strip("`"): line for line in page.splitlines() if "| `azml-" in line}
    assert set(lines) == set(POLICY_INFO)
    for name, info in POLICY_INFO.items():
        line = lines[name]
        cells = [c.strip() for c in line.split("|")]
        assert cells[3] == info.checklist and cells[4] == info.severity.value, name
        assert cells[5] == " ".join(info.description.split()).replace("|", "\\|"), name
        assert cells[6] == " ".join(info.remediation.split()).replace("|", "\\|"), name


# --- the README as a front door -------------------------------------------------------


def test_the_readme_is_a_front_door_with_the_layout_in_its_first_screen() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move detail to docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## The two commands", "## Layout"], headings
    assert lines.index("## Layout") < 40
    # Every page under docs/ is reachable from the README.
    text = "\n".join(lines)
    for doc in DOCS:
        assert f"(docs/{doc.name})" in text or f"docs/{doc.name}" in text, f"README does not link docs/{doc.name}"


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [m.group(1) for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", text)]


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


@pytest.mark.parametrize("page", [README, *DOCS, ROOT / "policies" / "README.md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve_inside_the_repository(page: Path) -> None:
    for link in _links(page):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.is_relative_to(ROOT) and target.exists(), f"{page.name}: {link} does not exist"
        if fragment and target.suffix == ".md":
            assert fragment in _anchors(target), f"{page.name}: {link} names no heading of {target.name}"


def test_code_and_docs_cite_only_files_the_repository_has() -> None:
    """A design document outside the repository cannot be read by anyone who
    clones it: cite the in-repo page or the Microsoft source instead."""
    absent = "DESIGN" + ".md"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert not (ROOT / absent).exists()
    citing = [
        name for name in tracked
        if name.endswith((".py", ".md", ".yml", ".yaml", ".json", ".toml")) and (ROOT / name).is_file()
        and absent in (ROOT / name).read_text(encoding="utf-8", errors="replace")
    ]
    assert not citing, f"{absent} is cited but not in the repository: {citing}"
