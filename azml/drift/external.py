"""Exact quantile edges and KS statistic of numeric features larger than memory.

The method is an external sort whose merge holds one key range at a time:

1. **Runs** (while the inputs are read, once): each float64 value becomes an
   order-preserving uint64 key (missing values dropped, -0.0 taken as +0.0); a
   feature's keys of one side are collected up to ``limit`` at a time, sorted in
   memory and appended to an unlinked temporary file (:class:`~azml.drift.spill.SpillFile`)
   as one sorted *run*. Every ``stride``-th key of a run (a *fence*) stays in memory:
   FENCE_STRIDE at first, doubled (every other fence dropped) whenever a feature
   holds more than MAX_FENCES of them.
2. **Plan**: the fences of all runs of both sides, sorted together, cut the key
   space into consecutive ranges of at most ``K`` fences each. A run's keys in a
   range are a contiguous slice, and a slice of L keys holds at least
   floor(L / stride) fences, so a range holds at most ``stride * (K + runs)`` keys;
   ``K = limit / stride - runs`` keeps it within ``limit`` (``K`` is at least
   ``limit / stride / 2``; a range that comes out too large is split in step 3). A
   key with more than ``K`` fences (heavy ties) is a range of its own.
3. **Merge**, range by range in key order: the exact position of the range's end in
   every run (a fence narrows it to a window of at most ``stride - 1`` keys, read and
   searched), hence the exact number of keys of each side inside. A range of one key
   is answered from these counts alone. A range of more than ``limit`` keys is cut
   at the middle key of its widest run slice (three parts: below that key, the key
   alone, above it: the widest slice at least halves in the multi-key parts). Any
   other range is read from every run, sorted, and solved exactly: the ECDF
   difference at each of its values from the counts below the range plus the counts
   inside (:func:`azml.drift.ks.ks_statistic_sorted` with offsets), and the
   reference's quantile ranks that fall inside it. Same integers, same float
   expression as the in-memory path: the results are identical bit for bit.

Memory per numeric feature: one run buffer (``limit`` keys) while reading, the
fences (at most MAX_FENCES keys, 8 MiB), a few integers per run, and while merging
one range (at most ``limit`` keys of both sides, sorted in place, plus the KS
search arrays). Disk: 8 bytes per non-missing value, in a file unlinked as soon as
it is created.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .ks import ks_statistic_sorted
from .metrics import Wasserstein
from .spill import SpillFile

#: One key in this many is kept in memory per run (8 bytes per 1024 values) ...
FENCE_STRIDE = 1024
#: ... until a feature has this many fences (8 MiB); then every other one goes.
MAX_FENCES = 1 << 20
#: Values converted to keys at a time (512 KiB of float64: the temporaries stay in cache).
BLOCK = 1 << 16
SIGN = np.uint64(1 << 63)
KEY_BYTES = 8


def to_keys(values: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """Order-preserving uint64 keys of float64 values without NaN (-0.0 as +0.0):
    negative values have every bit flipped, the others only the sign bit. ``out``
    (uint64) receives the keys, ``scratch`` (int64, at least as long) saves an
    allocation; both in place, so that a block that fits in cache stays there."""
    out = np.empty(len(values), np.uint64) if out is None else out
    np.add(values, 0.0, out=out.view(np.float64))
    flip = np.right_shift(out.view(np.int64), 63, out=None if scratch is None else scratch[: len(out)])
    flip = flip.view(np.uint64)  # all ones for negative values, else zero
    np.bitwise_or(flip, SIGN, out=flip)
    return np.bitwise_xor(out, flip, out=out)


def to_values(keys: np.ndarray) -> np.ndarray:
    """float64 values of order-preserving keys (the inverse of :func:`to_keys`)."""
    negative = (keys >> np.uint64(63)) == 0
    bits = np.where(negative, ~keys, keys ^ SIGN)
    return bits.view(np.float64)


def from_key(key: int) -> float:
    bits = key & ~(1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


@dataclass(frozen=True)
class Run:
    offset: int  # bytes into the spill file
    length: int  # keys, sorted
    fences: np.ndarray  # keys at positions FENCE_STRIDE - 1, 2 * FENCE_STRIDE - 1, ...


@dataclass
class Plan:
    """Consecutive key ranges [starts[i], starts[i + 1]) (the last one up to 2**64);
    ``single[i]``: the range is one key, answered from counts."""

    starts: list[int] = field(default_factory=lambda: [0])
    single: list[bool] = field(default_factory=lambda: [False])


def plan_ranges(fences: np.ndarray, limit: int) -> Plan:
    """Cut the key space so that no range of several keys holds more than ``limit``
    fences (``fences`` sorted); a key with more fences than that gets a range of its
    own. One iteration per range."""
    plan = Plan()
    if fences.size == 0:
        return plan
    keys, counts = np.unique(fences, return_counts=True)
    cumulative = np.cumsum(counts)
    load = 0  # fences in the last (still open) range
    a = 0
    while a < len(keys):
        key, count = int(keys[a]), int(counts[a])
        if count > limit:
            if load or plan.starts[-1] != key:
                plan.starts.append(key)
                plan.single.append(True)
            else:  # the open range starts at this key and holds nothing yet
                plan.single[-1] = True
            plan.starts.append(key + 1)
            plan.single.append(False)
            load = 0
            a += 1
            continue
        if load + count > limit:
            plan.starts.append(key)
            plan.single.append(False)
            load = 0
        below = int(cumulative[a]) - count
        # Every following key up to the cumulative limit joins; a heavy key never
        # fits (its count alone is over the limit), so it stops the range.
        b = int(np.searchsorted(cumulative, below + limit - load, "right"))
        load += int(cumulative[b - 1]) - below
        a = b
    return plan


class NumericRuns:
    """The sorted runs of one numeric feature, both sides, in a shared spill file.

    ``limit`` keys is both the length of a run and the most keys of both sides that
    one merged key range may load. The first run of each side ends after ``first``
    keys (default ``limit``): features given different ``first`` spill at different
    times, so that the writes of one feature's run do not all come at once with the
    others' and stall the reader."""

    def __init__(self, spill: SpillFile, limit: int, first: int | None = None) -> None:
        self.spill = spill
        self.limit = max(1, limit)
        self.first = min(self.limit, max(1, first or self.limit))
        self._target = self.first
        self.stride = initial_stride(self.limit)
        self.runs: list[list[Run]] = [[], []]
        self.n = [0, 0]  # non-missing values per side
        self.missing = [0, 0]
        self._fences = 0
        self._buffer: np.ndarray | None = None
        self._scratch = np.empty(BLOCK, np.int64)
        self._fill = 0

    # collecting --------------------------------------------------------------------
    def add(self, values: np.ndarray, side: int) -> None:
        """A chunk of float64 values (NaN = missing) of one side, converted in blocks
        of BLOCK values straight into the run buffer."""
        if self._buffer is None:
            self._buffer = np.empty(self.limit, np.uint64)
        for start in range(0, len(values), BLOCK):
            block = values[start : start + BLOCK]
            nan = np.isnan(block)
            absent = int(np.count_nonzero(nan))
            if absent:
                block = block[~nan]
                self.missing[side] += absent
            self.n[side] += len(block)
            while len(block):
                take = min(self._target - self._fill, len(block))
                to_keys(block[:take], out=self._buffer[self._fill : self._fill + take], scratch=self._scratch)
                self._fill += take
                block = block[take:]
                if self._fill == self._target:
                    self.flush(side)

    def flush(self, side: int) -> None:
        """Sort the collected keys of ``side`` and spill them as one run."""
        if self._buffer is None or self._fill == 0:
            return
        keys = self._buffer[: self._fill]
        keys.sort()
        offset = self.spill.append(keys)
        fences = keys[self.stride - 1 :: self.stride].copy()
        self.runs[side].append(Run(offset, len(keys), fences))
        self._fences += len(fences)
        self._fill = 0
        self._target = self.limit
        while self._fences > MAX_FENCES:  # keep every other fence: the stride doubles
            self.stride *= 2
            for runs in self.runs:
                runs[:] = [Run(run.offset, run.length, run.fences[1::2].copy()) for run in runs]
            self._fences = sum(len(run.fences) for runs in self.runs for run in runs)

    def finish_side(self, side: int) -> None:
        """The last run of ``side``; the other side starts with a ``first``-key run again."""
        self.flush(side)
        self._target = self.first

    def release(self) -> None:
        self._buffer = None

    # merging -----------------------------------------------------------------------
    def solve(
        self, ranks: list[int], ks: bool, progress: Callable[[float], None] | None = None
    ) -> tuple[list[int], list[int], list[int], float | None, float | None]:
        """Unique edge keys (ascending), #ref <= each, #cur <= each, D and the
        normalized Wasserstein distance (both None without ``ks``). ``ranks``: 1-based ranks of the edges among the reference's
        sorted values; ``progress(share of the keys merged)`` after each range."""
        self.release()
        runs = self.runs[0] + self.runs[1]
        refs = len(self.runs[0])
        n_r, n_c = self.n
        fences = np.concatenate([run.fences for run in runs]) if runs else np.zeros(0, np.uint64)
        fences.sort()
        per_range = self.limit // self.stride
        plan = plan_ranges(fences, max(1, per_range - len(runs), per_range // 2))
        del fences
        pending = sorted(set(ranks))
        edges: dict[int, tuple[int, int, int]] = {}
        state = _MergeState(runs, refs, n_r, n_c, ks)
        # Ranges still to do, the next one last: (start key, end key or None for the
        # top of the key space, single key?).
        stack = list(zip(plan.starts, plan.starts[1:] + [None], plan.single))[::-1]
        while stack:
            start, end, single = stack.pop()
            below = state.positions(self, end)
            m_r = int(sum(below[:refs]) - sum(state.at[:refs]))
            m_c = int(sum(below[refs:]) - sum(state.at[refs:]))
            if not single and m_r + m_c > self.limit:
                stack.extend(reversed(state.split(self, start, end, below)))
                continue
            if m_r + m_c:
                wanted = pending[bisect.bisect_right(pending, state.r0) : bisect.bisect_right(pending, state.r0 + m_r)]
                if single:  # one key: every count is known without reading it
                    state.single(start, m_r, m_c, wanted, edges)
                else:
                    state.load_and_solve(self, below, m_r, m_c, wanted, edges)
            state.advance(below, m_r, m_c)
            if progress is not None and n_r + n_c:
                progress((state.r0 + state.c0) / (n_r + n_c))
        unique = sorted({edges[rank] for rank in ranks})
        keys = [e[0] for e in unique]
        nwd = state.wasserstein.result() if state.wasserstein is not None else None
        return keys, [e[1] for e in unique], [e[2] for e in unique], state.best if ks else None, nwd

    def position(self, run: Run, key: int) -> int:
        """Keys of ``run`` below ``key``: ``t`` fences are below it, so keys
        [0, t * stride) are, and the fence at (t + 1) * stride - 1 is not; the
        position lies in that window of at most stride - 1 keys, read and searched."""
        cut = np.uint64(key)
        fenced = int(np.searchsorted(run.fences, cut, "left"))
        lo = fenced * self.stride
        hi = min(lo + self.stride - 1, run.length)
        if hi <= lo:
            return lo
        window = self.spill.read(run.offset + lo * KEY_BYTES, np.empty(hi - lo, np.uint64))
        return lo + int(np.searchsorted(window, cut, "left"))

    def key_at(self, run: Run, index: int) -> int:
        return int(self.spill.read(run.offset + index * KEY_BYTES, np.empty(1, np.uint64))[0])

    def load(self, slices: list[tuple[Run, int, int]], total: int) -> np.ndarray:
        """The keys of ``slices`` (each a sorted run's [start, end)), sorted together."""
        keys = np.empty(total, np.uint64)
        at = 0
        for run, start, end in slices:
            if end > start:
                self.spill.read(run.offset + start * KEY_BYTES, keys[at : at + end - start])
                at += end - start
        keys.sort()
        return keys


class _MergeState:
    """Where the merge of one feature stands: the position reached in every run, the
    counts below the current range, and the largest ECDF difference so far."""

    def __init__(self, runs: list[Run], refs: int, n_r: int, n_c: int, ks: bool) -> None:
        self.runs, self.refs, self.n_r, self.n_c, self.ks = runs, refs, n_r, n_c, ks
        self.at = [0] * len(runs)
        self.r0 = self.c0 = 0
        self.best = 0.0
        # Wasserstein over the same merged values, range by range (both samples non-empty).
        self.wasserstein = Wasserstein(n_r, n_c) if ks else None

    def positions(self, owner: NumericRuns, end: int | None) -> list[int]:
        if end is None:
            return [run.length for run in self.runs]
        return [owner.position(run, end) for run in self.runs]

    def split(self, owner: NumericRuns, start: int, end: int | None, below: list[int]) -> list[tuple[int, int | None, bool]]:
        """A range with too many keys, cut at the middle key k of its largest run
        slice into [start, k), [k, k + 1) (one key, counts only) and [k + 1, end): in
        each multi-key part, that run's slice is at most half of what it was."""
        widest = max(range(len(self.runs)), key=lambda j: below[j] - self.at[j])
        key = owner.key_at(self.runs[widest], (self.at[widest] + below[widest] - 1) // 2)
        parts: list[tuple[int, int | None, bool]] = []
        if key > start:
            parts.append((start, key, False))
        parts.append((key, key + 1, True))
        if end is None or key + 1 < end:
            parts.append((key + 1, end, False))
        return parts

    def single(self, key: int, m_r: int, m_c: int, wanted: list[int], edges: dict[int, tuple[int, int, int]]) -> None:
        if self.ks:
            self.best = max(self.best, abs((self.r0 + m_r) / self.n_r - (self.c0 + m_c) / self.n_c))
        if self.wasserstein is not None:
            self.wasserstein.single(from_key(key), m_r, m_c, self.r0, self.c0)
        for rank in wanted:
            edges[rank] = (key, self.r0 + m_r, self.c0 + m_c)

    def load_and_solve(
        self, owner: NumericRuns, below: list[int], m_r: int, m_c: int, wanted: list[int], edges: dict[int, tuple[int, int, int]]
    ) -> None:
        slices = [(run, self.at[j], below[j]) for j, run in enumerate(self.runs)]
        ref = owner.load(slices[: self.refs], m_r)
        cur = owner.load(slices[self.refs :], m_c)
        r0, c0 = self.r0, self.c0
        if self.ks:
            self.best = ks_statistic_sorted(ref, cur, r0=r0, c0=c0, n_r=self.n_r, n_c=self.n_c, floor=self.best)
        if self.wasserstein is not None:
            self.wasserstein.feed(to_values(ref), to_values(cur), r0, c0)
        for rank in wanted:
            key = ref[rank - r0 - 1]
            edges[rank] = (
                int(key),
                r0 + int(np.searchsorted(ref, key, "right")),
                c0 + int(np.searchsorted(cur, key, "right")),
            )

    def advance(self, below: list[int], m_r: int, m_c: int) -> None:
        self.at = below
        self.r0 += m_r
        self.c0 += m_c


def initial_stride(limit: int) -> int:
    """One fence per FENCE_STRIDE keys, finer for small limits (a range should hold
    dozens of fences), never below 1."""
    return max(1, min(FENCE_STRIDE, limit // 64))
