"""Stack policies on what online and batch endpoints serve: traffic splits
Azure accepts and enough instances behind every deployment with live traffic
(what they serve, images and environments, is supply_chain.py's).

Endpoints, deployments and their routings are linked through
:mod:`~azml_policies.routing` and :class:`~azml_policies.topology.Stack`
(known ids, or recorded dependencies while ids are unknown). A check that
cannot tell (unknown values, no dependency recorded) reports nothing.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import AUTOSCALE_SETTING, ENDPOINT_ROUTING, ONLINE_DEPLOYMENT, ONLINE_ENDPOINT
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .routing import deployments_of, enabled, endpoint_of_routing, named, traffic_shares
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_number, get, has_unknown, known, same, show, unwrap

# --------------------------------------------------------------------------- traffic splits


def _traffic(stack: Stack, config: dict[str, Any]) -> Finding:
    for routing in stack.of_type(ENDPOINT_ROUTING):
        if exempt(config, routing.name):
            continue
        declared = unwrap(routing.get("deployments"))
        names = [n for n in declared if isinstance(n, str)] if isinstance(declared, list) and not has_unknown(declared) else None
        if same(routing.get("kind"), "batch"):
            default = routing.get("defaultDeployment")
            if isinstance(default, str) and names is not None and default not in names:
                yield routing.urn, f"{routing.label}: defaultDeployment {default!r} is not one of its deployments {names}"
            continue
        yield from ((routing.urn, f"{routing.label}: {p}") for p in _split_problems(routing, names, config))
        endpoint = endpoint_of_routing(stack, routing)
        if endpoint is None or names is None:
            continue
        existing = deployments_of(stack, endpoint)
        if any(d.arm_name is None for d in existing):
            continue
        for name in names:
            if not named(existing, name):
                yield routing.urn, (
                    f"{routing.label}: deployment {name!r} is not declared for {endpoint.label} in this stack "
                    "(Azure refuses a split naming a missing deployment)"
                )


def _split_problems(routing: Resource, names: list[str] | None, config: dict[str, Any]) -> Iterator[str]:
    traffic = traffic_shares(routing.get("traffic"))
    mirror = traffic_shares(routing.get("mirrorTraffic"))
    if traffic is not None:
        for name, share in sorted(traffic.items()):
            if share is MISSING or (known(share) and (share < 0 or share > 100 or not float(share).is_integer())):
                yield f"traffic.{name} is {show(get(routing.props, ['traffic', name]))}; must be a whole percentage 0..100"
            if names is not None and name not in names:
                yield f"traffic names {name!r}, which is not one of its deployments {names}"
        shares = list(traffic.values())
        if all(known(s) for s in shares):
            total = sum(shares)
            if total not in (0, 100):
                yield f"traffic sums to {show(total)}; must be 0 or 100"
    if mirror is None:
        return
    mirrored = {name: share for name, share in mirror.items() if not known(share) or share != 0}
    if len(mirrored) > 1:
        yield f"mirrorTraffic goes to {len(mirrored)} deployments ({', '.join(sorted(mirrored))}); at most one"
    limit = config["maxMirrorPercent"]
    for name, share in sorted(mirrored.items()):
        if share is MISSING or (known(share) and (share < 0 or share > limit or not float(share).is_integer())):
            yield f"mirrorTraffic.{name} is {show(get(routing.props, ['mirrorTraffic', name]))}; must be a whole percentage 0..{limit}"
        if names is not None and name not in names:
            yield f"mirrorTraffic names {name!r}, which is not one of its deployments {names}"
        live = (traffic or {}).get(name, MISSING)
        if known(live) and live > 0:
            yield f"mirrorTraffic.{name}: {name} has live traffic ({show(live)}%); a deployment cannot get both"


traffic_split_valid = stack_policy(
    PolicyInfo(
        name="azml-traffic-split-valid",
        description=(
            "Every endpoint's traffic split is one Azure accepts: whole percentages summing to 0 or 100 over declared "
            "deployments, mirror to at most one deployment without live traffic."
        ),
        checklist=checks.BASELINE_SAFE_RELEASE,
        severity=Severity.HIGH,
        remediation=(
            "Fix azml:onlineEndpoints[].traffic / mirrorTraffic: values sum to 0 or 100, keys are declared "
            "deployments, mirror at most one deployment at most 50 %, never one with live traffic."
        ),
        resource_types=(ENDPOINT_ROUTING, ONLINE_ENDPOINT, ONLINE_DEPLOYMENT),
        properties=(
            "EndpointRouting.kind",
            "EndpointRouting.endpointId",
            "EndpointRouting.deployments",
            "EndpointRouting.traffic",
            "EndpointRouting.mirrorTraffic",
            "EndpointRouting.defaultDeployment",
            "OnlineDeployment.deploymentName",
            "OnlineDeployment.endpointName",
        ),
        config={
            "maxMirrorPercent": {
                "type": "integer",
                "minimum": 0,
                "maximum": 50,
                "default": 50,
                "description": "Largest mirror share (Azure's limit is 50).",
            }
        },
        kind="stack",
        tags=("serving", "release"),
    ),
    _traffic,
)

# --------------------------------------------------------------------------- instances behind live traffic


def _min_instances(stack: Stack, config: dict[str, Any]) -> Finding:
    minimum = config["minInstances"]
    for routing in stack.of_type(ENDPOINT_ROUTING):
        if same(routing.get("kind"), "batch"):
            continue
        split = traffic_shares(routing.get("traffic"))
        if not split:
            continue
        endpoint = endpoint_of_routing(stack, routing)
        if endpoint is not None:
            candidates = deployments_of(stack, endpoint)
        else:
            candidates = [d for d in stack.with_urns(routing.dependencies) if d.type == ONLINE_DEPLOYMENT]
        for name, share in sorted(split.items()):
            if not known(share) or share <= 0:
                continue
            for deployment in named(candidates, name):
                if exempt(config, deployment.name, deployment.arm_name):
                    continue
                yield from _instance_findings(stack, deployment, share, minimum)


def _instance_findings(stack: Stack, deployment: Resource, share: float, minimum: int) -> Finding:
    capacity = as_number(deployment.get("sku.capacity"))
    if capacity is not UNKNOWN and (capacity if known(capacity) else 1.0) < minimum:
        yield deployment.urn, (
            f"{deployment.label}: sku.capacity is {show(capacity)}{' (Azure default 1)' if not known(capacity) else ''} "
            f"with {show(share)}% live traffic; must be at least {minimum}"
        )
    if same(deployment.get("properties.scaleSettings.scaleType"), "TargetUtilization"):
        floor = as_number(deployment.get("properties.scaleSettings.minInstances"))
        if known(floor) and floor < minimum:
            yield deployment.urn, (
                f"{deployment.label}: properties.scaleSettings.minInstances is {show(floor)} with live traffic; "
                f"must be at least {minimum}"
            )
    for autoscale in stack.linking(deployment, (AUTOSCALE_SETTING,), "targetResourceUri"):
        if not enabled(autoscale):
            continue
        profiles = unwrap(autoscale.get("profiles"))
        for profile in profiles if isinstance(profiles, list) else []:
            floor = as_number(get(profile, "capacity.minimum"))
            if known(floor) and floor < minimum:
                yield deployment.urn, (
                    f"{deployment.label}: autoscale setting {autoscale.arm_name or autoscale.name!r} profile "
                    f"{get(profile, 'name')!r} scales in to {show(floor)} instances; must be at least {minimum}"
                )


deployment_min_instances = stack_policy(
    PolicyInfo(
        name="azml-deployment-min-instances",
        description="Every online deployment with live traffic runs (and autoscales down to) at least the minimum number of instances.",
        checklist=checks.BASELINE_AVAILABILITY,
        severity=Severity.MEDIUM,
        remediation=(
            "Raise instanceCount (sku.capacity) of the deployment — and autoscale.minInstances — to the minimum "
            "before it receives traffic; Azure ML needs two instances to stay up through node upgrades."
        ),
        resource_types=(ENDPOINT_ROUTING, ONLINE_DEPLOYMENT, AUTOSCALE_SETTING),
        properties=(
            "EndpointRouting.traffic",
            "EndpointRouting.endpointId",
            "OnlineDeployment.sku.capacity",
            "OnlineDeployment.properties.scaleSettings.minInstances",
            "AutoscaleSetting.targetResourceUri",
            "AutoscaleSetting.profiles[].capacity.minimum",
        ),
        config={
            "minInstances": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "Instances every deployment with live traffic runs at least.",
            }
        },
        kind="stack",
        tags=("serving", "availability"),
    ),
    _min_instances,
)

POLICIES = [traffic_split_valid, deployment_min_instances]
