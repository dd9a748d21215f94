"""The recorded plan: what ``azml plan`` writes to ``plan.json``.

Schema (documented in docs/plan.md, version 1)::

    {
      "schemaVersion": 1,
      "project": "azml", "stack": "dev",
      "resources": [
        {"urn", "type", "name", "custom", "parent", "dependencies",
         "propertyDependencies", "inputs", "options"}
      ],
      "outputs": {...stack exports...},
      "summary": {"total": N, "byType": {"<type token>": n}}
    }

Secret values are replaced by ``"[secret]"``; values not known until deploy
time by ``"[unknown]"``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

SECRET_MARK = "[secret]"
UNKNOWN_MARK = "[unknown]"
SCHEMA_VERSION = 1


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "inputs": self.inputs,
            "options": self.options,
        }


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self, urn: str) -> PlannedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def children(self, urn: str | None) -> Iterator[PlannedResource]:
        return (r for r in self.resources if r.parent == urn)

    def counts_by_type(self) -> dict[str, int]:
        counts = Counter(r.type for r in self.resources if r.type != "pulumi:pulumi:Stack")
        return dict(sorted(counts.items()))

    def summary(self) -> dict[str, Any]:
        counts = self.counts_by_type()
        custom = sum(1 for r in self.resources if r.custom)
        return {
            "total": sum(counts.values()),
            "customResources": custom,
            "componentResources": sum(counts.values()) - custom,
            "byType": counts,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
            "summary": self.summary(),
        }
