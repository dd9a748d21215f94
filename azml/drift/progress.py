"""Progress of a long drift run, on stderr (never stdout: ``--format json`` stays clean).

The engine reports :class:`Progress` events to a callback; :class:`ProgressLine` is
the command's renderer. On a terminal (not under CI, as :mod:`azml.progress`) it redraws one line in place (at most every
``TTY_INTERVAL`` seconds); elsewhere (a log file, CI) it prints a plain line every
``PLAIN_INTERVAL`` seconds, and only when asked (``azml drift --progress``), so
that logs and pipes get nothing they did not ask for.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from ..progress import display_mode

READING = "reading"
MERGING = "merging"
TTY_INTERVAL = 0.2
PLAIN_INTERVAL = 10.0


@dataclass(frozen=True)
class Progress:
    phase: str  # READING or MERGING
    subject: str  # the input being read, or the feature being merged
    done: float | None  # share of the phase's subject done (0..1), None when unknown
    rows: int = 0  # rows read so far of this input (READING)


ProgressCallback = Callable[[Progress], None]


def _size(count: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return f"{count:.0f}"


class ProgressLine:
    """Renders progress events as one line on a text stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = display_mode(self.stream) is not None if tty is None else tty
        self.interval = TTY_INTERVAL if self.tty else PLAIN_INTERVAL
        self._clock = clock
        self._start = clock()
        self._last = -float("inf")
        self._width = 0
        self._lock = threading.Lock()  # features are merged in parallel threads

    def __call__(self, event: Progress) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last < self.interval:
                return
            self._last = now
            text = self.format(event, now - self._start)
            if self.tty:
                self.stream.write("\r" + text.ljust(self._width))
                self._width = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def format(self, event: Progress, elapsed: float) -> str:
        share = f" {event.done * 100:3.0f}%" if event.done is not None else ""
        rows = f", {_size(event.rows)} rows" if event.phase == READING else ""
        return f"azml drift: {event.phase} {event.subject}{share}{rows} ({elapsed:.0f} s)"

    def close(self) -> None:
        """Clear the redrawn line, so the report starts on a clean one."""
        with self._lock:
            if self.tty and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0
