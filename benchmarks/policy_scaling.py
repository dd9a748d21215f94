"""How long do the two policy packs take to evaluate a plan, and how does it scale?

Target (from the issue): 5,000 resources evaluated in under 2 s, both packs
together, growing linearly; if the floor below is itself above 2 s, the
target is 1.5x the floor.

Synthetic plans are built from the real prod plan: its resources are repeated
(URNs and names suffixed, references kept within each copy) until the wanted
size. For each size each real pack is launched as the Pulumi CLI launches it
and driven over gRPC by ``azml.policy.runner.evaluate`` (one Analyze per
resource, one at a time, then AnalyzeStack); pack start-up and evaluation
(Configure + Analyze + AnalyzeStack) are reported apart, start-up being paid
once per plan whatever its size. At the largest size it also measures:

- transport: the same calls, through the same client, to a pack whose one
  policy reads no type: what gRPC and the client cost before any policy runs;
- the floor: in-process, each resource decoded once (the SDK's MessageToDict,
  deserialize_properties and unknown-checking proxy, then our normalization
  and stack index) and every enabled policy's check run on the decoded
  resources, with no servicer and no gRPC;
- with ``--sdk``: the same packs served by the SDK's own servicer (as before
  azml_policies/pack_server.py), for comparison.

Pack work is evaluation less transport; it is compared with the floor and
the target, and so is the end-to-end evaluation.

Results on the 2-core machine, shared with other work (load average 2-7),
prod plan at 5,000 resources (4,649 analysed), medians of 3:

====================================  ==============  =============  ===========
seconds                               checklist (72)  platform (24)  both
====================================  ==============  =============  ===========
SDK's own servicer, evaluate (--sdk)  26.8            16.4           43.2
evaluate, one pack after the other    4.5-4.8         2.7-3.3        7.4-7.8
evaluate, side by side (azml plan)                                   6.6
transport (no-op pack, per pack)      1.7-2.1         1.7-2.1        3.4-4.3
pack work (evaluate - transport)      2.4-3.1         0.5-1.2        3.2-3.7
floor: decode once                    0.47-0.58       0.48-0.52      0.95-1.1
floor: checks                         1.28-1.45       0.43-0.44      1.7-1.9
floor                                 1.78-2.03       0.91-0.97      2.7-3.0
====================================  ==============  =============  ===========

The floor is above 2 s, so the target is 1.5x the floor (4.1-4.4 s as
measured): pack work (1.15-1.23x the floor) is within it. End to end is
not: Python gRPC calls alone (client and server, ~0.4 ms per Analyze even
with eight in flight) take ~2 s per pack, and with both packs side by side
on two cores already busy the two processes mostly take turns. AnalyzeStack
reuses what the Analyze calls decoded (same bytes, same decoding), and the
runner keeps eight Analyze calls in flight. Evaluation grows linearly
(checklist 1,000 -> 5,000 resources: 0.9 -> 4.5 s).

Run with ``make bench-policy`` or ``.venv/bin/python benchmarks/policy_scaling.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(POLICIES))

from google.protobuf import empty_pb2, json_format  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyResource, ResourceValidationPolicy  # noqa: E402
from pulumi_policy import policy as sdk  # noqa: E402
from pulumi_policy.deserialize import deserialize_properties  # noqa: E402
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

import azml_platform  # noqa: E402
import azml_policies  # noqa: E402
from azml.config import read_stack_file  # noqa: E402
from azml.plan.engine import run_plan  # noqa: E402
from azml.plan.model import Plan  # noqa: E402
from azml.policy.pack_config import load_config_file, reconcile  # noqa: E402
from azml.policy.runner import _schemas, evaluate, evaluate_all, wire_struct  # noqa: E402
from azml_policies.azure import base_type  # noqa: E402
from azml_policies.checks import config_of  # noqa: E402
from azml_policies.topology import Resource, Stack  # noqa: E402

TARGET_SECONDS = 2.0
FLOOR_FACTOR = 1.5

# (label, pack directory, prod config, policies)
PACKS = (
    ("checklist", POLICIES, POLICIES / "config.prod.json", azml_policies.ALL_POLICIES, azml_policies.PACK_NAME),
    ("platform", POLICIES / "platform", POLICIES / "platform" / "config.prod.json", azml_platform.ALL_POLICIES, azml_platform.PACK_NAME),
)

_NOOP_PACK = f"""
import sys
sys.path.insert(0, {str(POLICIES)!r})
from pulumi_policy import EnforcementLevel
from azml_policies.pack_server import serve_pack
from azml_policies.checks import PolicyInfo, resource_policy
from pulumi_policy import Severity

