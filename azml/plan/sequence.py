"""The order in which the Pulumi engine would create a plan's resources.

The engine creates a resource once every resource it depends on exists, and
creates independent resources in parallel. From the recorded dependency
graph (``dependencies`` and ``propertyDependencies`` of each resource, which
the SDK has already expanded from components to the custom resources inside
them) this module computes the **waves**: wave 0 holds what depends on
nothing; wave *n* what waits at most on waves before *n*. Component
resources are not created by a provider and take no part.

The ordering *rules* (network provisioned before deployments, image-build
compute before environment builds, roles before the identities that use
them) are CrossGuard rules of the platform pack, so that ``pulumi preview``
enforces them as well; this module shows the order they produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Plan, PlannedResource


class DependencyCycle(ValueError):
    """The recorded graph has a cycle: the engine could never create these."""


def _label(resource: PlannedResource) -> str:
    return f"{resource.type.rsplit(':', 1)[-1]}::{resource.name}"


def requirements(plan: Plan) -> dict[str, set[str]]:
    """Each custom resource's URN -> the URNs of custom resources it waits for."""
    custom = {r.urn for r in plan.resources if r.custom}
    waits: dict[str, set[str]] = {}
    for resource in plan.resources:
        if not resource.custom:
            continue
        needed = set(resource.dependencies)
        for urns in resource.property_dependencies.values():
            needed.update(urns)
        waits[resource.urn] = {u for u in needed if u in custom and u != resource.urn}
    return waits


@dataclass(frozen=True)
class Sequence:
    """Waves of URNs (each sorted) and, for each URN, its wave."""

    waves: list[list[str]]
    wave_of: dict[str, int]
    critical_path: list[str]

    def to_json(self, plan: Plan) -> dict[str, Any]:
        labels = {r.urn: _label(r) for r in plan.resources}
        return {
            "waves": [[labels[u] for u in wave] for wave in self.waves],
            "criticalPath": [labels[u] for u in self.critical_path],
        }

    def lines(self, plan: Plan) -> list[str]:
        labels = {r.urn: _label(r) for r in plan.resources}
        sizes = ", ".join(str(len(w)) for w in self.waves)
        return [
            f"Deploy sequence: {sum(len(w) for w in self.waves)} resources in {len(self.waves)} waves ({sizes})",
            "  longest chain: " + " -> ".join(labels[u] for u in self.critical_path),
        ]


def creation_waves(plan: Plan) -> Sequence:
    """The waves of ``plan`` (raises :class:`DependencyCycle`)."""
    waits = requirements(plan)
    wave_of: dict[str, int] = {}
    via: dict[str, str | None] = {}
    remaining = dict(waits)
    while remaining:
        ready = [u for u, needs in remaining.items() if all(n in wave_of for n in needs)]
        if not ready:
            names = ", ".join(sorted(u.rsplit("::", 1)[-1] for u in remaining)[:5])
            raise DependencyCycle(f"dependency cycle among {len(remaining)} resources (e.g. {names})")
        for urn in ready:
            needs = remaining.pop(urn)
            deepest = max(needs, key=lambda n: (wave_of[n], n), default=None)
            wave_of[urn] = wave_of[deepest] + 1 if deepest is not None else 0
            via[urn] = deepest
    waves: list[list[str]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
    for urn, wave in wave_of.items():
        waves[wave].append(urn)
    for wave in waves:
        wave.sort()
    path: list[str] = []
    current = waves[-1][0] if waves else None
    while current is not None:
        path.append(current)
        current = via[current]
    return Sequence(waves=waves, wave_of=wave_of, critical_path=path[::-1])


def waits_for(plan: Plan, urn: str, other: str) -> bool:
    """Whether ``urn`` is created only after ``other`` (transitively)."""
    waits = requirements(plan)
    seen: set[str] = set()
    stack = [urn]
    while stack:
        for need in waits.get(stack.pop(), ()):
            if need == other:
                return True
            if need not in seen:
                seen.add(need)
                stack.append(need)
    return False
