"""The ``azml`` command: thin typer commands over the domain modules.

``azml.cli:main`` is the console script; the root app lives in
:mod:`azml.cli.root` and loads on first use, so domain code importing
:mod:`azml.cli.common` does not pay for every command's imports.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "main"):
        from . import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
