"""Azure's rules for an online endpoint's traffic split, in one place: checked
on stack config (exit 2 before anything is registered) and again by the
routing resource before it calls Azure."""

from __future__ import annotations

from typing import Iterable, Mapping

MAX_MIRROR_PERCENT = 50


def traffic_problems(
    traffic: Mapping[str, object],
    mirror_traffic: Mapping[str, object],
    deployments: Iterable[str],
) -> list[tuple[str, str]]:
    """Problems as ``(key, message)``; key is ``traffic.<name>``,
    ``mirrorTraffic.<name>``, ``traffic`` or ``mirrorTraffic``."""
    declared = list(deployments)
    known = ", ".join(declared) or "none declared"
    problems: list[tuple[str, str]] = []
    for field, split in (("traffic", traffic), ("mirrorTraffic", mirror_traffic)):
        for name, value in split.items():
            if name not in declared:
                problems.append((f"{field}.{name}", f"names no declared deployment (declared: {known})"))
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                problems.append((f"{field}.{name}", f"must be a whole percentage 0..100 (got {value!r})"))
    if problems:
        return problems
    total = sum(traffic.values())  # type: ignore[arg-type]
    if total not in (0, 100):
        problems.append(("traffic", f"values must sum to 0 or 100 (got {total})"))
    mirrored = {name: value for name, value in mirror_traffic.items() if value}
    if len(mirrored) > 1:
        problems.append(("mirrorTraffic", f"may mirror to at most one deployment (got {', '.join(mirrored)})"))
    for name, value in mirrored.items():
        if value > MAX_MIRROR_PERCENT:  # type: ignore[operator]
            problems.append((f"mirrorTraffic.{name}", f"must be at most {MAX_MIRROR_PERCENT} (got {value})"))
        if traffic.get(name):
            problems.append(
                (f"mirrorTraffic.{name}", f"{name} has live traffic ({traffic[name]}%); a deployment cannot get both")
            )
    return problems
