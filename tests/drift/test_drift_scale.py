"""The drift engine on inputs larger than its memory: every streamed result is
identical to the in-memory engine's (the external sort's runs, key ranges, range
splits, heavy ties, fence thinning, missing values, odd chunk sizes), a streamed run
fits in a memory allowance the in-memory run exceeds, the temporary file never
outlives the run, and progress goes to stderr only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import stats
from typer.testing import CliRunner

from azml.drift import compute_drift, external
from azml.drift.external import Plan, from_key, plan_ranges, to_keys
from azml.drift.progress import MERGING, READING, Progress, ProgressLine
from azml.drift.spill import SpillError, SpillFile

from ..conftest import AZML, ROOT



def _table(n: int, seed: int, shift: float) -> pa.Table:
    """Numeric columns of every awkward kind, a categorical one, in one table."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(shift, 1.0, n)
    normal[rng.random(n) < 0.05] = np.nan
    heavy = np.where(rng.random(n) < 0.7, 3.0, np.round(rng.normal(3 + shift, 1.0, n), 2))  # one key holds 70 %
    signed = np.round(rng.normal(shift, 1.0, n), 1) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    signed[rng.random(n) < 0.1] = -0.0  # -0.0 counts as 0.0
    edges = rng.lognormal(shift, 2.0, n)
    edges[rng.random(n) < 0.01] = np.inf
    edges[rng.random(n) < 0.01] = -np.inf
    counts = pa.array(rng.poisson(5 + shift, n), mask=rng.random(n) < 0.03)  # integers with nulls
    city = pa.array(rng.choice(["ams", "ber", "cph"] + (["dub"] if shift else []), n))
    return pa.table({"normal": normal, "heavy": heavy, "signed": signed, "edges": edges, "counts": counts, "city": city})


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=7_777)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """A reference of 60,000 rows and a current sample of 45,000, as CSV and Parquet."""
    directory = tmp_path_factory.mktemp("scale")
    ref, cur = _table(60_000, 1, 0.0), _table(45_000, 2, 0.15)
    return {
        fmt: (_write(ref, directory / f"ref.{fmt}"), _write(cur, directory / f"cur.{fmt}"))
        for fmt in ("csv", "parquet")
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("chunk_rows", [997, 4093, 30_001])
def test_streamed_files_give_the_in_memory_result_bit_for_bit(pair, fmt: str, chunk_rows: int) -> None:  # type: ignore[no-untyped-def]
    ref, cur = pair[fmt]
    whole = compute_drift(ref, cur, chunk_rows=100_000)
    streamed = compute_drift(ref, cur, chunk_rows=chunk_rows)
    assert not whole.streamed and streamed.streamed
    assert streamed.features == whole.features  # every PSI bit, edge, count, KS statistic and p-value
    heavy = streamed.feature("heavy")
    assert 3.0 in heavy.edges and heavy.missing_reference == 0
    assert streamed.feature("counts").missing_reference > 0 and streamed.feature("normal").missing_current > 0


def test_the_streamed_result_is_scipys_ks_over_every_row(pair) -> None:  # type: ignore[no-untyped-def]
    ref, cur = pair["parquet"]
    report = compute_drift(ref, cur, chunk_rows=2_000)
    for name in ("normal", "heavy", "signed", "edges", "counts"):
        a = pq.read_table(ref, columns=[name]).column(name).to_numpy(zero_copy_only=False).astype(float)
        b = pq.read_table(cur, columns=[name]).column(name).to_numpy(zero_copy_only=False).astype(float)
        expected = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
        assert report.feature(name).ks_statistic == expected.statistic, name


def test_one_planned_range_is_split_until_it_fits(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """No plan at all (one range over the whole key space): every range comes from
    splitting, heavy keys included, and the result does not change."""
    ref, cur = pair["parquet"]
    whole = compute_drift(ref, cur, chunk_rows=100_000)
    calls = {"split": 0, "single": 0}
    split, single = external._MergeState.split, external._MergeState.single

    def counting_split(self, *args):  # type: ignore[no-untyped-def]
        calls["split"] += 1
        return split(self, *args)

    def counting_single(self, *args):  # type: ignore[no-untyped-def]
        calls["single"] += 1
        return single(self, *args)

    monkeypatch.setattr(external, "plan_ranges", lambda fences, limit: Plan())
    monkeypatch.setattr(external._MergeState, "split", counting_split)
    monkeypatch.setattr(external._MergeState, "single", counting_single)
    streamed = compute_drift(ref, cur, chunk_rows=3_001)
    assert streamed.features == whole.features
    assert calls["split"] > 20 and calls["single"] > 0


def test_thinned_fences_and_heavy_keys_stay_exact(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ref, cur = pair["csv"]
    whole = compute_drift(ref, cur, chunk_rows=100_000)
    strides: list[int] = []
    solve = external.NumericRuns.solve

    def recording_solve(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        strides.append(self.stride)
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(external, "MAX_FENCES", 40)  # every feature halves its fences again and again
    monkeypatch.setattr(external.NumericRuns, "solve", recording_solve)
    streamed = compute_drift(ref, cur, chunk_rows=5_000)
    assert streamed.features == whole.features
    assert min(strides) > external.initial_stride(5_000)


def test_plan_ranges_keeps_each_range_within_its_fences() -> None:
    rng = np.random.default_rng(4)
    fences = np.sort(np.concatenate((rng.integers(0, 10**6, 5_000), np.full(300, 777), np.full(41, 5), [0] * 60))).astype(np.uint64)
    limit = 40
    plan = plan_ranges(fences, limit)
    starts = plan.starts + [2**64]
    assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:]))
    inside = [int(np.count_nonzero((fences >= a) & (fences < b))) if b < 2**64 else int(np.count_nonzero(fences >= a)) for a, b in zip(starts, starts[1:])]
    assert sum(inside) == len(fences)
    for start, end, single, count in zip(starts, starts[1:], plan.single, inside):
        if single:
            assert end == start + 1 and count > limit
        else:
            assert count <= limit
    assert {0, 5, 777} <= {start for start, single in zip(plan.starts, plan.single) if single}


def test_keys_keep_the_order_of_the_values() -> None:
    values = np.array([-np.inf, -1e308, -1.5, -5e-324, -0.0, 0.0, 5e-324, 1.0, 2.5, 1e308, np.inf])
    keys = to_keys(values)
    assert np.all(keys[:-1] <= keys[1:]) and keys[4] == keys[5]  # -0.0 and 0.0: one key
    assert [from_key(int(k)) for k in keys] == [v + 0.0 for v in values]


def test_one_side_without_values_has_no_ks_and_stays_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    ref = pa.table({"x": rng.normal(size=20_000), "gone": pa.nulls(20_000, pa.float64())})
    cur = pa.table({"x": np.full(15_000, np.nan), "gone": rng.normal(size=15_000)})
    whole = compute_drift(ref, cur)
    streamed = compute_drift(_write(ref, tmp_path / "r.parquet"), _write(cur, tmp_path / "c.parquet"), chunk_rows=1_234)
    assert streamed.streamed and streamed.features == whole.features
    assert streamed.feature("x").ks_statistic is None and streamed.feature("x").missing_current == 15_000
    assert streamed.feature("gone").edges == () and streamed.feature("gone").ks_statistic is None


# The temporary file ------------------------------------------------------------------


def _spill_fds() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "azml-drift-" in target or ("(deleted)" in target and "/tmp" in target):
            found.append(target)
    return found


def test_the_temporary_file_has_no_name_and_is_gone_after_a_failed_run(tmp_path: Path) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    rng = np.random.default_rng(3)
    ref = _write(pa.table({"x": rng.normal(size=50_000)}), tmp_path / "ref.csv")
    broken = tmp_path / "cur.csv"
    # Past the first 8 MiB (which decide the column's type): the current file fails
    # to parse after the reference has been spilled.
    broken.write_text("x\n" + "0.5\n" * 2_200_000 + "oops\n")
    before = _spill_fds()
    with SpillFile(spill_dir) as spill:
        spill.append(np.arange(1000, dtype=np.uint64))
        assert os.listdir(spill_dir) == [] and spill.size == 8000
    with pytest.raises(Exception, match="cannot read"):
        compute_drift(ref, broken, chunk_rows=1_000, temp_dir=spill_dir)
    assert os.listdir(spill_dir) == [] and _spill_fds() == before


def test_a_temporary_directory_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpillError, match=f"cannot create the drift engine's temporary file in {tmp_path / 'none'}: No such file"):
        SpillFile(tmp_path / "none")


