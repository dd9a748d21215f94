"""The platform network: virtual network, subnets with NSGs, private DNS zones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi_azure_native import network, privatedns

from azml.config.schema import NetworkConfig
from azml.naming import Names

from .private_link import PRIVATE_DNS_ZONES


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`.

    ``config`` gives the address space and subnet prefixes; ``names`` the
    derived resource names; every resource is placed in
    ``resource_group_name`` at ``location`` and tagged with ``tags``.
    """

    config: NetworkConfig
    names: Names
    resource_group_name: pulumi.Input[str]
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    """VNet, one NSG-protected subnet per purpose, and the private DNS zones
    (linked to the VNet) that private endpoints register in.

    Outputs: ``vnet_id``, ``subnet_ids`` (by purpose: ``privateEndpoints``,
    ``training``, ...), ``dns_zone_ids`` (by zone name).
    """

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        names, tags = args.names, dict(args.tags)

        vnet = network.VirtualNetwork(
            "vnet",
            virtual_network_name=names.virtual_network,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space={"address_prefixes": [args.config.address_space]},
            tags=tags,
            # Subnets are separate resources below; the VNet must not own them too.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )

        self.subnet_ids: dict[str, pulumi.Output[str]] = {}
        previous: network.Subnet | None = None
        for purpose, prefix in args.config.subnets.items():
            nsg = network.NetworkSecurityGroup(
                f"nsg-{purpose}",
                network_security_group_name=names.nsg(purpose),
                resource_group_name=args.resource_group_name,
                location=args.location,
                # Azure's default rules already deny inbound internet traffic and
                # allow VNet-internal flows, which is all private endpoints and
                # no-public-IP compute need.
                security_rules=[],
                tags=tags,
                opts=child,
            )
            subnet = network.Subnet(
                f"snet-{purpose}",
                subnet_name=names.subnet(purpose),
                virtual_network_name=vnet.name,
                resource_group_name=args.resource_group_name,
                address_prefix=prefix,
                network_security_group={"id": nsg.id},
                # Let NSGs and route tables apply to private endpoints too.
                private_endpoint_network_policies="Enabled",
                # Private subnet: no implicit outbound internet access.
                default_outbound_access=False,
                # Flex Consumption function apps integrate through a subnet
                # delegated to Microsoft.App/environments.
                delegations=(
                    [{"name": "flex-consumption", "service_name": "Microsoft.App/environments"}]
                    if purpose == "integration"
                    else None
                ),
                # Azure rejects concurrent subnet operations on one VNet
                # (AnotherOperationInProgress): create them one after another.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None),
            )
            self.subnet_ids[purpose] = subnet.id
            previous = subnet

        self.dns_zone_ids: dict[str, pulumi.Output[str]] = {}
        for zone_name in PRIVATE_DNS_ZONES:
            slug = zone_name.removeprefix("privatelink.").replace(".", "-")
            zone = privatedns.PrivateZone(
                f"zone-{slug}",
                private_zone_name=zone_name,
                resource_group_name=args.resource_group_name,
                location="global",
                tags=tags,
                opts=child,
            )
            privatedns.VirtualNetworkLink(
                f"link-{slug}",
                virtual_network_link_name=f"{names.virtual_network}-link",
                private_zone_name=zone.name,
                resource_group_name=args.resource_group_name,
                location="global",
                virtual_network={"id": vnet.id},
                registration_enabled=False,
                tags=tags,
                opts=child,
            )
            self.dns_zone_ids[zone_name] = zone.id

        self.vnet_id = vnet.id
        self.register_outputs(
            {"vnetId": vnet.id, "subnetIds": self.subnet_ids, "dnsZoneIds": self.dns_zone_ids}
        )
