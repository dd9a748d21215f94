"""Network mutations: NSG rules that open the platform, subnets that lose
their NSG or get default outbound access back, DNS that stops resolving the
private endpoints, a public IP beside the NAT gateway's.

NSG rules are written the way a pull request would write them in
components/network.py: azure-native inputs (flat camelCase keys), inline in
an NSG's ``securityRules`` or as a separate ``network:SecurityRule``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from azml.plan.model import Plan, PlannedResource

from . import Mutation, added, combined, one, removal, setting

NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
LINK = "azure-native:privatedns:VirtualNetworkLink"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"

ANYWHERE = "azml-nsg-no-inbound-from-anywhere"
MANAGEMENT = "azml-nsg-management-ports-closed"
LATERAL = "azml-nsg-lateral-traversal"
DENY_ALL = "azml-nsg-no-deny-all-inbound-first"
SUBNET_NSG = "azml-subnet-nsg"
PRIVATE_SUBNET = "azml-subnet-default-outbound-disabled"
DNS_SERVERS = "azml-vnet-dns-servers"
PUBLIC_IP_NAT = "azml-public-ip-nat-only"
ZONE_LINKS = "azml-private-dns-zone-vnet-links"


def _rule(**fields: Any) -> dict[str, Any]:
    rule = {
        "name": "allow-added",
        "priority": 100,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "Tcp",
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "443",
    }
    rule.update(fields)
    return {k: v for k, v in rule.items() if v is not None}


def with_rule(nsg: str, **fields: Any) -> Callable[[Plan], None]:
    """A rule appended to the NSG's ``securityRules``."""
    return lambda plan: one(plan, NSG, nsg).inputs["securityRules"].append(_rule(**fields))


def separate_rule(nsg: str, name: str, **fields: Any) -> Callable[[Plan], None]:
    """A ``network:SecurityRule`` resource attached to ``nsg`` by name (and depending on it)."""

    def mutate(plan: Plan) -> None:
        parent = one(plan, NSG, nsg)
        body = {k: v for k, v in _rule(**fields).items() if k != "name"}
        inputs = {
            "securityRuleName": name,
            "networkSecurityGroupName": parent.inputs["networkSecurityGroupName"],
            "resourceGroupName": parent.inputs["resourceGroupName"],
            **body,
        }
        urn = parent.urn.rsplit("$", 1)[0] + f"${SECURITY_RULE}::{name}"
        deps = {"networkSecurityGroupName": [parent.urn], "resourceGroupName": list(parent.property_dependencies.get("resourceGroupName", []))}
        plan.resources.append(
            PlannedResource(urn, SECURITY_RULE, name, True, parent.parent, [parent.urn, *deps["resourceGroupName"]], deps, inputs, {})
        )

    return mutate


def without_input(type_token: str, name: str, key: str) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        resource = one(plan, type_token, name)
        resource.inputs.pop(key)
        resource.property_dependencies.pop(key, None)

    return mutate


def _jumpbox_ip(plan: Plan) -> None:
    added(PUBLIC_IP, "pip-nat", "pip-jumpbox", publicIpAddressName="pip-azml-prd-jumpbox")(plan)


def _subnet_like_training(name: str, subnet_name: str, prefix: str, **inputs: Any) -> Callable[[Plan], None]:
    """A new Subnet resource copied from snet-training, without its NSG unless given."""

    def mutate(plan: Plan) -> None:
        template = one(plan, SUBNET, "snet-training")
        subnet = copy.deepcopy(template)
        subnet.name, subnet.urn = name, template.urn.rsplit("::", 1)[0] + "::" + name
        subnet.inputs.update(subnetName=subnet_name, addressPrefix=prefix)
        subnet.inputs.pop("networkSecurityGroup")
        subnet.property_dependencies.pop("networkSecurityGroup", None)
        subnet.inputs.update(copy.deepcopy(inputs))
        plan.resources.append(subnet)

    return mutate


def _copy(plan: Plan, type_token: str, name: str, new_name: str, **inputs: Any) -> PlannedResource:
    template = one(plan, type_token, name)
    resource = copy.deepcopy(template)
    resource.name, resource.urn = new_name, template.urn.rsplit("::", 1)[0] + "::" + new_name
    resource.inputs.update(copy.deepcopy(inputs))
    plan.resources.append(resource)
    return resource


