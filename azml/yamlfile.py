"""Reading YAML that arrives from outside: stack files (they come in pull
requests, and the PR preview runs ``azml plan`` on them), ``Pulumi.yaml`` and
DVC files.

A YAML library builds whatever the text asks for: aliases that expand a
few hundred bytes into billions of values, an alias inside its own anchor (a
list that contains itself), thousands of nested brackets (the composer nests
by recursion), ``!!set`` / ``!!binary`` objects, 5,000-digit integers
(Python refuses to convert them). Each of those hung ``azml plan`` or ended
it with a traceback. Here the text is checked before any object is built:

1. the file is at most :data:`MAX_BYTES` and UTF-8 (a UTF-8 byte order mark
   is allowed; UTF-16/32 and undecodable bytes are refused naming the line),
   with no control character YAML forbids (NUL and friends) and at most
   :data:`MAX_DEPTH` brackets open at once;
2. every parser event is checked as the composer asks for it, before a
   node is built from it (:class:`_CheckedParser`), refusing more than
   one document, nesting deeper than :data:`MAX_DEPTH`, a recursive alias,
   more than :data:`MAX_VALUES` values or :data:`MAX_TEXT` characters once
   aliases are expanded, any explicit tag but the JSON ones, mappings or
   lists as keys, duplicate keys and numbers longer than
   :data:`MAX_NUMBER_CHARS`;
3. the safe loader builds the document; a walk refuses keys that are not
   strings (Pulumi config keys and JSON object keys are strings). Whether a
   number must be finite is the schema's call (strict config refuses
   ``.inf`` and ``.nan`` where a number is meant, naming the key).

Every refusal is one :class:`YamlInputError` line naming the file, the line
and, where there is one, the key. The limits are measured against the shipped
stacks (``Pulumi.prod.yaml``: 9 KB, 572 values, 7 levels deep) and leave
room for stacks many times larger, while the worst file they let through
is read in under half a second (ruamel's pure-Python loader builds 10,000
to 25,000 values a second).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.parser import Parser
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from .errors import ProblemsError

#: Largest file read (bytes): 15 times the production stack file (9 KB).
MAX_BYTES = 128 * 1024
#: Deepest nesting of mappings and lists (the production stack nests 7 deep).
MAX_DEPTH = 32
#: Values (scalars, mappings, lists) once every alias is expanded: nine
#: times the production stack's 572, and what ruamel builds in a quarter to
#: half a second (the value count, not the size, bounds the time).
MAX_VALUES = 5_000
#: Characters of all scalars once every alias is expanded (four full files).
MAX_TEXT = 512 * 1024
#: Longest number literal: a 64-bit integer has 20 characters, a float's
#: shortest round-trip form at most 24.
MAX_NUMBER_CHARS = 64

_TAG_PREFIX = "tag:yaml.org,2002:"
#: Explicit tags a stack file may use: the JSON types, which is what Pulumi
#: config holds. ``!`` is YAML's non-specific tag (a plain string).
ALLOWED_TAGS = frozenset({"!", *(_TAG_PREFIX + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))})
_NUMBER_LIKE = re.compile(r"[-+]?(0[xob])?[0-9a-fA-F_.eE+:]+")
#: Characters YAML 1.2 does not allow in a stream (its c-printable set
#: inverted): the reader would refuse them with a position, not a line.
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BRACKET = re.compile(r"[\[\]{}]")
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}

PathParts = Sequence[Any]


class YamlInputError(ProblemsError):
    """A YAML file refused before or while it was read; one line naming it."""


def key_path(parts: PathParts) -> str:
    """``config.azml:tags[0].name`` from ``("config", "azml:tags", 0, "name")``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Refusal(Exception):
    def __init__(self, problem: str, line: int | None = None, parts: PathParts = ()):
        super().__init__(problem)
        self.problem, self.line, self.parts = problem, line, tuple(parts)


def _refused(name: str, refusal: _Refusal, describe: Callable[[PathParts], str]) -> YamlInputError:
    where = f" line {refusal.line}:" if refusal.line else ""
    key = describe(refusal.parts) if refusal.parts else ""
    return YamlInputError([f"{name}:{where}{f' {key}:' if key else ''} {refusal.problem}"])


# --- bytes and characters ----------------------------------------------------


