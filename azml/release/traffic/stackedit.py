"""Rewrite one online endpoint's ``traffic`` / ``mirrorTraffic`` in a stack file.

Guarantees, in the order they are established:

1. **One writer.** An exclusive, non-blocking lock on ``.<file>.lock`` beside
   the stack file (``filelock``; the kernel drops it when the holder dies,
   even on ``kill -9``). A second writer fails at once with
   :class:`LockHeld`.
2. **No lost update.** Under the lock the file is re-read and its sha256
   compared with the one the verdict was computed on; any difference is
   :class:`StackChanged`.
3. **Nothing else changes.** The file is edited with ruamel.yaml's
   round-trip mode (comments, key order, quoting, flow/block style and
   indentation kept), then checked: the edited document must equal the old
   one with only that endpoint's two keys replaced, and every comment line of
   the old file must still be there. A mapping that was flow style
   (``{blue: 90, green: 10}``, ``{}``) stays flow style; a block mapping stays
   block. Zero shares are written, not removed; mirror entries the new split
   drops are removed (full-line comments that followed them are kept).
4. **Only valid files.** The new text is written to a temporary file in the
   same directory and validated like ``azml plan`` reads a stack
   (:func:`azml.config.load_stack`) before it can replace anything.
5. **Old or new, never half.** The temporary file is fsynced, given the old
   file's mode, moved over the stack file with ``os.replace`` and the
   directory is fsynced. Temporary files a killed writer left behind
   (``.<file>.*.tmp``) are removed by the next holder of the lock (a writer,
   or ``status`` / ``kpis`` settling the audit trail); nothing reads them.
6. **Refusals, not tracebacks.** A stack file without write permission (any
   mode without a write bit, such as 0444: checked on the mode bits, since
   root may write anything) is :class:`NotWritable`; a directory or disk that
   refuses the write (read-only, full, over a size limit) is
   :class:`WriteFailed` naming the file. The file is unchanged after both.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from ...config import ConfigError, load_stack
from ..errors import (  # noqa: F401  (the refusals, as stackedit has always exported them)
    EditRefused,
    LockHeld,
    NotWritable,
    StackChanged,
    StackEditError,
    WriteFailed,
    os_problem,
)
from .yamledit import ENDPOINTS_KEY, TRAFFIC_KEYS, edit_traffic_text, unified_diff  # noqa: F401


@dataclass(frozen=True)
class EditResult:
    path: Path
    before_sha256: str
    after_sha256: str
    diff: list[str]  # unified diff lines, old -> new


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def temp_files(path: Path) -> list[Path]:
    """Temporary files of interrupted writes of ``path``."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the locked, checked, atomic write --------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def write_durably(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    check: Callable[[Path], None] | None = None,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` so that a reader, or a crash at any
    moment, sees the old bytes or the new bytes and nothing else.

    The bytes go to a temporary file in the same directory, are fsynced and
    given ``mode`` (default: the current file's); ``check(temp)`` may refuse
    them by raising, ``before_replace()`` runs last; then ``os.replace`` and
    an fsync of the directory. On any error the temporary file is removed.
    An error of the file system itself is :class:`WriteFailed`; what the two
    callbacks raise is passed on as it is.
    """
    unchanged = f"{path.name} was not changed"
    try:
        if mode is None:
            mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise WriteFailed([f"cannot write a temporary file in {path.parent}: {os_problem(error)}; {unchanged}"]) from None
    temp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)
        except OSError as error:
            raise WriteFailed([f"cannot write the new {path}: {os_problem(error)}; {unchanged}"]) from None
        if check is not None:
            check(temp)
        if before_replace is not None:
            before_replace()
        try:
            os.replace(temp, path)
        except OSError as error:
            raise WriteFailed([f"cannot replace {path}: {os_problem(error)}; {unchanged}"]) from None
    except BaseException:
        with contextlib.suppress(OSError):  # on a read-only file system it cannot exist anyway
            temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 0) -> Iterator[None]:
    """Hold ``path``'s lock: the one writer at a time, or a reader settling
    the audit trail. Temporary files of interrupted writes are removed first
    (only a lock holder writes them, so none is in use). Raises
    :class:`LockHeld` after ``timeout`` seconds and :class:`WriteFailed` when
    the lock file cannot be created (read-only directory)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path(path)), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockHeld(
            [f"another `azml release advance` holds the lock on {path} ({lock_path(path).name}); try again when it is done"]
        ) from None
    except OSError as error:
        raise WriteFailed(
            [f"cannot create the lock file {lock_path(path)}: {os_problem(error)}; {path.name} was not changed"]
        ) from None
    try:
        for leftover in temp_files(path):
            try:
                leftover.unlink(missing_ok=True)
            except OSError as error:
                raise WriteFailed(
                    [f"cannot remove {leftover}, left by an interrupted write: {os_problem(error)}; {path.name} was not changed"]
                ) from None
        yield
    finally:
        lock.release()


