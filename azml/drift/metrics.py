"""The data drift metrics of Azure ML model monitoring, as ``azml drift`` computes them.

Metric names are the monitors' own (``azml:modelMonitoring.dataDrift.thresholds``,
the ``NumericalDataDriftMetric`` / ``CategoricalDataDriftMetric`` enums of the
machinelearningservices REST API). Microsoft documents the names and which
feature types take which (articles/machine-learning/concept-model-monitoring.md,
"Monitoring signals and metrics"), not the formulas; where the formula below
follows the monitors' published Spark component (Azure/azureml-assets,
assets/model_monitoring/components/src/data_drift_compute_metrics/) it says so,
and docs/drift.md lists every difference.

* ``JensenShannonDistance``: :func:`jensen_shannon`, base 2 (in 0..1) over the
  PSI bins (numeric: the reference's quantile bins plus the missing bin;
  categorical: the categories, unseen and missing), as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, which the component calls.
* ``NormalizedWassersteinDistance``: :class:`Wasserstein`, W1 of the two
  non-missing samples (``scipy.stats.wasserstein_distance``) over the reference's
  sample standard deviation, at least 0.001 (the component's normalisation).
* ``PearsonsChiSquaredTest``: :func:`chi_squared_pvalue`, the p-value of Pearson's
  goodness-of-fit test of the current counts against the reference's shares
  (``scipy.stats.chisquare(observed, expected)``, as the component computes it).
* ``TwoSampleKolmogorovSmirnovTest`` (the KS p-value, :mod:`azml.drift.ks`) and
  ``PopulationStabilityIndex`` (:mod:`azml.drift.psi`) are computed elsewhere.

Distances breach their threshold when above it, the tests' p-values when below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .defaults import psi_breaches

JSD = "JensenShannonDistance"
PSI = "PopulationStabilityIndex"
NWD = "NormalizedWassersteinDistance"
KS = "TwoSampleKolmogorovSmirnovTest"
CHI2 = "PearsonsChiSquaredTest"

#: Metric -> (feature kinds it applies to, True when a value *below* the threshold breaches).
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    JSD: (("numeric", "categorical"), False),
    PSI: (("numeric", "categorical"), False),
    NWD: (("numeric",), False),
    KS: (("numeric",), True),
    CHI2: (("categorical",), True),
}
#: The component's floor on the reference's standard deviation (a constant feature).
MIN_NORM = 0.001
#: Terms summed at a time: sums are taken block by block along the sorted values, so
#: that the streamed merge (range by range) and the in-memory path add the same
#: numbers in the same order and agree bit for bit.
BLOCK = 4096
#: Merged values taken apart at a time (a multiple of BLOCK).
PIECE = 1 << 16


def breached(metric: str, value: float, threshold: float) -> bool:
    """Whether ``value`` of ``metric`` breaches ``threshold``: PSI by
    :func:`~azml.drift.defaults.psi_breaches` (above), other distances above,
    the tests' p-values below."""
    if metric == PSI:
        return psi_breaches(value, threshold)
    return value < threshold if METRICS[metric][1] else value > threshold


def breaches(kind: str, values: dict[str, float | None], thresholds: dict[str, float]) -> tuple[str, ...]:
    """``"<metric> <value> > <threshold>"`` (or ``<`` for p-values) for each configured
    metric of this feature kind whose value breaches its threshold. A metric that
    could not be computed (None) does not breach."""
    found = []
    for metric, threshold in thresholds.items():
        kinds, below = METRICS[metric]
        value = values.get(metric)
        if kind not in kinds or value is None:
            continue
        if breached(metric, value, threshold):
            found.append(f"{metric} {value:.4g} {'<' if below else '>'} {threshold:g}")
    return tuple(found)


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, of two count vectors over the same bins:
    sqrt((KL(p || m) + KL(q || m)) / 2) with m = (p + q) / 2, p and q the counts
    over their totals; empty bins contribute 0 (no epsilon)."""
    p = np.asarray(reference_counts, dtype=np.float64)
    q = np.asarray(current_counts, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0)
        right = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = float(np.sum(left) + np.sum(right)) / 2
    return math.sqrt(max(divergence, 0.0))


def chi_squared_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of Pearson's chi-squared goodness-of-fit test of the current counts
    against the reference's shares: expected_i = ref_i / n_ref * n_cur, statistic
    sum (obs - exp)^2 / exp, k - 1 degrees of freedom over the k bins that are
    not empty on both sides. A current count in a bin the reference never saw
    (expected 0) makes the statistic infinite: p = 0. One bin: p = 1."""
    from scipy.stats import chi2

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    keep = (ref > 0) | (cur > 0)
    ref, cur = ref[keep], cur[keep]
    if len(ref) < 2:
        return 1.0
    if np.any((ref == 0) & (cur > 0)):
        return 0.0
    expected = ref / ref.sum() * cur.sum()
    statistic = float(np.sum((cur - expected) ** 2 / expected))
    return float(chi2.sf(statistic, len(ref) - 1))


