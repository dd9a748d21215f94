"""How long does the policy pack take to evaluate a plan, and how does it scale?

Target (from the issue): 5,000 resources evaluated in under 2 s.

Synthetic plans are built from the real prod plan: its resources are repeated
(URNs and names suffixed, references kept within each copy) until the wanted
size. For each size the real pack is launched as the Pulumi CLI launches it
and driven over gRPC by ``azml.policy.runner.evaluate``; we report pack
start-up and evaluation (Configure + Analyze per resource + AnalyzeStack)
separately, since start-up is paid once per plan whatever its size.

Run with ``make bench-policy`` or ``.venv/bin/python benchmarks/policy_scaling.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azml.config import read_stack_file  # noqa: E402
from azml.plan.engine import run_plan  # noqa: E402
from azml.plan.model import Plan  # noqa: E402
from azml.policy.runner import evaluate  # noqa: E402


def _renamed(value: object, suffix: str, urns: set[str]) -> object:
    if isinstance(value, str) and value in urns:
        return value + suffix
    if isinstance(value, dict):
        return {k: _renamed(v, suffix, urns) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, suffix, urns) for v in value]
    return value


def synthetic(base: Plan, size: int) -> Plan:
    """``base`` repeated until it holds ``size`` resources (stack kept once)."""
    stack = [r for r in base.resources if r.parent is None]
    body = [r for r in base.resources if r.parent is not None]
    urns = {r.urn for r in body}
    resources = list(stack)
    copy_index = 0
    while len(resources) < size:
        suffix = "" if copy_index == 0 else f"-{copy_index}"
        for original in body:
            if len(resources) >= size:
                break
            clone = copy.deepcopy(original)
            clone.urn = original.urn + suffix
            clone.name = original.name + suffix
            clone.parent = _renamed(original.parent, suffix, urns)  # type: ignore[assignment]
            clone.dependencies = _renamed(original.dependencies, suffix, urns)  # type: ignore[assignment]
            clone.property_dependencies = _renamed(original.property_dependencies, suffix, urns)  # type: ignore[assignment]
            resources.append(clone)
        copy_index += 1
    return Plan(base.project, base.stack, resources, dict(base.outputs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    base = run_plan(read_stack_file("prod", ROOT))
    pack, config = ROOT / "policies", ROOT / "policies" / "config.prod.json"
    rows = []
    for size in args.sizes:
        plan = synthetic(base, size)
        runs = [evaluate(plan, pack, config) for _ in range(args.repeat)]
        start = statistics.median(r.timings["startSeconds"] for r in runs)
        analyze = statistics.median(r.timings["analyzeSeconds"] for r in runs)
        rows.append((size, runs[0].resources_analyzed, start, analyze, len(runs[0].violations)))

    print(f"policy pack over synthetic prod plans, median of {args.repeat} run(s)\n")
    print(f"{'resources':>10} {'analyzed':>9} {'start s':>8} {'evaluate s':>11} {'violations':>11}")
    for size, analyzed, start, analyze, violations in rows:
        print(f"{size:>10} {analyzed:>9} {start:>8.3f} {analyze:>11.3f} {violations:>11}")
    largest = max(rows, key=lambda row: row[0])
    verdict = "yes" if largest[3] < 2.0 else "no"
    print(f"\n{largest[0]} resources evaluated in under 2 s: {verdict} ({largest[3]:.2f} s; start-up {largest[2]:.2f} s extra)")
    print(json.dumps({"largest": largest[0], "evaluateSeconds": largest[3]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
