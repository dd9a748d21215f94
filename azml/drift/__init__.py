"""Drift engine: PSI and KS of a current sample against a reference, per feature.

``compute_drift`` reads CSV/Parquet files in chunks (or takes DataFrames and
pyarrow Tables) and returns a :class:`DriftReport`; ``azml drift`` is its command
(:mod:`azml.drift.cli`). The definitions are pinned in docs/drift.md.
"""

from .engine import DEFAULT_BINS, DEFAULT_CHUNK_ROWS, DEFAULT_THRESHOLD, DriftReport, FeatureDrift, compute_drift
from .psi import EPSILON
from .reader import DriftInputError

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_THRESHOLD",
    "EPSILON",
    "DriftInputError",
    "DriftReport",
    "FeatureDrift",
    "compute_drift",
]
