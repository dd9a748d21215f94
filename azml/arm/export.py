"""Export an offline plan as an ARM deployment template (for checkov).

One ARM resource per custom azure-native resource of the plan; components,
the stack and Pulumi dynamic resources (our traffic routing) have no ARM
shape and are left out. Each resource is::

    {"type", "apiVersion", "name", "scope"?, "location"?, "tags"?, "sku"?,
     "identity"?, "kind"?, "zones"?, "properties", "dependsOn"?}

* ``type`` comes from :data:`azml.plan.arm.ARM_TYPES`, ``apiVersion`` from the
  SDK class (:func:`azml.arm.api_versions.api_version`).
* ``name`` is ARM's: child resources carry their parents' names
  (``vnet/snet``, ``account/default/container``).
* extension resources (diagnostic settings, role assignments and
  definitions, locks, policy assignments, budgets) carry ``scope``, the id
  of what they attach to.
* ``properties`` holds every other input, with azure-native's client names
  turned back into REST names (:mod:`azml.arm.mapping`); for types whose SDK
  input is already a ``properties`` object, that object.
* ``dependsOn`` lists the exported resources this one depends on, as
  ``resourceId()``-style expressions; a dependency on a component stands for
  the exported resources inside it. The resource group itself is the target
  of the deployment, so nothing lists it.

Secret and unknown values keep the plan's ``"[secret]"`` / ``"[unknown]"``
marks. Null inputs are left out. The output is deterministic: plan order.

The resource group is exported too (its tags and location are checked like
any other resource's), although a real deployment would create it from a
subscription-level template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..plan.arm import ArmType, arm_type_of
from ..plan.model import Plan, PlannedResource
from .api_versions import api_version
from .mapping import TOP_LEVEL_KEYS, nest_subresources, rename_properties, shape_of

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
CONTENT_VERSION = "1.0.0.0"

RESOURCE_GROUP_TOKEN = "azure-native:resources:ResourceGroup"
_DYNAMIC_PREFIX = "pulumi-python:dynamic"
_STACK_TOKEN = "pulumi:pulumi:Stack"


def is_exported(resource: PlannedResource) -> bool:
    """Custom azure-native resources are exported; components, the stack and dynamic resources are not."""
    return resource.custom and resource.type.startswith("azure-native:")


def _autoname(logical_name: str) -> str:
    # Same stand-in as the plan's mocks (azml.plan.mocks) when the program leaves the name to the provider.
    from ..plan.mocks import autoname as mock_autoname

    return mock_autoname(logical_name)


@dataclass(frozen=True)
class ExportedResource:
    """Where a plan resource went in the template."""

    urn: str
    pulumi_name: str
    token: str
    arm_type: str
    arm_name: str
    index: int

    @property
    def checkov_id(self) -> str:
        # checkov names ARM resources "<type>.<name>".
        return f"{self.arm_type}.{self.arm_name}"


def _clean(value: Any) -> Any:
    """Drop null members (ARM omits unset properties); keep everything else as planned."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _own_name(resource: PlannedResource, row: ArmType) -> str:
    name = resource.inputs.get(row.name_key)
    return str(name) if name not in (None, "") else _autoname(resource.name)


def arm_name(resource: PlannedResource) -> str:
    """ARM's name for the resource: parents' names and its own, joined by ``/``."""
    row = arm_type_of(resource.type)
    if row.scope_key is not None:
        return _own_name(resource, row)
    segments = [key[1:] if key.startswith("=") else str(resource.inputs.get(key)) for key in row.parent_keys]
    return "/".join([*segments, _own_name(resource, row)])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reference(resource: PlannedResource) -> str:
    """A ``dependsOn`` entry for the resource, as ARM template expressions write it."""
    row = arm_type_of(resource.type)
    if resource.type == RESOURCE_GROUP_TOKEN:
        return f"[subscriptionResourceId('Microsoft.Resources/resourceGroups', {_quote(_own_name(resource, row))})]"
    if row.scope_key is not None:
        scope = str(resource.inputs.get(row.scope_key, ""))
        return f"[extensionResourceId({_quote(scope)}, {_quote(row.arm_type)}, {_quote(_own_name(resource, row))})]"
    segments = ", ".join(_quote(s) for s in arm_name(resource).split("/"))
    return f"[resourceId({_quote(row.arm_type)}, {segments})]"


