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
import difflib
import errno
import hashlib
import io
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from ..config import ConfigError, load_stack
from ..errors import ProblemsError

ENDPOINTS_KEY = "onlineEndpoints"
TRAFFIC_KEYS = ("traffic", "mirrorTraffic")


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


# --- the round-trip edit ----------------------------------------------------


def _round_trip(text: str) -> tuple[YAML, Any]:
    """A round-trip YAML instance set up to write ``text`` back as it is
    (sequence indentation guessed from the text), and the loaded document."""
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    document, sequence_indent, offset = load_yaml_guess_indent(text, yaml=yaml)
    yaml.indent(mapping=2, sequence=sequence_indent or 4, offset=offset if offset is not None else 2)
    return yaml, document


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _comment_lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.lstrip().startswith("#"))


def _full_line_part(token: CommentToken | None) -> str:
    """The full-line comments a post-value comment token carries after the
    end of its own line ('' when none)."""
    if token is None or "\n" not in token.value:
        return ""
    return token.value.split("\n", 1)[1]


def _set_post_comment(mapping: CommentedMap, key: Any, extra: str) -> None:
    """Append full-line comment text ``extra`` after ``key``'s value."""
    slots = mapping.ca.items.setdefault(key, [None, None, None, None])
    while len(slots) < 4:
        slots.append(None)
    token = slots[2]
    if token is None:
        slots[2] = CommentToken("\n" + extra, CommentMark(0), None)
    else:
        token.value = token.value if token.value.endswith("\n") else token.value + "\n"
        token.value += extra


def _take_trailing(mapping: CommentedMap, key: Any) -> str:
    """Detach and return the full-line comments after ``key`` (they belong to
    whatever follows the mapping), keeping ``key``'s own end-of-line comment."""
    slots = mapping.ca.items.get(key)
    if not slots or len(slots) < 3 or slots[2] is None:
        return ""
    token = slots[2]
    trailing = _full_line_part(token)
    if not trailing:
        return ""
    own = token.value.split("\n", 1)[0]
    if own.strip():
        token.value = own + "\n"
    else:
        slots[2] = None
        if not any(slots):
            del mapping.ca.items[key]
    return trailing


def _delete(mapping: CommentedMap, key: str, parent: CommentedMap, parent_key: str) -> None:
    keys = list(mapping)
    index = keys.index(key)
    trailing = _take_trailing(mapping, key)
    mapping.ca.items.pop(key, None)
    del mapping[key]
    if not trailing:
        if not mapping:
            mapping.fa.set_flow_style()
        return
    if index > 0:
        _set_post_comment(mapping, keys[index - 1], trailing)
    elif not mapping:
        mapping.fa.set_flow_style()  # an empty mapping can only be written {}
        _set_post_comment(parent, parent_key, trailing)
    else:  # comments between the first key and the next: before the new first key
        _set_post_comment(parent, parent_key, trailing)


def _append(mapping: CommentedMap, key: str, value: int) -> None:
    """Add ``key`` after the last key, moving the last key's trailing
    full-line comments (they introduce what follows) after the new one."""
    last = next(reversed(mapping), None) if len(mapping) else None
    trailing = _take_trailing(mapping, last) if last is not None else ""
    mapping[key] = value
    if trailing:
        _set_post_comment(mapping, key, trailing)


def _apply(mapping: CommentedMap, new: Mapping[str, int], parent: CommentedMap, parent_key: str) -> None:
    if not len(mapping) and mapping.fa.flow_style() is None:
        mapping.fa.set_flow_style()  # `{}` as written: keep it flow style when it fills
    for key in [k for k in mapping if k not in new]:
        _delete(mapping, key, parent, parent_key)
    for key, value in new.items():
        if key in mapping:
            if mapping[key] != value or type(mapping[key]) is not int:
                mapping[key] = int(value)
        else:
            _append(mapping, key, int(value))


