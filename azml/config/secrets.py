"""Which config values are secrets, and where they show up.

``pulumi config set --secret`` encrypts a value in ``Pulumi.<stack>.yaml``
(a ``secure:`` leaf, also inside an object set with ``--path``). The CLI
hands the program every value decrypted and only says which *top-level*
keys hold a secret; which leaves of such a key are secret is written in the
stack file. The program therefore reads the leaves from the stack file
(``Pulumi.<stack>.yaml`` beside ``Pulumi.yaml``, or the file named by
``AZML_STACK_FILE`` for stacks kept elsewhere, e.g. with ``--config-file``);
when it cannot, every string leaf of a secret key counts as secret.

A secret value *reaches* a resource input when the input's text equals it,
or contains it and it is at least :data:`MIN_EMBEDDED` characters long
(shorter values — "1", "true" — would match unrelated text everywhere).
The same rule decides what the program wraps in ``Output.secret``
(:mod:`components.secrecy`) and what the offline plan reports as a leak.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

#: Environment variable naming the stack file when it is not ``Pulumi.<stack>.yaml`` beside ``Pulumi.yaml``.
STACK_FILE_ENV = "AZML_STACK_FILE"
MIN_EMBEDDED = 8

Path_ = tuple[Any, ...]  # keys and list indexes from the top-level key's value


def is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def secure_paths(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """The paths of the ``secure:`` leaves of a stack-file value."""
    if is_secure(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from secure_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from secure_paths(item, (*path, index))


def _at(value: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def secret_values(
    decrypted: Mapping[str, Any], secret_keys: Iterable[str], stack_config: Mapping[str, Any] | None
) -> dict[str, str]:
    """``{secret value: where it is set}`` (``azml:tags.owner``): the decrypted
    value of each ``secure:`` leaf of ``stack_config`` (the stack file's
    ``config`` mapping), or of every string leaf of a secret key the stack
    file does not describe."""
    found: dict[str, str] = {}
    for key in secret_keys:
        value = decrypted.get(key)
        paths = list(secure_paths(stack_config.get(key))) if stack_config is not None and key in stack_config else None
        if paths is None:
            leaves = [((), s) for s in _strings(value)]
        else:
            leaves = [(p, s) for p in paths for s in _strings(_at(value, p))]
        for path, text in leaves:
            if text:
                found.setdefault(text, key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path))
    return found


def revealed(text: str, secrets: Mapping[str, str]) -> list[str]:
    """Where each secret ``text`` reveals was set (empty: it reveals none)."""
    return [where for value, where in secrets.items() if text == value or (len(value) >= MIN_EMBEDDED and value in text)]


def stack_config_from_file(root: Path, stack: str) -> Mapping[str, Any] | None:
    """The ``config`` mapping of the stack file (``AZML_STACK_FILE``, else
    ``Pulumi.<stack>.yaml`` under ``root``), with keys namespaced as the
    CLI namespaces them; ``None`` when there is none or it cannot be read."""
    from ..yamlfile import YamlInputError, read_yaml

    named = os.environ.get(STACK_FILE_ENV)
    path = Path(named) if named else root / f"Pulumi.{stack}.yaml"
    try:  # the reader `azml plan` uses: a hostile stack file cannot hang the program either
        document = read_yaml(path, what="stack file")
    except YamlInputError:
        return None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        return None
    project = _project_name(root)
    return {(k if ":" in str(k) else f"{project}:{k}"): v for k, v in config.items()}


def _project_name(root: Path) -> str:
    from ..yamlfile import YamlInputError, read_yaml

    try:
        document = read_yaml(root / "Pulumi.yaml", what="project file")
    except YamlInputError:  # the program could not run without a readable Pulumi.yaml
        return "azml"
    return str(document.get("name", "azml")) if isinstance(document, dict) else "azml"


def secret_values_from_pulumi() -> dict[str, str]:
    """:func:`secret_values` inside a running Pulumi program."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    decrypted: dict[str, Any] = {}
    for source in (runtime_config.get_config_env(), runtime_config.CONFIG.get()):
        decrypted.update(source)
    secret_env = set(runtime_config.get_config_secret_keys_env())
    keys = [k for k in decrypted if k in secret_env or runtime_config.is_config_secret(k)]
    if not keys:
        return {}
    parsed = {k: _parse(v) for k, v in decrypted.items() if k in keys}
    root = Path(pulumi.get_root_directory())
    return secret_values(parsed, keys, stack_config_from_file(root, pulumi.get_stack()))


def _parse(text: Any) -> Any:
    """Config as the engine passes it: structured values as JSON text."""
    import json

    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
