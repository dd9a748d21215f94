"""The stack as stack policies see it: resources with normalized properties,
and the links between them.

A link (an endpoint to the vault it serves, a diagnostic setting to the
resource it logs) is read from the referencing property when its value is
known; when it is not (ids of resources still to be created are unknown
during ``pulumi preview``, and the engine gives stack policies *outputs*, in
which path parameters like ``resourceUri`` or ``privateEndpointName`` are
absent), the link is read from the property's recorded dependencies: the
resources whose outputs flowed into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .azure import ENVIRONMENT_VERSION, arm_name, base_type, refers_to
from .values import get, has_unknown, known, normalize, strings


@dataclass
class Resource:
    """One resource as a check sees it."""

    type: str
    name: str  # the Pulumi (logical) name
    urn: str
    props: dict[str, Any]
    parent: str | None = None
    dependencies: frozenset[str] = frozenset()
    property_dependencies: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def arm_name(self) -> str | None:
        return arm_name(self.type, self.props)

    @property
    def label(self) -> str:
        """``Vault 'kv-azml-dev-c02cbe' (kv)``: type, Azure name, Pulumi name."""
        arm = self.arm_name
        if self.type == ENVIRONMENT_VERSION:  # an asset version: name:version
            name, version = self.get("name"), self.get("version")
            arm = f"{name}:{version}" if isinstance(name, str) and isinstance(version, str) else None
        kind = self.type.rsplit(":", 1)[-1]
        return f"{kind} {arm!r} ({self.name})" if arm and arm != self.name else f"{kind} {self.name!r}"

    def get(self, path: str) -> Any:
        return get(self.props, path)

    def depends_on(self, other: "Resource", prop: str | None = None) -> bool:
        if prop is None:
            return other.urn in self.dependencies
        return other.urn in self.property_dependencies.get(prop, frozenset())


class Stack:
    """All resources of a stack validation (``StackValidationArgs.resources``)."""

    def __init__(self, resources: Iterable[Any]) -> None:
        self.resources: list[Resource] = []
        for r in resources:
            parent = getattr(r, "parent", None)
            self.resources.append(
                Resource(
                    type=base_type(r.resource_type),
                    name=r.name,
                    urn=r.urn,
                    props=normalize(r.props) if r.props is not None else {},
                    parent=parent.urn if parent is not None else None,
                    dependencies=frozenset(d.urn for d in (getattr(r, "dependencies", None) or [])),
                    property_dependencies={
                        key: frozenset(d.urn for d in deps)
                        for key, deps in (getattr(r, "property_dependencies", None) or {}).items()
                    },
                )
            )
        self.by_urn = {r.urn: r for r in self.resources}

    def of_type(self, *types: str) -> list[Resource]:
        wanted = set(types)
        return [r for r in self.resources if r.type in wanted]

    def linked(self, source: Resource, path: str, target: Resource, *, children: tuple[str, ...] = ()) -> bool:
        """Whether ``source``'s property at ``path`` references ``target``:
        a known id of it (or of a child of a type in ``children``) anywhere in
        the value, or — when the value is unknown or absent — a recorded
        dependency of that property on ``target``."""
        value = get(source.props, path)
        if known(value) and any(refers_to(s, target.type, target.props, children=children) for s in strings(value)):
            return True
        uncertain = not known(value) or has_unknown(value)
        return uncertain and source.depends_on(target, path.split(".")[0])

    def child_of(self, child: Resource, key: str, parent: Resource) -> bool:
        """Whether ``child`` names ``parent`` in its ``key`` input (an
        ``endpointName`` naming an endpoint), or depends on it there."""
        value = child.get(key)
        parent_name = parent.arm_name
        if isinstance(value, str) and parent_name:
            if value.lower() != parent_name.lower():
                return False
            mine, theirs = child.get("workspaceName"), parent.get("workspaceName")
            return not (isinstance(mine, str) and isinstance(theirs, str) and mine.lower() != theirs.lower())
        return child.depends_on(parent, key)
