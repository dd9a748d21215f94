"""Stack policies on what online and batch endpoints serve: traffic splits
Azure accepts, enough instances behind every deployment with live traffic,
and serving images and environments from approved sources only.

Endpoints, deployments and their routings are linked through
:mod:`~azml_policies.routing` and :class:`~azml_policies.topology.Stack`
(known ids, or recorded dependencies while ids are unknown). A check that
cannot tell (unknown values, no dependency recorded) reports nothing.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import (
    AUTOSCALE_SETTING,
    BATCH_DEPLOYMENT,
    ENDPOINT_ROUTING,
    ENVIRONMENT_VERSION,
    ONLINE_DEPLOYMENT,
    ONLINE_ENDPOINT,
    REGISTRY,
)
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

# --------------------------------------------------------------------------- approved images


def _registry_hosts(stack: Stack) -> set[str]:
    hosts: set[str] = set()
    for registry in stack.of_type(REGISTRY):
        login = registry.get("loginServer")
        if isinstance(login, str) and login:
            hosts.add(login.lower().rstrip("/") + "/")
        name = registry.arm_name
        if name:
            hosts.add(f"{name.lower()}.azurecr.io/")
    return hosts


def _floating(image: str) -> bool:
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[-1] == "latest"


def _approved_images(stack: Stack, config: dict[str, Any]) -> Finding:
    prefixes = [p.lower() for p in config["allowedImagePrefixes"]]
    if config["allowStackRegistries"]:
        prefixes += sorted(_registry_hosts(stack))
    allowed = "; ".join(prefixes) or "none"
    environments = stack.of_type(ENVIRONMENT_VERSION)
    for env in environments:
        if exempt(config, env.name):
            continue
        image = env.get("properties.image")
        if isinstance(image, str):
            if not image.lower().startswith(tuple(prefixes)):
                yield env.urn, f"{env.label}: properties.image {image!r} is not from an approved registry ({allowed})"
            elif not config["allowLatestTag"] and _floating(image):
                yield env.urn, f"{env.label}: properties.image {image!r} floats (latest or no tag); pin a version tag or digest"
        elif image is MISSING and isinstance(env.get("properties.build"), dict) and not config["allowDockerBuild"]:
            yield env.urn, (
                f"{env.label}: built from a Docker build context (properties.build); its base image cannot be "
                "verified — build the image in CI and reference it with properties.image"
            )
    env_prefixes = tuple(p.lower() for p in config["allowedEnvironmentPrefixes"])
    for deployment in stack.of_type(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT):
        if exempt(config, deployment.name, deployment.arm_name):
            continue
        env_id = deployment.get("properties.environmentId")
        if not isinstance(env_id, str):
            continue  # unknown or unset: the environment (if declared here) is checked above
        if env_id.lower().startswith(env_prefixes):
            continue
        if any(env.type == ENVIRONMENT_VERSION for env in stack.links(deployment, "properties.environmentId")):
            continue
        yield deployment.urn, (
            f"{deployment.label}: properties.environmentId {env_id!r} is neither an environment declared in this "
            f"stack nor under an approved prefix ({', '.join(config['allowedEnvironmentPrefixes']) or 'none'})"
        )


approved_images = stack_policy(
    PolicyInfo(
        name="azml-approved-images",
        description=(
            "Serving environments use images from approved registries only: Microsoft's Azure ML base images or "
            "this stack's own registry."
        ),
        checklist=checks.APPROVED_IMAGES,
        severity=Severity.HIGH,
        remediation=(
            "Build serving images in CI, push them to the stack's registry and reference them as "
            "environment.image (repository:tag), or use an approved mcr.microsoft.com/azureml/ base image with a "
            "conda spec; reference only environments declared in the stack."
        ),
        resource_types=(ENVIRONMENT_VERSION, REGISTRY, ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT),
        properties=(
            "EnvironmentVersion.properties.image",
            "EnvironmentVersion.properties.build",
            "Registry.registryName",
            "Registry.loginServer",
            "OnlineDeployment.properties.environmentId",
            "BatchDeployment.properties.environmentId",
        ),
        config={
            "allowedImagePrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["mcr.microsoft.com/azureml/"],
                "description": "Image prefixes (registry host and path) that are approved.",
            },
            "allowStackRegistries": {
                "type": "boolean",
                "default": True,
                "description": "Images from container registries declared in this stack (<name>.azurecr.io/) are approved.",
            },
            "allowedEnvironmentPrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["azureml://registries/azureml/"],
                "description": "environmentId prefixes approved without an environment in the stack (curated environments).",
            },
            "allowLatestTag": {
                "type": "boolean",
                "default": True,
                "description": "Tolerate images tagged latest or untagged (they can change after scanning).",
            },
            "allowDockerBuild": {
                "type": "boolean",
                "default": False,
                "description": "Tolerate environments built from a Docker context (base image unverifiable).",
            },
        },
        kind="stack",
        tags=("serving", "supply-chain"),
    ),
    _approved_images,
)

POLICIES = [traffic_split_valid, deployment_min_instances, approved_images]
