"""What a person sees while a long command runs: the phase it is in, on stderr.

Only on a terminal: when stderr is not a TTY (a pipe, a log file) or ``CI`` is
set, nothing is written, so logs and the output tests parse stay byte for byte
what they were. On a terminal a rich status line names the running phase and
each finished phase is printed with its duration; with ``NO_COLOR`` set (or
``TERM=dumb``) the phases are plain lines, without colour or any escape sequence.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

RICH, PLAIN = "rich", "plain"


def display_mode(stream: TextIO, environ: Mapping[str, str] | None = None) -> str | None:
    """RICH, PLAIN or None (show nothing) for progress on ``stream``."""
    env = os.environ if environ is None else environ
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        tty = False
    if not tty or env.get("CI"):
        return None
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return PLAIN
    return RICH


class Phases:
    """``with Phases("azml plan") as phases: phases.start("policy pack X") ...``

    Each :meth:`start` ends the phase before it; leaving the block ends the last one.
    """

    def __init__(self, command: str, stream: TextIO | None = None, *, mode: str | None | bool = True) -> None:
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.mode = display_mode(self.stream) if mode is True else (mode or None)
        self.done: list[tuple[str, float]] = []  # finished phases and their seconds
        self._current: tuple[str, float] | None = None
        self._console: Any = None
        self._status: Any = None

    def __enter__(self) -> Phases:
        if self.mode == RICH:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._status = self._console.status(f"{self.command}: starting", spinner="dots")
            self._status.start()
        return self

    def start(self, name: str) -> None:
        self._finish()
        self._current = (name, time.monotonic())
        if self.mode == RICH:
            self._status.update(f"[bold]{self.command}[/bold]: {name}…")
        elif self.mode == PLAIN:
            self.stream.write(f"{self.command}: {name}...\n")
            self.stream.flush()

    def _finish(self) -> None:
        if self._current is None:
            return
        name, began = self._current
        seconds = time.monotonic() - began
        self.done.append((name, seconds))
        self._current = None
        if self.mode == RICH:
            self._console.print(f"[green]✓[/green] {name} [dim]({seconds:.1f} s)[/dim]")

    def close(self, failed: bool = False) -> None:
        """End the last phase (marked as stopped when ``failed``) and the status line; idempotent."""
        if failed and self._current is not None and self.mode == RICH:
            name, began = self._current
            self._current = None
            self._console.print(f"[red]✗[/red] {name} [dim](stopped after {time.monotonic() - began:.1f} s)[/dim]")
        self._finish()
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)

    def for_command(self, context: Any) -> Phases:
        """Started, and closed when the command's context (a ``typer.Context``) closes,
        also when the command fails: for a command that cannot wrap its body in ``with``."""
        self.__enter__()
        context.call_on_close(lambda: self.close(failed=sys.exc_info()[0] is not None))
        return self


#: When set to a file path, ``azml plan`` writes its phase breakdown there as
#: JSON (the plan benchmark reads it; plan.json stays free of timings so that
#: two runs of the same commit and config produce identical plans).
TIMINGS_ENV = "AZML_TIMINGS"


def timings_document(phases: Phases, packs: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """``{"phases": {name: seconds}, "packs": {pack: {startSeconds, analyzeSeconds}}}``."""
    return {
        "phases": {name: round(seconds, 3) for name, seconds in phases.done},
        "packs": {name: dict(values) for name, values in packs.items()},
    }
