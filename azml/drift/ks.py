"""Two-sample Kolmogorov-Smirnov: the statistic over every row; the p-value
exact for small samples (as ``scipy.stats.ks_2samp(method="auto")``) and
whenever scipy's exact algorithm is cheap, otherwise from the finite-n or the
limiting Kolmogorov distribution, within a measured bound of the exact value
(see :func:`ks_pvalue`). Exact p-values come from scipy's public
``ks_2samp(method="exact")`` (see :func:`exact_pvalue`), no private scipy function.

The statistic is D = max over x of |R(x)/n_r - C(x)/n_c| with R(x), C(x) the
counts of reference / current values <= x; the maximum is attained at a data
value, and every path here evaluates the same float expression on the same
integer counts as scipy does, so the results agree bit for bit.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import ks_2samp

#: scipy's ks_2samp(method="auto") is exact when both samples have at most this many values.
MAX_EXACT_N = 10000
#: Grid points per sample of the in-memory search (see :func:`ks_statistic_sorted`).
GRID = 4096
#: Slack added to interval bounds so that float rounding never prunes the maximum.
BOUND_SLACK = 1e-12

#: Above MAX_EXACT_N the p-value stays exact while scipy's algorithm needs at most this
#: many lattice cells (see :func:`exact_work`; ~3-8 ns each, so at most ~30 ms).
EXACT_WORK = 4_000_000
#: One iteration of scipy's equal-size algorithm (a Python loop) costs about as much
#: as this many cells of the unequal-size one.
SQUARE_WEIGHT = 50
#: Largest effective size n_r n_c / (n_r + n_c) at which the finite-n distribution is used.
MAX_FINITE_N = 10000
#: Bounds on |p-value - scipy's exact p-value| (measured, see :func:`ks_pvalue`):
#: finite-n regime; asymptotic regime, divided by sqrt(n_eff); overall.
FINITE_N_ERROR = 0.003
ASYMPTOTIC_ERROR = 0.5
MAX_ERROR = ASYMPTOTIC_ERROR / math.sqrt(MAX_FINITE_N)

EXACT = "exact"
FINITE_N = "finite-n"
ASYMPTOTIC = "asymptotic"


def ks_statistic_sorted(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    r0: int = 0,
    c0: int = 0,
    n_r: int | None = None,
    n_c: int | None = None,
    floor: float = 0.0,
) -> float:
    """D of two sorted samples, see :func:`ks_search`."""
    return ks_search(ref, cur, r0=r0, c0=c0, n_r=n_r, n_c=n_c, floor=floor)[0]


def ks_search(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    r0: int = 0,
    c0: int = 0,
    n_r: int | None = None,
    n_c: int | None = None,
    floor: float = 0.0,
) -> tuple[float, float | None]:
    """(D, where) of two sorted samples without NaN (float64 values or their order-preserving
    uint64 keys), or the part of it that a slice of the key range holds.

    With the defaults, ``ref`` and ``cur`` are whole samples (both non-empty) and the
    result is D = max over their values x of |R(x)/n_r - C(x)/n_c|. For a slice (the
    external merge, :mod:`azml.drift.external`), ``ref`` and ``cur`` hold the values
    of one key range, ``r0`` / ``c0`` count the values below it and ``n_r`` / ``n_c``
    are the whole samples' sizes: the result is max(``floor``, max over the slice's
    values x of |(r0 + R(x))/n_r - (c0 + C(x))/n_c|), the same float expression on
    the same integer counts as for the whole samples, so the maximum over all slices
    is D bit for bit. ``floor`` only prunes: intervals that cannot beat it are skipped.
    ``where`` is a value at which the maximum is attained (None when ``floor`` is it).

    Instead of evaluating the ECDF difference at all values (two searches of every
    value, as scipy does), evaluate it exactly at a grid of about 2 * GRID sample
    values, bound it inside each open interval between grid points by the
    interval's counts, and evaluate exactly only at the values of the intervals
    whose bound beats the maximum so far.
    """
    m_r, m_c = len(ref), len(cur)
    n_r = m_r if n_r is None else n_r
    n_c = m_c if n_c is None else n_c
    if m_r + m_c == 0:
        return floor, None
    step_r, step_c = max(1, m_r // GRID), max(1, m_c // GRID)
    grid = np.unique(np.concatenate((ref[step_r - 1 :: step_r], cur[step_c - 1 :: step_c])))
    r_le = r0 + np.searchsorted(ref, grid, "right")
    c_le = c0 + np.searchsorted(cur, grid, "right")
    on_grid = np.abs(r_le / n_r - c_le / n_c)
    at = int(np.argmax(on_grid))
    best, where = (float(on_grid[at]), grid[at].item()) if float(on_grid[at]) > floor else (floor, None)
    # Open intervals (g[i-1], g[i]), i = 0..m, with g[-1] = -inf and g[m] = +inf.
    r_start = np.concatenate(([r0], r_le))
    c_start = np.concatenate(([c0], c_le))
    r_end = np.concatenate((r0 + np.searchsorted(ref, grid, "left"), [r0 + m_r]))
    c_end = np.concatenate((c0 + np.searchsorted(cur, grid, "left"), [c0 + m_c]))
    before = r_start / n_r - c_start / n_c
    bound = np.maximum(np.abs(before + (r_end - r_start) / n_r), np.abs(before - (c_end - c_start) / n_c))
    open_ = np.flatnonzero((bound + BOUND_SLACK > best) & ((r_end > r_start) | (c_end > c_start)))
    if open_.size == 0:
        return best, where
    values = np.concatenate(
        (_gather(ref, r_start[open_] - r0, r_end[open_] - r0), _gather(cur, c_start[open_] - c0, c_end[open_] - c0))
    )
    inside = (r0 + np.searchsorted(ref, values, "right")) / n_r - (c0 + np.searchsorted(cur, values, "right")) / n_c
    inside = np.abs(inside)
    at = int(np.argmax(inside))
    return (float(inside[at]), values[at].item()) if float(inside[at]) > best else (best, where)


def ks_where(ref: np.ndarray, cur: np.ndarray, d: float, attained: list[float]) -> float | None:
    """The ``where`` that :func:`ks_search` reports for two whole sorted samples, from
    their statistic ``d`` and the values at which it is attained (ascending), e.g.
    from the Wasserstein merge, which evaluates the ECDF difference at every value.

    ks_search evaluates a grid of sample values first (every ``step``-th value of each
    sample) and takes the first grid value attaining the grid's maximum; it replaces it
    only by a value of an interval that beats it strictly: the first such value in its
    gathering order, the reference's values (ascending) before the current's. So: the
    smallest value attaining D that is on the grid, else the smallest one found in the
    reference, else the smallest one."""
    if d <= 0 or not attained:
        return None
    values = np.asarray(attained)
    on_grid = np.zeros(len(values), dtype=bool)
    in_ref = None
    for side in (ref, cur):
        step = max(1, len(side) // GRID)
        low, high = np.searchsorted(side, values, "left"), np.searchsorted(side, values, "right")
        # The grid holds side[t * step - 1], t >= 1: is one of them among the copies [low, high)?
        first = (low + 1 + step - 1) // step * step - 1
        on_grid |= first < high
        if in_ref is None:
            in_ref = high > low
    if on_grid.any():
        return values[on_grid][0].item()
    assert in_ref is not None
    return values[in_ref][0].item() if in_ref.any() else values[0].item()


def _gather(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """values[starts[0]:ends[0]] + values[starts[1]:ends[1]] + ... without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return values[:0]
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return values[offsets + np.arange(total)]


