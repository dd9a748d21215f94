"""How fast does ``azml plan`` run, and how does it scale with stack size?

Target (from the issue): the prod plan should cost within 2x the "import
floor", and grow linearly with the number of compute clusters.

Measured, each in a fresh subprocess, ``--repeat`` times (median wall time,
max peak RSS of the child as reported by ``os.wait4``):

* the import floor: a fresh ``python`` that imports pulumi and fully loads
  the same azure-native modules the program uses (they load lazily, so each
  is touched once). No plan can be cheaper than loading its SDKs, so plans
  are reported as multiples of it;
* ``azml plan dev`` and ``azml plan prod``;
* a breakdown of one full ``azml plan prod`` (policy packs and checkov
  included): start-up (interpreter, imports, config: the wall time outside
  every phase), the program under mocks, the day-two simulation, each policy
  pack's start and evaluation (the packs run side by side, so their phase is
  shorter than the sum), the ARM export and checkov, as ``azml plan`` reports
  them through ``AZML_TIMINGS``;
* synthetic stacks derived from ``Pulumi.dev.yaml`` with N compute clusters
  (``--sizes``, default 10 50 100): ``cpu-build`` (the dev image-build
  cluster, which must stay declared) plus generated ``train-001``...

The verdicts are printed as comparisons, not asserted: the exit code is 0
unless a plan run fails (then its stderr is printed and the exit code is 1).

Run with ``make bench`` or ``.venv/bin/python benchmarks/plan_scaling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from azml.progress import TIMINGS_ENV

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
AZML = PYTHON.parent / "azml"
# pulumi_azure_native loads submodules lazily: a bare `from ... import network`
# loads a stub. Touching `__all__` loads each package the way the program's
# first attribute access does, so the floor is what a plan really must import.
# Which packages those are is asked of the program itself (a child plans dev and
# prod and lists the packages it loaded), so the floor follows the program.
USED_MODULES = """
import sys
from pathlib import Path
from azml.config import read_stack_file
from azml.plan.engine import run_plan
for stack in ("dev", "prod"):
    run_plan(read_stack_file(stack, Path(".")))
loaded = {name.split(".")[1] for name in sys.modules if name.startswith("pulumi_azure_native.") and name.count(".") >= 2}
print(" ".join(sorted(loaded - {"_utilities"})))
"""


def floor_imports() -> str:
    """The floor program: import pulumi and fully load the azure-native packages a plan loads."""
    listed = subprocess.run([str(PYTHON), "-c", USED_MODULES], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = ", ".join(listed.stdout.split())
    return f"import pulumi\nfrom pulumi_azure_native import {modules}\nfor m in ({modules},): getattr(m, '__all__', None)"


KEPT_CLUSTER = "cpu-build"


@dataclass
class Result:
    scenario: str
    resources: int | None
    wall: float  # median seconds
    rss_mib: float  # max peak RSS over the runs


class RunFailed(Exception):
    def __init__(self, command: list[str], code: int, stderr: str) -> None:
        super().__init__(f"exit {code}: {' '.join(command)}")
        self.stderr = stderr


def run_once(command: list[str]) -> tuple[float, float]:
    """Run ``command`` to completion: (wall seconds, child's peak RSS in MiB)."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            stderr.seek(0)
            raise RunFailed(command, proc.returncode, stderr.read().decode(errors="replace"))
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def measure(scenario: str, command: list[str], repeat: int, plan_json: Path | None = None) -> Result:
    runs = [run_once(command) for _ in range(repeat)]
    resources = json.loads(plan_json.read_text())["summary"]["total"] if plan_json else None
    return Result(scenario, resources, statistics.median(w for w, _ in runs), max(r for _, r in runs))


def measure_breakdown(out: Path, repeat: int) -> tuple[float, dict[str, float]]:
    """Median wall time of a full ``azml plan prod`` and the median of each part of it."""
    walls: list[float] = []
    parts: dict[str, list[float]] = {}
    for _ in range(repeat):
        timings = out / "timings.json"
        command = [str(AZML), "plan", "prod", "--format", "json", "--out", str(out)]
        with tempfile.TemporaryFile() as stderr:
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                  env={**os.environ, TIMINGS_ENV: str(timings)})
            wall = time.perf_counter() - start
            if proc.returncode not in (0, 1):  # 1: the plan has findings (dev relaxations, accepted risks)
                stderr.seek(0)
                raise RunFailed(command, proc.returncode, stderr.read().decode(errors="replace"))
        document = json.loads(timings.read_text())
        walls.append(wall)
        phases = document["phases"]
        parts.setdefault("start-up (interpreter, imports, config)", []).append(wall - sum(phases.values()))
        for name, seconds in phases.items():
            parts.setdefault(name, []).append(seconds)
        for pack, values in document["packs"].items():
            parts.setdefault(f"  {pack}: start", []).append(values["startSeconds"])
            parts.setdefault(f"  {pack}: evaluate", []).append(values["analyzeSeconds"])
    return statistics.median(walls), {name: statistics.median(values) for name, values in parts.items()}


