"""Writing files so that a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path


def _temp_prefix(path: Path, pid: int) -> str:
    # The writer's process id is in the name: a leftover of a killed writer
    # can be told from the live temporary file of a concurrent one.
    return f".{path.name}.{pid}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def stale_temp_files(path: Path) -> list[Path]:
    """Temporary files of :func:`write_atomically` for ``path`` whose writer
    is no longer running (killed between writing and replacing). A live
    writer's file, or any other file, is never listed."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^/]+\.tmp")
    stale = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            stale.append(candidate)
    return sorted(stale)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in stale_temp_files(path):
        with contextlib.suppress(OSError):  # removing a leftover is housekeeping, not the write
            leftover.unlink()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path, os.getpid()), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
