"""Plan a second stack file in a forked child while this process plans the first.

``azml plan`` on a stack with locks plans the program twice: the stack as
configured, and the stack as it was before the day-two operations
(:mod:`azml.plan.daytwo`). The two runs are independent and each is
CPU-bound Python, so on a machine with more than one CPU the second runs in
a child forked before the first starts (after the imports, which the child
shares), and its plan comes back pickled through a pipe.

Nothing depends on the child: when it cannot be forked (no ``os.fork``, one
CPU, other threads running, whose locks a child could inherit held), when it
fails, dies or sends something unreadable, :meth:`Forked.result` returns
``None`` and the caller plans in-process, which raises the run's own error.
The child's output goes to ``/dev/null``: what it would print, the
in-process run prints when it matters (a failure).
"""

from __future__ import annotations

import os
import pickle
import threading
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Forking helps and is safe: ``os.fork`` exists, there is more than one CPU
    to run the child on, and this process runs no other thread."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return hasattr(os, "fork") and cpus > 1 and threading.active_count() == 1


class Forked(Generic[T]):
    """``function(*args)`` in a forked child; :meth:`result` is its return value,
    or ``None`` when the child did not deliver one."""

    def __init__(self, function: Callable[..., T], *args: Any) -> None:
        read_end, write_end = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: run, send, and leave without the parent's exit handlers
            os.close(read_end)
            status = 1
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                payload = pickle.dumps(function(*args), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(payload)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._read_end = read_end
        self._done = False

    def result(self) -> T | None:
        """Wait for the child; its value, or ``None`` if it failed or sent nothing readable."""
        if self._done:
            return None
        self._done = True
        with os.fdopen(self._read_end, "rb") as pipe:
            payload = pipe.read()  # read before waiting: a full pipe would block the child
        _, status = os.waitpid(self._pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not payload:
            return None
        try:
            return pickle.loads(payload)  # noqa: S301 - our own child's bytes
        except Exception:  # noqa: BLE001 - any unreadable payload means: plan in-process
            return None

    def cancel(self) -> None:
        """Stop the child if its value is not wanted."""
        if not self._done:
            self._done = True
            with os.fdopen(self._read_end, "rb"):
                pass
            try:
                os.kill(self._pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)


def start(function: Callable[..., T], *args: Any) -> Forked[T] | None:
    """``function(*args)`` started in a forked child if :func:`can_fork`; else None."""
    return Forked(function, *args) if can_fork() else None
