"""Azure ML compute (AmlCompute clusters, compute instances): no public IPs,
no SSH from outside, Entra ID only, clusters idle at zero nodes."""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import EnforcementLevel, Severity

from . import checks
from .azure import COMPUTE
from .checks import expect_bool, info_for, resource_policy
from .topology import Resource
from .values import MISSING, UNKNOWN, as_number, get, known, same, show

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


_CLUSTER_SSH = "properties.properties.remoteLoginPortPublicAccess"
_INSTANCE_SSH = "properties.properties.sshSettings.sshPublicAccess"


def _ssh(compute: Resource, _config: dict[str, Any]) -> Iterator[str]:
    """What Azure does when the setting is left out decides whether unset passes
    (REST spec, machinelearningservices mfe.json): a cluster's
    remoteLoginPortPublicAccess defaults to NotSpecified — "closed on all nodes
    of the cluster if VNet is defined, else is open all public nodes", fixed
    at creation — so a cluster must say Disabled; an instance's
    sshSettings.sshPublicAccess defaults to Disabled ("the public ssh port is
    closed on this instance"), so unset passes and only Enabled fails."""
    if _is(compute, CLUSTER):
        value = compute.get(_CLUSTER_SSH)
        if value is UNKNOWN or same(value, "Disabled"):
            return
        if value is MISSING:
            found = "not set (Azure then uses NotSpecified: SSH open on every node of a cluster without a subnet)"
        elif same(value, "Enabled"):
            found = "'Enabled' (SSH open on every node)"
        else:
            found = f"{show(value)} (SSH open on every node of a cluster without a subnet)"
        yield f"{compute.label}: {_CLUSTER_SSH} is {found}; must be 'Disabled'"
    elif _is(compute, INSTANCE):
        value = compute.get(_INSTANCE_SSH)
        if value is UNKNOWN or value is MISSING or same(value, "Disabled"):
            return  # unset: Azure's default is Disabled
        yield f"{compute.label}: {_INSTANCE_SSH} is {show(value)} (SSH open to the instance); must be 'Disabled' or unset"


ssh_disabled = resource_policy(
    _info(
        "azml-compute-ssh-disabled",
        "Compute nodes do not open SSH to the outside.",
        checks.PUBLIC_ACCESS,
        Severity.HIGH,
        "Set properties.properties.remoteLoginPortPublicAccess: 'Disabled' on clusters (unset means NotSpecified, "
        "which opens SSH on nodes without a subnet); on instances leave properties.properties.sshSettings."
        "sshPublicAccess unset or 'Disabled'.",
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
        # Low severity, so advisory: warm nodes cost money, they open nothing. A stack that wants
        # it to block sets {"enforcementLevel": "mandatory"} for it in its policy config.
        enforcement=EnforcementLevel.ADVISORY,
    ),
    _scale_to_zero,
)

POLICIES = [no_public_ip, local_auth_disabled, ssh_disabled, scale_to_zero]
