"""Locate the Pulumi project and read a stack's ``Pulumi.<stack>.yaml``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..plan.model import SECRET_MARK
from ..yamlfile import PathParts, YamlInputError, key_path, read_yaml
from .loader import NAMESPACE, ConfigError, validate_config
from .schema import StackConfig

#: What an encrypted value (``pulumi config set --secret``) becomes offline:
#: its ciphertext cannot be decrypted without the stack's secrets provider.
SECRET_PLACEHOLDER = SECRET_MARK


@dataclass(frozen=True)
class StackFile:
    project_dir: Path
    project: str
    stack: str
    path: Path
    #: Every config key, fully namespaced (``azml:location``), values as YAML typed them.
    config: dict[str, Any]
    secret_keys: list[str] = field(default_factory=list)
    #: The file's ``config`` mapping as written (namespaced keys, ``secure:`` leaves kept):
    #: which leaves of a secret key are secret (azml.config.secrets).
    stack_config: dict[str, Any] = field(default_factory=dict)

    def namespace(self, name: str = NAMESPACE) -> dict[str, Any]:
        prefix = f"{name}:"
        return {k[len(prefix):]: v for k, v in self.config.items() if k.startswith(prefix)}


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory holding ``Pulumi.yaml``, from ``start`` (default cwd)
    upwards, falling back to the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    installed_from = Path(__file__).resolve().parents[2]
    if (installed_from / "Pulumi.yaml").is_file():
        return installed_from
    raise ConfigError([f"no Pulumi.yaml found in {here} or its parents"])


def as_config_values(value: Any) -> Any:
    """Pulumi keeps YAML timestamps as the text written (config is JSON), so
    ``startDate: 2026-12-01`` stays a string; the YAML library would make a date."""
    if isinstance(value, dict):
        return {k: as_config_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_config_values(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _stack_key(parts: PathParts) -> str:
    """A key under ``config`` named as the config errors name it
    (``azml:network.subnets``), any other by its path in the file."""
    if len(parts) > 1 and parts[0] == "config":
        return key_path(parts[1:])
    return key_path(parts)


def _load_yaml(path: Path, what: str = "stack file") -> Any:
    """A stack file (or ``Pulumi.yaml``) read by :func:`azml.yamlfile.read_yaml`:
    a stack file arrives in pull requests, so it is refused in one line,
    before anything is built, when it is too large, not UTF-8, nested too
    deep, expands aliases too far, or holds anything JSON cannot (tags,
    non-string keys, infinite numbers)."""
    try:
        return as_config_values(read_yaml(path, what=what, describe=_stack_key))
    except YamlInputError as error:
        raise ConfigError(error.problems) from None


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def read_stack_file(stack: str, project_dir: Path | None = None) -> StackFile:
    """Read ``stack`` — a stack name (``Pulumi.<stack>.yaml`` beside ``Pulumi.yaml``)
    or the path of a stack config file."""
    project_dir = project_dir or find_project_dir()
    as_path = Path(stack)
    if as_path.suffix in (".yaml", ".yml") or "/" in stack:
        path = as_path
        name = as_path.name
        name = name[len("Pulumi."):] if name.startswith("Pulumi.") else name
        name = name.rsplit(".", 1)[0]
    else:
        path = project_dir / f"Pulumi.{stack}.yaml"
        name = stack
    if not path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise ConfigError([f"stack {stack!r}: no stack file {path} (stacks beside Pulumi.yaml: {known})"])

    project_doc = _load_yaml(project_dir / "Pulumi.yaml", "project file") or {}
    project = project_doc.get("name", NAMESPACE) if isinstance(project_doc, dict) else NAMESPACE

    document = _load_yaml(path)
    if document is None:
        raise ConfigError([f"{path.name}: holds no YAML document (empty, or only comments); a stack file is a mapping with a 'config' key"])
    if not isinstance(document, dict):
        raise ConfigError([f"{path.name}: must be a mapping with a 'config' key"])
    raw_config = document.get("config") or {}
    if not isinstance(raw_config, dict):
        raise ConfigError([f"{path.name}: config: must be a mapping of 'namespace:key: value'"])

    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    written: dict[str, Any] = {}
    for key, value in raw_config.items():
        # Pulumi scopes a key without a namespace to the project.
        full_key = key if ":" in str(key) else f"{project}:{key}"
        written[full_key] = value
        value, secure = _mask_secure(value)
        if secure:
            secret_keys.append(full_key)
        config[full_key] = value
    return StackFile(project_dir, project, name, path.resolve(), config, secret_keys, written)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _mask_secure(value: Any) -> tuple[Any, bool]:
    """The value with every ``secure:`` leaf (``pulumi config set --secret``,
    also inside objects set with ``--path``) replaced by the placeholder, and
    whether it held any: Pulumi then treats the whole key as a secret."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        masked = {k: _mask_secure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in masked.items()}, any(s for _, s in masked.values())
    if isinstance(value, list):
        masked_items = [_mask_secure(v) for v in value]
        return [v for v, _ in masked_items], any(s for _, s in masked_items)
    return value, False


def load_stack(stack: str, project_dir: Path | None = None) -> tuple[StackFile, StackConfig]:
    """Read and validate a stack's ``azml:`` config (files it names must exist
    under the project). Raises :class:`ConfigError` with one line per problem."""
    stack_file = read_stack_file(stack, project_dir)
    config = validate_config(as_config_values(stack_file.namespace()), stack_file.project_dir)
    return stack_file, config
