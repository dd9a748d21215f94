"""The drift report as JSON, a markdown table and a self-contained HTML page
(the ``drift.html.j2`` template of :mod:`azml.templates`, with SVG plots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...files import write_atomically
from ..engine import DriftReport, FeatureDrift

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


def feature_svg(feature: FeatureDrift) -> str:
    """The feature's plot (share per bin beside both ECDFs) as an SVG ``data:`` URI."""
    from ...templates import svg_data_uri
    from .plots import feature_figure

    return svg_data_uri(feature_figure(feature))


def to_html(report: DriftReport) -> str:
    """A self-contained page from the ``drift.html.j2`` template, every value escaped."""
    from ...templates import render

    rows = [{"status": f.status, "cells": row} for f, row in zip(report.features, _rows(report))]
    plots = [
        {
            "name": f.name,
            "kind": f.kind,
            "psi": _fmt(f.psi),
            "ks": _fmt(f.ks_statistic),
            "status": STATUS[f.status],
            "src": feature_svg(f),
        }
        for f in report.features
    ]
    return render(
        "drift.html.j2",
        report=report,
        decision=_decision(report),
        status=STATUS[report.status],
        drifted=", ".join(report.drifted) or "none",
        header=HEADER,
        rows=rows,
        plots=plots,
    )


def write_reports(report: DriftReport, out: Path, metadata: dict[str, Any] | None = None) -> dict[str, Path]:
    """drift.json, drift.md and drift.html in ``out``, each written atomically."""
    paths = {"json": out / JSON_NAME, "markdown": out / MARKDOWN_NAME, "html": out / HTML_NAME}
    write_atomically(paths["json"], to_json_text(report, metadata))
    write_atomically(paths["markdown"], to_markdown(report))
    write_atomically(paths["html"], to_html(report))
    return paths
