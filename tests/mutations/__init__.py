"""The mutation matrix: realistic insecure changes to the recorded prod plan.

Each category module (``tests/mutations/<category>.py``) exports
``MUTATIONS: list[Mutation]``. A mutation edits a deep copy of the untouched
prod plan the way a careless or hostile pull request would change the
program, and names the checks that must catch it: policy names of either
CrossGuard pack (``azml-...``) or checkov check ids (``CKV_...``, ours
``CKV_AZML_...``). ``tests/policies/test_mutation_matrix.py`` applies every mutation,
runs both packs under prod's pack config and checkov over the exported ARM
template, and requires that at least one named check reports a finding that
the untouched plan does not have.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

from azml.plan.model import Plan, PlannedResource

CATEGORIES = ("network", "rbac", "governance", "secrets", "identity-data", "supply-chain", "ml-core")


@dataclass(frozen=True)
class Mutation:
    id: str  # unique, kebab-case
    category: str  # one of CATEGORIES
    description: str  # the change, as a reviewer would read it in a diff
    apply: Callable[[Plan], None]  # edits the plan in place
    caught_by: tuple[str, ...]  # policy names or checkov check ids; one of them must fire


def one(plan: Plan, type_token: str, name: str | None = None) -> PlannedResource:
    """The one resource of ``type_token`` (named ``name``) in ``plan``."""
    matches = [r for r in plan.resources if r.type == type_token and (name is None or r.name == name)]
    assert len(matches) == 1, (type_token, name, [r.name for r in matches])
    return matches[0]


def put(inputs: Any, path: str, value: Any) -> None:
    """Set ``inputs[a][b]...`` for ``path`` ``"a.b"`` (list indexes as numbers),
    creating missing mappings on the way."""
    keys = path.split(".")
    for key in keys[:-1]:
        inputs = inputs[int(key)] if isinstance(inputs, list) else inputs.setdefault(key, {})
    if isinstance(inputs, list):
        inputs[int(keys[-1])] = value
    else:
        inputs[keys[-1]] = value


def setting(type_token: str, path: str, value: Any, name: str | None = None) -> Callable[[Plan], None]:
    """A mutation that sets one input of one resource."""
    return lambda plan: put(one(plan, type_token, name).inputs, path, value)


def removal(type_token: str, *names: str) -> Callable[[Plan], None]:
    """A mutation that removes resources of ``type_token`` (all of them when no
    name is given), and every reference to them from other resources'
    dependencies."""

    def mutate(plan: Plan) -> None:
        gone = {r.urn for r in plan.resources if r.type == type_token and (not names or r.name in names)}
        assert gone, (type_token, names)
        plan.resources[:] = [r for r in plan.resources if r.urn not in gone]
        for r in plan.resources:
            r.dependencies = [d for d in r.dependencies if d not in gone]
            r.property_dependencies = {k: [d for d in v if d not in gone] for k, v in r.property_dependencies.items()}

    return mutate


def added(type_token: str, like: str | None, new_name: str, **inputs: Any) -> Callable[[Plan], None]:
    """A mutation that adds a resource: a copy of an existing one of the same
    type (named ``like``, else the first) under ``new_name``, with ``inputs``
    merged over its inputs."""

    def mutate(plan: Plan) -> None:
        template = next(r for r in plan.resources if r.type == type_token and (like is None or r.name == like))
        resource = copy.deepcopy(template)
        resource.name = new_name
        resource.urn = template.urn.rsplit("::", 1)[0] + "::" + new_name
        resource.inputs.update(copy.deepcopy(inputs))
        plan.resources.append(resource)

    return mutate


def combined(*mutations: Callable[[Plan], None]) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        for mutation in mutations:
            mutation(plan)

    return mutate
