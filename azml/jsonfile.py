"""Reading JSON that arrives from outside (policy pack configs, metrics
files, drift reports, lineage records, ``pulumi preview --json`` output,
request logs) so that any file is either a document or one line naming it.

``json.loads`` alone ends in a traceback or a wrong value on: undecodable
bytes (``UnicodeDecodeError``), a UTF-8 byte order mark (Windows editors
write one), thousands of nested brackets (``RecursionError``), integers of
more than 4,300 digits (``ValueError``: Python's conversion limit), and it
accepts ``NaN``, ``Infinity`` and ``1e999`` (an infinite float) although JSON
has no such numbers. A duplicate key keeps the last value silently, so a
reviewer reading the first would be misled. Each of those is refused here
with a :class:`JsonInputError` of one line: ``<file>: line N: <problem>``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import ProblemsError

#: Longest number literal accepted (a 64-bit integer has 20 characters).
MAX_NUMBER_CHARS = 64
#: Default size limit: far above any input the commands read (a preview of
#: the production stack is about 1 MB).
MAX_BYTES = 64 * 1024 * 1024


class JsonInputError(ProblemsError):
    """A JSON file or text refused; ``problems`` holds one line naming it."""


class _Refusal(ValueError):
    pass


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refusal(f"a number of {len(text)} digits; at most {MAX_NUMBER_CHARS}")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refusal(f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARS}")
    value = float(text)
    if not math.isfinite(value):
        raise _Refusal(f"{text} is too large for a number (it would be infinite)")
    return value


def _constant(text: str) -> Any:
    raise _Refusal(f"{text} is not a JSON number (JSON has no NaN or Infinity)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise _Refusal(f"key {shown!r} appears twice in one object (readers keep one of the two)")
        document[key] = value
    return document


def loads(text: str, name: str) -> Any:
    """The JSON document ``text`` (from ``name``), or :class:`JsonInputError`."""
    try:
        return json.loads(
            text, parse_int=_integer, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object
        )
    except _Refusal as refusal:
        raise JsonInputError([f"{name}: {refusal}"]) from None
    except json.JSONDecodeError as error:
        raise JsonInputError([f"{name}: line {error.lineno}: not JSON: {error.msg}"]) from None
    except RecursionError:
        raise JsonInputError([f"{name}: nested too deeply to be read (thousands of brackets)"]) from None


def decode(data: bytes, name: str) -> str:
    """UTF-8 text of ``data`` (a UTF-8 byte order mark dropped), or one line
    naming the line of the first byte that is not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JsonInputError([f"{name}: is UTF-16 or UTF-32 text (byte order mark); it must be UTF-8"])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise JsonInputError(
            [f"{name}: line {line}: byte 0x{data[error.start]:02x} is not UTF-8 ({error.reason}); it must be UTF-8"]
        ) from None


def read_text(path: Path, *, name: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``: at most ``max_bytes`` (a larger file is
    refused unread), or one :class:`JsonInputError` line."""
    name = name or str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise JsonInputError([f"{name}: cannot read ({error.strerror or error})"]) from None
    if len(data) > max_bytes:
        raise JsonInputError([f"{name}: larger than {max_bytes // (1024 * 1024)} MiB; refused unread"])
    return decode(data, name)


def read_json(path: Path, *, name: str | None = None, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON document in ``path``, or one :class:`JsonInputError` line
    naming it (``name``, default the path)."""
    name = name or str(path)
    return loads(read_text(path, name=name, max_bytes=max_bytes), name)