def read_bytes(path: Path, *, max_bytes: int = MAX_BYTES, what: str = "file") -> bytes:
    """At most ``max_bytes`` of ``path``; a larger file is refused unread."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise YamlInputError([f"{path.name}: cannot read the {what}: {error.strerror or error}"]) from None
    if len(data) > max_bytes:
        raise YamlInputError(
            [f"{path.name}: larger than {max_bytes // 1024} KiB; a {what} is a few KB (refused unread)"]
        )
    return data


def decode_utf8(data: bytes, name: str, what: str = "file") -> str:
    """``data`` as UTF-8 text (a UTF-8 byte order mark dropped)."""
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            raise YamlInputError([f"{name}: is {encoding} text (byte order mark); a {what} must be UTF-8"])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise YamlInputError(
            [f"{name}: line {line}: byte 0x{data[error.start]:02x} is not UTF-8 ({error.reason}); a {what} must be UTF-8"]
        ) from None


def _check_characters(text: str) -> None:
    match = _NON_PRINTABLE.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        raise _Refusal(f"control character U+{ord(match.group()):04X} is not allowed in YAML", line)


def _check_brackets(text: str) -> None:
    """Refuse more than :data:`MAX_DEPTH` brackets open at once before the
    parser sees them: its scanner rechecks every open ``[`` at each token, so
    a thousand of them cost half a second before the event pass could count
    levels. Brackets inside strings count too; a stack file has no reason to
    leave 32 of them open."""
    depth = 0
    for match in _BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_DEPTH:
            line = text.count("\n", 0, match.start()) + 1
            raise _Refusal(f"more than {MAX_DEPTH} brackets open at once (nested more than {MAX_DEPTH} levels deep)", line)


# --- the event pass ------------------------------------------------------------


class _Frame:
    """An open mapping or list: where its next child sits."""

    __slots__ = ("is_map", "expecting_key", "position", "anchor", "values", "text", "keys")

    def __init__(self, is_map: bool, anchor: str | None, values: int, text: int):
        self.is_map, self.anchor, self.values, self.text = is_map, anchor, values, text
        self.expecting_key = is_map
        self.position: Any = None if is_map else 0
        self.keys: set[str] = set()


class _EventChecker:
    """Sees each parser event before the composer builds a node from it and
    refuses what would be expensive or impossible to build."""

    def __init__(self) -> None:
        self.frames: list[_Frame] = []
        self.anchors: dict[str, tuple[int, int, str | None]] = {}  # name -> expanded values, characters, scalar text
        self.values = self.characters = self.documents = 0

    def path(self) -> list[Any]:
        return [f.position for f in self.frames if f.position is not None and not (f.is_map and f.expecting_key)]

    def _placed(self, key_text: str | None, line: int | None) -> None:
        """A child of the innermost open collection is complete."""
        if not self.frames:
            return
        frame = self.frames[-1]
        if not frame.is_map:
            frame.position += 1
        elif frame.expecting_key:
            if key_text in frame.keys and key_text != "<<":
                raise _Refusal(f"key {_shorten(str(key_text))!r} appears twice (YAML readers keep one of the two)", line, self.path())
            frame.keys.add(str(key_text))
            frame.position, frame.expecting_key = key_text, False
        else:
            frame.expecting_key = True

    def see(self, event: Any) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Refusal("holds more than one YAML document ('---'); the file is one document", line)
            return
        if isinstance(event, CollectionEndEvent):
            frame = self.frames.pop()
            if frame.anchor is not None:
                self.anchors[frame.anchor] = (self.values - frame.values, self.characters - frame.text, None)
            self._placed(None, line)  # a collection is never a key (refused below)
            return
        if not isinstance(event, (ScalarEvent, AliasEvent, SequenceStartEvent, MappingStartEvent)):
            return
        frames = self.frames
        is_key = bool(frames) and frames[-1].is_map and frames[-1].expecting_key
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) not in ALLOWED_TAGS:
            raise _Refusal(
                f"tag {str(tag).replace(_TAG_PREFIX, '!!')} is not allowed; "
                "only strings, numbers, booleans, null, mappings and lists (JSON's types)",
                line,
                self.path(),
            )
        key_text: str | None = None
        if isinstance(event, AliasEvent):
            if any(f.anchor == event.anchor for f in frames):
                raise _Refusal(f"alias *{event.anchor} is inside its own anchor (a value that contains itself)", line, self.path())
            if event.anchor not in self.anchors:
                raise _Refusal(f"alias *{event.anchor} has no anchor before it", line, self.path())
            expanded, length, key_text = self.anchors[event.anchor]
            if is_key and key_text is None:
                raise _Refusal(f"alias *{event.anchor} of a mapping or list used as a key; keys are strings", line, self.path())
            self.values += expanded
            self.characters += length
        elif isinstance(event, ScalarEvent):
            key_text = value = event.value
            if event.style is None and len(value) > MAX_NUMBER_CHARS and _NUMBER_LIKE.fullmatch(value):
                raise _Refusal(
                    f"a number of {len(value)} characters; numbers here have at most {MAX_NUMBER_CHARS}", line, self.path()
                )
            self.values += 1
            self.characters += len(value)
            if event.anchor is not None:
                self.anchors[event.anchor] = (1, len(value), value)
        else:
            if is_key:
                raise _Refusal("a mapping or list used as a key; keys are strings", line, self.path())
            if len(frames) >= MAX_DEPTH:
                raise _Refusal(f"nested more than {MAX_DEPTH} levels deep", line, self.path())
            self.values += 1
            frames.append(_Frame(isinstance(event, MappingStartEvent), event.anchor, self.values, self.characters))
        if self.values > MAX_VALUES:
            raise _Refusal(f"more than {MAX_VALUES:,} values once aliases are expanded", line, self.path())
        if self.characters > MAX_TEXT:
            raise _Refusal(f"more than {MAX_TEXT // 1024} KiB of text once aliases are expanded", line, self.path())
        if not isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            self._placed(key_text, line)


class _CheckedParser(Parser):
    """ruamel's parser, with every event shown to an :class:`_EventChecker`
    as it is produced: the composer pulls events one at a time, so a refused
    event stops the load before any node is built from it (one pass; a
    separate pre-scan would parse the text twice)."""

    def reset_parser(self) -> None:
        super().reset_parser()
        self.checker = _EventChecker()

    def _produce(self) -> None:
        if self.current_event is None and self.state:
            self.current_event = self.state()
            if self.current_event is not None:
                self.checker.see(self.current_event)

    def check_event(self, *choices: Any) -> bool:
        self._produce()
        return super().check_event(*choices)

    def peek_event(self) -> Any:
        self._produce()
        return super().peek_event()

    def get_event(self) -> Any:
        self._produce()
        return super().get_event()


# --- building and checking the document ----------------------------------------


class _Constructor(SafeConstructor):
    """The safe constructor with no way to build a Python object beyond the
    JSON types (the event pass already refused other tags; this is the
    second lock). Implicit dates stay dates: callers turn them back into
    the text written, as Pulumi does."""

    def refuse_tag(self, node: Any) -> Any:
        raise ConstructorError(None, None, f"tag {node.tag} is not allowed", node.start_mark)


for _tag in ("set", "binary", "omap", "pairs"):
    _Constructor.add_constructor(_TAG_PREFIX + _tag, _Constructor.refuse_tag)


_KINDS = {bool: "boolean", int: "number", float: "number", type(None): "null value"}


def _as_written(key: Any) -> str:
    return {True: "true", False: "false", None: "null"}.get(key, str(key)) if isinstance(key, (bool, type(None))) else str(key)


def _check_keys(document: Any) -> None:
    """Refuse mapping keys that are not strings (``1:``, ``true:``, ``~:``, dates)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    kind = _KINDS.get(type(key), type(key).__name__)
                    raise _Refusal(f"key {_shorten(_as_written(key))} is read as a {kind}, not a string; quote it", None, parts)
                stack.append((item, (*parts, key)))
        elif isinstance(value, list):
            stack.extend((item, (*parts, index)) for index, item in enumerate(value))


def load_text(text: str, name: str, *, describe: Callable[[PathParts], str] = key_path) -> Any:
    """The YAML document in ``text`` (``None`` when it holds none), or
    :class:`YamlInputError` naming ``name``; ``describe`` names a key path."""
    try:
        _check_characters(text)
        _check_brackets(text)
        loader = YAML(typ="safe", pure=True)
        loader.Parser = _CheckedParser
        loader.Constructor = _Constructor
        loader.max_depth = MAX_DEPTH + 1  # the checker refuses deeper nesting first; a second lock
        try:
            document = loader.load(text)
        except YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise _Refusal(f"invalid YAML: {_shorten(problem, 160)}", mark.line + 1 if mark is not None else None) from None
        except (ValueError, TypeError, RecursionError, OverflowError) as error:  # what the checks cannot foresee
            raise _Refusal(f"cannot be read: {_shorten(str(error), 160)}") from None
        _check_keys(document)
        return document
    except _Refusal as refusal:
        raise _refused(name, refusal, describe) from None


def read_yaml(
    path: Path, *, what: str = "file", describe: Callable[[PathParts], str] = key_path, max_bytes: int = MAX_BYTES
) -> Any:
    """The YAML document of ``path`` after the checks above; one
    :class:`YamlInputError` line otherwise."""
    return load_text(decode_utf8(read_bytes(path, max_bytes=max_bytes, what=what), path.name, what), path.name, describe=describe)
