"""The drift report as JSON, a markdown table and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from ..files import write_atomically
from .engine import DriftReport, FeatureDrift

JSON_NAME, MARKDOWN_NAME, HTML_NAME = "drift.json", "drift.md", "drift.html"


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def to_json_text(report: DriftReport, metadata: dict[str, Any] | None = None) -> str:
    return json.dumps({**report.to_json(), **(metadata or {})}, indent=2) + "\n"


def _rows(report: DriftReport) -> list[list[str]]:
    return [
        [
            f.name,
            f.kind,
            _fmt(f.psi),
            _fmt(f.threshold, 3),
            _fmt(f.ks_statistic),
            _fmt(f.ks_pvalue),
            _fmt(f.jensen_shannon),
            _fmt(f.wasserstein),
            _fmt(f.chi2_pvalue),
            str(f.n_reference),
            str(f.n_current),
            STATUS[f.status],
        ]
        for f in report.features
    ]


HEADER = [
    "feature", "kind", "PSI", "threshold", "KS statistic", "KS p-value", "JSD", "NWD", "chi2 p-value", "n_ref", "n_cur", "status",
]
STATUS = {"drift": "DRIFT", "ok": "ok", "inconclusive": "INCONCLUSIVE"}


def _decision(report: DriftReport) -> str:
    """What decided the status: the metrics and thresholds, and the minimum sample size."""
    limits = ", ".join(f"{name} {value:g}" for name, value in report.metric_thresholds.items())
    return f"Thresholds: {limits or 'none'}; at least {report.min_samples} rows per sample."


def to_markdown(report: DriftReport) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Drift report",
        "",
        f"Reference: {report.reference}  ",
        f"Current: {report.current}  ",
        f"PSI over {report.bins} reference-quantile bins (plus a missing bin), epsilon {report.epsilon:g}; "
        f"max PSI {_fmt(report.max_psi)}.",
        _decision(report),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * 9 + ["---"]) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _rows(report)]
    lines.append("")
    drifted = report.drifted
    if drifted:
        lines.append(f"Drifted: {', '.join(drifted)}")
    elif report.inconclusive:
        lines.append(f"INCONCLUSIVE: a sample has fewer than {report.min_samples} rows.")
    else:
        lines.append("No feature is over its threshold.")
    return "\n".join(lines) + "\n"


def to_text(report: DriftReport) -> str:
    widths = [max(len(HEADER[i]), *(len(row[i]) for row in _rows(report))) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in _rows(report)]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def histogram_png(feature: FeatureDrift) -> bytes:
    """Reference vs current share per bin (the missing bin last), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(feature.bin_labels)
    positions = np.arange(len(labels))
    figure, axes = plt.subplots(figsize=(max(5.0, 0.45 * len(labels) + 2), 3.2), dpi=80)
    try:
        axes.bar(positions - 0.2, feature.reference_shares, width=0.4, label="reference", color="#4C72B0")
        axes.bar(positions + 0.2, feature.current_shares, width=0.4, label="current", color="#DD8452")
        axes.set_xticks(positions)
        axes.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        axes.set_ylabel("share of rows")
        axes.set_title(f"{feature.name}: PSI {feature.psi:.4f}", fontsize=9)
        axes.legend(fontsize=7)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()


def to_html(report: DriftReport) -> str:
    esc = html.escape
    rows = "\n".join(
        "<tr class=\"{}\">{}</tr>".format(f.status, "".join(f"<td>{esc(c)}</td>" for c in row))
        for f, row in zip(report.features, _rows(report))
    )
    plots = "\n".join(
        f'<figure class="plot"><img alt="histogram of {esc(f.name)}" '
        f'src="data:image/png;base64,{base64.b64encode(histogram_png(f)).decode("ascii")}">'
        f"<figcaption>{esc(f.name)} ({esc(f.kind)}): PSI {_fmt(f.psi)}, "
        f"{STATUS[f.status]}</figcaption></figure>"
        for f in report.features
    )
    drifted = ", ".join(report.drifted) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td:first-child, td:nth-child(2), td:last-child {{ text-align: left; }}
tr.drift td {{ background: #fde2e1; }}
figure.plot {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>Drift report</h1>
<p>Reference: {esc(report.reference)}<br>Current: {esc(report.current)}<br>
PSI over {report.bins} reference-quantile bins plus a missing bin, epsilon {report.epsilon:g}.
{esc(_decision(report))}<br>Status: <strong>{esc(STATUS[report.status])}</strong>.
Drifted: <strong>{esc(drifted)}</strong>.</p>
<table><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in HEADER)}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Reference vs current share per bin</h2>
{plots}
</body></html>
"""


def write_reports(report: DriftReport, out: Path, metadata: dict[str, Any] | None = None) -> dict[str, Path]:
    """drift.json, drift.md and drift.html in ``out``, each written atomically."""
    paths = {"json": out / JSON_NAME, "markdown": out / MARKDOWN_NAME, "html": out / HTML_NAME}
    write_atomically(paths["json"], to_json_text(report, metadata))
    write_atomically(paths["markdown"], to_markdown(report))
    write_atomically(paths["html"], to_html(report))
    return paths
