"""``azml config set``: change one non-secret key of a stack file the way a
reviewer wants to see it changed — one line in the diff.

``pulumi config set --path`` rewrites the whole file and can reorder keys
(pulumi/pulumi#10244) and types a bare ``4`` as a number. Here the key is
set with ruamel.yaml's round-trip mode (comments, key order, quoting and
flow/block style kept), the result is validated exactly as ``azml plan``
reads a stack, and only then replaces the file atomically under the same
lock as ``azml release advance`` (old or new bytes, never half; a read-only
file is refused). Secrets are refused: they belong to
``pulumi config set --secret``.

Keys use Pulumi's ``--path`` syntax: the config key, then ``.name`` or
``[index]`` steps, ``["name.with.dots"]`` for names with dots:
``azml:release.gate.maxPsi``,
``azml:onlineEndpoints[0].deployments[0].model.version``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..errors import ProblemsError
from .secrets import is_secure

NAMESPACE = "azml"
_STEP = re.compile(r'\.([A-Za-z0-9_-]+)|\[(\d+)\]|\["([^"\]]+)"\]')
_KEY = re.compile(rf"({NAMESPACE}:[A-Za-z0-9_-]+)(.*)")


class SettingError(ProblemsError, ValueError):
    """A key, value or stack file ``azml config set`` refuses (exit 2)."""


@dataclass(frozen=True)
class SetResult:
    path: Path
    key: str
    old: Any  # None when the key was added
    new: Any
    changed: bool


def parse_key(key: str) -> tuple[str, list[str | int]]:
    """``azml:release.gate.maxPsi`` -> (``azml:release``, [gate, maxPsi])."""
    match = _KEY.fullmatch(key)
    if not match:
        raise SettingError([f"key {key!r}: expected {NAMESPACE}:<name> followed by .name or [index] steps "
                            f"(only {NAMESPACE}: keys; other namespaces belong to `pulumi config set`)"])
    top, rest = match.groups()
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        step = _STEP.match(rest, position)
        if not step:
            raise SettingError([f"key {key!r}: cannot read {rest[position:]!r} (use .name, [index] or [\"name\"])"])
        name, index, quoted = step.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        position = step.end()
    return top, steps


def parse_value(text: str, as_string: bool) -> Any:
    """The value as YAML reads it (``4`` a number, ``true`` a boolean,
    ``[10, 50, 100]`` a list), or the text itself with ``as_string``."""
    if as_string:
        return text
    try:
        value = YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        raise SettingError([f"value {text!r} is not a YAML value: {str(error).splitlines()[0]}"]) from None
    if value is None:
        raise SettingError([f"value {text!r} is empty: give a value (`azml config set` does not remove keys)"])
    return value


def _describe(steps: list[str | int], upto: int) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps[:upto])


def set_in_document(document: Any, key: str, value: Any, text: str | None = None) -> tuple[Any, Any]:
    """Set ``key`` in the loaded round-trip ``document``; returns the old
    value (None when added) and the value stored. Missing mappings on the
    way are created; list indexes must exist."""
    top, steps = parse_key(key)
    if not isinstance(document, CommentedMap):
        raise SettingError(["the stack file is not a YAML mapping"])
    config = document.get("config")
    if config is None:
        config = document["config"] = CommentedMap()
    if not isinstance(config, CommentedMap):
        raise SettingError(["the stack file's config: is not a mapping"])
    parent: Any = config
    name: str | int = top
    for depth, step in enumerate(steps):
        current = parent.get(name) if isinstance(parent, CommentedMap) else parent[name]
        if is_secure(current):
            raise SettingError([f"{top}{_describe(steps, depth)} is a secret: use `pulumi config set --secret --path`"])
        if current is None:
            current = CommentedMap() if isinstance(step, str) else None
            if current is None:
                raise SettingError([f"{top}{_describe(steps, depth)} does not exist: cannot index it with [{step}]"])
            parent[name] = current
        if isinstance(step, int):
            if not isinstance(current, CommentedSeq):
                raise SettingError([f"{top}{_describe(steps, depth)} is not a list: [{step}] does not apply"])
            if not 0 <= step < len(current):
                raise SettingError([f"{top}{_describe(steps, depth + 1)}: index out of range (the list has {len(current)} entries)"])
        elif not isinstance(current, CommentedMap):
            raise SettingError([f"{top}{_describe(steps, depth)} is not a mapping: .{step} does not apply"])
        parent, name = current, step
    old = parent.get(name) if isinstance(parent, CommentedMap) else parent[name]
    if is_secure(old):
        raise SettingError([f"{key} is a secret: use `pulumi config set --secret --path`"])
    if isinstance(old, (CommentedMap, CommentedSeq)) and not isinstance(value, (dict, list)):
        raise SettingError([f"{key} is a {'mapping' if isinstance(old, CommentedMap) else 'list'}: set one of its keys, "
                            "or give a whole YAML value"])
    if isinstance(old, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        # A text key stays text (an asset version '4' stays '4', not the number 4).
        value = text if text is not None else str(value)
    parent[name] = value
    return old, value


def set_key(stack: str, key: str, text: str, *, as_string: bool = False, project_dir: Path | None = None) -> SetResult:
    """Set ``key`` to ``text`` in the stack file of ``stack``: validated,
    comments and order kept, atomic. Raises SettingError (bad key, value or
    resulting config, naming them), or the stack-file write errors of
    :mod:`azml.release.traffic.stackedit` (lock held, read-only, disk)."""
    from ..release.traffic.stackedit import locked, refuse_read_only, write_durably
    from ..release.traffic.yamledit import _dump, _round_trip
    from .loader import ConfigError
    from .stackfile import load_stack, read_stack_file

    value = parse_value(text, as_string)
    parse_key(key)  # a bad key fails before the file is read
    stack_file = read_stack_file(stack, project_dir)
    path = stack_file.path
    refuse_read_only(path)
    with locked(path):
        before = path.read_text(encoding="utf-8")
        yaml, document = _round_trip(before)
        old, value = set_in_document(document, key, value, text)
        after = _dump(yaml, document)
        if after == before:
            return SetResult(path, key, old, value, changed=False)

        def check(temp: Path) -> None:
            try:
                load_stack(str(temp), stack_file.project_dir)
            except ConfigError as error:
                raise SettingError([f"{key}: {text!r} would not validate; {path.name} was not changed:", *error.problems]) from None

        write_durably(path, after.encode("utf-8"), check=check)
    return SetResult(path, key, old, value, changed=True)
