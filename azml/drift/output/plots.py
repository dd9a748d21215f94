"""The drift report's plots: share per bin (PSI) beside both ECDFs (KS), as SVG."""

from __future__ import annotations

from typing import Any

from ..results import FeatureDrift

#: Labels longer than this are rotated; edges are shown with this many significant digits.
ROTATE_OVER = 8
DIGITS = 3


def short_label(label: str, digits: int = DIGITS) -> str:
    """A bin label with its edges rounded: "(-inf, 0.123457]" -> "(-inf, 0.123]"."""
    if not (label.startswith("(") and "," in label):
        return label
    low, high = label[1:-1].split(",", 1)
    return f"{label[0]}{_round(low, digits)}, {_round(high.strip(), digits)}{label[-1]}"


def _round(text: str, digits: int) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return text if value in (float("inf"), float("-inf")) else f"{value:.{digits}g}"


def feature_figure(feature: FeatureDrift) -> Any:
    """A matplotlib figure: PSI bars, and for numeric features the ECDF panel beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    numeric = bool(feature.ecdf)
    labels = [short_label(label) for label in feature.bin_labels]
    width = max(5.0, 0.5 * len(labels) + 2)
    figure, panels = plt.subplots(1, 2 if numeric else 1, figsize=(width + (5.0 if numeric else 0), 3.6), squeeze=False)
    bars = panels[0][0]
    positions = np.arange(len(labels))
    bars.bar(positions - 0.2, feature.reference_shares, width=0.4, label="reference", color="#4C72B0")
    bars.bar(positions + 0.2, feature.current_shares, width=0.4, label="current", color="#DD8452")
    bars.set_xticks(positions)
    long_ = max((len(label) for label in labels), default=0) > ROTATE_OVER
    bars.set_xticklabels(labels, rotation=35 if long_ else 0, ha="right" if long_ else "center", fontsize=8)
    bars.set_ylabel("share of rows")
    bars.set_title(f"{feature.name}: PSI {feature.psi:.4f}", fontsize=10)
    bars.legend(fontsize=8)
    if numeric:
        _ecdf_panel(panels[0][1], feature)
    figure.tight_layout()
    return figure


def _ecdf_panel(axes: Any, feature: FeatureDrift) -> None:
    xs = [x for x, _, _ in feature.ecdf]
    axes.step(xs, [r for _, r, _ in feature.ecdf], where="post", label="reference", color="#4C72B0")
    axes.step(xs, [c for _, _, c in feature.ecdf], where="post", label="current", color="#DD8452")
    title = "ECDF"
    if feature.ks_statistic is not None:
        title += f": KS statistic {feature.ks_statistic:.4f}"
    if feature.ks_location is not None:
        x = feature.ks_location  # one of the points (the engine adds it)
        at = min(range(len(xs)), key=lambda i: abs(xs[i] - x))
        low, high = sorted((feature.ecdf[at][1], feature.ecdf[at][2]))
        axes.vlines(x, low, high, colors="#C44E52", linewidth=2, label=f"KS at {x:.{DIGITS}g}")
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share of rows <= x")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="lower right")