def _properties(resource: PlannedResource, row: ArmType) -> dict[str, Any]:
    shape = shape_of(resource.type)
    skipped = {row.name_key, "resourceGroupName", *(k for k in row.parent_keys if not k.startswith("="))}
    if row.scope_key is not None:
        skipped.add(row.scope_key)
    top_level = set(TOP_LEVEL_KEYS) - set(shape.in_properties)
    rest = {k: v for k, v in resource.inputs.items() if k not in skipped and k not in top_level}
    if shape.properties_input:
        given = rest.pop("properties", None)
        properties = dict(given) if isinstance(given, dict) else {}
        # Anything else the SDK took beside `properties` (none today) still belongs to the resource body.
        for key, value in rest.items():
            properties.setdefault(key, value)
    else:
        properties = rest
    properties = rename_properties(resource.type, properties)
    return nest_subresources(resource.type, properties)


def _arm_resource(resource: PlannedResource, depends_on: list[str]) -> dict[str, Any]:
    row = arm_type_of(resource.type)
    shape = shape_of(resource.type)
    body: dict[str, Any] = {
        "type": row.arm_type,
        "apiVersion": api_version(resource.type),
        "name": arm_name(resource),
    }
    if row.scope_key is not None and resource.inputs.get(row.scope_key) is not None:
        body["scope"] = resource.inputs[row.scope_key]
    for key in TOP_LEVEL_KEYS:
        if key in shape.in_properties:
            continue
        value = resource.inputs.get(key)
        if value is not None:
            body[key] = value
    body["properties"] = _properties(resource, row)
    if depends_on:
        body["dependsOn"] = depends_on
    return _clean(body)


def _dependency_closure(plan: Plan, urns: Iterable[str], exported: set[str]) -> set[str]:
    """Exported resources behind ``urns``: components stand for their exported descendants."""
    found: set[str] = set()
    pending = list(urns)
    seen: set[str] = set()
    while pending:
        urn = pending.pop()
        if urn in seen:
            continue
        seen.add(urn)
        if urn in exported:
            found.add(urn)
            continue
        try:
            resource = plan.by_urn(urn)
        except KeyError:
            continue
        if not resource.custom:
            pending.extend(child.urn for child in plan.children(urn))
    return found


def export_resources(plan: Plan) -> tuple[dict[str, Any], list[ExportedResource]]:
    """The template and, per ARM resource (in template order), the plan resource it came from."""
    selected = [r for r in plan.resources if is_exported(r)]
    exported = {r.urn for r in selected}
    groups = {r.urn for r in selected if r.type == RESOURCE_GROUP_TOKEN}
    by_urn = {r.urn: r for r in selected}
    resources: list[dict[str, Any]] = []
    index: list[ExportedResource] = []
    for resource in selected:
        wanted = set(resource.dependencies)
        for urns in resource.property_dependencies.values():
            wanted.update(urns)
        deps = _dependency_closure(plan, wanted, exported) - groups - {resource.urn}
        depends_on = sorted({reference(by_urn[urn]) for urn in deps})
        body = _arm_resource(resource, depends_on)
        index.append(
            ExportedResource(
                urn=resource.urn,
                pulumi_name=resource.name,
                token=resource.type,
                arm_type=body["type"],
                arm_name=body["name"],
                index=len(resources),
            )
        )
        resources.append(body)
    template = {
        "$schema": SCHEMA,
        "contentVersion": CONTENT_VERSION,
        "metadata": {
            "generator": "azml (azml.arm.export) from the offline plan",
            "project": plan.project,
            "stack": plan.stack,
        },
        "resources": resources,
    }
    return template, index


def export_template(plan: Plan) -> dict[str, Any]:
    """The plan as an ARM deployment template (a JSON-ready dict)."""
    template, _ = export_resources(plan)
    return template


def render_template(template: dict[str, Any]) -> str:
    """The template as written to ``template.json``: two-space indent, one resource object per block."""
    return json.dumps(template, indent=2, ensure_ascii=False) + "\n"


def resource_line_ranges(text: str) -> list[tuple[int, int]]:
    """1-based (first, last) line of each resource object of a template rendered by :func:`render_template`.

    checkov reports a resource's location as the line range of its object,
    which lets results be traced back to plan resources even when two ARM
    resources share a name (e.g. diagnostic settings on different targets).
    """
    lines = text.splitlines()
    try:
        start = lines.index('  "resources": [')
    except ValueError:
        return []
    ranges: list[tuple[int, int]] = []
    first: int | None = None
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if line == "    {":
            first = number
        elif line in ("    }", "    },") and first is not None:
            ranges.append((first, number))
            first = None
        elif line.startswith("  ]"):
            break
    return ranges
