"""The scoreboard as one self-contained HTML page: inline CSS, the chart as
inline SVG (matplotlib, saved as SVG: vector, no external files),
a table of the numbers with their sample sizes and status badges, from the
``scoreboard.html.j2`` template of :mod:`azml.templates` (autoescaped).

The page is what a release engineer opens from a CI artifact, so nothing in
it may load from the network, and every name from MLflow tags is escaped.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ... import tracking as t
from ...naming import label as model_version_label
from .scoreboard import HEADERS, _minute, METRICS, MISSING, Row, Scoreboard, status_text, value_text, window_text

STATUS_COLOURS = {"champion": "#2e7d32", "canary": "#f9a825", "shadow": "#0277bd", "retired": "#9e9e9e"}
#: The charted metrics: (metric, panel title, gate key of its threshold line).
PANELS = (
    (t.METRIC_ACCURACY, "accuracy (higher is better)", "minAccuracyDelta"),
    (t.METRIC_PARITY, "fairness: parity difference", "maxParityDifference"),
    (t.METRIC_PSI, "input drift: PSI", "maxPsi"),
    (t.METRIC_LATENCY_P95, "p95 latency (ms)", "maxLatencyP95Ms"),
    (t.METRIC_ERROR_RATE, "error rate (share of failed requests)", "maxErrorRate"),
)


def _label(row: Row, several_endpoints: bool) -> str:
    label = model_version_label(row.name, row.version) if row.version else row.name
    return f"{label}\n{row.endpoint}" if several_endpoints else label


def chart_svg(board: Scoreboard) -> str:
    """One figure, one panel per metric over the versions (table order),
    each series one model on one endpoint; the gate's thresholds as dashed
    lines. Returns an ``<svg>`` element to inline."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI runners
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    several = len({r.endpoint for r in board.rows}) > 1
    labels = [_label(r, several) for r in board.rows]
    # Fixed salt and no date: the same data gives the same page (diffable artifacts).
    with matplotlib.rc_context({"svg.hashsalt": "azml-scoreboard", "font.size": 9}):
        rows = (len(PANELS) + 1) // 2
        figure, axes = plt.subplots(rows, 2, figsize=(12, 3.4 * rows), squeeze=False)
        try:
            for ax, (metric, title, gate_key) in zip(axes.flat, PANELS):
                _panel(ax, board, metric, title, gate_key, labels)
            for ax in list(axes.flat)[len(PANELS):]:
                ax.set_visible(False)
            handles = [
                Line2D([], [], marker="o", linestyle="", color=colour, label=status, markersize=8)
                for status, colour in STATUS_COLOURS.items()
            ]
            handles.append(Line2D([], [], color="#c62828", linestyle="--", label="gate threshold"))
            figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False)
            figure.tight_layout(rect=(0, 0, 1, 1 - 0.15 / rows))
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: it is inlined


def _panel(ax, board: Scoreboard, metric: str, title: str, gate_key: str, labels: list[str]) -> None:  # type: ignore[no-untyped-def]
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="y", color="#e0e0e0")
    positions = list(range(len(board.rows)))
    # One line per (endpoint, model name): versions of one model, oldest left.
    series: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(board.rows):
        series.setdefault((row.endpoint, row.name), []).append(index)
    for indices in series.values():
        values = [_value(board.rows[i], metric) for i in indices]
        ax.plot(indices, values, color="#607d8b", linewidth=1.2, zorder=1)
    for index, row in enumerate(board.rows):
        value = _value(row, metric)
        if not math.isnan(value):
            ax.scatter([index], [value], color=STATUS_COLOURS[row.status], s=60, zorder=2, edgecolors="white")
    for endpoint, threshold, text in _thresholds(board, metric, gate_key):
        ax.axhline(threshold, color="#c62828", linestyle="--", linewidth=1)
        ax.annotate(text, (1.0, threshold), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                    fontsize=7, color="#c62828")
    if not any(not math.isnan(_value(r, metric)) for r in board.rows):
        ax.text(0.5, 0.5, "not observed", transform=ax.transAxes, ha="center", va="center", color="#757575")
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    if positions:
        ax.set_xlim(-0.5, len(positions) - 0.5)


def _value(row: Row, metric: str) -> float:
    measure = row.measure(metric)
    return math.nan if measure is None else measure.value  # a gap in the line, never a 0


def _thresholds(board: Scoreboard, metric: str, gate_key: str) -> list[tuple[str, float, str]]:
    """(endpoint, y, label) of the lines to draw for ``metric``."""
    limit = board.gate[gate_key]
    if metric != t.METRIC_ACCURACY:
        return [("", limit, f"gate {'≤' if metric in (t.METRIC_PARITY, t.METRIC_PSI) else '<'} {limit:g}")]
    # The accuracy gate is relative: non-inferior to the champion by minAccuracyDelta.
    lines = []
    endpoints = sorted({r.endpoint for r in board.rows})
    for endpoint in endpoints:
        champion = board.champion_accuracy(endpoint)
        if champion is not None:
            where = f" ({endpoint})" if len(endpoints) > 1 else ""
            lines.append((endpoint, champion + limit, f"gate: champion {limit:+g}{where}"))
    return lines


def _cells(row: Row) -> list[dict[str, object] | None]:
    cells: list[dict[str, object] | None] = []
    for metric in METRICS:
        measure = row.measure(metric)
        cells.append(None if measure is None else {"value": value_text(measure, metric), "n": measure.n})
    return cells


def render_html(board: Scoreboard) -> str:
    """The page, from the ``scoreboard.html.j2`` template (autoescaped)."""
    from ...templates import render

    rows = [
        {
            "status": r.status, "name": r.name, "version": r.version, "endpoint": r.endpoint,
            "badge": status_text(r), "deployments": ", ".join(r.deployments) or MISSING, "cells": _cells(r),
            "records": r.observation.records, "verdict": r.verdict, "verdict_at": _minute(r.verdict_at),
        }
        for r in board.rows
    ]
    return render(
        "scoreboard.html.j2", board=board, window=window_text(board), chart=chart_svg(board),
        headers=HEADERS, rows=rows, colours=STATUS_COLOURS, missing=MISSING,
    )


def write_html(board: Scoreboard, out_dir: Path) -> Path:
    """Write ``<out_dir>/<stack>.html`` atomically; returns its path."""
    from ...files import write_atomically

    path = out_dir / f"{board.stack}.html"
    write_atomically(path, render_html(board))
    return path