def ks_pvalue(d: float, n_r: int, n_c: int) -> tuple[float, float, str]:
    """(statistic, p-value, method) for D = ``d`` between samples of n_r and n_c values.

    * ``exact`` when max(n_r, n_c) <= 10000, as ``scipy.stats.ks_2samp(method="auto")``
      (the statistic then becomes h / lcm(n_r, n_c) with h = round(d * lcm)); above
      that, exact too (scipy's ``method="exact"`` p-value, the statistic left as
      given) whenever scipy's lattice-path algorithm needs at most EXACT_WORK cells
      (:func:`exact_work`: a few milliseconds) -- small samples against large ones,
      where Kolmogorov's limit is worst (off by 0.27 for 1 value against 20,000).
    * ``finite-n`` otherwise, for unequal sizes with an effective size
      n_r n_c / (n_r + n_c) <= MAX_FINITE_N: the one-sample finite-n distribution
      ``scipy.stats.kstwo`` at the rounded effective size (scipy's own fallback);
      it becomes exact as one sample grows against the other and costs
      milliseconds at these sizes.
    * ``asymptotic`` for larger effective sizes (and equal sizes): Kolmogorov's
      limiting distribution P(K > D sqrt(n_r n_c / (n_r + n_c))), as R's ``ks.test``;
      ``kstwo`` would cost up to ~0.5 s per feature at a million rows.

    Error against scipy's exact p-value (``ks_2samp(method="exact")``), measured
    over the lattice values of D up to sqrt(n_eff) D = 2.5-4 for sizes from 1 against
    3,000,000 to 1,000,000 against 1,000,001 (tests/drift/test_drift_ks.py asserts it):
    none in the exact regime; at most FINITE_N_ERROR = 0.003 in the finite-n one
    (0.0024 seen, near-equal sizes around 16,000); at most ASYMPTOTIC_ERROR /
    sqrt(n_eff) = 0.5 / sqrt(n_eff) in the asymptotic one, so at most 0.005 anywhere
    (0.0007 at a million values per side). The asymptotic error is the step of the
    exact distribution that no continuous one can follow: largest for sizes n and
    n + 1 (0.475 / sqrt(n_eff) at n = 300, 0.494 at n = 100,000, 0.492 at n =
    1,000,000), under 0.01 / sqrt(n_eff) for equal sizes. A failed exact computation (over- or
    underflow: p-values far below any test level, or for equal sizes a D under
    0.3 / sqrt(n_eff), where the p-value is 1 to four places) falls back the same way.
    """
    big, small = max(n_r, n_c), min(n_r, n_c)
    statistic = d
    if big <= MAX_EXACT_N or exact_work(n_r, n_c, d) <= EXACT_WORK:
        p = exact_pvalue(n_r, n_c, d)
        if big <= MAX_EXACT_N:  # scipy's "auto" reports the rounded statistic, even when it falls back
            lcm = n_r // math.gcd(n_r, n_c) * n_c
            statistic = int(np.round(np.float64(d) * lcm)) / lcm
        if p is not None:
            return float(statistic), float(np.clip(p, 0.0, 1.0)), EXACT
    n_eff = big * small / (big + small)
    if n_r != n_c and n_eff <= MAX_FINITE_N:
        from scipy.stats import kstwo

        return float(statistic), float(np.clip(kstwo.sf(statistic, round(n_eff)), 0.0, 1.0)), FINITE_N
    from scipy.stats import kstwobign

    p = float(kstwobign.sf(statistic * math.sqrt(n_eff)))
    return float(statistic), float(np.clip(p, 0.0, 1.0)), ASYMPTOTIC


