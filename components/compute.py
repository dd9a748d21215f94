"""Azure ML compute clusters (AmlCompute) from stack config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
from pulumi_azure_native import machinelearningservices

from azml.config.schema import ComputeCluster


@dataclass(frozen=True)
class ComputeClustersArgs:
    """Inputs of :class:`ComputeClusters`.

    ``subnet_id``: the training subnet, or ``None`` when the workspace uses a
    managed network — Azure then places managed compute in the workspace's
    managed VNet and does not accept a customer subnet.

    ``identity_id``: the user-assigned identity every cluster runs as (the
    workspace's compute identity, already granted its data roles); ``None``
    gives each cluster a system-assigned identity instead.
    ``image_build_compute``: the cluster the workspace builds images on.
    """

    clusters: Sequence[ComputeCluster]
    workspace_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str] | None = None
    identity_id: pulumi.Input[str] | None = None
    image_build_compute: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _iso_duration(seconds: int) -> str:
    return f"PT{seconds}S"


class ComputeClusters(pulumi.ComponentResource):
    """One AmlCompute cluster per configured entry: scale to ``minNodes`` (0
    unless configured) after the idle time, no public IP on nodes, no SSH,
    no local (key) auth, and a managed identity with data roles: the
    workspace storage takes no keys, and "the managed identity of the compute
    cluster is used for mounting the storage account" (how-to-authenticate-
    batch-endpoint, "Configure compute clusters for data access").

    Outputs: ``cluster_names``, ``cluster_ids`` (by configured name), and
    ``workspace_name``: the workspace name once the image-build cluster
    exists — environments built from conda and the deployments using them
    take it, so they wait for the compute their image is built on.
    """

    def __init__(self, name: str, args: ComputeClustersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:ComputeClusters", name, None, opts)
        self.cluster_names: list[pulumi.Output[str]] = []
        self.cluster_ids: dict[str, pulumi.Output[str]] = {}
        # Clusters support "only one system-assigned identity or multiple
        # user-assigned identities, not both" (how-to-identity-based-service-authentication).
        identity: dict = (
            {"type": "UserAssigned", "user_assigned_identities": [args.identity_id]}
            if args.identity_id is not None
            else {"type": "SystemAssigned"}
        )
        for cluster in args.clusters:
            properties: dict = {
                "vm_size": cluster.vm_size,
                "vm_priority": cluster.priority,
                "os_type": "Linux",
                "scale_settings": {
                    "min_node_count": cluster.min_nodes,
                    "max_node_count": cluster.max_nodes,
                    "node_idle_time_before_scale_down": _iso_duration(cluster.idle_seconds_before_scale_down),
                },
                "enable_node_public_ip": False,
                "remote_login_port_public_access": "Disabled",
            }
            if args.subnet_id is not None:
                properties["subnet"] = {"id": args.subnet_id}
            compute = machinelearningservices.Compute(
                f"cluster-{cluster.name}",
                compute_name=cluster.name,
                workspace_name=args.workspace_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                identity=identity,
                properties={
                    "compute_type": "AmlCompute",
                    "description": cluster.description,
                    "disable_local_auth": True,
                    "properties": properties,
                },
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.cluster_names.append(compute.name)
            self.cluster_ids[cluster.name] = compute.id
        build = args.image_build_compute
        self.workspace_name: pulumi.Output[str] = (
            pulumi.Output.all(args.workspace_name, self.cluster_ids[build]).apply(lambda v: v[0])
            if build is not None and build in self.cluster_ids
            else pulumi.Output.from_input(args.workspace_name)
        )
        self.register_outputs({"clusterNames": self.cluster_names})