def print_breakdown(wall: float, parts: dict[str, float], floor: Result) -> None:
    print(f"azml plan prod, everything on: {wall:.2f} s median wall ({wall / floor.wall:.2f}x the import floor)")
    width = max(len(name) for name in parts)
    for name, seconds in parts.items():
        print(f"  {name.ljust(width)}  {seconds:7.3f} s")


def write_synthetic_stack(directory: Path, clusters: int) -> Path:
    """``Pulumi.dev.yaml`` with ``clusters`` compute clusters: cpu-build plus train-NNN."""
    yaml = YAML()
    document = yaml.load((ROOT / "Pulumi.dev.yaml").read_text())
    declared = document["config"]["azml:compute"]["clusters"]
    kept = [c for c in declared if c["name"] == KEPT_CLUSTER]
    generated = [
        {"name": f"train-{i:03d}", "vmSize": "Standard_DS3_v2", "maxNodes": 2, "priority": "LowPriority"}
        for i in range(1, clusters - len(kept) + 1)
    ]
    document["config"]["azml:compute"]["clusters"] = kept + generated
    path = directory / f"Pulumi.c{clusters}.yaml"
    with path.open("w") as handle:
        yaml.dump(document, handle)
    return path


def print_table(results: list[Result], floor: Result) -> None:
    header = ("scenario", "resources", "median wall s", "max RSS MiB", "wall / floor", "RSS / floor")
    rows = [
        (
            r.scenario,
            "-" if r.resources is None else str(r.resources),
            f"{r.wall:.3f}",
            f"{r.rss_mib:.1f}",
            f"{r.wall / floor.wall:.2f}",
            f"{r.rss_mib / floor.rss_mib:.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def print_verdicts(by_name: dict[str, Result], floor: Result, sizes: list[int]) -> None:
    ratio = by_name["prod"].wall / floor.wall
    print(f"prod plan within 2x import floor: {'yes' if ratio <= 2 else 'no'} ({ratio:.2f})")
    if len(sizes) < 3:
        print("grows linearly: n/a (needs at least three --sizes)")
        return
    slopes = []
    for low, high in zip(sizes, sizes[1:]):
        slope = (by_name[f"c{high}"].wall - by_name[f"c{low}"].wall) / (high - low) * 1000
        slopes.append(slope)
        print(f"  {low}->{high} clusters: {slope:.2f} ms per extra cluster")
    linear = min(slopes) > 0 and max(slopes) / min(slopes) <= 2
    print(f"grows linearly (slopes within a factor of 2): {'yes' if linear else 'no'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (default: 3)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 50, 100], help="cluster counts of the synthetic stacks"
    )
    args = parser.parse_args()
    if args.repeat < 1 or min(args.sizes) < 2:
        parser.error("--repeat must be >= 1 and every size >= 2 (cpu-build plus at least one generated cluster)")
    sizes = sorted(set(args.sizes))

    with tempfile.TemporaryDirectory(prefix="azml-bench-") as tmp:
        out = Path(tmp) / "out"
        stacks = [("dev", "dev"), ("prod", "prod")]
        stacks += [(f"c{n}", str(write_synthetic_stack(Path(tmp), n))) for n in sizes]
        try:
            floor = measure("import floor", [str(PYTHON), "-c", floor_imports()], args.repeat)
            print("measuring the breakdown of prod ...", file=sys.stderr, flush=True)
            breakdown = measure_breakdown(Path(tmp) / "full", args.repeat)
            results = [floor]
            for name, stack in stacks:
                # The plan itself: policy and checkov have their own costs (and benchmark).
                command = [str(AZML), "plan", stack, "--format", "json", "--out", str(out), "--no-policy", "--no-checkov"]
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                results.append(measure(name, command, args.repeat, out / name / "plan.json"))
        except RunFailed as failure:
            print(f"error: {failure}\n{failure.stderr}", file=sys.stderr)
            return 1

    print(f"\nazml plan, {args.repeat} run(s) per scenario, Python {sys.version.split()[0]}\n")
    print_table(results, floor)
    print()
    print_breakdown(*breakdown, floor)
    print()
    print_verdicts({r.scenario: r for r in results}, floor, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
