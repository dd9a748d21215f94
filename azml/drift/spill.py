"""The drift engine's spill file: uint64 keys on disk, written once and read at offsets.

``tempfile.TemporaryFile`` has no name (O_TMPFILE on Linux; elsewhere on POSIX it is
unlinked right after it is created): nothing is left in the directory however the run
ends, and the space goes back to the file system when the file is closed or the
process exits, even when it is killed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class SpillError(Exception):
    """The spill file cannot be created, written or read; one line for the user."""


class SpillFile:
    """An unlinked temporary file of uint64 keys, appended to and read at offsets
    (positional reads: threads share it)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = str(directory) if directory is not None else tempfile.gettempdir()
        try:
            self._file = tempfile.TemporaryFile(prefix="azml-drift-", dir=self.directory)
        except OSError as error:
            raise SpillError(self._message("create", error)) from None
        self._fd = self._file.fileno()
        self.size = 0  # bytes written

    def _message(self, action: str, error: OSError) -> str:
        reason = error.strerror or str(error) or type(error).__name__
        return f"cannot {action} the drift engine's temporary file in {self.directory}: {reason}"

    def append(self, keys: np.ndarray) -> int:
        """Write ``keys``; returns their offset in bytes."""
        offset = self.size
        view = memoryview(np.ascontiguousarray(keys)).cast("B")
        written = 0
        try:
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], offset + written)
        except OSError as error:
            raise SpillError(self._message("write", error)) from None
        self.size += len(view)
        return offset

    def read(self, offset: int, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (uint64, contiguous) with the keys stored at ``offset`` bytes."""
        view = memoryview(out).cast("B")
        done = 0
        try:
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], offset + done)
                if got == 0:
                    raise OSError(0, f"the file ends at byte {offset + done}, {offset + len(view)} expected")
                done += got
        except OSError as error:
            raise SpillError(self._message("read", error)) from None
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SpillFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def usable_directory(path: Path) -> str | None:
    """Why ``path`` cannot hold the spill file, or None."""
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None
