"""Run the mutation matrix: every mutation of ``tests/mutations/<category>.py``
on its own copy of the prod plan, judged by both CrossGuard packs (in-process,
under prod's pack config) and by checkov over the exported ARM template.

checkov costs seconds per process and ~0.3 s per template, so it scans only
the plans of mutations that name a checkov check, with the untouched plan's:
their templates go into one directory and checkov runs once over all of them
(:func:`azml.arm.batch.scan_templates`, with the skips ``azml plan`` applies).
A mutation that names none cannot be caught by checkov, and scanning all 140
took ~47 s of the matrix's ~63. A mutation is caught when one of its
``caught_by`` checks reports a finding the untouched plan does not have.

``python -m tests.mutation_matrix`` runs the matrix without pytest and prints
the per-category summary (exit 1 when a mutation is missed);
``tests/policies/test_mutation_matrix.py`` runs it as one test per mutation and writes
the same summary to ``build/mutation-matrix.txt``.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from azml.arm.batch import known_check_ids, scan_templates
from azml.arm.bridge import environment_of
from azml.arm.export import export_resources, render_template
from azml.plan.model import Plan

from . import mutations as mutations_package
from .mutations import CATEGORIES, Mutation
from .platform_harness import run_rules
from .policies.checklist.test_policy_pack import evaluate

ROOT = Path(__file__).resolve().parents[1]
STACK = "prod"
REPORT_TEXT = ROOT / "build" / "mutation-matrix.txt"
PLATFORM_CONFIG = ROOT / "policies" / "platform" / f"config.{STACK}.json"
UNTOUCHED = "_untouched"  # template name of the unmutated plan (no mutation id starts with "_")


def category_modules() -> list[str]:
    """The category modules of tests/mutations (``_``-prefixed modules are helpers, not categories)."""
    return sorted(
        info.name for info in pkgutil.iter_modules(mutations_package.__path__) if not info.name.startswith("_")
    )


def discover() -> list[Mutation]:
    """Every mutation of every category module, in module then list order."""
    found: list[Mutation] = []
    for name in category_modules():
        module = importlib.import_module(f"{mutations_package.__name__}.{name}")
        listed = getattr(module, "MUTATIONS", None)
        if not isinstance(listed, list):
            raise TypeError(f"tests/mutations/{name}.py must export MUTATIONS: list[Mutation]")
        found.extend(listed)
    return found


@dataclass
class Outcome:
    """What one mutation changed in the verdicts: every check with a finding the untouched plan does not have."""

    id: str
    category: str
    description: str
    caught_by: list[str]
    new: dict[str, list[str]] = field(default_factory=dict)  # check → "resource: message" lines
    error: str | None = None  # the mutation itself failed to apply
    scanned: bool = False  # checkov scanned its plan's ARM export (it names a checkov check)

    @property
    def caught(self) -> bool:
        return self.error is None and any(check in self.new for check in self.caught_by)

    def failure(self) -> str:
        """Why the mutation counts as missed, naming what fired instead."""
        if self.error:
            return f"{self.id}: the mutation did not apply: {self.error}"
        expected = ", ".join(self.caught_by)
        if not self.new:
            judges = "either pack or checkov" if self.scanned else "either pack"
            return f"{self.id} ({self.description}): nothing new fired in {judges}; expected one of {expected}"
        fired = "; ".join(f"{check} ({len(lines)}: {lines[0]})" for check, lines in sorted(self.new.items()))
        return f"{self.id} ({self.description}): none of {expected} fired; instead: {fired}"


def _platform_settings() -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Disabled rules and rule properties of prod's platform pack config."""
    raw = json.loads(PLATFORM_CONFIG.read_text()) if PLATFORM_CONFIG.is_file() else {}
    disabled = {name for name, entry in raw.items() if entry == "disabled"}
    disabled |= {n for n, e in raw.items() if isinstance(e, dict) and e.get("enforcementLevel") == "disabled"}
    properties = {
        name: {k: v for k, v in entry.items() if k != "enforcementLevel"} for name, entry in raw.items() if isinstance(entry, dict)
    }
    if raw.get("all") == "disabled":
        raise ValueError(f"{PLATFORM_CONFIG} disables the whole platform pack")
    return disabled, properties


