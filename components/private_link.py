"""Private endpoints, always with their DNS zone group.

The zones each private-link group id needs are fixed by Azure (public cloud).
Callers name the group id; the helper picks every zone for it, so the
workspace's second zone (``privatelink.notebooks.azure.net``, the most
reported omission in the field) cannot be forgotten.
"""

from __future__ import annotations

from typing import Mapping

import pulumi
from pulumi_azure_native import network

#: private-link group id -> private DNS zones its endpoint registers in.
ZONES_BY_GROUP: dict[str, tuple[str, ...]] = {
    "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
    "blob": ("privatelink.blob.core.windows.net",),
    "file": ("privatelink.file.core.windows.net",),
    "queue": ("privatelink.queue.core.windows.net",),
    "table": ("privatelink.table.core.windows.net",),
    "sites": ("privatelink.azurewebsites.net",),
    "vault": ("privatelink.vaultcore.azure.net",),
    "registry": ("privatelink.azurecr.io",),
}

#: Every zone the platform network hosts.
PRIVATE_DNS_ZONES: tuple[str, ...] = tuple(dict.fromkeys(z for zones in ZONES_BY_GROUP.values() for z in zones))


def private_endpoint(
    name: str,
    *,
    target_id: pulumi.Input[str],
    group_id: str,
    subnet_id: pulumi.Input[str],
    zone_ids: Mapping[str, pulumi.Input[str]],
    resource_group_name: pulumi.Input[str],
    location: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> network.PrivateEndpoint:
    """Create a private endpoint to ``target_id`` and its DNS zone group.

    ``zone_ids`` maps zone name to private DNS zone id (the network
    component's ``dns_zone_ids``); every zone ``group_id`` needs must be there.
    """
    if group_id not in ZONES_BY_GROUP:
        raise ValueError(f"unknown private-link group id {group_id!r}; known: {', '.join(ZONES_BY_GROUP)}")
    missing = [zone for zone in ZONES_BY_GROUP[group_id] if zone not in zone_ids]
    if missing:
        raise ValueError(f"private endpoint {name}: no private DNS zone for {', '.join(missing)}")

    opts = pulumi.ResourceOptions(parent=parent)
    endpoint = network.PrivateEndpoint(
        name,
        private_endpoint_name=name,
        resource_group_name=resource_group_name,
        location=location,
        subnet={"id": subnet_id},
        custom_network_interface_name=f"{name}-nic",
        private_link_service_connections=[
            {"name": name, "private_link_service_id": target_id, "group_ids": [group_id]}
        ],
        tags=dict(tags),
        opts=opts,
    )
    network.PrivateDnsZoneGroup(
        f"{name}-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=resource_group_name,
        private_dns_zone_configs=[
            {"name": zone.replace(".", "-"), "private_dns_zone_id": zone_ids[zone]}
            for zone in ZONES_BY_GROUP[group_id]
        ],
        opts=opts,
    )
    return endpoint
