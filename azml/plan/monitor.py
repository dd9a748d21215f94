"""A mock resource monitor that records every registration faithfully.

Pulumi's stock ``MockMonitor`` keeps only the URN and the mocked state. The
plan needs what the engine sees: the type, parent, dependencies, property
dependencies and resource options of each ``RegisterResourceRequest``, and
the refusal of a duplicate URN that the real engine performs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator

from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import UNKNOWN, _special_resource_sig, _special_secret_sig, _special_sig_key

from ..config.secrets import revealed
from .model import SECRET_MARK, UNKNOWN_MARK, PlannedResource

# RegisterResourceRequest fields that are resource options, as the engine names them.
_OPTION_FIELDS = {
    "protect": "protect",
    "ignoreChanges": "ignoreChanges",
    "replaceOnChanges": "replaceOnChanges",
    "deleteBeforeReplace": "deleteBeforeReplace",
    "retainOnDelete": "retainOnDelete",
    "additionalSecretOutputs": "additionalSecretOutputs",
    "aliasURNs": "aliases",
    "customTimeouts": "customTimeouts",
    "deletedWith": "deletedWith",
    "provider": "provider",
    "version": "version",
    "importId": "import",
}


_REPEATED_FIELDS = {"ignoreChanges", "replaceOnChanges", "additionalSecretOutputs", "aliasURNs"}


class DuplicateUrnError(RuntimeError):
    pass


def _plain(value: Any) -> Any:
    """JSON-ready copy of a serialized property value: secrets masked, unknowns
    marked, resource references reduced to their URN, whole floats as ints."""
    if isinstance(value, dict):
        signature = value.get(_special_sig_key)
        if signature == _special_secret_sig:
            return SECRET_MARK
        if signature == _special_resource_sig:
            return value.get("urn")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == UNKNOWN:
        return UNKNOWN_MARK
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unmarked_secrets(value: Any, secrets: dict[str, str], path: str = "") -> Iterator[tuple[str, list[str]]]:
    """``(property path, where the secret was set)`` for each plain (not
    secret-wrapped) string of a serialized value that reveals a secret."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return
        for key, item in value.items():
            yield from _unmarked_secrets(item, secrets, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unmarked_secrets(item, secrets, f"{path}[{index}]")
    elif isinstance(value, str):
        where = revealed(value, secrets)
        if where:
            yield path, where


@dataclass(frozen=True)
class SecretLeak:
    """A secret config value that reached the engine unmarked."""

    urn: str
    type: str
    name: str
    path: str  # property path, "(name)" for the resource's own name, "(output)" for a stack export
    keys: tuple[str, ...]  # where the secret was set (``azml:tags.owner``)

    def line(self) -> str:
        keys = ", ".join(self.keys)
        if self.path == "(name)":
            return (
                f"secret config {keys} names the resource {self.type} {self.name!r}: a resource's name is part "
                "of its URN, which Pulumi never encrypts; a value that names resources cannot be a secret"
            )
        place = f"stack output {self.path!r}" if self.type == "pulumi:pulumi:Stack" else f"input {self.path!r}"
        subject = "the stack" if self.type == "pulumi:pulumi:Stack" else f"{self.type} {self.name!r}"
        return (
            f"secret config {keys} reaches {place} of {subject} unmarked: Pulumi would store it "
            "in plain text in the state and show it in previews"
        )


def _options(request: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for field, name in _OPTION_FIELDS.items():
        value = getattr(request, field, None)
        if field == "customTimeouts":
            value = json_format.MessageToDict(value) if request.HasField("customTimeouts") else None
        elif field == "deleteBeforeReplace" and not request.deleteBeforeReplaceDefined:
            value = None
        elif field in _REPEATED_FIELDS:
            value = list(value)
        if value not in (None, "", [], {}, False):
            options[name] = value
    return options


class RecordingMonitor(MockMonitor):
    """Records registrations in order; refuses duplicate URNs."""

    def __init__(self, mocks: Any, secrets: dict[str, str] | None = None) -> None:
        super().__init__(mocks)
        self.records: list[PlannedResource] = []
        #: Secret config values (``{value: where set}``) that must reach the engine marked.
        self.secrets = dict(secrets or {})
        self.leaks: list[SecretLeak] = []
        self.stack_outputs: dict[str, Any] = {}
        self._urns: set[str] = set()
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:
            if urn in self._urns:
                raise DuplicateUrnError(
                    f"duplicate resource URN {urn}: two {request.type} resources named "
                    f"{request.name!r} under the same parent; the Pulumi engine refuses this"
                )
            self._urns.add(urn)
        serialized = json_format.MessageToDict(request.object) if request.type != "pulumi:pulumi:Stack" else {}
        if self.secrets:
            self._check_secrets(urn, request.type, request.name, serialized)
        inputs = _plain(serialized)
        record = PlannedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                key: sorted(set(deps.urns)) for key, deps in request.propertyDependencies.items() if deps.urns
            },
            inputs=inputs,
            options=_options(request),
        )
        with self._lock:
            self.records.append(record)
        return super().RegisterResource(request)

    def _check_secrets(self, urn: str, type_: str, name: str, serialized: Any, names: bool = True) -> None:
        found = [("(name)", revealed(name, self.secrets))] if names and revealed(name, self.secrets) else []
        found += list(_unmarked_secrets(serialized, self.secrets))
        shown = name
        for value in self.secrets:  # never print the secret itself, not even inside a name
            if revealed(shown, {value: ""}):
                shown = shown.replace(value, SECRET_MARK)
        with self._lock:
            self.leaks.extend(SecretLeak(urn, type_, shown, path, tuple(where)) for path, where in found)

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            outputs = json_format.MessageToDict(request.outputs)
            if self.secrets:
                self._check_secrets(request.urn, "pulumi:pulumi:Stack", "", outputs, names=False)
            self.stack_outputs = _plain(outputs)
        return super().RegisterResourceOutputs(request)
