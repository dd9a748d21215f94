"""The mutation matrix (tests/mutations/): every realistic insecure change to
the prod plan is caught by one of the checks it names.

The matrix runs once per session (tests/mutation_matrix.py: both packs
in-process, checkov once over every mutated plan's ARM export); under
pytest-xdist's ``--dist loadfile`` (pyproject) one worker runs this file (the
file lock below still shares the result under another distribution mode). The
per-category summary goes to build/mutation-matrix.txt and is printed at the
end of the session (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from filelock import FileLock

from azml.arm.batch import known_check_ids
from azml.plan.model import Plan

from ..mutation_matrix import Outcome, category_modules, discover, from_json, run_matrix, to_json, write_report
from ..mutations import CATEGORIES
from ..platform_harness import ALL_POLICIES as PLATFORM_POLICIES
from .checklist.test_policy_pack import POLICIES as CHECKLIST_POLICIES

MUTATIONS = discover()
MIN_MUTATIONS = 100
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.fixture(scope="session")
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Outcome]:
    def compute(work_dir: Path) -> list[Outcome]:
        prod_plan: Plan = request.getfixturevalue("prod_plan")
        outcomes = run_matrix(prod_plan, MUTATIONS, work_dir)
        write_report(outcomes)
        return outcomes

    if worker_id == "master":
        outcomes = compute(tmp_path_factory.mktemp("mutation-matrix"))
    else:
        # The parent of a worker's base temp is this session's, shared by all workers and by no other session.
        shared = tmp_path_factory.getbasetemp().parent / "mutation-matrix.json"
        with FileLock(str(shared) + ".lock"):
            if shared.is_file():
                outcomes = from_json(json.loads(shared.read_text()))
            else:
                outcomes = compute(tmp_path_factory.mktemp("mutation-matrix"))
                shared.write_text(json.dumps(to_json(outcomes)))
    return {o.id: o for o in outcomes}


def test_matrix_contract() -> None:
    """At least 100 mutations, every category has some, ids unique and
    kebab-case, and every check named exists (a policy of either pack or a
    checkov id: checkov's ARM checks or ours)."""
    problems: list[str] = []
    if len(MUTATIONS) < MIN_MUTATIONS:
        problems.append(f"{len(MUTATIONS)} mutations in {category_modules()}; the matrix needs at least {MIN_MUTATIONS}")
    duplicates = sorted(i for i, n in Counter(m.id for m in MUTATIONS).items() if n > 1)
    if duplicates:
        problems.append(f"mutation ids used twice: {duplicates}")
    if bad := sorted(m.id for m in MUTATIONS if not KEBAB.match(m.id)):
        problems.append(f"mutation ids not kebab-case: {bad}")
    if bad := sorted({f"{m.id}: {m.category}" for m in MUTATIONS if m.category not in CATEGORIES}):
        problems.append(f"categories outside {CATEGORIES}: {bad}")
    if empty := [c for c in CATEGORIES if not any(m.category == c for m in MUTATIONS)]:
        problems.append(f"categories without mutations: {empty}")
    known = set(CHECKLIST_POLICIES) | {p.name for p in PLATFORM_POLICIES} | known_check_ids()
    if unknown := sorted({f"{m.id}: {c}" for m in MUTATIONS for c in m.caught_by if c not in known}):
        problems.append(f"caught_by names no policy of either pack and no checkov check: {unknown}")
    if silent := sorted(m.id for m in MUTATIONS if not m.caught_by or not m.description.strip()):
        problems.append(f"mutations without caught_by or description: {silent}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mutation_id", [m.id for m in MUTATIONS])
def test_mutation_is_caught(matrix: dict[str, Outcome], mutation_id: str) -> None:
    outcome = matrix[mutation_id]
    assert outcome.caught, outcome.failure()


def test_a_mutation_that_names_a_checkov_check_is_judged_by_checkov(prod_plan: Plan, tmp_path: Path) -> None:
    """Only mutations that name a checkov check have their export scanned; such a
    one is caught by the check it names (here the TLS floor of the workspace storage)."""
    tls = next(m for m in MUTATIONS if m.id == "ml-storage-tls-1-0")
    judged_by_checkov = dataclasses.replace(tls, id="tls-by-checkov", caught_by=("CKV_AZURE_44",))
    (outcome,) = run_matrix(prod_plan, [judged_by_checkov], tmp_path)
    assert outcome.scanned and outcome.caught, outcome.failure()
    assert not run_matrix(prod_plan, [tls], tmp_path / "packs")[0].scanned
