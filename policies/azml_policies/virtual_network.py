"""Virtual network policies: every subnet has its NSG and no default outbound
access, the VNet resolves names through Azure DNS (or redundant servers of
its own), and the only public IP is the NAT gateway's.

Subnets are read both as ``network:Subnet`` resources and as the inline
``subnets[]`` of a ``network:VirtualNetwork`` (flat azure-native inputs, or
ARM's ``properties``). PSRule for Azure states the rules these implement
(Azure/PSRule.Rules.Azure, ``src/PSRule.Rules.Azure/rules/Azure.VNET.Rule.ps1``
and ``docs/en/rules/Azure.VNET.PrivateSubnet.md``): ``Azure.VNET.UseNSGs``,
``Azure.VNET.PrivateSubnet``, ``Azure.VNET.SingleDNS``, ``Azure.VNET.LocalDNS``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import NAT_GATEWAY, PUBLIC_IP, SUBNET, VIRTUAL_NETWORK
from .checks import Finding, PolicyInfo, exempt, resource_policy, stack_policy
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_bool, get, show, strings, unwrap

# Subnets Azure does not let an NSG protect (PSRule docs/en/rules/Azure.VNET.UseNSGs.md):
# VPN/ExpressRoute gateways ("NSGs on the gateway subnet aren't supported",
# https://learn.microsoft.com/azure/vpn-gateway/vpn-gateway-about-vpn-gateway-settings#gwsub),
# Azure Firewall ("NSGs aren't supported on the AzureFirewallSubnet",
# https://learn.microsoft.com/azure/firewall/firewall-faq#are-network-security-groups--nsgs--supported-on-the-azurefirewallsubnet),
# Route Server (https://learn.microsoft.com/azure/route-server/route-server-faq#can-i-associate-a-network-security-group-nsg-to-the-routeserversubnet).
# Azure resource names are case-insensitive.
NO_NSG_SUBNETS = ("GatewaySubnet", "AzureFirewallSubnet", "AzureFirewallManagementSubnet", "RouteServerSubnet")
# ... and subnets delegated to Dedicated HSM (https://learn.microsoft.com/azure/dedicated-hsm/networking#subnets).
NO_NSG_DELEGATION = "Microsoft.HardwareSecurityModules/dedicatedHSMs"

DEFAULT_OUTBOUND = "https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access"


def _subnets(resource: Resource) -> Iterator[tuple[str, Any, str]]:
    """``(label, properties, name)`` of each subnet ``resource`` declares."""
    if resource.type == SUBNET:
        name = resource.get("subnetName")
        yield resource.label, resource.props, name if isinstance(name, str) else resource.name
        return
    inline = unwrap(resource.get("subnets"))
    for index, subnet in enumerate(inline if isinstance(inline, list) else []):
        subnet = unwrap(subnet)
        if not isinstance(subnet, dict):
            continue
        body = subnet.get("properties") if isinstance(subnet.get("properties"), dict) else subnet
        name = subnet.get("name")
        label = f"{resource.label} subnets[{index}] {name!r}" if isinstance(name, str) else f"{resource.label} subnets[{index}]"
        yield label, body, name if isinstance(name, str) else ""


def _delegated_to(body: Any, service: str) -> bool:
    delegations = unwrap(get(body, "delegations"))
    for delegation in delegations if isinstance(delegations, list) else []:
        names = [get(delegation, "serviceName"), get(delegation, "properties.serviceName")]
        if any(isinstance(n, str) and n.lower() == service.lower() for n in names):
            return True
    return False


# --------------------------------------------------------------------------- NSG on every subnet


def _subnet_nsg(resource: Resource, _config: dict[str, Any]) -> Iterator[str]:
    for label, body, name in _subnets(resource):
        if name.lower() in {s.lower() for s in NO_NSG_SUBNETS} or _delegated_to(body, NO_NSG_DELEGATION):
            continue  # Azure forbids an NSG here
        nsg = get(body, "networkSecurityGroup")
        nsg_id = get(body, "networkSecurityGroup.id")
        if nsg is UNKNOWN or nsg_id is UNKNOWN or (isinstance(nsg_id, str) and nsg_id.strip()):
            continue
        yield (
            f"{label}: networkSecurityGroup is {show(nsg if nsg is MISSING else nsg_id)}; every subnet except "
            f"{', '.join(NO_NSG_SUBNETS)} must have a network security group: set networkSecurityGroup.id"
        )


subnet_nsg = resource_policy(
    PolicyInfo(
        name="azml-subnet-nsg",
        description=(
            "Every subnet has a network security group, except the subnets Azure forbids one on (GatewaySubnet, "
            "AzureFirewallSubnet, AzureFirewallManagementSubnet, RouteServerSubnet, Dedicated HSM delegations) "
            "(PSRule Azure.VNET.UseNSGs)."
        ),
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Set the subnet's networkSecurityGroup.id to its NSG (components/network.py creates one per subnet). "
            "'Each VNET subnet should have a network security group (NSG) assigned' (PSRule Azure.VNET.UseNSGs; "
            "https://learn.microsoft.com/azure/security/fundamentals/network-best-practices#logically-segment-subnets)."
        ),
        resource_types=(SUBNET, VIRTUAL_NETWORK),
        properties=("Subnet.subnetName", "Subnet.networkSecurityGroup.id", "Subnet.delegations[].serviceName", "VirtualNetwork.subnets[]"),
        tags=("network",),
    ),
    _subnet_nsg,
)

# --------------------------------------------------------------------------- default outbound access


def _default_outbound(resource: Resource, _config: dict[str, Any]) -> Iterator[str]:
    for label, body, _name in _subnets(resource):
        value = as_bool(get(body, "defaultOutboundAccess"))
        if value is UNKNOWN or value is False:
            continue
        note = " (Azure's default before API version 2025-07-01: true)" if value is MISSING else ""
        yield (
            f"{label}: defaultOutboundAccess is {show(value)}{note}; must be false: hosts would reach the internet "
            "through an implicit Microsoft-owned IP. Give the subnet an explicit outbound path (a NAT gateway) if a "
            "workload needs one"
        )


default_outbound_disabled = resource_policy(
    PolicyInfo(
        name="azml-subnet-default-outbound-disabled",
        description="Every subnet is private: defaultOutboundAccess false (PSRule Azure.VNET.PrivateSubnet).",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Set defaultOutboundAccess: false on the subnet and, where a workload needs the internet, associate a NAT "
            "gateway (components/network.py: nat_gateway_subnets). 'NAT gateway is the recommended approach to have "
            f"explicit outbound connectivity' ({DEFAULT_OUTBOUND})."
        ),
        resource_types=(SUBNET, VIRTUAL_NETWORK),
        properties=("Subnet.defaultOutboundAccess", "VirtualNetwork.subnets[].defaultOutboundAccess"),
        tags=("network",),
    ),
    _default_outbound,
)

# --------------------------------------------------------------------------- DNS servers


def _in_networks(address: str, prefixes: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    for prefix in prefixes:
        try:
            if ip in ipaddress.ip_network(prefix.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _dns_servers(resource: Resource, _config: dict[str, Any]) -> Iterator[str]:
    servers = unwrap(resource.get("dhcpOptions.dnsServers"))
    if servers is UNKNOWN or servers is MISSING or servers == []:
        return  # Azure-provided DNS: resolves the private DNS zones linked to the VNet
    if not isinstance(servers, list) or any(unwrap(s) is UNKNOWN for s in servers):
        return
    listed = [str(unwrap(s)) for s in servers]
    if len(listed) < 2:
        yield (
            f"{resource.label}: dhcpOptions.dnsServers is {listed!r}: a single custom DNS server is a single point of "
            "failure for every name the platform resolves; leave dnsServers empty (Azure-provided DNS) or list at least two"
        )
    prefixes = list(strings(resource.get("addressSpace.addressPrefixes")))
    if listed and prefixes and not _in_networks(listed[0], prefixes):
        yield (
            f"{resource.label}: the primary DNS server {listed[0]!r} is outside the VNet's address space "
            f"({', '.join(prefixes)}); names of private endpoints resolve only through Azure DNS or a forwarder "
            "inside the VNet: leave dnsServers empty, or put the forwarders in the VNet"
        )


dns_servers = resource_policy(
    PolicyInfo(
        name="azml-vnet-dns-servers",
        description=(
            "The VNet uses Azure-provided DNS, or at least two custom DNS servers with the primary inside the VNet "
            "(PSRule Azure.VNET.SingleDNS, Azure.VNET.LocalDNS): private endpoint names must keep resolving."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.MEDIUM,
        remediation=(
            "Leave dhcpOptions.dnsServers unset (Azure DNS resolves the private DNS zones linked to the VNet), or list "
            "two DNS forwarders inside the VNet that forward to Azure DNS 168.63.129.16 "
            "(https://learn.microsoft.com/azure/private-link/private-endpoint-dns-integration; "
            "https://learn.microsoft.com/azure/machine-learning/how-to-custom-dns)."
        ),
        resource_types=(VIRTUAL_NETWORK,),
        properties=("VirtualNetwork.dhcpOptions.dnsServers", "VirtualNetwork.addressSpace.addressPrefixes"),
        tags=("network", "dns"),
    ),
    _dns_servers,
)

# --------------------------------------------------------------------------- public IPs


def _public_ips(stack: Stack, config: dict[str, Any]) -> Finding:
    for address in stack.of_type(PUBLIC_IP):
        if exempt(config, address.name, address.arm_name):
            continue
        if stack.linking(address, (NAT_GATEWAY,), "publicIpAddresses"):
            continue
        yield address.urn, (
            f"{address.label}: no NAT gateway uses it (NatGateway.publicIpAddresses[].id); the only public IP of this "
            "platform is the NAT gateway's, which carries outbound connections only. A public IP on a VM, load "
            "balancer or gateway opens an inbound path from the internet: remove it, or attach it to the NAT gateway"
        )


public_ip_nat_only = stack_policy(
    PolicyInfo(
        name="azml-public-ip-nat-only",
        description="Every public IP address in the stack belongs to a NAT gateway (outbound only); nothing else is exposed.",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Delete the public IP (reach the service through its private endpoint), or list it in a NAT gateway's "
            "publicIpAddresses. 'Attaching a public IP address to a VM also allows inbound access from the Internet' "
            "(PSRule docs/en/rules/Azure.VNET.PrivateSubnet.md); a NAT gateway carries outbound connections only "
            "(https://learn.microsoft.com/azure/nat-gateway/nat-overview)."
        ),
        resource_types=(PUBLIC_IP, NAT_GATEWAY),
        properties=("PublicIPAddress.publicIpAddressName", "NatGateway.publicIpAddresses[].id"),
        kind="stack",
        tags=("network",),
    ),
    _public_ips,
)

POLICIES = [subnet_nsg, default_outbound_disabled, dns_servers, public_ip_nat_only]