# One policy of a type no resource has: the servicer decodes nothing.
info = PolicyInfo("noop", "reads nothing", "benchmark", Severity.LOW, "none", ("azml:benchmark:None",), ())
serve_pack(name="noop", enforcement_level=EnforcementLevel.MANDATORY, policies=[resource_policy(info, lambda r, c: (), registry={{}})])
"""

_SDK_PACK = """
import sys
sys.path.insert(0, {policies!r})
from pulumi_policy import EnforcementLevel, PolicyPack
from {module} import ALL_POLICIES, PACK_NAME
PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=ALL_POLICIES)
"""


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


def _settings(policies: list[Any], name: str, config_path: Path) -> dict[str, Any]:
    """Each policy's level and properties under ``config_path``, as the runner reconciles them."""
    info = sdk._PolicyAnalyzerServicer(name, "0.0.1", policies, EnforcementLevel.MANDATORY).GetAnalyzerInfo(empty_pb2.Empty(), None)
    return reconcile(_schemas(info), load_config_file(config_path), config_path.name)


def floor(plan: Plan, policies: list[Any], name: str, config_path: Path) -> tuple[float, float]:
    """(decode, evaluate) seconds: every resource decoded once, every enabled
    policy's check run on the decoded resources, in-process."""
    settings = _settings(policies, name, config_path)
    enabled = [p for p in policies if settings[p.name].enforcement != "disabled"]
    configs = {p.name: config_of(p.info, settings[p.name].properties) for p in enabled}
    resources = [r for r in plan.resources if r.type != "pulumi:pulumi:Stack"]
    structs = {r.urn: wire_struct(r.inputs) for r in resources}  # what the engine sends: built before timing

    started = time.perf_counter()
    by_urn = {
        r.urn: PolicyResource(
            r.type, unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(structs[r.urn]))),
            r.urn, r.name, None, None, None, [], {},  # type: ignore[arg-type]
        )
        for r in resources
    }
    for r in resources:
        linked = by_urn[r.urn]
        linked.parent = by_urn.get(r.parent) if r.parent else None
        linked.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
        linked.property_dependencies = {k: [by_urn[d] for d in v if d in by_urn] for k, v in r.property_dependencies.items()}
    stack = Stack(by_urn.values())  # normalized and indexed once
    decoded = time.perf_counter()

    resource_policies = [p for p in enabled if isinstance(p, ResourceValidationPolicy)]
    for r in resources:
        if not r.custom:
            continue
        read = stack.by_urn[r.urn]
        resource = Resource(base_type(r.type), r.name, r.urn, read.props)
        for policy in resource_policies:
            if policy.applies_to(r.type):
                for _ in policy.check(resource, configs[policy.name]):
                    pass
    for policy in enabled:
        if not isinstance(policy, ResourceValidationPolicy):
            for _ in policy.check(stack, configs[policy.name]):
                pass
    return decoded - started, time.perf_counter() - decoded


