"""Policy pack configuration applied the way the Pulumi CLI applies
``--policy-pack-config``: start from each policy's own enforcement level,
apply ``all``, then the policy's entry; properties start from the schema's
defaults (the CLI fills them, the SDK does not) and are validated against the
schema the pack advertises."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import jsonschema

from ..errors import ProblemsError
from ..jsonfile import JsonInputError, read_json

LEVELS = ("advisory", "mandatory", "disabled", "remediate")
#: A pack config lists policies and a few properties: a few KB.
MAX_CONFIG_BYTES = 1024 * 1024


class PackConfigError(ProblemsError, ValueError):
    """The config file does not fit the pack; ``problems`` has one line each."""


@dataclass(frozen=True)
class PolicySchema:
    name: str
    enforcement: str  # the policy's own default level
    properties: Mapping[str, Any] = field(default_factory=dict)  # JSON-schema properties
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySetting:
    enforcement: str
    properties: dict[str, Any]


def load_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.exists():
        raise PackConfigError([f"policy config {path}: no such file"])
    try:  # a config file arrives in pull requests: bounded, strict JSON, one line when refused
        document = read_json(path, name=path.name, max_bytes=MAX_CONFIG_BYTES)
    except JsonInputError as error:
        raise PackConfigError([f"policy config {error.problems[0]}"]) from None
    if not isinstance(document, dict):
        raise PackConfigError([f"policy config {path.name}: must be a JSON object keyed by policy name"])
    return document


def reconcile(schemas: Mapping[str, PolicySchema], config: Mapping[str, Any], source: str = "config") -> dict[str, PolicySetting]:
    """Effective enforcement level and properties of every policy."""
    problems: list[str] = []

    def level_of(key: str, value: Any) -> str | None:
        if isinstance(value, str) and value in LEVELS:
            return value
        problems.append(f"{source}: {key}: enforcement level must be one of {', '.join(LEVELS)} (got {value!r})")
        return None

    unknown = [k for k in config if k != "all" and k not in schemas]
    problems += [f"{source}: {k}: no such policy in the pack (policies: {', '.join(sorted(schemas))})" for k in unknown]
    everything = level_of("all", config["all"]) if "all" in config else None

    settings: dict[str, PolicySetting] = {}
    for name, schema in schemas.items():
        level = everything or schema.enforcement
        properties = {key: spec["default"] for key, spec in schema.properties.items() if isinstance(spec, dict) and "default" in spec}
        entry = config.get(name)
        if isinstance(entry, str):
            level = level_of(name, entry) or level
        elif isinstance(entry, dict):
            if "enforcementLevel" in entry:
                level = level_of(f"{name}.enforcementLevel", entry["enforcementLevel"]) or level
            properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        elif entry is not None:
            problems.append(f"{source}: {name}: must be an enforcement level or an object")
        validator = jsonschema.Draft7Validator(
            {"type": "object", "properties": dict(schema.properties), "required": list(schema.required)}
        )
        for error in validator.iter_errors(properties):
            where = ".".join(str(p) for p in error.absolute_path) or "(properties)"
            problems.append(f"{source}: {name}.{where}: {error.message}")
        settings[name] = PolicySetting(level, properties)
    if problems:
        raise PackConfigError(problems)
    return settings
