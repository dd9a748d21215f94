"""Population stability index: the pinned definition (see docs/drift.md).

Shares are counts over all rows, missing values included (they have a bin of
their own). A share of 0 is replaced by :data:`EPSILON` before the logarithm,
and the shares are not renormalised afterwards:

    PSI = sum over bins of (cur - ref) * ln(cur / ref)
"""

from __future__ import annotations

import numpy as np

from .defaults import EPSILON


def quantile_ranks(n_valid: int, bins: int) -> list[int]:
    """1-based ranks of the reference's ``bins``-quantile edges among its ``n_valid``
    sorted non-missing values: rank_j = ceil(j * n / bins), j = 1 .. bins-1
    (numpy's ``method="inverted_cdf"``). Exact integer arithmetic."""
    if n_valid <= 0:
        return []
    return [(j * n_valid + bins - 1) // bins for j in range(1, bins)]


def unique_sorted(values: list[int]) -> list[int]:
    return sorted(set(values))


def shares(counts: np.ndarray, total: int) -> np.ndarray:
    """Counts over the sample's row count (float64); all zero when the sample is empty."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, epsilon: float = EPSILON) -> float:
    """PSI of two share vectors over the same bins (empty shares -> epsilon)."""
    ref = np.where(reference_shares > 0, reference_shares, epsilon)
    cur = np.where(current_shares > 0, current_shares, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_bin_counts(le_counts: np.ndarray, n_valid: int) -> np.ndarray:
    """Counts per bin from the cumulative counts ``le_counts[j] = #(x <= edge_j)``:
    bins are (-inf, e1], (e1, e2], ..., (e_k, +inf)."""
    cumulative = np.concatenate(([0], np.asarray(le_counts, dtype=np.int64), [n_valid]))
    return np.diff(cumulative)


def bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["(-inf, +inf)"]
    labels = [f"(-inf, {edges[0]:.6g}]"]
    labels += [f"({low:.6g}, {high:.6g}]" for low, high in zip(edges, edges[1:])]
    labels.append(f"({edges[-1]:.6g}, +inf)")
    return labels
