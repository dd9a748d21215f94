"""A mock resource monitor that records every registration faithfully.

Pulumi's stock ``MockMonitor`` keeps only the URN and the mocked state. The
plan needs what the engine sees: the type, parent, dependencies, property
dependencies and resource options of each ``RegisterResourceRequest``, and
the refusal of a duplicate URN that the real engine performs.
"""

from __future__ import annotations

import threading
from typing import Any

from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import UNKNOWN, _special_resource_sig, _special_secret_sig, _special_sig_key

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

    def __init__(self, mocks: Any) -> None:
        super().__init__(mocks)
        self.records: list[PlannedResource] = []
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
        inputs = _plain(json_format.MessageToDict(request.object)) if request.type != "pulumi:pulumi:Stack" else {}
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

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = _plain(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)
