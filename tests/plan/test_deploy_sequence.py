"""The deploy sequence (creation waves from the recorded dependency graph) and
the day-two simulation of a canary removal and a persona change against the
stack's own locks."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from azml.config import read_stack_file
from azml.plan.daytwo import (
    CANARY_OPERATION, PERSONA_OPERATION, Before, compare, locks_of, plan_before, resource_ids, simulate,
)
from azml.plan.engine import run_plan
from azml.plan.model import Plan, PlannedResource
from azml.plan.sequence import DependencyCycle, creation_waves, requirements, waits_for

from ..conftest import ROOT, load_stack, run_cli, write_stack

LOCK = "azure-native:authorization:ManagementLockByScope"


def _resource(urn: str, dependencies: list[str] = (), custom: bool = True) -> PlannedResource:
    return PlannedResource(urn, "azure-native:x:Y", urn.rsplit("::", 1)[-1], custom, None, list(dependencies), {}, {}, {})


# --------------------------------------------------------------------------- waves


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_resource_is_created_after_everything_it_depends_on(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    sequence = creation_waves(plan)
    custom = [r for r in plan.resources if r.custom]
    assert sum(len(w) for w in sequence.waves) == len(custom)
    for urn, needs in requirements(plan).items():
        assert all(sequence.wave_of[n] < sequence.wave_of[urn] for n in needs)
        # Each resource sits in the earliest wave its dependencies allow.
        assert sequence.wave_of[urn] == (max((sequence.wave_of[n] for n in needs), default=-1) + 1)
    group = next(r for r in plan.resources if r.type == "azure-native:resources:ResourceGroup")
    assert sequence.wave_of[group.urn] == 0
    # The longest chain is a chain: each step waits on the one before.
    path = sequence.critical_path
    assert len(path) == len(sequence.waves)
    assert all(waits_for(plan, later, earlier) for earlier, later in zip(path, path[1:]))


def test_component_resources_take_no_part_and_property_dependencies_count() -> None:
    a, b = _resource("urn::a"), _resource("urn::b")
    component = _resource("urn::component", custom=False)
    c = _resource("urn::c", ["urn::component"])
    c.property_dependencies = {"scope": ["urn::b"]}
    b.dependencies = ["urn::a"]
    sequence = creation_waves(Plan("p", "s", [a, b, c, component]))
    assert [[u.rsplit("::", 1)[-1] for u in w] for w in sequence.waves] == [["a"], ["b"], ["c"]]
    assert waits_for(Plan("p", "s", [a, b, c]), "urn::c", "urn::a")
    assert not waits_for(Plan("p", "s", [a, b, c]), "urn::a", "urn::c")


def test_a_dependency_cycle_is_refused_naming_resources() -> None:
    plan = Plan("p", "s", [_resource("urn::a", ["urn::b"]), _resource("urn::b", ["urn::a"]), _resource("urn::c")])
    with pytest.raises(DependencyCycle, match=r"cycle among 2 resources .*a, b"):
        creation_waves(plan)


# --------------------------------------------------------------------------- day two


@pytest.fixture(scope="module")
def prod_before() -> Before:
    return plan_before(read_stack_file("prod", ROOT), run_plan)


def _unlocked(plan: Plan) -> Plan:
    plan = copy.deepcopy(plan)
    plan.resources[:] = [r for r in plan.resources if r.type != LOCK]
    return plan


def _locked_on(before: Before, after: Plan, resource_type: str, level: str = "CanNotDelete"):
    """Both operations when the stack's only lock is one on its one resource of ``resource_type``."""
    assert before.plan is not None
    before = dataclasses.replace(before, plan=_unlocked(before.plan))
    return compare(before, _lock_on(_unlocked(after), resource_type, level))


def _lock_on(plan: Plan, resource_type: str, level: str = "CanNotDelete") -> Plan:
    """``plan`` plus a lock on its one resource of ``resource_type``."""
    plan = copy.deepcopy(plan)
    ((target_id, _),) = [(i, r) for i, r in resource_ids(plan).items() if r.type == resource_type]
    plan.resources.append(
        PlannedResource("urn::extra-lock", LOCK, "extra-lock", True, None, [], {}, {"scope": target_id, "level": level, "lockName": "x"}, {})
    )
    return plan


