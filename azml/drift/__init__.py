"""Drift engine: the Azure ML model monitors' drift metrics (PSI, Jensen-Shannon,
KS, normalized Wasserstein, chi-squared) of a current sample against a reference,
per feature.

``compute_drift`` reads CSV/Parquet files in chunks (or takes DataFrames and
pyarrow Tables) and returns a :class:`DriftReport`; ``azml drift`` is its command
(:mod:`azml.cli.drift`). The definitions are pinned in docs/drift.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from .defaults import DEFAULT_BINS, DEFAULT_CHUNK_ROWS, DEFAULT_PSI_LIMIT, EPSILON

# The engine needs numpy and pyarrow; they load on first use, not when the
# ``azml`` command starts (PEP 562 module __getattr__).
_LAZY = {
    "DriftInputError": ".reader",
    "DriftReport": ".results",
    "FeatureDrift": ".results",
    "compute_drift": ".engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_PSI_LIMIT",
    "EPSILON",
    "DriftInputError",
    "DriftReport",
    "FeatureDrift",
    "compute_drift",
]