def refuse_read_only(path: Path) -> None:
    """Raise :class:`NotWritable` when ``path`` may not be written. The mode
    bits are checked as well as access: root may write a 0444 file, but the
    mode still says the file is not to be changed."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as error:
        raise WriteFailed([f"cannot read {path}: {os_problem(error)}"]) from None
    if not mode & 0o222 or not os.access(path, os.W_OK):
        raise NotWritable(
            [
                f"{path} is read-only (mode {mode:04o}): not rewriting it; "
                f"make it writable (chmod u+w {path.name}) to let the release controller change it"
            ]
        )


def _validate(temp: Path, project_dir: Path, name: str) -> None:
    try:
        load_stack(str(temp), project_dir)
    except ConfigError as error:
        raise EditRefused([f"the rewritten {name} would not validate:", *error.problems]) from None


def rewrite_traffic(
    path: Path,
    endpoint: str,
    traffic: Mapping[str, int],
    mirror_traffic: Mapping[str, int],
    *,
    expected_sha256: str,
    computed_at: str | None = None,
    project_dir: Path | None = None,
    project: str = "azml",
    before_replace: Callable[[str], None] | None = None,
    lock_timeout: float = 0,
) -> EditResult:
    """Set ``endpoint``'s split in the stack file ``path``, under its lock,
    only if the file still hashes to ``expected_sha256``.

    ``before_replace(new_sha256)`` runs under the lock after the new file is
    written and validated and before it replaces the old one (``advance``
    records the change in MLflow there: if it raises, nothing changes).
    Raises :class:`LockHeld`, :class:`NotWritable`, :class:`StackChanged`,
    :class:`EditRefused` or :class:`WriteFailed`; the file is unchanged after
    any of them.
    """
    path = Path(path)
    project_dir = project_dir or path.parent
    with locked(path, timeout=lock_timeout):
        refuse_read_only(path)
        try:
            old = path.read_bytes()
        except OSError as error:
            raise WriteFailed([f"cannot read {path}: {os_problem(error)}"]) from None
        old_sha = sha256_bytes(old)
        if old_sha != expected_sha256:
            when = f" at {computed_at}" if computed_at else ""
            raise StackChanged(
                [f"{path.name} changed since the verdict was computed{when}; run `azml release evaluate` again"]
            )
        try:
            old_text = old.decode("utf-8")
        except UnicodeDecodeError:
            raise EditRefused([f"{path.name} is not UTF-8 text"]) from None
        new_text = edit_traffic_text(old_text, endpoint, traffic, mirror_traffic, project=project)
        new = new_text.encode("utf-8")
        new_sha = sha256_bytes(new)
        write_durably(
            path,
            new,
            check=lambda temp: _validate(temp, project_dir, path.name),
            before_replace=(lambda: before_replace(new_sha)) if before_replace is not None else None,
        )
        return EditResult(path, old_sha, new_sha, unified_diff(old_text, new_text, path.name))