def pack_findings(plan: Plan) -> set[tuple[str, str]]:
    """``(check, "resource: message")`` of every finding of both packs on ``plan`` under prod's config."""
    findings = {(f.policy, f"{f.name or '<stack>'}: {f.message}") for f in evaluate(plan, STACK)}
    disabled, properties = _platform_settings()
    findings |= {
        (f.rule, f"{f.name or '<stack>'}: {f.message}") for f in run_rules(plan, properties) if f.rule not in disabled
    }
    return findings


def _checkov_findings(report: Any) -> set[tuple[str, str]]:
    return {(r.check_id, f"{r.resource}: {r.check_name}") for r in report.failed}


def run_matrix(plan: Plan, mutations: Sequence[Mutation], work_dir: Path) -> list[Outcome]:
    """Apply each mutation to a deep copy of ``plan`` and collect the findings it adds."""
    arm_dir = Path(work_dir) / "arm"
    arm_dir.mkdir(parents=True, exist_ok=True)
    for stale in arm_dir.glob("*.json"):
        stale.unlink()
    stacks: dict[str, str] = {}

    def export(mutated: Plan, name: str) -> None:
        template, _ = export_resources(mutated)
        (arm_dir / f"{name}.json").write_text(render_template(template))
        stacks[f"{name}.json"] = environment_of(mutated)

    checkov_ids = known_check_ids()
    baseline = pack_findings(plan)
    outcomes: list[Outcome] = []
    for mutation in mutations:
        outcome = Outcome(mutation.id, mutation.category, mutation.description, list(mutation.caught_by))
        outcome.scanned = any(check in checkov_ids for check in mutation.caught_by)
        outcomes.append(outcome)
        mutated = copy.deepcopy(plan)
        try:
            mutation.apply(mutated)
        except Exception as error:  # a mutation written against a resource the program no longer has
            outcome.error = f"{type(error).__name__}: {error}"
            continue
        for check, line in sorted(pack_findings(mutated) - baseline):
            outcome.new.setdefault(check, []).append(line)
        if outcome.scanned:
            export(mutated, mutation.id)

    if not stacks:  # no mutation names a checkov check
        return outcomes
    export(plan, UNTOUCHED)
    reports = scan_templates(arm_dir, stacks)
    untouched = _checkov_findings(reports[f"{UNTOUCHED}.json"])
    for outcome in outcomes:
        report = reports.get(f"{outcome.id}.json")
        if report is None:
            continue
        if report.parsing_errors:
            outcome.new.setdefault("checkov-parse", []).extend(report.parsing_errors)
        for check, line in sorted(_checkov_findings(report) - untouched):
            outcome.new.setdefault(check, []).append(line)
    return outcomes


def summary_lines(outcomes: Iterable[Outcome]) -> list[str]:
    """Caught/total per category, then every missed mutation with what fired instead."""
    outcomes = list(outcomes)
    scanned = sum(o.scanned for o in outcomes)
    lines = [
        f"mutation matrix on the {STACK} plan: both packs under config.{STACK}.json, checkov on the ARM export"
        f" of the {scanned} mutation(s) that name a checkov check"
    ]
    for category in CATEGORIES:
        mine = [o for o in outcomes if o.category == category]
        caught = sum(o.caught for o in mine)
        lines.append(f"  {category:<14} {caught:>3}/{len(mine):<3} caught")
    total = sum(o.caught for o in outcomes)
    lines.append(f"  {'total':<14} {total:>3}/{len(outcomes):<3} caught")
    lines += [f"  MISSED {o.failure()}" for o in outcomes if not o.caught]
    return lines


def write_report(outcomes: Sequence[Outcome], path: Path = REPORT_TEXT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(summary_lines(outcomes)) + "\n")


def to_json(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    return [asdict(o) for o in outcomes]


def from_json(document: Sequence[dict[str, Any]]) -> list[Outcome]:
    return [Outcome(**entry) for entry in document]


def main() -> int:
    from azml.config import read_stack_file
    from azml.plan.engine import run_plan

    plan = run_plan(read_stack_file(STACK, ROOT))
    with tempfile.TemporaryDirectory(prefix="mutation-matrix-") as work_dir:
        outcomes = run_matrix(plan, discover(), Path(work_dir))
    write_report(outcomes)
    print("\n".join(summary_lines(outcomes)))
    return 0 if outcomes and all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
