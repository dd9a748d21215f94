"""The drift engine's results: one :class:`FeatureDrift` per feature in a :class:`DriftReport`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .defaults import DEFAULT_BINS, DEFAULT_PSI_LIMIT, EPSILON
from .metrics import CHI2, JSD, KS, METRICS, NWD, PSI

#: Feature and report status: over a threshold, within all, or too few rows to say.
DRIFT, OK, INCONCLUSIVE = "drift", "ok", "inconclusive"


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str  # "numeric" or "categorical"
    psi: float
    threshold: float | None  # the PSI threshold (None: PSI is not a configured metric)
    drifted: bool  # status == "drift": a configured metric breached its threshold
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_method: str | None  # "exact", "finite-n", "asymptotic" (see ks.ks_pvalue), None (categorical, or an empty sample)
    n_reference: int  # rows, missing values included
    n_current: int
    missing_reference: int
    missing_current: int
    edges: tuple[float, ...] = ()  # numeric: inner bin edges, bins right-closed
    categories: tuple[str, ...] = ()  # categorical: the reference's categories
    bin_labels: tuple[str, ...] = ()  # one per bin, the last one the missing bin
    reference_counts: tuple[int, ...] = ()
    current_counts: tuple[int, ...] = ()
    reference_shares: tuple[float, ...] = ()  # before epsilon
    current_shares: tuple[float, ...] = ()
    jensen_shannon: float = 0.0  # base 2, over the PSI bins
    wasserstein: float | None = None  # normalized (numeric; None: a sample empty or infinite)
    chi2_pvalue: float | None = None  # categorical
    status: str = OK  # drift, ok, inconclusive (too few rows)
    breaches: tuple[str, ...] = ()  # "<metric> <value> > <threshold>" per breached metric
    # The report's ECDF panel: (x, reference ECDF, current ECDF) points, at quantiles of
    # both samples (in memory) or at the bin edges (streamed); and a value where the KS
    # statistic is attained (in memory only; None otherwise). Presentation only: not
    # compared, so both paths still give equal results.
    ecdf: tuple[tuple[float, float, float], ...] = field(default=(), compare=False)
    ks_location: float | None = field(default=None, compare=False)

    @property
    def metrics(self) -> dict[str, float | None]:
        """The monitors' metrics that apply to this feature's kind, by Azure ML's names."""
        values = {JSD: self.jensen_shannon, PSI: self.psi, NWD: self.wasserstein, KS: self.ks_pvalue, CHI2: self.chi2_pvalue}
        return {name: values[name] for name, (kinds, _) in METRICS.items() if self.kind in kinds}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "psi": self.psi,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "metrics": {name: _maybe(value) for name, value in self.metrics.items()},
            "breaches": list(self.breaches),
            "ks_statistic": self.ks_statistic,
            "ks_pvalue": self.ks_pvalue,
            "ks_method": self.ks_method,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "edges": [_number(edge) for edge in self.edges],
            "categories": list(self.categories),
            "bins": [
                {"label": label, "reference_count": rc, "current_count": cc, "reference_share": rs, "current_share": cs}
                for label, rc, cc, rs, cs in zip(
                    self.bin_labels, self.reference_counts, self.current_counts, self.reference_shares, self.current_shares
                )
            ],
        }


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    bins: int = DEFAULT_BINS
    epsilon: float = EPSILON
    default_threshold: float = DEFAULT_PSI_LIMIT
    reference: str = ""
    current: str = ""
    streamed: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    metric_thresholds: Mapping[str, float] = field(default_factory=dict)  # what decides drift
    min_samples: int = 0  # fewer rows in either sample: inconclusive

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def inconclusive(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.status == INCONCLUSIVE)

    @property
    def status(self) -> str:
        """drift (a feature breached a threshold on enough rows), inconclusive (too few
        rows to say), else ok."""
        return DRIFT if self.drifted else INCONCLUSIVE if self.inconclusive else OK

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    def feature(self, name: str) -> FeatureDrift:
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "current": self.current,
            "bins": self.bins,
            "epsilon": self.epsilon,
            "default_threshold": self.default_threshold,
            "streamed": self.streamed,
            "status": self.status,
            "metric_thresholds": dict(self.metric_thresholds),
            "min_samples": self.min_samples,
            "drifted": list(self.drifted),
            "inconclusive": list(self.inconclusive),
            "max_psi": self.max_psi,
            "features": [f.to_json() for f in self.features],
            **dict(self.metadata),
        }


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _maybe(value: float | None) -> float | str | None:
    return None if value is None else _number(value)
