"""The platform network: virtual network, subnets with NSGs, private DNS zones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi_azure_native import network, privatedns

from azml.config.schema import NetworkConfig
from azml.naming import Names

from .private_link import PRIVATE_DNS_ZONES


#: Outbound RDP and WinRM from the subnet's hosts to the rest of the VNet are
#: denied: "Management protocols originating from application workload hosts
#: should be blocked" (PSRule Azure.NSG.LateralTraversal, which passes once RDP
#: or SSH is denied; https://learn.microsoft.com/azure/security/fundamentals/network-best-practices#logically-segment-subnets).
#: Nothing on the platform manages Windows hosts: Azure ML computes are Linux,
#: private endpoints never initiate connections, the function app calls HTTPS.
#: SSH stays open inside the VNet for Azure ML compute nodes whose SSH access
#: is enabled. Priority 4000 leaves room for any rule that must come first.
LATERAL_MANAGEMENT_DENY: dict[str, object] = {
    "name": "deny-management-outbound",
    "description": "No RDP or WinRM sessions from this subnet's hosts to other hosts in the VNet.",
    "priority": 4000,
    "direction": "Outbound",
    "access": "Deny",
    "protocol": "*",
    "source_address_prefix": "VirtualNetwork",
    "source_port_range": "*",
    "destination_address_prefix": "VirtualNetwork",
    "destination_port_ranges": ["3389", "5985-5986"],
}


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
    #: Subnets (by purpose) that get a NAT gateway: explicit outbound internet
    #: access for subnets whose default outbound access is off.
    nat_gateway_subnets: tuple[str, ...] = ()
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

        nat = self._nat_gateway(args) if args.nat_gateway_subnets else None

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
                # no-public-IP compute need; the one custom rule stops hosts here
                # from opening management sessions to their neighbours.
                security_rules=[LATERAL_MANAGEMENT_DENY],
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
                # The explicit outbound path where the subnet's workload must
                # reach public endpoints (the retraining function: ARM, App Insights).
                nat_gateway={"id": nat.id} if nat is not None and purpose in args.nat_gateway_subnets else None,
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
        self.nat_gateway_id = nat.id if nat is not None else None
        self.register_outputs(
            {"vnetId": vnet.id, "subnetIds": self.subnet_ids, "dnsZoneIds": self.dns_zone_ids}
        )

    def _nat_gateway(self, args: NetworkArgs) -> network.NatGateway:
        """A NAT gateway with one static public IP. "NAT gateway is the
        recommended approach to have explicit outbound connectivity. A firewall
        can also be used to provide this access."
        (https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access).
        Outbound only: nothing on the internet can open a connection through it.
        Cost: the gateway is billed per hour and per GB processed, the Standard
        public IP per hour (Azure's pricing pages give the current rates)."""
        names, tags = args.names, dict(args.tags)
        address = network.PublicIPAddress(
            "pip-nat",
            public_ip_address_name=f"pip-{names.base}-nat",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": "Standard", "tier": "Regional"},
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return network.NatGateway(
            "nat",
            nat_gateway_name=f"ng-{names.base}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": "Standard"},
            public_ip_addresses=[{"id": address.id}],
            idle_timeout_in_minutes=4,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
