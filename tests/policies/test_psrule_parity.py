"""PSRule for Azure parity (policies/psrule.yaml, docs/psrule.md): every PSRule
rule that reads a type the stacks deploy is mapped; every check the table
names exists and reads that rule's type; every enforced rule holds on both
untouched plans; every accepted rule holds there only through a dated,
unexpired risk acceptance in a stack's pack config; and no rule stays merely
planned."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pytest

from azml.arm.batch import builtin_arm_checks, custom_check_ids, known_check_ids, scan_templates
from azml.arm.bridge import environment_of
from azml.arm.export import export_resources, render_template
from azml.plan.arm import arm_type_of
from azml.plan.model import Plan
from azml.policy.psrule import PAGE, load, render

from ..conftest import ROOT
from ..platform_harness import ALL_POLICIES as PLATFORM_POLICIES
from ..platform_harness import run_rules
from .checklist.test_policy_pack import POLICIES as CHECKLIST_POLICIES
from .checklist.test_policy_pack import evaluate

PARITY = load()
PLATFORM_NAMES = {p.name for p in PLATFORM_POLICIES}


def deployed_arm_types(plan: Plan) -> set[str]:
    types: set[str] = set()
    for resource in plan.resources:
        if resource.custom and resource.type.startswith("azure-native:"):
            types.add(arm_type_of(resource.type).arm_type)
    return types


def test_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(PARITY), "docs/psrule.md is stale: run `make docs`"


def test_every_applicable_rule_is_mapped(dev_plan: Plan, prod_plan: Plan) -> None:
    """Each deployed ARM type belongs to a family (whose catalogue rules are all
    listed) or is declared to have no PSRule rule; each rule belongs to a family."""
    deployed = deployed_arm_types(dev_plan) | deployed_arm_types(prod_plan)
    in_scope = [f for f in PARITY.families.values() if f.rules and ("*" in f.types or deployed & set(f.types))]
    covered = {t for f in in_scope for t in f.types} | set(PARITY.no_rules)
    unmapped_types = sorted(deployed - covered)
    assert not unmapped_types, f"deployed ARM types no PSRule family or no_rules entry accounts for: {unmapped_types}"
    listed = {rule.id for rule in PARITY.rules}
    missing = sorted(f"{f.prefix}.{name}" for f in in_scope for name in f.rules if f"{f.prefix}.{name}" not in listed)
    assert not missing, f"PSRule rules of deployed types missing from policies/psrule.yaml: {missing}"
    strays = sorted(r.id for r in PARITY.rules if r.family not in PARITY.families or f"{r.id}"[len(r.family) + 1 :] not in PARITY.families[r.family].rules)
    assert not strays, f"rules listed under no family's catalogue: {strays}"
    idle = sorted(f.prefix for f in PARITY.families.values() if f.rules and f not in in_scope)
    assert not idle, f"families listed with rules but no deployed type (move them to the out-of-scope families): {idle}"
    stale = sorted(set(PARITY.no_rules) - deployed)
    assert not stale, f"no_rules lists types the stacks no longer deploy: {stale}"


def test_named_checks_exist_and_read_the_rule_type() -> None:
    """An enforced rule's checks are policies of either pack or checkov ids
    (checkov's ARM checks or ours), and a built-in checkov check reads one of
    the rule family's types."""
    known = set(CHECKLIST_POLICIES) | PLATFORM_NAMES | known_check_ids()
    builtin = builtin_arm_checks()
    problems: list[str] = []
    for rule in PARITY.rules:
        if rule.status not in ("enforced", "accepted"):
            continue
        for check in rule.checks:
            if check not in known:
                problems.append(f"{rule.id}: {check} is no policy of either pack and no checkov check")
            elif check in builtin and not builtin[check] & set(PARITY.families[rule.family].types):
                problems.append(f"{rule.id}: {check} reads {sorted(builtin[check])}, none of the rule's types")
    assert not problems, "\n".join(problems)
    assert custom_check_ids() <= known_check_ids()


@pytest.fixture(scope="module")
def checkov_reports(dev_plan: Plan, prod_plan: Plan) -> dict[str, object]:
    """checkov once over both untouched plans' ARM exports, with azml plan's skips."""
    with tempfile.TemporaryDirectory(prefix="psrule-parity-") as directory:
        stacks = {}
        for plan in (dev_plan, prod_plan):
            template, _ = export_resources(plan)
            (Path(directory) / f"{plan.stack}.json").write_text(render_template(template))
            stacks[f"{plan.stack}.json"] = environment_of(plan)
        return {name.removesuffix(".json"): report for name, report in scan_templates(Path(directory), stacks).items()}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_enforced_rules_hold_on_the_untouched_plans(stack: str, request: pytest.FixtureRequest, checkov_reports: dict) -> None:
    """No check an enforced rule names reports anything on either stack: no
    finding of the checklist pack (any level) or of the platform pack, and no
    checkov failure outside azml/arm/skips.py (the dated risk acceptances)."""
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    named = {check for rule in PARITY.rules if rule.status in ("enforced", "accepted") for check in rule.checks}
    findings = [f"{f.policy} on {f.name}: {f.message}" for f in evaluate(plan, stack) if f.policy in named]
    findings += [f"{f.rule} on {f.name}: {f.message}" for f in run_rules(plan) if f.rule in named]
    report = checkov_reports[stack]
    findings += [f"{r.check_id} on {r.resource}" for r in report.failed if r.check_id in named]  # type: ignore[attr-defined]
    assert not findings, f"enforced PSRule rules violated by the untouched {stack} plan:\n" + "\n".join(findings)


def test_no_rule_is_only_planned() -> None:
    """A planned rule names the policy meant to enforce it; it must land (and
    the row turn enforced) or be argued not applicable."""
    planned = [f"{r.id} -> {', '.join(r.checks)}" for r in PARITY.rules if r.status == "planned"]
    assert not planned, f"{len(planned)} PSRule rules are still only planned:\n" + "\n".join(planned)


def _dated_acceptances(policy: str) -> list[tuple[str, str, str]]:
    """(stack, resource, expires) of every dated exemption of ``policy`` in the stacks' pack configs."""
    found = []
    for stack in ("dev", "prod"):
        config = json.loads((ROOT / "policies" / f"config.{stack}.json").read_text())
        entry = config.get(policy)
        for exempt in (entry or {}).get("exemptResources", []) if isinstance(entry, dict) else []:
            if isinstance(exempt, dict) and exempt.get("reason") and exempt.get("expires"):
                found.append((stack, exempt["resource"], exempt["expires"]))
    return found


def test_accepted_rules_rest_on_a_dated_unexpired_acceptance() -> None:
    """An accepted rule is violated on purpose: some stack must carry a dated
    exemption of one of its policies that has not expired (else the row is
    either enforced — nothing left to accept — or a plan that fails)."""
    today = dt.date.today().isoformat()
    accepted = [r for r in PARITY.rules if r.status == "accepted"]
    assert accepted
    problems = []
    for rule in accepted:
        acceptances = [a for check in rule.checks for a in _dated_acceptances(check)]
        if not acceptances:
            problems.append(f"{rule.id}: no stack accepts the risk for {', '.join(rule.checks)}; mark it enforced")
        elif all(expires < today for _, _, expires in acceptances):
            problems.append(f"{rule.id}: every acceptance has expired: {acceptances}")
    assert not problems, "\n".join(problems)