@dataclass
class BlockSum:
    """A float sum taken BLOCK terms at a time (numpy's pairwise sum inside a block,
    the blocks added in order), whatever pieces the terms arrive in."""

    total: float = 0.0
    carry: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def add(self, terms: np.ndarray) -> None:
        terms = np.concatenate((self.carry, terms)) if self.carry.size else np.asarray(terms, dtype=np.float64)
        whole = len(terms) // BLOCK * BLOCK
        if whole:
            # One reduction per row of a (blocks, BLOCK) view: each row is summed as
            # np.sum sums one block (pairwise, contiguous), the blocks added in order.
            total = self.total
            for part in np.sum(terms[:whole].reshape(-1, BLOCK), axis=1).tolist():
                total += part
            self.total = total
        self.carry = terms[whole:].copy()

    def value(self) -> float:
        return self.total + (float(np.sum(self.carry)) if self.carry.size else 0.0)


@dataclass
class Wasserstein:
    """Normalized Wasserstein distance of two samples fed in ascending key ranges.

    W1 = integral of |F_r(x) - F_c(x)| dx, summed over the distinct values x_i of
    both samples as |F_r(x_i) - F_c(x_i)| * (x_{i+1} - x_i) (the empirical CDFs are
    steps), the CDFs from exact counts (values below the range plus those inside),
    the same float expression on both paths. The reference's sample standard
    deviation (n - 1) comes from sums of (x - x_min) and (x - x_min)^2, x_min its
    smallest value (the first one fed), which keeps the cancellation small."""

    n_r: int
    n_c: int
    area: BlockSum = field(default_factory=BlockSum)
    first: BlockSum = field(default_factory=BlockSum)
    second: BlockSum = field(default_factory=BlockSum)
    shift: float | None = None
    last: tuple[float, float] | None = None  # (last value fed, |F_r - F_c| there)
    ks_max: float = 0.0  # KS statistic and where it is attained (feed_joined(ks=True))
    ks_at: list[float] = field(default_factory=list)

    def feed(self, ref: np.ndarray, cur: np.ndarray, r0: int, c0: int) -> None:
        """Sorted float64 values of one key range (no NaN), with ``r0`` / ``c0``
        reference / current values below it."""
        self.feed_joined(np.concatenate((ref, cur)), len(ref), r0, c0)

    def feed_joined(self, both: np.ndarray, m_r: int, r0: int, c0: int, ks: bool = False) -> None:
        """``feed(both[:m_r], both[m_r:], r0, c0)`` without copying the two samples
        into one array first. With ``ks`` (whole samples: r0 = c0 = 0), also the KS
        statistic: ``ks_max``, the largest |R/n_r - C/n_c| over the values, the same
        float expression on the same counts as :func:`~azml.drift.ks.ks_search`, and
        ``ks_at``, the values where it is attained (ascending)."""
        if ks:
            self.ks_max, self.ks_at = 0.0, []
        if both.size == 0:
            return
        ref = both[:m_r]
        if self._few_values(both, m_r, r0, c0, ks):
            return
        # Two sorted runs: a stable argsort is one linear merge (timsort), reference
        # values first among equal ones.
        order = np.argsort(both, kind="stable")
        merged = both[order]
        total = len(merged)
        ramp = np.arange(min(PIECE, total), dtype=np.float64)
        # The merge is taken apart PIECE positions at a time (the temporaries stay in
        # cache); the terms and sums do not depend on how the values arrive.
        for start in range(0, total, PIECE):
            end = min(start + PIECE, total)
            values, at = merged[start:end], order[start:end]
            steps = ramp[: end - start]
            # Reference values at or before merged position j (R there; at the last copy
            # of a value, the count <= that value): i + 1 at the reference value of index
            # i = order[j] in its run, j - k at the current value of index k = order[j] - m_r.
            # Both are min(order[j] + 1, j + m_r - order[j]): at a reference value
            # j + m_r - i >= m_r >= i + 1; at a current one j - k <= m_r < m_r + k + 1.
            # Counts are whole numbers below 2**53: float64 holds them exactly, and
            # (r0 + R) / n_r is the same division as on int64 counts.
            index = at.astype(np.float64)
            r_le = steps + (start + m_r)
            r_le -= index
            index += 1.0
            np.minimum(r_le, index, out=r_le)
            c_le = steps + (start + 1)
            c_le -= r_le
            following = merged[start + 1 : end + 1]
            last = values[: len(following)] != following
            if len(following) < len(values):  # the merge's last value
                last = np.append(last, True)
            distinct = bool(last.all())
            if not distinct:  # equal values: keep the last copy of each
                keep = np.flatnonzero(last)
                if keep.size == 0:  # one value's copies fill the piece and go on
                    continue
                values, r_le, c_le = values[keep], r_le[keep], c_le[keep]
            if r0:
                r_le += r0
            if c0:
                c_le += c0
            r_le /= self.n_r
            c_le /= self.n_c
            r_le -= c_le
            diff = np.abs(r_le, out=r_le)
            if ks:
                top = float(diff.max())
                if top >= self.ks_max:
                    if top > self.ks_max:
                        self.ks_max, self.ks_at = top, []
                    self.ks_at.extend(values[diff == top].tolist())
            if distinct and len(following) == len(values):
                # Every value of the piece is followed by the next one, merged[end]
                # included: each term |F_r - F_c| * gap is complete here.
                self._forward(values, following, diff)
            else:
                self._step(values, diff)
        for start in range(0, m_r, PIECE):
            self._moments(ref[start : start + PIECE])

    def _few_values(self, both: np.ndarray, m_r: int, r0: int, c0: int, ks: bool) -> bool:
        """When the samples hold few distinct values (counts, codes: at most a quarter
        of the values are distinct), feed them from their distinct values alone, each
        one's counts searched in the samples, and return True; else False.
        """
        ref, cur = both[:m_r], both[m_r:]
        # First a look at evenly spaced values of the sorted samples: where most
        # neighbours differ, there are many distinct values (then count no further).
        probe = [side[:: max(1, len(side) // 256)] for side in (ref, cur) if side.size]
        if sum(int(np.count_nonzero(p[1:] != p[:-1])) for p in probe) * 2 > sum(len(p) for p in probe):
            return False
        sides = [(side, side[1:] != side[:-1]) for side in (ref, cur) if side.size]
        if sum(int(np.count_nonzero(change)) + 1 for _, change in sides) > len(both) // 4:
            return False
        values = np.unique(np.concatenate([side[np.append(change, True)] for side, change in sides]))
        diff = np.abs(
            (r0 + np.searchsorted(ref, values, "right")) / self.n_r - (c0 + np.searchsorted(cur, values, "right")) / self.n_c
        )
        if ks:
            top = float(diff.max())
            self.ks_max, self.ks_at = top, values[diff == top].tolist()
        self._step(values, diff)
        for start in range(0, m_r, PIECE):
            self._moments(ref[start : start + PIECE])
        return True

    def single(self, value: float, m_r: int, m_c: int, r0: int, c0: int) -> None:
        """One key range holding one value: m_r reference and m_c current copies."""
        diff = np.array([abs((r0 + m_r) / self.n_r - (c0 + m_c) / self.n_c)])
        self._step(np.array([value]), diff)
        # The copies are fed as values (in pieces: a key may hold most of the rows),
        # so that the sums see the same terms as the in-memory path's.
        for start in range(0, m_r, 1 << 20):
            self._moments(np.full(min(1 << 20, m_r - start), value))

    def _step(self, values: np.ndarray, diff: np.ndarray) -> None:
        with np.errstate(invalid="ignore", over="ignore"):  # +-inf: the result is None
            self._terms(values, diff)

    def _forward(self, values: np.ndarray, following: np.ndarray, diff: np.ndarray) -> None:
        """The terms of ``values`` whose next values are ``following`` (the same terms,
        in the same order, as :meth:`_step` adds over the values and their next ones)."""
        with np.errstate(invalid="ignore", over="ignore"):  # +-inf: the result is None
            if self.last is not None:
                self.area.add(np.array([self.last[1] * (values[0] - self.last[0])]))
                self.last = None
            gaps = np.subtract(following, values)
            gaps *= diff
            self.area.add(gaps)

    def _terms(self, values: np.ndarray, diff: np.ndarray) -> None:
        terms = diff[:-1] * np.diff(values)
        if self.last is not None:
            terms = np.concatenate(([self.last[1] * (values[0] - self.last[0])], terms))
        self.area.add(terms)
        self.last = (float(values[-1]), float(diff[-1]))

    def _moments(self, ref: np.ndarray) -> None:
        if self.shift is None:
            self.shift = float(ref[0])
        with np.errstate(invalid="ignore", over="ignore"):  # +-inf: the result is None
            centred = ref - self.shift
            self.first.add(centred)
            self.second.add(centred * centred)

    def result(self) -> float | None:
        """W1 / max(std, MIN_NORM); None when a sample is empty or holds +-inf."""
        if self.n_r == 0 or self.n_c == 0:
            return None
        distance = self.area.value()
        s1, s2 = self.first.value(), self.second.value()
        variance = (s2 - s1 * s1 / self.n_r) / (self.n_r - 1) if self.n_r > 1 else 0.0
        if not (math.isfinite(distance) and math.isfinite(variance)):
            return None
        return distance / max(math.sqrt(max(variance, 0.0)), MIN_NORM)
