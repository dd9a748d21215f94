"""Reads the serving stack policies share: an online endpoint's deployments
and traffic routings, traffic maps with their shares as numbers, the
deployments with live traffic, and whether an alert, monitor or autoscale
setting is enabled.

Used by :mod:`~azml_policies.stack_monitoring` and
:mod:`~azml_policies.stack_serving`. Unknown values stay unknown: a traffic
map that is itself unknown reads as ``None``, an unknown share as ``UNKNOWN``.
"""

from __future__ import annotations

from typing import Any

from .azure import ENDPOINT_ROUTING, ONLINE_DEPLOYMENT, ONLINE_ENDPOINT
from .topology import Resource, Stack
from .values import UNKNOWN, as_bool, as_number, known, same, unwrap


def deployments_of(stack: Stack, endpoint: Resource) -> list[Resource]:
    return stack.children(endpoint, (ONLINE_DEPLOYMENT,), "endpointName")


def routings_of(stack: Stack, endpoint: Resource) -> list[Resource]:
    return [r for r in stack.linking(endpoint, (ENDPOINT_ROUTING,), "endpointId") if not same(r.get("kind"), "batch")]


def endpoint_of_routing(stack: Stack, routing: Resource) -> Resource | None:
    for endpoint in stack.links(routing, "endpointId"):
        if endpoint.type == ONLINE_ENDPOINT:
            return endpoint
    return None


def traffic_shares(value: Any) -> dict[str, Any] | None:
    """A traffic map with numbers (UNKNOWN where unknown), or None if the map itself is unknown."""
    value = unwrap(value)
    if value is UNKNOWN:
        return None
    if not isinstance(value, dict):
        return {}
    return {name: as_number(share) for name, share in value.items()}


def live_deployments(stack: Stack, endpoint: Resource) -> set[str] | None:
    """Names of the endpoint's deployments with live traffic; None when unknown."""
    live: set[str] = set()
    for routing in routings_of(stack, endpoint):
        split = traffic_shares(routing.get("traffic"))
        if split is None or any(v is UNKNOWN for v in split.values()):
            return None
        live |= {name for name, share in split.items() if known(share) and share > 0}
    return live


def named(deployments: list[Resource], name: str) -> list[Resource]:
    return [d for d in deployments if same(d.arm_name, name)]


def enabled(resource: Resource, path: str = "enabled") -> bool:
    return as_bool(resource.get(path)) is not False
