"""The round-trip edit of one online endpoint's ``traffic`` / ``mirrorTraffic``
in a stack file's text (guarantee 3 of :mod:`azml.release.traffic.stackedit`):
ruamel.yaml's round-trip mode keeps comments, key order, quoting, flow/block
style and indentation; the edited document must equal the old one with only
that endpoint's two keys replaced, and every comment line must still be there.
"""

from __future__ import annotations

import difflib
import io
from typing import Any, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from ..errors import EditRefused

ENDPOINTS_KEY = "onlineEndpoints"
TRAFFIC_KEYS = ("traffic", "mirrorTraffic")


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
    text: str, endpoint: str, traffic: Mapping[str, int], mirror_traffic: Mapping[str, int], *, project: str = "azml"
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
    for key, new in (("traffic", traffic), ("mirrorTraffic", mirror_traffic)):
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
            if mirror_traffic or "mirrorTraffic" in item:
                item["mirrorTraffic"] = dict(mirror_traffic)
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