def _endpoints(document: Any, project: str) -> CommentedSeq:
    config = document.get("config") if isinstance(document, CommentedMap) else None
    if not isinstance(config, CommentedMap):
        raise EditRefused(["the stack file has no config mapping"])
    for key in config:
        full = key if ":" in str(key) else f"{project}:{key}"
        if full == f"azml:{ENDPOINTS_KEY}" and isinstance(config[key], CommentedSeq):
            return config[key]
    raise EditRefused([f"the stack file declares no azml:{ENDPOINTS_KEY}"])


def _endpoint(document: Any, project: str, endpoint: str) -> CommentedMap:
    for item in _endpoints(document, project):
        if isinstance(item, CommentedMap) and item.get("name") == endpoint:
            return item
    raise EditRefused([f"the stack file declares no online endpoint {endpoint!r}"])


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def edit_traffic_text(
    text: str, endpoint: str, traffic: Mapping[str, int], mirror: Mapping[str, int], *, project: str = "azml"
) -> str:
    """``text`` with ``endpoint``'s ``traffic`` and ``mirrorTraffic`` set to
    the given splits and nothing else changed. Pure; raises
    :class:`EditRefused` when that cannot be done faithfully."""
    crlf = "\r\n" in text
    source = text.replace("\r\n", "\n") if crlf else text
    try:
        yaml, document = _round_trip(source)
    except YAMLError as error:
        raise EditRefused([f"the stack file is not valid YAML: {str(error).splitlines()[0]}"]) from None
    reference = _plain(document)
    entry = _endpoint(document, project, endpoint)
    for key, new in (("traffic", traffic), ("mirrorTraffic", mirror)):
        current = entry.get(key)
        if current is None:
            if not new:
                continue
            current = CommentedMap()
            current.fa.set_flow_style()
            _append_entry(entry, key, current)
        elif not isinstance(current, CommentedMap):
            raise EditRefused([f"{endpoint}.{key} is not a mapping"])
        _apply(current, new, entry, key)
    edited = _dump(yaml, document)

    # The edit must be exactly the intended one.
    expected = reference
    for item in _plain_endpoints(expected, project):
        if item.get("name") == endpoint:
            item["traffic"] = dict(traffic)
            if mirror or "mirrorTraffic" in item:
                item["mirrorTraffic"] = dict(mirror)
    if _plain(YAML(typ="safe", pure=True).load(edited)) != expected:
        raise EditRefused(["the rewritten file would differ from the intended split elsewhere; not writing it"])
    lost = _lost_comments(source, edited)
    if lost:
        raise EditRefused([f"the rewrite would lose comment line(s): {'; '.join(lost)}"])
    return edited.replace("\n", "\r\n") if crlf else edited


def _append_entry(entry: CommentedMap, key: str, value: CommentedMap) -> None:
    last = next(reversed(entry), None) if len(entry) else None
    trailing = _take_trailing(entry, last) if last is not None else ""
    entry[key] = value
    if trailing:
        _set_post_comment(entry, key, trailing)


def _plain_endpoints(document: Any, project: str) -> list[dict[str, Any]]:
    config = document.get("config") or {}
    for key, value in config.items():
        full = key if ":" in str(key) else f"{project}:{key}"
        if full == f"azml:{ENDPOINTS_KEY}" and isinstance(value, list):
            return value
    return []


def _lost_comments(old: str, new: str) -> list[str]:
    remaining = _comment_lines(new)
    lost = []
    for line in _comment_lines(old):
        if line in remaining:
            remaining.remove(line)
        else:
            lost.append(line)
    return lost


def unified_diff(old: str, new: str, name: str) -> list[str]:
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}", n=1
        )
    ]


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
    mirror: Mapping[str, int],
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
        new_text = edit_traffic_text(old_text, endpoint, traffic, mirror, project=project)
        new = new_text.encode("utf-8")
        new_sha = sha256_bytes(new)
        write_durably(
            path,
            new,
            check=lambda temp: _validate(temp, project_dir, path.name),
            before_replace=(lambda: before_replace(new_sha)) if before_replace is not None else None,
        )
        return EditResult(path, old_sha, new_sha, unified_diff(old_text, new_text, path.name))