def exact_work(n_r: int, n_c: int, d: float) -> float:
    """Cost of scipy's exact two-sided p-value in lattice cells (a few ns each).

    Unequal sizes: for each of the max(n_r, n_c) steps of the larger sample, a band
    of at most 2 D min(n_r, n_c) + 2 cells (the paths inside |x/m - y/n| < D), never
    more than min + 1. Equal sizes: about n + D n iterations of a Python loop, each
    worth SQUARE_WEIGHT cells.
    """
    big, small = max(n_r, n_c), min(n_r, n_c)
    if n_r == n_c:
        return SQUARE_WEIGHT * small * (1.0 + d)
    return big * min(small + 1.0, 2.0 * d * small + 2.0)


def exact_pvalue(n_r: int, n_c: int, d: float) -> float | None:
    """P(D >= d) for samples of n_r and n_c values without ties, from the public
    ``scipy.stats.ks_2samp(method="exact")``; None where scipy's exact computation
    fails (it then warns and switches to its asymptotic method; :func:`ks_pvalue`
    says which method it used instead).

    The exact null distribution depends on the sizes and D alone, so ks_2samp is
    called on two witness samples of those sizes (:func:`witness`) whose statistic
    is the smallest value a pair of such samples can have at or above D rounded to
    the lattice h / lcm(n_r, n_c), as scipy rounds it: below it D is never attained,
    so P(D >= d) is the same. Building them costs O(n_r + n_c), a few ms per million.
    """
    g = math.gcd(n_r, n_c)
    lcm = n_r // g * n_c
    h = int(np.round(np.float64(d) * lcm))
    if h <= 0:
        return 1.0
    below_r, below_c = witness(n_r, n_c, min(h, lcm))
    ref, cur = np.ones(n_r, dtype=np.int8), np.ones(n_c, dtype=np.int8)
    ref[:below_r] = 0
    cur[:below_c] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ks_2samp(ref, cur, method="exact")
    if any(issubclass(w.category, RuntimeWarning) and "ks_2samp" in str(w.message) for w in caught):
        return None
    return float(result.pvalue)


def witness(n_r: int, n_c: int, h: int) -> tuple[int, int]:
    """(k, j): k of n_r reference values and j of n_c current values at 0, the rest
    at 1, so that D = |k / n_r - j / n_c| = h' / lcm with h' the smallest attainable
    numerator >= h (D is attained at a data value, where it is such a difference)."""
    g = math.gcd(n_r, n_c)
    a, b = n_c // g, n_r // g  # k / n_r - j / n_c = (k a - j b) / lcm
    for target in range(h, a * b * g + 1):
        for first, second, size_first, size_second, swap in ((a, b, n_r, n_c, False), (b, a, n_c, n_r, True)):
            # first * x - second * y = target with 0 <= x <= size_first, 0 <= y <= size_second
            x0 = target * pow(first, -1, second) % second if second > 1 else 0
            low = -(-target // first)
            x = x0 + max(0, -(-(low - x0) // second)) * second
            y = (first * x - target) // second
            if x <= size_first and 0 <= y <= size_second:
                return (y, x) if swap else (x, y)
    raise ValueError(f"no D >= {h} / lcm for sizes {n_r} and {n_c}")  # pragma: no cover - h <= lcm always fits