def _median_run(plan: Plan, pack_dir: Path, config: Path | None, repeat: int) -> dict[str, Any]:
    runs = [evaluate(plan, pack_dir, config) for _ in range(repeat)]
    return {
        "start": statistics.median(r.timings["startSeconds"] for r in runs),
        "evaluate": statistics.median(r.timings["analyzeSeconds"] for r in runs),
        "analyzed": runs[0].resources_analyzed,
        "violations": len(runs[0].violations),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sdk", action="store_true", help="also time the packs served by the SDK's own servicer (slow)")
    args = parser.parse_args()

    base = run_plan(read_stack_file("prod", ROOT))
    largest = max(args.sizes)
    print(f"policy packs over synthetic prod plans, median of {args.repeat} run(s)\n")
    print(f"{'pack':>10} {'resources':>10} {'analyzed':>9} {'start s':>8} {'evaluate s':>11} {'violations':>11}")
    rows: dict[str, dict[str, Any]] = {}
    for size in sorted(args.sizes):
        plan = synthetic(base, size)
        for label, pack_dir, config, _, _ in PACKS:
            row = _median_run(plan, pack_dir, config, args.repeat)
            print(f"{label:>10} {size:>10} {row['analyzed']:>9} {row['start']:>8.3f} {row['evaluate']:>11.3f} {row['violations']:>11}")
            if size == largest:
                rows[label] = row

    plan = synthetic(base, largest)
    with tempfile.TemporaryDirectory() as scratch:
        noop = Path(scratch) / "noop"
        noop.mkdir()
        (noop / "__main__.py").write_text(_NOOP_PACK)
        transport = _median_run(plan, noop, None, args.repeat)["evaluate"]
        sdk_served: dict[str, float] = {}
        if args.sdk:
            for label, pack_dir, config, _, _ in PACKS:
                served = Path(scratch) / f"sdk-{label}"
                served.mkdir()
                module = "azml_policies" if pack_dir == POLICIES else "azml_platform"
                (served / "__main__.py").write_text(_SDK_PACK.format(policies=str(POLICIES), module=module))
                sdk_served[label] = evaluate(plan, served, config).timings["analyzeSeconds"]

    print(f"\nat {largest} resources: transport (same calls to a pack that reads nothing) {transport:.3f} s per pack")
    print(f"{'pack':>10} {'evaluate s':>11} {'work s':>7} {'decode s':>9} {'checks s':>9} {'floor s':>8} {'work/floor':>11}"
          + (f" {'SDK-served s':>13}" if sdk_served else ""))
    total = {"evaluate": 0.0, "work": 0.0, "floor": 0.0}
    for label, _, config, policies, name in PACKS:
        decode_s, checks_s = min((floor(plan, policies, name, config) for _ in range(args.repeat)), key=sum)
        row = rows[label]
        work = max(row["evaluate"] - transport, 0.0)
        pack_floor = decode_s + checks_s
        total["evaluate"] += row["evaluate"]
        total["work"] += work
        total["floor"] += pack_floor
        print(f"{label:>10} {row['evaluate']:>11.3f} {work:>7.3f} {decode_s:>9.3f} {checks_s:>9.3f} {pack_floor:>8.3f} "
              f"{work / pack_floor:>10.2f}x" + (f" {sdk_served[label]:>13.2f}" if sdk_served else ""))
    # As azml plan runs them (azml.policy.runner.evaluate_all): both packs side by side, one
    # process each; evaluation wall time is the whole call less the slower pack's start-up.
    side_by_side = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        reports = evaluate_all(plan, [(pack_dir, config) for _, pack_dir, config, _, _ in PACKS])
        side_by_side.append(time.perf_counter() - began - max(r.timings["startSeconds"] for r in reports))
    together = statistics.median(side_by_side)
    target = TARGET_SECONDS if total["floor"] <= TARGET_SECONDS else FLOOR_FACTOR * total["floor"]
    basis = "2 s" if target == TARGET_SECONDS else f"{FLOOR_FACTOR}x the floor, which is above 2 s"
    print(f"\nboth packs at {largest} resources: evaluate {total['evaluate']:.2f} s end to end, pack work "
          f"{total['work']:.2f} s, floor {total['floor']:.2f} s (work/floor {total['work'] / total['floor']:.2f}x)")
    print(f"target: under {target:.2f} s ({basis})")
    print(f"  pack work within the target: {'yes' if total['work'] < target else 'no'}")
    print(f"  end to end, one pack after the other: {'yes' if total['evaluate'] < target else 'no'}"
          f" ({total['evaluate']:.2f} s; transport {2 * transport:.2f} s of it)")
    print(f"  end to end, side by side as azml plan runs them: {'yes' if together < target else 'no'} ({together:.2f} s)")
    print(json.dumps({
        "largest": largest, "evaluateSeconds": round(total["evaluate"], 3), "workSeconds": round(total["work"], 3),
        "floorSeconds": round(total["floor"], 3), "transportSecondsPerPack": transport,
        "sideBySideSeconds": round(together, 3), "targetSeconds": round(target, 3),
        **({"sdkServedSeconds": sdk_served} if sdk_served else {}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
