"""The scoreboard as one self-contained HTML page: inline CSS, the chart as
inline SVG (matplotlib, saved as SVG: vector, no external files),
a table of the numbers with their sample sizes and status badges.

The page is what a release engineer opens from a CI artifact, so nothing in
it may load from the network, and every name from MLflow tags is escaped.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

from ... import tracking as t
from .scoreboard import HEADERS, _minute, METRICS, MISSING, Row, Scoreboard, status_text, value_text, window_text

STATUS_COLOURS = {"champion": "#2e7d32", "canary": "#f9a825", "shadow": "#0277bd", "retired": "#9e9e9e"}
#: The charted metrics: (metric, panel title, gate key of its threshold line).
PANELS = (
    (t.METRIC_ACCURACY, "accuracy (higher is better)", "minAccuracyDelta"),
    (t.METRIC_PARITY, "fairness: parity difference", "maxParityDifference"),
    (t.METRIC_PSI, "input drift: PSI", "maxPsi"),
    (t.METRIC_LATENCY_P95, "p95 latency (ms)", "maxLatencyP95Ms"),
)


def _label(row: Row, several_endpoints: bool) -> str:
    label = f"{row.name}:{row.version}" if row.version else row.name
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
        figure, axes = plt.subplots(2, 2, figsize=(12, 6.8), squeeze=False)
        try:
            for ax, (metric, title, gate_key) in zip(axes.flat, PANELS):
                _panel(ax, board, metric, title, gate_key, labels)
            handles = [
                Line2D([], [], marker="o", linestyle="", color=colour, label=status, markersize=8)
                for status, colour in STATUS_COLOURS.items()
            ]
            handles.append(Line2D([], [], color="#c62828", linestyle="--", label="gate threshold"))
            figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False)
            figure.tight_layout(rect=(0, 0, 1, 0.95))
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
        return [("", limit, f"gate {'≤' if metric == t.METRIC_PARITY else '<'} {limit:g}")]
    # The accuracy gate is relative: non-inferior to the champion by minAccuracyDelta.
    lines = []
    endpoints = sorted({r.endpoint for r in board.rows})
    for endpoint in endpoints:
        champion = board.champion_accuracy(endpoint)
        if champion is not None:
            where = f" ({endpoint})" if len(endpoints) > 1 else ""
            lines.append((endpoint, champion + limit, f"gate: champion {limit:+g}{where}"))
    return lines


_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #212121; }
h1 { font-size: 22px; margin: 0 0 4px; } p.meta { color: #616161; margin: 0 0 12px; font-size: 13px; }
figure.chart { margin: 0 0 16px; } figure.chart svg { width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num small { display: block; color: #757575; } td.missing { color: #9e9e9e; text-align: center; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
ul.notes { color: #616161; font-size: 13px; } dl.gate { font-size: 13px; }
dl.gate dt { display: inline; font-weight: bold; } dl.gate dd { display: inline; margin: 0 16px 0 4px; }
"""


def _number_cell(row: Row, metric: str) -> str:
    measure = row.measure(metric)
    if measure is None:
        return f'<td class="missing">{MISSING}</td>'
    return f'<td class="num">{html.escape(value_text(measure, metric))}<small>n={measure.n}</small></td>'


def _row_html(row: Row) -> str:
    esc = html.escape
    badge = f'<span class="badge {row.status}">{esc(status_text(row))}</span>'
    verdict = f"{esc(row.verdict)}<small> {esc(_minute(row.verdict_at))}</small>" if row.verdict else MISSING
    cells = [
        f"<td>{esc(row.name)}</td>", f"<td>{esc(row.version)}</td>", f"<td>{esc(row.endpoint)}</td>",
        f"<td>{badge}</td>", f"<td>{esc(', '.join(row.deployments) or MISSING)}</td>",
        *(_number_cell(row, m) for m in METRICS),
        f'<td class="num">{row.observation.records}</td>', f"<td>{verdict}</td>",
    ]
    return f'<tr class="{row.status}">' + "".join(cells) + "</tr>"


def render_html(board: Scoreboard) -> str:
    esc = html.escape
    badges = "".join(f".badge.{s} {{ background: {c}; }}\n" for s, c in STATUS_COLOURS.items())
    gate = "".join(f"<dt>{esc(k)}</dt><dd>{v:g}</dd>" for k, v in board.gate.items())
    rows = "\n".join(_row_html(r) for r in board.rows) or (
        f'<tr><td colspan="{len(HEADERS)}">no model versions observed or served</td></tr>'
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in board.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Quality scoreboard — {esc(board.stack)}</title>
<style>{_CSS}{badges}</style></head><body>
<h1>Quality scoreboard — stack {esc(board.stack)}</h1>
<p class="meta">{esc(window_text(board))}; tracking store {esc(board.tracking_uri)}</p>
<figure class="chart">{chart_svg(board)}</figure>
<table><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in HEADERS)}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Gate thresholds (azml:release.gate)</h2>
<dl class="gate">{gate}</dl>
{f'<ul class="notes">{notes}</ul>' if notes else ""}
</body></html>
"""


def write_html(board: Scoreboard, out_dir: Path) -> Path:
    """Write ``<out_dir>/<stack>.html`` atomically; returns its path."""
    from ...files import write_atomically

    path = out_dir / f"{board.stack}.html"
    write_atomically(path, render_html(board))
    return path
