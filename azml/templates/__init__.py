"""HTML pages from Jinja2 templates shipped in this package, autoescaped.

Every value a template prints is escaped unless it is marked safe (:func:`svg_data_uri`
returns plots as ``data:`` URIs, which are attribute text and escaped too), so a
feature or model name such as ``<script>`` shows as text.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

#: Resolution of raster fallbacks; plots are SVG (vector) otherwise.
DPI = 150


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("azml.templates", "."),
        autoescape=select_autoescape(["html", "html.j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **context: Any) -> str:
    """The template ``name`` (e.g. ``drift.html.j2``) rendered with ``context``."""
    return environment().get_template(name).render(**context)


def svg_data_uri(figure: Any) -> str:
    """A matplotlib figure as an SVG ``data:`` URI (for an ``<img src>``: an SVG shown
    as an image runs no script), closed afterwards."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="svg", dpi=DPI)
    finally:
        plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
