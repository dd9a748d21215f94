"""Errors the wings of the release controller share: a refused edit of the
stack file (raised by the traffic wing's edit and write, caught by advance,
the bandit, status, the KPIs and the verdict store's settling)."""

from __future__ import annotations

import errno

from ..errors import ProblemsError


class StackEditError(ProblemsError):
    """The stack file was not changed. ``problems`` holds one line per problem."""


class LockHeld(StackEditError):
    """Another writer holds the stack file's lock."""


class StackChanged(StackEditError):
    """The file is not the one the verdict was computed on."""


class EditRefused(StackEditError):
    """The edit would break the file, its comments or its validity."""


class NotWritable(StackEditError):
    """The stack file is read-only: whoever made it so did not want it rewritten."""


class WriteFailed(StackEditError):
    """The file system refused a write (read-only, full, over a size limit)."""


def os_problem(error: OSError) -> str:
    """``File too large (EFBIG)``: the reason of a refused write, for one line."""
    code = errno.errorcode.get(error.errno or 0)
    reason = error.strerror or str(error)
    return f"{reason} ({code})" if code else reason
