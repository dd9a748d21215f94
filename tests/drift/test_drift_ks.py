"""The KS p-value against scipy's exact two-sample p-value, over balanced and
unbalanced sample sizes: exact where the engine says so, within the bounds
docs/drift.md states elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

# The oracle, in the tests only: scipy's internal helper that ks_2samp(method="exact")
# calls with the sizes and the statistic alone, evaluated at every lattice value,
# attainable or not, without building samples (test_real_samples_agree_with_ks_2samp_exact
# ties the two). The engine calls only the public ks_2samp (see exact_pvalue).
from scipy.stats._stats_py import _attempt_exact_2kssamp

from azml.drift import compute_drift
from azml.drift.ks import (
    ASYMPTOTIC,
    ASYMPTOTIC_ERROR,
    EXACT,
    FINITE_N,
    FINITE_N_ERROR,
    MAX_ERROR,
    ks_pvalue,
    ks_statistic_sorted,
)


def scipy_exact(n1: int, n2: int, d: float) -> float | None:
    """None where scipy's exact computation fails (and ks_2samp falls back)."""
    success, _, p = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), np.float64(d), "two-sided")
    return float(p) if success else None


def bound(method: str, n1: int, n2: int) -> float:
    if method == EXACT:
        return 0.0
    if method == FINITE_N:
        return FINITE_N_ERROR
    return ASYMPTOTIC_ERROR / math.sqrt(n1 * n2 / (n1 + n2))


def lattice(n1: int, n2: int, z_max: float) -> list[int]:
    """Numerators h of D = h / lcm covering sqrt(n_eff) D in (0, z_max]: a step of
    0.05 everywhere, 0.003 where Kolmogorov's limit is furthest from the exact
    value (0.6-0.9), plus the values next to the multiples of 1/n1 and 1/n2 there,
    where the exact distribution jumps."""
    lcm = n1 * n2 // math.gcd(n1, n2)
    scale = math.sqrt(n1 * n2 / (n1 + n2))
    zs = np.concatenate((np.arange(0.05, z_max, 0.05), np.arange(0.6, 0.9, 0.003)))
    hs = {round(z / scale * lcm) for z in zs}
    for n in (n1, n2):
        multiples = range(math.floor(0.6 * n / scale), math.ceil(0.9 * n / scale) + 1)
        if len(multiples) <= 200:  # finer ones are as dense as the grid already
            hs.update(k * (lcm // n) + off for k in multiples for off in (-1, 0, 1))
    return sorted(h for h in hs if 0 < h <= lcm)


# (n1, n2, methods the sweep must reach): the issue's cases (1 and 5 values
# against 20,000), unbalanced and balanced, each regime of ks_pvalue.
PAIRS = [
    (1, 20000, {EXACT}),
    (5, 20000, {EXACT}),
    (50, 20000, {EXACT}),
    (500, 20000, {EXACT}),
    (1, 3_000_000, {FINITE_N}),
    (50, 200_000, {EXACT, FINITE_N}),
    (10000, 10000, {EXACT, ASYMPTOTIC}),  # scipy's exact fails at tiny D (p = 1)
    (10001, 10003, {EXACT, FINITE_N}),
    (10000, 20000, {EXACT, FINITE_N}),
    (20000, 20001, {EXACT, ASYMPTOTIC}),
    (30000, 30000, {EXACT, ASYMPTOTIC}),
]


@pytest.mark.parametrize(("n1", "n2", "methods"), PAIRS, ids=[f"{a}-vs-{b}" for a, b, _ in PAIRS])
def test_pvalue_is_within_the_documented_bound_of_scipys_exact_value(n1: int, n2: int, methods: set[str]) -> None:
    seen: set[str] = set()
    lcm = n1 * n2 // math.gcd(n1, n2)
    for h in lattice(n1, n2, z_max=2.5):
        d = h / lcm
        statistic, pvalue, method = ks_pvalue(d, n1, n2)
        seen.add(method)
        assert statistic == d
        exact = scipy_exact(n1, n2, d)
        if exact is None:  # equal sizes, tiny D: scipy's series rounds past 1; the p-value is 1 to 4 places
            assert method != EXACT and d * math.sqrt(n1 / 2) < 0.3 and pvalue > 0.9999
            continue
        error = abs(pvalue - exact)
        assert error <= bound(method, n1, n2) <= MAX_ERROR, (n1, n2, d, method, error)
    assert seen == methods


def test_the_issues_cases_are_exact_end_to_end() -> None:
    """1 and 5 values against 20,000: Kolmogorov's limit was off by 0.15 and 0.10."""
    rng = np.random.default_rng(18)
    reference = rng.normal(size=20000)
    for current in (np.array([0.9]), np.array([2.5]), rng.normal(0.3, size=5), rng.normal(1.0, size=5)):
        report = compute_drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}))
        item = report.feature("x")
        expected = stats.ks_2samp(reference, current, method="exact")
        assert item.ks_method == EXACT and item.ks_pvalue == expected.pvalue
        # the statistic as scipy's default reports it (method="exact" rounds it to h / lcm)
        assert item.ks_statistic == stats.ks_2samp(reference, current).statistic


@pytest.mark.parametrize("seed", range(3))
def test_real_samples_agree_with_ks_2samp_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n1, n2 in ((3, 40000), (200, 60000), (12000, 30000), (15000, 15001)):
        for shift in (0.0, 0.03, 0.1):
            a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
            expected = stats.ks_2samp(a, b, method="exact")
            statistic, pvalue, method = ks_pvalue(ks_statistic_sorted(np.sort(a), np.sort(b)), n1, n2)
            assert statistic == stats.ks_2samp(a, b).statistic
            assert abs(pvalue - expected.pvalue) <= bound(method, n1, n2)
            if method == EXACT:
                assert pvalue == expected.pvalue


def test_the_old_asymptotic_p_value_breaks_the_bound_for_small_samples() -> None:
    """The sweep can fail: Kolmogorov's limit alone is far outside it at 1 vs 20,000."""
    d = 19999 / 20000
    limit = stats.kstwobign.sf(d * math.sqrt(20000 / 20001))
    exact = scipy_exact(1, 20000, d)
    assert exact is not None and abs(limit - exact) > 0.25 > MAX_ERROR
    assert ks_pvalue(d, 1, 20000)[1] == exact


def test_witness_samples_attain_the_smallest_possible_d_at_or_above_the_lattice_value() -> None:
    """The public ks_2samp sees two samples whose D is the next value real samples can have."""
    from azml.drift.ks import exact_pvalue, witness

    for n1 in range(1, 10):
        for n2 in range(1, 10):
            g = math.gcd(n1, n2)
            lcm = n1 * n2 // g
            attainable = {abs(k * (lcm // n1) - j * (lcm // n2)) for k in range(n1 + 1) for j in range(n2 + 1)}
            for h in range(1, lcm + 1):
                k, j = witness(n1, n2, h)
                assert 0 <= k <= n1 and 0 <= j <= n2
                assert abs(k * (lcm // n1) - j * (lcm // n2)) == min(a for a in attainable if a >= h)
                assert exact_pvalue(n1, n2, h / lcm) == scipy_exact(n1, n2, h / lcm)


def test_the_engine_imports_no_private_scipy_function() -> None:
    import azml.drift.ks as ks

    source = open(ks.__file__, encoding="utf-8").read()
    assert "scipy.stats._" not in source and "_attempt_exact" not in source
