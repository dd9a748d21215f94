"""Human and diagram views of a plan: a ``pulumi preview``-like tree and a
Mermaid graph of components and their dependencies."""

from __future__ import annotations

from .model import Plan, PlannedResource


def tree_lines(plan: Plan) -> list[str]:
    """Resources nested by parent, like ``pulumi preview`` prints them."""
    rows: list[tuple[str, str]] = []

    def walk(resource: PlannedResource, prefix: str, is_last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if is_last else "├─ ")
        rows.append((f"{prefix}{branch}{resource.type}", resource.name))
        kids = list(plan.children(resource.urn))
        child_prefix = prefix if depth == 0 else prefix + ("   " if is_last else "│  ")
        for index, kid in enumerate(kids):
            walk(kid, child_prefix, index == len(kids) - 1, depth + 1)

    for root in plan.children(None):
        walk(root, "", True, 0)

    width = max((len(t) for t, _ in rows), default=4) + 2
    return [f"     {'Type':<{width}}Name", *(f" +   {t:<{width}}{n}" for t, n in rows)]


def summary_lines(plan: Plan) -> list[str]:
    summary = plan.summary()
    counts = summary["byType"]
    lines = ["Resources by type:"]
    lines += [f"    {count:>4}  {token}" for token, count in counts.items()]
    lines.append(
        f"Resources: {summary['total']} to create "
        f"({summary['customResources']} Azure resources, {summary['componentResources']} components)"
    )
    return lines


def _owner(plan: Plan, resource: PlannedResource, nodes: set[str]) -> str | None:
    """The nearest ancestor (or the resource itself) shown as a node."""
    current: PlannedResource | None = resource
    while current is not None:
        if current.urn in nodes:
            return current.urn
        current = plan.by_urn(current.parent) if current.parent else None
    return None


def mermaid(plan: Plan) -> str:
    """A Mermaid flowchart: one node per component (and per top-level Azure
    resource), an arrow from each dependency to what depends on it."""
    stack = next((r for r in plan.resources if r.type == "pulumi:pulumi:Stack"), None)
    top = [r for r in plan.resources if r.parent == (stack.urn if stack else None) and r is not stack]
    nodes = {r.urn for r in top}
    ids = {urn: f"n{index}" for index, urn in enumerate(sorted(nodes))}

    lines = ["flowchart LR"]
    for resource in top:
        members = _count_descendants(plan, resource.urn)
        kind = resource.type.split(":")[-1]
        detail = f"<br/>{members} resources" if members else ""
        label = f"{kind}<br/><b>{resource.name}</b>{detail}".replace('"', "'")
        shape = f'(["{label}"])' if not resource.custom else f'["{label}"]'
        lines.append(f"    {ids[resource.urn]}{shape}")

    edges: set[tuple[str, str]] = set()
    for resource in plan.resources:
        dependent = _owner(plan, resource, nodes)
        if dependent is None:
            continue
        for dependency_urn in resource.dependencies:
            try:
                dependency = _owner(plan, plan.by_urn(dependency_urn), nodes)
            except KeyError:
                continue
            if dependency is not None and dependency != dependent:
                edges.add((ids[dependency], ids[dependent]))
    lines += [f"    {a} --> {b}" for a, b in sorted(edges)]
    return "\n".join(lines) + "\n"


def _count_descendants(plan: Plan, urn: str) -> int:
    total = 0
    for child in plan.children(urn):
        total += 1 + _count_descendants(plan, child.urn)
    return total
