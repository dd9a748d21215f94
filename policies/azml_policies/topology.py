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

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Hashable, Iterable

from .azure import ENVIRONMENT_VERSION, arm_name, base_type, own_id, refers_to_id
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
    #: The ``ignoreChanges`` resource option (property paths Pulumi leaves to Azure).
    ignore_changes: tuple[str, ...] = ()
    #: The ``protect`` resource option (Pulumi refuses to delete or replace it).
    protect: bool = False

    @cached_property  # props never change once read
    def arm_name(self) -> str | None:
        return arm_name(self.type, self.props)

    @cached_property
    def own_id(self) -> tuple[str | None, bool]:
        """What references to it are matched against (:func:`~azml_policies.azure.own_id`)."""
        return own_id(self.type, self.props)

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
    """All resources of a stack validation (``StackValidationArgs.resources``),
    indexed once (by type, URN, ARM name and the last segment of their ARM
    id) so that link lookups are dict hits rather than scans of the stack.
    Read-only once built: checks never change a resource.
    """

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
                    ignore_changes=tuple(getattr(getattr(r, "opts", None), "ignore_changes", None) or ()),
                    protect=bool(getattr(getattr(r, "opts", None), "protect", False)),
                )
            )
        self.by_urn = {r.urn: r for r in self.resources}
        self._position = {id(r): i for i, r in enumerate(self.resources)}
        self._by_type: dict[str, list[Resource]] = defaultdict(list)
        self._all_by_urn: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            self._by_type[r.type].append(r)
            self._all_by_urn[r.urn].append(r)
        self._memo: dict[Hashable, Any] = {}

    # ------------------------------------------------------------------ lookups

    def memo(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per stack (an index a check derives from it)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def in_order(self, resources: Iterable[Resource]) -> list[Resource]:
        """``resources`` (of this stack) without repeats, in stack order."""
        unique = {id(r): r for r in resources}
        return sorted(unique.values(), key=lambda r: self._position[id(r)])

    def of_type(self, *types: str) -> list[Resource]:
        if len(types) == 1:
            return list(self._by_type.get(types[0], ()))
        return self.in_order(r for t in set(types) for r in self._by_type.get(t, ()))

    def with_urns(self, urns: Iterable[str]) -> list[Resource]:
        """The resources with these URNs, in stack order."""
        return self.in_order(r for urn in urns for r in self._all_by_urn.get(urn, ()))

    def named(self, name: str) -> list[Resource]:
        """Resources whose ARM name is ``name`` (compared with ``str.lower``), in stack order."""
        index = self.memo("by-arm-name", self._index_arm_names)
        return list(index.get(name.lower(), ()))

    def _index_arm_names(self) -> dict[str, list[Resource]]:
        index: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            if r.arm_name:
                index[r.arm_name.lower()].append(r)
        return index

    def _index_id_segments(self) -> dict[str, list[Resource]]:
        """Resources by the last segment of the id :func:`refers_to` matches
        them by. A reference to one has that segment as one of its own."""
        index: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            own = r.own_id[0]
            if own:
                index[own.rsplit("/", 1)[-1]].append(r)
        return index

    # ------------------------------------------------------------------ links

    def linked(self, source: Resource, path: str, target: Resource, *, children: tuple[str, ...] = ()) -> bool:
        """Whether ``source``'s property at ``path`` references ``target``:
        a known id of it (or of a child of a type in ``children``) anywhere in
        the value, or — when the value is unknown or absent — a recorded
        dependency of that property on ``target``."""
        return bool(self.links(source, path, children=children, among=[target]))

    def links(
        self, source: Resource, path: str, *, children: tuple[str, ...] = (), among: list[Resource] | None = None
    ) -> list[Resource]:
        """Every resource ``source`` is :meth:`linked` to at ``path`` (of
        ``among``, by default the stack), in stack order."""
        value = get(source.props, path)
        references = [s for s in strings(value) if s] if known(value) else []
        uncertain = not known(value) or has_unknown(value)
        dependencies = source.property_dependencies.get(path.split(".")[0], frozenset()) if uncertain else frozenset()
        if among is None:  # candidates: by id segment (see _index_id_segments) and by dependency
            segments = self.memo("by-id-segment", self._index_id_segments)
            candidates = [t for s in references for seg in set(s.rstrip("/").lower().split("/")) for t in segments.get(seg, ())]
            candidates += [t for urn in dependencies for t in self._all_by_urn.get(urn, ())]
            among = self.in_order(candidates)
        return [
            t
            for t in among
            if any(refers_to_id(s, *t.own_id, children=children) for s in references) or t.urn in dependencies
        ]

    def linking(self, target: Resource, source_types: tuple[str, ...], path: str, *, children: tuple[str, ...] = ()) -> list[Resource]:
        """The resources of ``source_types`` :meth:`linked` to ``target`` at ``path``, in stack order."""
        index = self.memo(("linking", source_types, path, children), lambda: self._reverse_links(source_types, path, children))
        return list(index.get(id(target), ()))

    def _reverse_links(self, source_types: tuple[str, ...], path: str, children: tuple[str, ...]) -> dict[int, list[Resource]]:
        index: dict[int, list[Resource]] = defaultdict(list)
        for source in self.of_type(*source_types):
            for target in self.links(source, path, children=children):
                index[id(target)].append(source)
        return index

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

    def children(self, parent: Resource, child_types: tuple[str, ...], key: str) -> list[Resource]:
        """The resources of ``child_types`` that are :meth:`child_of` ``parent`` by ``key``, in stack order."""
        index = self.memo(("children", child_types, key), lambda: self._index_children(child_types, key))
        return list(index.get(id(parent), ()))

    def _index_children(self, child_types: tuple[str, ...], key: str) -> dict[int, list[Resource]]:
        index: dict[int, list[Resource]] = defaultdict(list)
        for child in self.of_type(*child_types):
            value = child.get(key)
            candidates = list(self.named(value)) if isinstance(value, str) else []
            candidates += self.with_urns(child.property_dependencies.get(key, ()))
            for parent in self.in_order(candidates):
                if self.child_of(child, key, parent):
                    index[id(parent)].append(child)
        return index
