"""`azml drift` on files larger than the memory it is allowed: values per second and peak RSS.

Data (seeded, written in 1M-row slices so the generator stays small): a reference
and a current sample of ``--rows`` rows (default 24,000,000) x 4 numeric features
(normal with 1 % missing, lognormal, uniform, Poisson counts: heavy ties), the
current one shifted by 0.02; each side written once as CSV (~1.45 GB) and once as
Parquet (~0.6 GB), in a temporary directory removed afterwards.

Runs the installed ``azml drift`` command, as a user would, on CSV vs CSV, Parquet vs
Parquet and CSV vs Parquet (the report that started this: an 18M-row CSV reference
against an 18M-row Parquet sample took 25 min 38 s), each in its own process, and
reports for each: wall time, CPU time, values per second (both samples' values),
and the child's peak RSS (``os.wait4``'s ru_maxrss) against the allowance and the
file sizes. The three reports must agree feature for feature (the same values, read
from CSV or Parquet).

The allowance is measured, not enforced: an address-space limit (RLIMIT_AS) would
count the ~1.6 GB that Python, numpy and pyarrow reserve without touching;
tests/drift/test_drift_scale.py enforces an allowance above that base instead.

Targets: >= 10 million values/s from CSV and from Parquet; peak RSS under the
allowance (default 512 MiB) while each input file is larger than it. Run with
``.venv/bin/python benchmarks/drift_scaling.py`` (``make bench-drift`` runs it after
the Evidently comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = 24_000_000
SLICE = 1 << 20
SHIFT = 0.02
TARGET = 10e6
FEATURES = ("normal", "lognormal", "uniform", "count")


def generate(directory: Path, rows: int) -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.float64()) for name in FEATURES])
    paths: dict[str, Path] = {}
    for side, shift, seed in (("reference", 0.0, 1), ("current", SHIFT, 2)):
        rng = np.random.default_rng([20240601, seed])
        csv_path, parquet_path = directory / f"{side}.csv", directory / f"{side}.parquet"
        with pacsv.CSVWriter(csv_path, schema) as csv_out, pq.ParquetWriter(parquet_path, schema) as parquet_out:
            for start in range(0, rows, SLICE):
                n = min(SLICE, rows - start)
                normal = rng.normal(shift, 1.0, n)
                normal[rng.random(n) < 0.01] = np.nan
                table = pa.table(
                    {
                        "normal": normal,
                        "lognormal": rng.lognormal(shift, 1.0, n),
                        "uniform": rng.uniform(shift, 1.0 + shift, n),
                        "count": rng.poisson(20 + 10 * shift, n).astype(np.float64),
                    },
                    schema=schema,
                )
                csv_out.write_table(table)
                parquet_out.write_table(table)  # one 1M-row row group per slice
        paths[f"{side}.csv"], paths[f"{side}.parquet"] = csv_path, parquet_path
    return paths


def azml_command() -> str:
    candidate = Path(sys.executable).parent / "azml"
    return str(candidate) if candidate.exists() else "azml"


def run(reference: Path, current: Path, out: Path) -> dict:  # type: ignore[type-arg]
    """One `azml drift` process: its report, wall and CPU seconds, peak RSS in bytes."""
    command = [azml_command(), "drift", "-r", str(reference), "-c", str(current), "--no-log",
               "--format", "json", "--out", str(out)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode()
    if child.returncode not in (0, 3):  # 3: a feature drifted, still a report
        raise SystemExit(f"azml drift failed ({child.returncode}): {errors.strip()}")
    report = json.loads(text)
    return {
        "report": report,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "values": sum(f["n_reference"] + f["n_current"] for f in report["features"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=ROWS, help="Rows per sample.")
    parser.add_argument("--allowance-mb", type=int, default=512, help="Memory the run is allowed (MiB).")
    args = parser.parse_args(argv)
    allowance = args.allowance_mb << 20
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="drift-scale-") as scratch:
        directory = Path(scratch)
        start = time.perf_counter()
        paths = generate(directory, args.rows)
        sizes = {name: path.stat().st_size for name, path in paths.items()}
        print(f"data: {args.rows:,} rows x {len(FEATURES)} numeric features per sample, current shifted by {SHIFT}; "
              f"generated in {time.perf_counter() - start:.0f} s")
        print("files: " + ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in sizes.items()))
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the runs; "
              f"allowance {args.allowance_mb} MiB (peak RSS measured with os.wait4, not enforced)\n")

        pairs = [("CSV vs CSV", "reference.csv", "current.csv"),
                 ("Parquet vs Parquet", "reference.parquet", "current.parquet"),
                 ("CSV vs Parquet", "reference.csv", "current.parquet")]
        print(f"{'inputs':20} {'values':>13} {'wall s':>7} {'CPU s':>7} {'M values/s':>11} {'peak RSS':>10} "
              f"{'smaller input':>14}  target")
        results = []
        for label, ref, cur in pairs:
            result = run(paths[ref], paths[cur], directory / "out")
            results.append(result)
            rate = result["values"] / result["wall"]
            smallest = min(sizes[ref], sizes[cur])
            met = rate >= TARGET and result["rss"] < allowance < smallest
            print(f"{label:20} {result['values']:>13,} {result['wall']:>7.1f} {result['cpu']:>7.1f} {rate / 1e6:>11.1f} "
                  f"{result['rss'] / 2**20:>7.0f} MiB {smallest / 2**20:>10.0f} MiB  {'met' if met else 'NOT met'}")
        print(f"load average {os.getloadavg()[0]:.2f} after the runs")

    first = results[0]["report"]["features"]
    same = all(r["report"]["features"] == first for r in results[1:])
    print(f"\nreports from CSV and from Parquet identical: {'yes' if same else 'NO'}")
    worst = min(r["values"] / r["wall"] for r in results)
    peak = max(r["rss"] for r in results)
    print(f"target >= 10 million values/s: {'met' if worst >= TARGET else 'NOT met'} (slowest {worst / 1e6:.1f} M/s)")
    print(f"peak RSS {peak / 2**20:.0f} MiB against the {args.allowance_mb} MiB allowance: "
          f"{'within' if peak < allowance else 'OVER'}; every input file is larger than the allowance: "
          f"{'yes' if min(sizes.values()) > allowance else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