def test_the_before_plan_adds_a_canary_and_a_principal(prod_before: Before, prod_plan: Plan) -> None:
    assert prod_before.canary == "deployment 'canary' of endpoint 'credit-risk-endpoint'"
    assert prod_before.plan is not None
    names = {r.name for r in prod_before.plan.resources} - {r.name for r in prod_plan.resources}
    assert "credit-risk-endpoint-canary" in names
    report = compare(prod_before, prod_plan)
    (canary, persona) = report.operations
    assert canary.name == CANARY_OPERATION and persona.name == PERSONA_OPERATION
    deleted = {r.name for r in canary.deletes}
    assert "credit-risk-endpoint-canary" in deleted
    assert all(r.type == "azure-native:authorization:RoleAssignment" for r in persona.deletes)
    assert [r.inputs["principalId"] for r in persona.deletes] == [prod_before.principal]


def test_a_lock_on_the_workspace_blocks_both_operations(prod_before: Before, prod_plan: Plan) -> None:
    report = _locked_on(prod_before, prod_plan, "azure-native:machinelearningservices:Workspace")
    canary, persona = report.operations
    assert not canary.allowed and not persona.allowed
    assert {(r.name, lock.name, action) for r, lock, action in canary.blocked} >= {
        ("credit-risk-endpoint-canary", "extra-lock", "deleting")
    }
    assert "fails with ScopeLocked: CanNotDelete lock 'extra-lock' covers it" in "\n".join(report.lines())


def test_a_read_only_lock_on_the_workspace_also_blocks_the_traffic_update(prod_before: Before, prod_plan: Plan) -> None:
    canary, _ = _locked_on(prod_before, prod_plan, "azure-native:machinelearningservices:Workspace", "ReadOnly").operations
    assert ("credit-risk-endpoint", "updating") in {(r.name, action) for r, _, action in canary.blocked}


def test_a_lock_on_the_key_vault_blocks_neither(prod_before: Before, prod_plan: Plan) -> None:
    report = _locked_on(prod_before, prod_plan, "azure-native:keyvault:Vault")
    assert all(o.allowed for o in report.operations)


def test_the_shipped_stacks_let_both_operations_through(prod_before: Before, prod_plan: Plan) -> None:
    report = compare(prod_before, prod_plan)
    assert [o.allowed for o in report.operations] == [True, True], report.lines()
    assert locks_of(prod_plan), "prod keeps locks on what must never be deleted"


def test_a_stack_without_online_endpoints_or_personas_says_what_it_skipped(tmp_path: Path) -> None:
    document = load_stack("dev")
    document["config"].pop("azml:principals", None)
    document["config"]["azml:onlineEndpoints"] = []
    stack = write_stack(tmp_path, "bare", document)
    before = plan_before(read_stack_file(str(stack), ROOT), run_plan)
    assert before.plan is None
    report = compare(before, Plan("azml", "bare", []))
    assert [o.skipped for o in report.operations] == ["the stack has no online deployment", "the stack assigns no persona"]
    assert all(o.allowed for o in report.operations)


def test_a_stack_without_locks_is_not_planned_twice(dev_plan: Plan) -> None:
    assert not locks_of(dev_plan)

    def never(_stack_file: object) -> Plan:
        raise AssertionError("planned a second time")

    report = simulate(read_stack_file("dev", ROOT), dev_plan, never)
    assert [o.skipped for o in report.operations] == ["the stack has no locks, so nothing can block it"] * 2
    assert all(o.allowed for o in report.operations)


# --------------------------------------------------------------------------- the command


def test_plan_shows_the_sequence_and_the_day_two_verdicts(tmp_path: Path) -> None:
    result = run_cli("plan", "prod", "--no-checkov", "--no-policy", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Deploy sequence: " in result.stdout and "longest chain: ResourceGroup::rg -> " in result.stdout
    assert f"{CANARY_OPERATION} (remove deployment 'canary' of endpoint 'credit-risk-endpoint'): allowed" in result.stdout
    document = json.loads((tmp_path / "prod" / "plan.json").read_text())
    assert document["deploySequence"]["waves"][0] == ["ResourceGroup::rg"] or "ResourceGroup::rg" in document["deploySequence"]["waves"][0]
    assert [o["allowed"] for o in document["dayTwo"]["operations"]] == [True, True]


def test_no_day_two_skips_the_simulation(tmp_path: Path) -> None:
    result = run_cli("plan", "prod", "--no-checkov", "--no-policy", "--no-day-two", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "dayTwo" not in json.loads((tmp_path / "prod" / "plan.json").read_text())
