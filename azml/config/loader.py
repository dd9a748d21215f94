"""Turn raw ``azml:`` config (from a stack file or from ``pulumi.Config``) into a
validated :class:`StackConfig`, or into one readable line per problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection, Mapping, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import ProblemsError
from .checks import stack_problems
from .platform.observability import WEBHOOKS_KEY, webhook_secrecy_problems
from .schema import TOP_LEVEL_KEYS, StackConfig

NAMESPACE = "azml"


class ConfigError(ProblemsError):
    """Invalid stack config. ``problems`` holds one line per problem."""


def validate_config(
    raw: Mapping[str, Any], project_dir: Path | None = None, secret_keys: Collection[str] | None = None
) -> StackConfig:
    """Validate the ``azml:`` namespace given as ``{key-without-namespace: value}``;
    with ``project_dir``, files named by the config must exist there.

    ``secret_keys`` (keys without namespace) says which values are Pulumi
    secrets, as a running program knows; without it the values come from a
    stack file, where every ``secure:`` value reads as the secret placeholder.

    Raises :class:`ConfigError` listing every problem, unknown keys included.
    """
    problems = [
        f"{NAMESPACE}:{key}: unknown key; allowed keys: {', '.join(TOP_LEVEL_KEYS)}"
        for key in raw
        if key not in TOP_LEVEL_KEYS
    ]
    known = {k: v for k, v in raw.items() if k in TOP_LEVEL_KEYS}
    try:
        config = StackConfig.model_validate(known)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
        config = None
    if config is not None:
        problems.extend(f"{NAMESPACE}:{key}: {message}" for key, message in stack_problems(config, project_dir))
    problems.extend(
        f"{NAMESPACE}:{key}: {message}"
        for key, message in webhook_secrecy_problems(known.get(WEBHOOKS_KEY), secret_keys)
    )
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def _path(loc: tuple[Any, ...]) -> str:
    text = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for listing allowed keys)."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = next(
            (f for name, f in model.model_fields.items() if part in (name, f.alias)), None
        )
        if field is None:
            return model
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is not None:
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[-1] if args else None
    return annotation


def _got(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f" (got a {'mapping' if isinstance(value, dict) else 'list'})"
    return f" (got {json.dumps(value)})"


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    message = error["msg"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = (
            ", ".join(f.alias or n for n, f in owner.model_fields.items()) if owner else "see docs/config.md"
        )
        return f"{_path(loc)}: unknown key; allowed keys: {allowed}"
    if kind == "missing":
        return f"{_path(loc)}: required key is missing"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        return f"{_path(loc)}: {message}"
    return f"{_path(loc)}: {message}{_got(error.get('input'))}"


# Fields whose values Pulumi hands over as plain strings; everything else is
# structured config, which the Pulumi CLI passes to the program as JSON text.
_STRING_KEYS = frozenset({"environment", "location", "prefix", "uniqueSuffix"})


def raw_from_pulumi_values(values: Mapping[str, str]) -> dict[str, Any]:
    """Decode config values as the Pulumi engine passes them to a program
    (``{"key": "text"}``, structured values as JSON text)."""
    raw: dict[str, Any] = {}
    for key, text in values.items():
        if key in _STRING_KEYS or not isinstance(text, str):
            raw[key] = text
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raw[key] = text
    return raw


def load_from_pulumi() -> StackConfig:
    """Read and validate the ``azml:`` namespace inside a running Pulumi program."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    values: dict[str, str] = {}
    # The engine passes every config value through the runtime's config map
    # (or PULUMI_CONFIG when launched by the CLI); reading it whole is the only
    # way to notice a misspelt key instead of silently using a default.
    sources = [runtime_config.get_config_env(), runtime_config.CONFIG.get()]
    for source in sources:
        for key, value in source.items():
            if key.startswith(prefix):
                values[key[len(prefix):]] = value
    # Which keys are secrets arrives like the values: in the environment
    # (PULUMI_CONFIG_SECRET_KEYS) or with the runtime's config map.
    secret_env = set(runtime_config.get_config_secret_keys_env())
    secret_keys = {
        key for key in values if f"{prefix}{key}" in secret_env or runtime_config.is_config_secret(f"{prefix}{key}")
    }
    return validate_config(raw_from_pulumi_values(values), Path(pulumi.get_root_directory()), secret_keys)