def test_a_full_disk_ends_azml_drift_with_exit_1_and_one_line(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: the spill write fails (EFBIG)."""
    rng = np.random.default_rng(5)
    ref = _write(pa.table({"x": rng.normal(size=200_000)}), tmp_path / "ref.parquet")
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "from azml.cli import app\n"
        "sys.argv = ['azml'] + sys.argv[1:]\n"
        "app()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "drift", "-r", str(ref), "-c", str(ref), "--chunk-rows", "50000",
         "--no-log", "--out", str(tmp_path / "out"), "--temp-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write the drift engine's temporary file in {tmp_path}: File too large")
    assert not (tmp_path / "out").exists()


# Memory ------------------------------------------------------------------------------

CAPPED = """
import json, resource, sys, threading
from azml.drift import compute_drift
ref, cur, warm_ref, warm_cur, chunk, allowance = sys.argv[1:7]
# RLIMIT_AS counts a new thread's whole reserved stack (8 MiB by default): the run's
# worker threads start after the limit is set, and on a loaded machine the allowance
# could go to stacks the engine never touches. 2 MiB stacks keep the limit on memory.
threading.stack_size(2 << 20)
compute_drift(warm_ref, warm_cur, chunk_rows=1000)  # imports, thread pools, allocator arenas


def vm(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024


base = vm("VmSize")
resource.setrlimit(resource.RLIMIT_AS, (base + int(allowance), resource.RLIM_INFINITY))
try:
    report = compute_drift(ref, cur, chunk_rows=int(chunk))
except MemoryError:
    print(json.dumps({"error": "MemoryError"}))
else:
    print(json.dumps({"streamed": report.streamed, "features": [f.to_json() for f in report.features],
                      "peak_over_base": vm("VmPeak") - base}))
"""


# pyarrow's default allocator (mimalloc) reserves address space ahead and serves large
# tables from it, which an address-space limit set afterwards does not see: the
# system allocator maps what it hands out, so every allocation counts. Two malloc
# arenas keep threads from reserving 64 MiB each.
CAPPED_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_streamed_run_fits_an_allowance_the_in_memory_run_exceeds(tmp_path: Path, fmt: str) -> None:
    """RLIMIT_AS set to the process's address space after a warm-up run plus 144 MiB:
    the inputs hold 128 MB of float64 values (4,000,000 rows x 2 features x 2 sides),
    which the in-memory engine cannot load and compare within it; the streamed run
    (64,000-row chunks) fits and gives the result computed without a limit. (Its peak
    over the base, CSV, was 49-60 MiB in eight runs; it was 72-176 MiB, and over this
    allowance once, while the CSV schema was read from the file, which pyarrow reads up
    to 32 blocks ahead of. What grows with the input is on disk.)"""
    rng = np.random.default_rng(12)
    n = 4_000_000
    ref = _write(pa.table({"a": rng.normal(size=n), "b": rng.lognormal(size=n)}), tmp_path / f"ref.{fmt}")
    cur = _write(pa.table({"a": rng.normal(0.01, size=n), "b": rng.lognormal(0.01, size=n)}), tmp_path / f"cur.{fmt}")
    warm = [_write(pa.table({"a": rng.normal(size=3000), "b": rng.normal(size=3000)}), tmp_path / f"w{i}.{fmt}") for i in (1, 2)]
    expected = [f.to_json() for f in compute_drift(ref, cur, chunk_rows=64_000).features]
    allowance = 144 << 20

    def capped(chunk_rows: int) -> dict:  # type: ignore[type-arg]
        result = subprocess.run(
            [sys.executable, "-c", CAPPED, str(ref), str(cur), str(warm[0]), str(warm[1]), str(chunk_rows), str(allowance)],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, **CAPPED_ENV},
        )
        # pyarrow's reader threads abort: out of memory, or no memory left for a new thread's stack.
        if result.returncode < 0 and ("Out of memory" in result.stderr or "Resource temporarily unavailable" in result.stderr):
            return {"error": "MemoryError"}
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert capped(n + 1) == {"error": "MemoryError"}  # in memory: over the allowance
    streamed = capped(64_000)
    assert streamed["streamed"] and streamed["features"] == expected


# Progress ----------------------------------------------------------------------------


def test_the_engine_reports_reading_and_merging(pair) -> None:  # type: ignore[no-untyped-def]
    events: list[Progress] = []
    compute_drift(*pair["csv"], chunk_rows=5_000, progress=events.append)
    reading = [e for e in events if e.phase == READING]
    assert {e.subject.split()[0] for e in reading} == {"reference", "current"}
    ref_shares = [e.done for e in reading if e.subject.startswith("reference")]
    assert ref_shares == sorted(ref_shares) and ref_shares[-1] == 1.0
    assert max(e.rows for e in reading if e.subject.startswith("reference")) == 60_000
    merged = {e.subject for e in events if e.phase == MERGING and e.done == 1.0}
    assert merged == {f"feature {name}" for name in ("normal", "heavy", "signed", "edges", "counts")}


def test_progress_line_redraws_on_a_terminal_and_prints_lines_elsewhere() -> None:
    now = [0.0]
    tty, plain = io.StringIO(), io.StringIO()
    redraw = ProgressLine(tty, tty=True, clock=lambda: now[0])
    lines = ProgressLine(plain, tty=False, clock=lambda: now[0])
    for step in range(40):  # 20 s in half-second steps
        now[0] = step * 0.5
        event = Progress(READING, "reference r.csv", step / 39, rows=step * 1000)
        redraw(event)
        lines(event)
    redraw.close()
    assert plain.getvalue().count("\n") == 2  # at 0 s and 10 s
    assert plain.getvalue().splitlines()[1] == "azml drift: reading reference r.csv  51%, 20.0k rows (10 s)"
    assert "\n" not in tty.getvalue() and tty.getvalue().count("\r") == 42 and tty.getvalue().endswith("\r")


def test_azml_drift_progress_goes_to_stderr_and_json_stays_clean(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ref, cur = pair["parquet"]
    forced = subprocess.run(
        [str(AZML), "drift", "-r", str(ref), "-c", str(cur), "--chunk-rows", "5000", "--format", "json",
         "--progress", "--no-log", "--out", str(tmp_path / "a")],
        capture_output=True, text=True, timeout=120,
    )
    assert forced.returncode == 3, forced.stderr
    assert json.loads(forced.stdout)["streamed"] is True
    assert forced.stderr.startswith("azml drift: reading reference ")
    quiet = subprocess.run(  # not a terminal, not asked: no progress
        [str(AZML), "drift", "-r", str(ref), "-c", str(cur), "--chunk-rows", "5000", "--format", "json",
         "--no-log", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=120,
    )
    assert quiet.returncode == 3 and quiet.stderr.startswith("error: drift in ")
    assert json.loads(quiet.stdout)["features"] == json.loads(forced.stdout)["features"]


def test_a_temp_dir_that_does_not_exist_is_refused_before_reading(tmp_path: Path) -> None:
    from .test_drift import _app, _write_pair

    ref, cur = _write_pair(tmp_path, shift=0.0)
    result = CliRunner().invoke(
        _app(), ["drift", "-r", str(ref), "-c", str(cur), "--no-log", "--out", str(tmp_path / "o"), "--temp-dir", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --temp-dir {tmp_path / 'nope'}: does not exist; nothing was written"
    assert not (tmp_path / "o").exists()
