"""Plans from JSON documents: ``pulumi preview --json`` output, and our own plan.json.

``pulumi preview --json`` prints one ``PreviewDigest`` (pulumi
``pkg/backend/display/json.go``)::

    {"config": {...}, "steps": [{"op": "create", "urn": "...", "provider": "...",
      "oldState": {...}?, "newState": {"urn", "custom", "type", "inputs", "outputs",
      "parent", "protect", "dependencies", "propertyDependencies", ...}?,
      "diffReasons": [...]?, "detailedDiff": {...}}],
     "diagnostics": [...], "duration": 0, "changeSummary": {"create": 3}}

Secrets are already masked there as ``"[secret]"``; values the engine does
not know yet (outputs of resources still to be created) appear as the
sentinel ``04da6b54-80e4-46f7-96ec-b56ff0331ba9`` and become ``"[unknown]"``
here, as in our plan. Every step whose resource exists after the deployment
(``same``, ``create``, ``update``, ``replace``, ``import``...) becomes a
:class:`~azml.plan.model.PlannedResource` from its ``newState``; deletes and
reads do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plan.model import UNKNOWN_MARK, Plan, PlannedResource

#: Pulumi's serialized stand-in for a computed (unknown) value.
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

#: Step operations after which the resource exists with its newState.
KEPT_OPS = frozenset(
    {"same", "create", "update", "replace", "create-replacement", "import", "import-replacement", "refresh"}
)


class PlanDocumentError(ValueError):
    """The document is not a preview digest (or plan.json) we can read."""


def _unknowns(value: Any) -> Any:
    if isinstance(value, str):
        return UNKNOWN_MARK if value == UNKNOWN_SENTINEL else value
    if isinstance(value, list):
        return [_unknowns(v) for v in value]
    if isinstance(value, dict):
        # "__defaults" and friends are engine bookkeeping, not inputs.
        return {k: _unknowns(v) for k, v in value.items() if not k.startswith("__")}
    return value


def _parse_urn(urn: str) -> tuple[str, str, str]:
    """(stack, project, name) of ``urn:pulumi:<stack>::<project>::<type chain>::<name>``."""
    if not urn.startswith("urn:pulumi:"):
        raise PlanDocumentError(f"not a Pulumi URN: {urn!r}")
    parts = urn[len("urn:pulumi:") :].split("::")
    if len(parts) < 4:
        raise PlanDocumentError(f"not a Pulumi URN: {urn!r}")
    return parts[0], parts[1], "::".join(parts[3:])


def plan_from_preview(document: Any) -> Plan:
    """The resources a ``pulumi preview --json`` digest would leave in place, as a plan."""
    if not isinstance(document, Mapping) or not isinstance(document.get("steps"), list):
        raise PlanDocumentError("expected the JSON object `pulumi preview --json` prints, with a `steps` list")
    resources: dict[str, PlannedResource] = {}
    stack = project = None
    for number, step in enumerate(document["steps"]):
        if not isinstance(step, Mapping):
            raise PlanDocumentError(f"steps[{number}] is not an object")
        op = step.get("op")
        state = step.get("newState")
        if op not in KEPT_OPS or not isinstance(state, Mapping):
            continue
        urn = state.get("urn") or step.get("urn")
        if not isinstance(urn, str) or not isinstance(state.get("type"), str):
            raise PlanDocumentError(f"steps[{number}].newState needs `urn` and `type`")
        stack, project, name = _parse_urn(urn)
        inputs = state.get("inputs") or {}
        if not isinstance(inputs, Mapping):
            raise PlanDocumentError(f"steps[{number}].newState.inputs is not an object")
        options: dict[str, Any] = {}
        for key in ("protect", "ignoreChanges", "retainOnDelete", "deletedWith", "provider"):
            if state.get(key):
                options[key] = state[key]
        resources[urn] = PlannedResource(
            urn=urn,
            type=state["type"],
            name=name,
            custom=bool(state.get("custom")),
            parent=state.get("parent") or None,
            dependencies=list(state.get("dependencies") or []),
            property_dependencies={k: list(v or []) for k, v in (state.get("propertyDependencies") or {}).items()},
            inputs=_unknowns(dict(inputs)),
            options=options,
        )
    if not resources:
        raise PlanDocumentError("the preview has no step that creates, updates or keeps a resource")
    return Plan(project=project or "", stack=stack or "", resources=list(resources.values()))


def plan_from_plan_json(document: Any) -> Plan:
    """Read back the plan.json that ``azml plan`` writes."""
    if not isinstance(document, Mapping) or not isinstance(document.get("resources"), list):
        raise PlanDocumentError("expected an azml plan.json with a `resources` list")
    try:
        resources = [
            PlannedResource(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                custom=bool(r["custom"]),
                parent=r.get("parent"),
                dependencies=list(r.get("dependencies") or []),
                property_dependencies=dict(r.get("propertyDependencies") or {}),
                inputs=dict(r.get("inputs") or {}),
                options=dict(r.get("options") or {}),
            )
            for r in document["resources"]
        ]
    except (KeyError, TypeError) as error:
        raise PlanDocumentError(f"a resource of the plan lacks {error}") from None
    return Plan(
        project=str(document.get("project", "")),
        stack=str(document.get("stack", "")),
        resources=resources,
        outputs=dict(document.get("outputs") or {}),
    )
