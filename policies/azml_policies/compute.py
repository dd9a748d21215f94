"""Azure ML compute (AmlCompute clusters, compute instances): no public IPs,
no SSH from outside, Entra ID only, clusters idle at zero nodes."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import COMPUTE
from .checks import expect_bool, expect_value, info_for, resource_policy
from .topology import Resource
from .values import UNKNOWN, as_number, get, known, same, show

CLUSTER = "AmlCompute"
INSTANCE = "ComputeInstance"


def _compute_type(compute: Resource) -> Any:
    return compute.get("properties.computeType")


def _is(compute: Resource, *kinds: str) -> bool:
    kind = _compute_type(compute)
    return any(same(kind, k) for k in kinds)


_info = info_for(COMPUTE, "compute", ("properties.computeType",))


def _no_public_ip(compute: Resource, _config: dict[str, Any]) -> Iterator[str]:
    if _is(compute, CLUSTER, INSTANCE):
        yield from expect_bool(compute, "properties.properties.enableNodePublicIp", False, azure_default=True)


no_public_ip = resource_policy(
    _info(
        "azml-compute-no-public-ip",
        "Compute nodes get no public IP address.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set properties.properties.enableNodePublicIp: false on the cluster or instance (needs a managed network "
        "or a subnet with outbound access).",
        ("properties.properties.enableNodePublicIp",),
        tags=("network",),
    ),
    _no_public_ip,
)


def _local_auth(compute: Resource, _config: dict[str, Any]) -> Iterator[str]:
    if _is(compute, CLUSTER, INSTANCE):
        yield from expect_bool(compute, "properties.disableLocalAuth", True, azure_default=False)


local_auth_disabled = resource_policy(
    _info(
        "azml-compute-local-auth-disabled",
        "Compute accepts Entra ID authentication only (no local keys).",
        checks.LEAST_PRIVILEGE,
        Severity.MEDIUM,
        "Set properties.disableLocalAuth: true on the compute.",
        ("properties.disableLocalAuth",),
        tags=("identity",),
    ),
    _local_auth,
)


def _ssh(compute: Resource, _config: dict[str, Any]) -> Iterator[str]:
    if _is(compute, CLUSTER):
        yield from expect_value(compute, "properties.properties.remoteLoginPortPublicAccess", "Disabled", azure_default="NotSpecified")
    elif _is(compute, INSTANCE):
        yield from expect_value(compute, "properties.properties.sshSettings.sshPublicAccess", "Disabled", azure_default="Disabled")


ssh_disabled = resource_policy(
    _info(
        "azml-compute-ssh-disabled",
        "Compute nodes do not open SSH to the outside.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set properties.properties.remoteLoginPortPublicAccess: 'Disabled' on clusters "
        "(properties.properties.sshSettings.sshPublicAccess: 'Disabled' on instances).",
        ("properties.properties.remoteLoginPortPublicAccess", "properties.properties.sshSettings.sshPublicAccess"),
        tags=("network",),
    ),
    _ssh,
)


def _scale_to_zero(compute: Resource, config: dict[str, Any]) -> Iterator[str]:
    if not _is(compute, CLUSTER):
        return
    cluster = compute.get("computeName")
    if isinstance(cluster, str) and cluster.lower() in {c.lower() for c in config["allowedClusters"]}:
        return
    nodes = as_number(get(compute.props, "properties.properties.scaleSettings.minNodeCount"))
    if nodes is UNKNOWN:
        return
    count = nodes if known(nodes) else 0.0  # Azure's default
    if count > config["maxMinNodes"]:
        yield (
            f"{compute.label}: properties.properties.scaleSettings.minNodeCount is {show(nodes)}; must be at most "
            f"{config['maxMinNodes']} (or list the cluster in allowedClusters)"
        )


scale_to_zero = resource_policy(
    _info(
        "azml-compute-scale-to-zero",
        "Clusters scale down to zero nodes when idle unless explicitly allowed to keep nodes warm.",
        checks.BASELINE_COST,
        Severity.LOW,
        "Set minNodes: 0 for the cluster in azml:compute.clusters, or add the cluster to this policy's "
        "allowedClusters in the stack's policy config.",
        ("computeName", "properties.properties.scaleSettings.minNodeCount"),
        config={
            "maxMinNodes": {"type": "integer", "minimum": 0, "default": 0, "description": "Largest minNodeCount allowed."},
            "allowedClusters": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Clusters (computeName) that may keep more nodes warm.",
            },
        },
        tags=("cost",),
    ),
    _scale_to_zero,
)

POLICIES = [no_public_ip, local_auth_disabled, ssh_disabled, scale_to_zero]