def _dfs_endpoint_with_unlinked_zone(plan: Plan) -> None:
    """A new dfs private endpoint for the workspace storage, with its zone
    and zone group, but no VNet link for the new zone."""
    zone = _copy(plan, "azure-native:privatedns:PrivateZone", "zone-blob-core-windows-net", "zone-dfs-core-windows-net",
                 privateZoneName="privatelink.dfs.core.windows.net")
    pe = _copy(plan, "azure-native:network:PrivateEndpoint", "pe-st-blob", "pe-st-dfs", privateEndpointName="pe-st-dfs",
               customNetworkInterfaceName="pe-st-dfs-nic")
    pe.inputs["privateLinkServiceConnections"][0].update(groupIds=["dfs"], name="pe-st-dfs")
    group = _copy(plan, ZONE_GROUP, "pe-st-blob-dns", "pe-st-dfs-dns", privateEndpointName="pe-st-dfs")
    (config,) = group.inputs["privateDnsZoneConfigs"]
    config.update(privateDnsZoneId=config["privateDnsZoneId"].replace(".blob.", ".dfs."), name="privatelink-dfs-core-windows-net")
    group.property_dependencies.update(privateDnsZoneConfigs=[zone.urn], privateEndpointName=[pe.urn])


MUTATIONS: list[Mutation] = [
    Mutation(
        "nsg-https-from-internet",
        "network",
        "nsg-inference allows inbound 443 from the Internet service tag, spelled 'internet'",
        with_rule("nsg-inference", sourceAddressPrefix="internet"),
        (ANYWHERE,),
    ),
    Mutation(
        "nsg-any-source-in-prefix-list",
        "network",
        "nsg-training's new rule lists sourceAddressPrefixes ['10.0.0.0/8', '*']",
        with_rule("nsg-training", sourceAddressPrefix=None, sourceAddressPrefixes=["10.0.0.0/8", "*"]),
        (ANYWHERE,),
    ),
    Mutation(
        "nsg-inbound-from-ipv4-default-route",
        "network",
        "nsg-privateEndpoints allows inbound 443 from 0.0.0.0/0",
        with_rule("nsg-privateEndpoints", sourceAddressPrefix="0.0.0.0/0"),
        (ANYWHERE,),
    ),
    Mutation(
        "nsg-inbound-from-ipv6-default-route",
        "network",
        "nsg-integration allows inbound 443 from ::/0",
        with_rule("nsg-integration", sourceAddressPrefix="::/0"),
        (ANYWHERE,),
    ),
    Mutation(
        "nsg-ssh-from-any-separate-rule",
        "network",
        "a separate network:SecurityRule on nsg-training allows SSH from 'Any'",
        separate_rule("nsg-training", "rule-ssh-any", sourceAddressPrefix="Any", destinationPortRange="22"),
        (ANYWHERE, MANAGEMENT),
    ),
    Mutation(
        "nsg-rdp-range-from-vnet",
        "network",
        "nsg-inference opens destination ports 3000-3400 (covering RDP) to the VNet",
        with_rule("nsg-inference", destinationPortRange="3000-3400"),
        (MANAGEMENT,),
    ),
    Mutation(
        "nsg-ssh-from-peered-range",
        "network",
        "nsg-training allows SSH (port as a number) from a peered 10.40.0.0/16",
        with_rule("nsg-training", sourceAddressPrefix="10.40.0.0/16", destinationPortRange=22),
        (MANAGEMENT,),
    ),
    Mutation(
        "nsg-winrm-in-port-list",
        "network",
        "a separate rule on nsg-inference lists destinationPortRanges ['443', '5985-5986']",
        separate_rule("nsg-inference", "rule-winrm", destinationPortRange=None, destinationPortRanges=["443", "5985-5986"]),
        (MANAGEMENT,),
    ),
    Mutation(
        "nsg-all-ports-from-vnet",
        "network",
        "nsg-training allows every port and protocol from the VNet",
        with_rule("nsg-training", protocol="*", destinationPortRange="*"),
        (MANAGEMENT,),
    ),
    Mutation(
        "nsg-outbound-rdp-before-deny",
        "network",
        "nsg-training allows outbound RDP to the VNet at priority 100, ahead of the management deny",
        with_rule("nsg-training", direction="Outbound", destinationPortRange="3389"),
        (LATERAL, MANAGEMENT),
    ),
    Mutation(
        "nsg-management-deny-removed",
        "network",
        "nsg-privateEndpoints loses its deny-management-outbound rule",
        setting(NSG, "securityRules", [], "nsg-privateEndpoints"),
        (LATERAL,),
    ),
    Mutation(
        "nsg-management-deny-narrowed",
        "network",
        "nsg-integration's management deny covers SSH only",
        setting(NSG, "securityRules.0.destinationPortRanges", ["22"], "nsg-integration"),
        (LATERAL,),
    ),
    Mutation(
        "nsg-deny-all-inbound-first",
        "network",
        "nsg-privateEndpoints denies all inbound traffic at priority 100 with no allow before it",
        with_rule("nsg-privateEndpoints", access="Deny", protocol="*", sourceAddressPrefix="*", destinationAddressPrefix="*", destinationPortRange="*"),
        (DENY_ALL,),
    ),
    Mutation(
        "subnet-nsg-removed",
        "network",
        "snet-privateEndpoints no longer references its NSG",
        without_input(SUBNET, "snet-privateEndpoints", "networkSecurityGroup"),
        (SUBNET_NSG,),
    ),
    Mutation(
        "new-subnet-without-nsg",
        "network",
        "a new snet-batch subnet is added without an NSG",
        _subnet_like_training("snet-batch", "snet-azml-prd-batch", "10.30.13.0/26"),
        (SUBNET_NSG,),
    ),
    Mutation(
        "subnet-default-outbound-on",
        "network",
        "snet-training turns default outbound access back on",
        setting(SUBNET, "defaultOutboundAccess", True, "snet-training"),
        (PRIVATE_SUBNET,),
    ),
    Mutation(
        "subnet-default-outbound-unset",
        "network",
        "snet-inference drops defaultOutboundAccess (Azure's default: true)",
        without_input(SUBNET, "snet-inference", "defaultOutboundAccess"),
        (PRIVATE_SUBNET,),
    ),
    Mutation(
        "vnet-inline-public-subnet",
        "network",
        "the VNet declares an inline subnet with default outbound access and no NSG",
        setting(VNET, "subnets", [{"name": "snet-legacy", "addressPrefix": "10.30.14.0/26", "defaultOutboundAccess": True}], "vnet"),
        (SUBNET_NSG, PRIVATE_SUBNET),
    ),
    Mutation(
        "vnet-single-public-dns",
        "network",
        "the VNet resolves through a single public DNS server",
        setting(VNET, "dhcpOptions", {"dnsServers": ["8.8.8.8"]}, "vnet"),
        (DNS_SERVERS,),
    ),
    Mutation(
        "public-ip-for-jumpbox",
        "network",
        "a second public IP address (for a jump box) is added next to the NAT gateway's",
        _jumpbox_ip,
        (PUBLIC_IP_NAT,),
    ),
    Mutation(
        "dns-zone-link-removed",
        "network",
        "the privatelink.vaultcore.azure.net zone loses its VNet link",
        removal(LINK, "link-vaultcore-azure-net"),
        (ZONE_LINKS,),
    ),
    Mutation(
        "dns-zone-linked-elsewhere",
        "network",
        "the privatelink.azurecr.io link points at a hub VNet instead of the platform's",
        setting(LINK, "virtualNetwork.id", "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub", "link-azurecr-io"),
        (ZONE_LINKS,),
    ),
    Mutation(
        "new-endpoint-zone-not-linked",
        "network",
        "a dfs private endpoint for the workspace storage comes with its own privatelink.dfs zone, never linked to the VNet",
        _dfs_endpoint_with_unlinked_zone,
        (ZONE_LINKS,),
    ),
    Mutation(
        "nsg-inbound-any-and-deny-gone",
        "network",
        "nsg-training is rewritten: an inbound allow-all from '*' replaces the management deny",
        combined(
            setting(NSG, "securityRules", [], "nsg-training"),
            with_rule("nsg-training", sourceAddressPrefix="*", destinationPortRange="*", protocol="*"),
        ),
        (ANYWHERE, MANAGEMENT, LATERAL),
    ),
]
