"""compute_drift: the model monitors' drift metrics of every feature of a current sample against a reference.

Two paths give bit-identical results: when both inputs fit in one chunk they
are sorted in memory (one thread per feature); otherwise each input is read
once, chunk by chunk, and numeric features are sorted externally and merged one
key range at a time (see :mod:`azml.drift.external`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .defaults import DEFAULT_BINS, DEFAULT_CHUNK_ROWS, DEFAULT_PSI_LIMIT
from .ks import ks_pvalue, ks_where
from .metrics import CHI2, JSD, KS, METRICS, NWD, PSI, Wasserstein, breaches, chi_squared_pvalue, jensen_shannon
from .results import DRIFT, INCONCLUSIVE, OK, DriftReport, FeatureDrift
from .psi import EPSILON, bin_labels, numeric_bin_counts, psi, quantile_ranks, shares
from .spill import SpillFile
from .reader import CATEGORICAL, NUMERIC, DriftInputError, as_float64, category_counts, fill_float64, open_source, resolve_features
from .external import NumericRuns, from_key
from .progress import MERGING, READING, Progress, ProgressCallback

#: Streamed path: rows per read batch, and batches read ahead of the one being taken
#: apart (what a batch costs in memory does not grow with --chunk-rows).
READ_ROWS = 1 << 18
IN_FLIGHT = 2
#: Points per sample of the report's ECDF panel (in memory; streamed: the bin edges).
ECDF_POINTS = 200
UNSEEN = "(unseen)"
MISSING = "(missing)"
def compute_drift(
    reference: Any,
    current: Any,
    *,
    features: list[str] | tuple[str, ...] | None = None,
    thresholds: Mapping[str, float] | None = None,
    default_threshold: float = DEFAULT_PSI_LIMIT,
    bins: int = DEFAULT_BINS,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: ProgressCallback | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    metric_thresholds: Mapping[str, float] | None = None,
    min_samples: int = 0,
) -> DriftReport:
    """The monitors' drift metrics per feature of ``current`` against ``reference``
    (paths, DataFrames or pyarrow Tables): PSI, Jensen-Shannon distance, KS
    (statistic and p-value), normalized Wasserstein distance (numeric) and
    Pearson's chi-squared p-value (categorical), see :mod:`azml.drift.metrics`.

    A feature has drifted when a metric of ``metric_thresholds`` (Azure ML's metric
    names, as ``azml:modelMonitoring.dataDrift.thresholds``) that applies to its
    kind breaches its threshold; without ``metric_thresholds`` only PSI decides,
    above ``default_threshold``. ``thresholds[name]`` replaces the PSI threshold
    of one feature. With fewer than ``min_samples`` rows in either sample every
    feature is ``inconclusive`` (its metrics still reported). Inputs longer than
    ``chunk_rows`` rows are streamed: ``progress`` then receives
    :class:`~azml.drift.progress.Progress` events, and numeric values are spilled to an
    unlinked file in ``temp_dir`` (default: the system's, $TMPDIR), 8 bytes per value.
    Raises DriftInputError (bad input) or OSError (the spill file cannot be written)."""
    if not isinstance(bins, int) or bins < 2:
        raise DriftInputError(f"bins must be an integer >= 2, got {bins!r}")
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DriftInputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    ref_source = open_source(reference, "reference")
    cur_source = open_source(current, "current")
    kinds = resolve_features(ref_source, cur_source, list(features) if features else None)
    limits = _thresholds(kinds, thresholds, default_threshold)
    decide = _metric_thresholds(metric_thresholds, default_threshold)
    if not isinstance(min_samples, int) or min_samples < 0:
        raise DriftInputError(f"min_samples must be an integer >= 0, got {min_samples!r}")
    columns = list(kinds)
    ref_table = ref_source.read_all(columns, chunk_rows)
    cur_table = cur_source.read_all(columns, chunk_rows) if ref_table is not None else None
    if ref_table is not None and cur_table is not None:
        results = _in_memory(ref_table, cur_table, kinds, bins)
        streamed = False
    else:
        results = _streamed(ref_source, cur_source, kinds, bins, chunk_rows, progress, temp_dir)
        streamed = True
    items = tuple(_feature(name, kinds[name], _for_feature(decide, limits[name], thresholds, name), results[name], min_samples) for name in columns)
    for source, side in ((ref_source, 0), (cur_source, 1)):
        if items and (items[0].n_reference, items[0].n_current)[side] == 0:
            raise DriftInputError(f"{source.label}: no rows")
    return DriftReport(
        features=items,
        bins=bins,
        epsilon=EPSILON,
        default_threshold=default_threshold,
        reference=ref_source.label,
        current=cur_source.label,
        streamed=streamed,
        metric_thresholds=decide,
        min_samples=min_samples,
    )


def _metric_thresholds(given: Mapping[str, float] | None, default: float) -> dict[str, float]:
    if given is None:
        return {PSI: float(default)}
    unknown = sorted(set(given) - set(METRICS))
    if unknown:
        raise DriftInputError(f"unknown drift metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    bad = sorted(name for name, value in given.items() if not (math.isfinite(value) and value >= 0))
    if bad:
        raise DriftInputError(f"metric thresholds must be finite and >= 0: {', '.join(bad)}")
    return {name: float(value) for name, value in given.items()}


def _for_feature(decide: dict[str, float], psi_limit: float, per_feature: Mapping[str, float] | None, name: str) -> dict[str, float]:
    """The thresholds of one feature: ``decide``, with its own PSI limit when one was given."""
    if per_feature and name in per_feature:
        return {**decide, PSI: psi_limit}
    return decide


def _thresholds(kinds: dict[str, str], thresholds: Mapping[str, float] | None, default: float) -> dict[str, float]:
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(kinds))
    if unknown:
        raise DriftInputError(f"threshold(s) for unknown feature(s): {', '.join(unknown)}")
    limits = {name: float(given.get(name, default)) for name in kinds}
    bad = [name for name, value in limits.items() if not (value >= 0 and math.isfinite(value))]
    if bad:
        raise DriftInputError(f"thresholds must be finite and >= 0: {', '.join(bad)}")
    return limits


# Per-feature raw results, the same from both paths ---------------------------------


@dataclass
class _Numeric:
    rows: list[int]  # [reference, current] rows
    missing: list[int]
    edges: list[float]
    le_ref: list[int]
    le_cur: list[int]
    d: float | None
    ks: tuple[float, float, str] | None = None  # (statistic, p-value, method) when already computed
    nwd: float | None = None  # normalized Wasserstein distance
    where: float | None = None  # a value at which D is attained (in memory)
    ecdf: tuple[tuple[float, float, float], ...] = ()  # (x, reference ECDF, current ECDF), for the report


@dataclass
class _Categorical:
    rows: list[int]
    missing: list[int]
    counts: list[dict[str, int]]


def _in_memory(ref: pa.Table, cur: pa.Table, kinds: dict[str, str], bins: int) -> dict[str, _Numeric | _Categorical]:
    def numeric(name: str) -> _Numeric:
        # Both samples in one buffer, each sorted in place (NaN sort last), the
        # reference's non-missing values followed by the current's: what the
        # Wasserstein merge takes, with no further copy.
        n_ref, n_cur = ref.num_rows, cur.num_rows
        both = np.empty(n_ref + n_cur)
        fill_float64(ref.column(name), both[:n_ref])
        fill_float64(cur.column(name), both[n_ref:])
        both[:n_ref].sort()
        both[n_ref:].sort()
        # NaN sort last (searchsorted orders them so too): the missing values are a tail.
        valid_ref, valid_cur = int(np.searchsorted(both[:n_ref], np.nan)), int(np.searchsorted(both[n_ref:], np.nan))
        missing = [n_ref - valid_ref, n_cur - valid_cur]
        if missing[0]:  # close the gap the reference's NaN leave
            both[valid_ref : valid_ref + valid_cur] = both[n_ref : n_ref + valid_cur]
        both = both[: valid_ref + valid_cur]
        sorted_ = [both[:valid_ref], both[valid_ref:]]
        for side in sorted_:  # -0.0 -> +0.0: the zeros of either sign are one slice
            side[np.searchsorted(side, 0.0, "left") : np.searchsorted(side, 0.0, "right")] = 0.0
        ranks = quantile_ranks(len(sorted_[0]), bins)
        edges = np.unique(sorted_[0][np.array(ranks, dtype=np.intp) - 1]) if ranks else np.zeros(0)
        le_ref = np.searchsorted(sorted_[0], edges, "right")
        le_cur = np.searchsorted(sorted_[1], edges, "right")
        d = ks = where = None
        ecdf: tuple[tuple[float, float, float], ...] = ()
        if len(sorted_[0]) and len(sorted_[1]):
            # One merge of both samples gives the Wasserstein distance and D (the
            # values ks_search would evaluate are among those the merge evaluates).
            distance = Wasserstein(len(sorted_[0]), len(sorted_[1]))
            distance.feed_joined(both, len(sorted_[0]), 0, 0, ks=True)
            nwd = distance.result()
            d = distance.ks_max
            where = ks_where(sorted_[0], sorted_[1], d, distance.ks_at)
            ecdf = _ecdf(sorted_[0], sorted_[1], where)
        else:
            nwd = None
        rows = [ref.num_rows, cur.num_rows]
        return _Numeric(rows, missing, edges.tolist(), le_ref.tolist(), le_cur.tolist(), d, ks, nwd, where, ecdf)

    def categorical(name: str) -> _Categorical:
        (rc, rm), (cc, cm) = category_counts(ref.column(name)), category_counts(cur.column(name))
        return _Categorical([ref.num_rows, cur.num_rows], [rm, cm], [rc, cc])

    # One task per feature, as many threads as CPUs: numpy's sorts and merges and
    # Arrow's value counts release the GIL.
    tasks = {name: numeric if kind == NUMERIC else categorical for name, kind in kinds.items()}
    workers = max(1, min(len(tasks), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(task, name) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}


def _streamed(ref_source, cur_source, kinds: dict[str, str], bins: int, chunk_rows: int, progress, temp_dir):  # type: ignore[no-untyped-def]
    """Each input read once: categories counted, numeric values spilled as sorted runs;
    then each numeric feature merged exactly (see :mod:`azml.drift.external`)."""
    rows, missing = {n: [0, 0] for n in kinds}, {n: [0, 0] for n in kinds}
    counts: dict[str, list[dict[str, int]]] = {n: [{}, {}] for n, k in kinds.items() if k == CATEGORICAL}
    numeric = [n for n, k in kinds.items() if k == NUMERIC]
    results: dict[str, _Numeric | _Categorical] = {}
    with SpillFile(temp_dir) as spill:
        # Staggered first runs: each feature spills a run at a different point of the input.
        runs = {
            name: NumericRuns(spill, chunk_rows, first=chunk_rows * (i + 1) // len(numeric)) for i, name in enumerate(numeric)
        }

        def take(batch: pa.RecordBatch, side: int) -> None:
            for name in kinds:
                column = batch.column(name)
                rows[name][side] += batch.num_rows
                if name in counts:
                    found, absent = category_counts(column)
                    missing[name][side] += absent
                    target = counts[name][side]
                    for label, count in found.items():
                        target[label] = target.get(label, 0) + count
                else:
                    runs[name].add(as_float64(column), side)

        # A worker thread takes each chunk while this one reads (parses) the next:
        # at most IN_FLIGHT chunks wait, in order, so memory stays bounded.
        with ThreadPoolExecutor(max_workers=1) as worker:
            for side, source in enumerate((ref_source, cur_source)):
                on_batch = None
                if progress is not None:
                    on_batch = lambda done, share, label=source.label: progress(Progress(READING, label, share, done))  # noqa: E731
                waiting: deque[Future[None]] = deque()
                for batch in source.batches(list(kinds), min(chunk_rows, READ_ROWS), on_batch):
                    waiting.append(worker.submit(take, batch, side))
                    while len(waiting) > IN_FLIGHT or (waiting and waiting[0].done()):
                        waiting.popleft().result()
                while waiting:
                    waiting.popleft().result()
                for name in numeric:
                    runs[name].finish_side(side)
        for name in numeric:
            runs[name].release()

        def merge(name: str) -> _Numeric:
            feature = runs[name]
            report = None
            if progress is not None:
                report = lambda share: progress(Progress(MERGING, f"feature {name}", share))  # noqa: E731
            ks = feature.n[0] > 0 and feature.n[1] > 0
            keys, le_ref, le_cur, d, nwd = feature.solve(quantile_ranks(feature.n[0], bins), ks, report)
            return _Numeric(rows[name], feature.missing, [from_key(k) for k in keys], le_ref, le_cur, d, nwd=nwd)

        # The merge is numpy sorts and searches and positional reads, which release
        # the GIL: one thread per feature, as many as there are CPUs.
        workers = max(1, min(len(numeric), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for name, result in zip(numeric, pool.map(merge, numeric)):
                results[name] = result
    for name in counts:
        results[name] = _Categorical(rows[name], missing[name], counts[name])
    return results


def _ecdf(ref: np.ndarray, cur: np.ndarray, where: float | None) -> tuple[tuple[float, float, float], ...]:
    """Both ECDFs at up to ECDF_POINTS quantiles of each sample and where D is attained
    (the report's ECDF panel)."""
    picks = [side[np.linspace(0, len(side) - 1, min(len(side), ECDF_POINTS)).astype(np.intp)] for side in (ref, cur)]
    xs = np.unique(np.concatenate(picks + ([np.array([where])] if where is not None else [])))
    xs = xs[np.isfinite(xs)]
    r = np.searchsorted(ref, xs, "right") / len(ref)
    c = np.searchsorted(cur, xs, "right") / len(cur)
    return tuple(zip(xs.tolist(), r.tolist(), c.tolist()))


def _feature(name: str, kind: str, limits: dict[str, float], raw: _Numeric | _Categorical, min_samples: int) -> FeatureDrift:
    n_ref, n_cur = raw.rows
    if isinstance(raw, _Numeric):
        valid_ref, valid_cur = n_ref - raw.missing[0], n_cur - raw.missing[1]
        ref_counts = np.append(numeric_bin_counts(np.array(raw.le_ref, dtype=np.int64), valid_ref), raw.missing[0])
        cur_counts = np.append(numeric_bin_counts(np.array(raw.le_cur, dtype=np.int64), valid_cur), raw.missing[1])
        labels = bin_labels(raw.edges) + [MISSING]
        if raw.ks is not None:
            statistic, pvalue, method = raw.ks
        elif raw.d is not None:
            statistic, pvalue, method = ks_pvalue(raw.d, valid_ref, valid_cur)
        else:
            statistic = pvalue = method = None
        extra: dict[str, Any] = {"edges": tuple(float(e) for e in raw.edges), "wasserstein": raw.nwd, "ks_location": raw.where}
        extra["ecdf"] = raw.ecdf or tuple(
            (float(x), r / max(valid_ref, 1), c / max(valid_cur, 1)) for x, r, c in zip(raw.edges, raw.le_ref, raw.le_cur)
        )
    else:
        ref_found, cur_found = raw.counts
        categories = sorted(ref_found, key=lambda label: (-ref_found[label], label))
        unseen = sum(count for label, count in cur_found.items() if label not in ref_found)
        ref_counts = np.array([ref_found[c] for c in categories] + [0, raw.missing[0]], dtype=np.int64)
        cur_counts = np.array([cur_found.get(c, 0) for c in categories] + [unseen, raw.missing[1]], dtype=np.int64)
        labels = categories + [UNSEEN, MISSING]
        statistic = pvalue = method = None
        extra = {"categories": tuple(categories), "chi2_pvalue": chi_squared_pvalue(ref_counts, cur_counts)}
    ref_shares, cur_shares = shares(ref_counts, n_ref), shares(cur_counts, n_cur)
    value = psi(ref_shares, cur_shares)
    jsd = jensen_shannon(ref_counts, cur_counts)
    values = {PSI: value, JSD: jsd, NWD: extra.get("wasserstein"), KS: pvalue, CHI2: extra.get("chi2_pvalue")}
    breached = breaches(kind, values, limits)
    status = INCONCLUSIVE if min(n_ref, n_cur) < min_samples else DRIFT if breached else OK
    return FeatureDrift(
        name=name,
        kind=kind,
        psi=value,
        threshold=limits.get(PSI),
        drifted=status == DRIFT,
        jensen_shannon=jsd,
        status=status,
        breaches=breached,
        ks_statistic=statistic,
        ks_pvalue=pvalue,
        ks_method=method,
        n_reference=n_ref,
        n_current=n_cur,
        missing_reference=raw.missing[0],
        missing_current=raw.missing[1],
        bin_labels=tuple(labels),
        reference_counts=tuple(int(c) for c in ref_counts),
        current_counts=tuple(int(c) for c in cur_counts),
        reference_shares=tuple(float(s) for s in ref_shares),
        current_shares=tuple(float(s) for s in cur_shares),
        **extra,
    )
