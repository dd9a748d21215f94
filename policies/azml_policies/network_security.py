"""Network security group policies: nothing is let in from anywhere, the
management ports stay closed, hosts cannot manage their neighbours, and no
deny-all rule cuts the subnet off.

Rules are read by :mod:`~azml_policies.nsg_rules` from both an NSG's
``securityRules[]`` and separate ``network:SecurityRule`` resources. The two
rule-by-rule policies are resource policies on both types; the two that
evaluate an NSG's rules in priority order are stack policies (they need the
separate rules of the NSG too).

PSRule for Azure states the rules these implement (Azure/PSRule.Rules.Azure,
``src/PSRule.Rules.Azure/rules/Azure.NSG.Rule.ps1``): ``Azure.NSG.AnyInboundSource``,
``Azure.NSG.LateralTraversal`` and ``Azure.NSG.DenyAllInbound``.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import NSG, SECURITY_RULE
from .checks import Finding, PolicyInfo, exempt, resource_policy, stack_policy
from .nsg_rules import Rule, clean, in_order, is_anywhere, is_every_host, is_vnet_wide, nsg_rules, reaches_vnet, rules_of
from .topology import Resource, Stack

_HOW_NSGS_WORK = "https://learn.microsoft.com/azure/virtual-network/network-security-group-how-it-works"
_RULE_PATHS = (
    "securityRules[].access",
    "securityRules[].direction",
    "securityRules[].priority",
    "securityRules[].protocol",
    "securityRules[].sourceAddressPrefix(es)",
    "securityRules[].destinationAddressPrefix(es)",
    "securityRules[].destinationPortRange(s)",
    "SecurityRule.networkSecurityGroupName",
)

# --------------------------------------------------------------------------- inbound from anywhere


def _inbound_from_anywhere(resource: Resource, config: dict[str, Any]) -> Iterator[str]:
    extra = config["forbiddenSources"]
    for rule in rules_of(resource)[0]:
        if rule.direction != "inbound" or rule.access != "allow":
            continue
        wide = [s for s in rule.sources if is_anywhere(s, extra)]
        if wide:
            yield (
                f"{rule.where}: inbound Allow from {', '.join(repr(s) for s in wide)} (ports {rule.ports_text or '?'}); "
                "nothing on this platform takes connections from the internet: remove the rule or narrow its "
                "sourceAddressPrefix(es) to the clients' own ranges"
            )


inbound_from_anywhere = resource_policy(
    PolicyInfo(
        name="azml-nsg-no-inbound-from-anywhere",
        description=(
            "No NSG rule allows inbound traffic from anywhere: '*', 'Any', the Internet service tag, 0.0.0.0/0 or ::/0, "
            "alone or inside sourceAddressPrefixes (PSRule Azure.NSG.AnyInboundSource)."
        ),
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.CRITICAL,
        remediation=(
            "Delete the Allow rule, or set its sourceAddressPrefix(es) to the specific ranges or service tags that "
            "must connect. The platform's endpoints are private endpoints reached from the VNet; Azure's default "
            f"rules already admit VNet traffic and deny the internet ({_HOW_NSGS_WORK})."
        ),
        resource_types=(NSG, SECURITY_RULE),
        properties=_RULE_PATHS,
        config={
            "forbiddenSources": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "More sources that mean 'anywhere' for this platform (beyond *, Any, Internet and /0 prefixes).",
            }
        },
        tags=("network", "nsg"),
    ),
    _inbound_from_anywhere,
)

# --------------------------------------------------------------------------- management ports


def _management_ports(resource: Resource, config: dict[str, Any]) -> Iterator[str]:
    ports = [int(p) for p in config["managementPorts"]]
    allowed = {clean(s) for s in config["allowedManagementSources"]}
    for rule in rules_of(resource)[0]:
        if rule.access != "allow" or not (rule.carries("tcp") or rule.carries("udp")):
            continue
        opened = [p for p in ports if rule.covers(p)]
        if not opened:
            continue
        if rule.direction == "inbound":
            others = [s for s in rule.sources if clean(s) not in allowed]
            if others or not rule.sources:
                yield (
                    f"{rule.where}: inbound Allow on management port(s) {', '.join(map(str, opened))} "
                    f"(destination ports {rule.ports_text}) from {', '.join(repr(s) for s in others) or 'no source'}; "
                    "SSH, RDP and WinRM are reachable only from the sources in allowedManagementSources (none by "
                    "default): remove the rule or narrow its ports and sources"
                )
        elif rule.direction == "outbound":
            yield (
                f"{rule.where}: outbound Allow on management port(s) {', '.join(map(str, opened))} "
                f"(destination ports {rule.ports_text}) to {', '.join(repr(d) for d in rule.destinations) or 'no destination'}; "
                "workload hosts must not open SSH, RDP or WinRM sessions to other hosts: remove the rule"
            )


management_ports_closed = resource_policy(
    PolicyInfo(
        name="azml-nsg-management-ports-closed",
        description=(
            "No NSG rule allows SSH, RDP or WinRM (22, 3389, 5985, 5986; ranges and '*' covering them count): not "
            "inbound except from allowedManagementSources, never outbound."
        ),
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.HIGH,
        remediation=(
            "Remove the Allow rule or narrow its destinationPortRange(s) so they exclude 22, 3389, 5985 and 5986. "
            "Administer hosts through Azure Bastion or a jump host and list only its subnet in allowedManagementSources "
            "(PSRule Azure.NSG.LateralTraversal: 'Management protocols originating from application workload hosts "
            "should be blocked')."
        ),
        resource_types=(NSG, SECURITY_RULE),
        properties=_RULE_PATHS,
        config={
            "managementPorts": {
                "type": "array",
                "items": {"type": "integer"},
                "default": [22, 3389, 5985, 5986],
                "description": "Remote management ports: SSH, RDP, WinRM over HTTP and HTTPS.",
            },
            "allowedManagementSources": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Sources (a Bastion subnet's prefix, a jump host) that may reach the management ports inbound.",
            },
        },
        tags=("network", "nsg"),
    ),
    _management_ports,
)

# --------------------------------------------------------------------------- lateral traversal


def _outbound_decision(rules: list[Rule], port: int) -> Rule | None:
    """The outbound rule that decides a TCP connection from the subnet's hosts
    to another VNet host on ``port``: the first Allow that may match it, or the
    first Deny that matches every such connection; ``None``: no rule decides
    (Azure's default AllowVnetOutBound lets it through)."""
    for rule in in_order(rules, "outbound"):
        if not rule.carries("tcp") or not rule.covers(port):
            continue
        if rule.access == "allow" and any(reaches_vnet(d) for d in rule.destinations):
            return rule
        if (
            rule.access == "deny"
            and any(is_vnet_wide(s) for s in rule.sources)
            and any(is_vnet_wide(d) for d in rule.destinations)
        ):
            return rule
    return None


def _lateral_traversal(stack: Stack, config: dict[str, Any]) -> Finding:
    ports = [int(p) for p in config["deniedOutboundPorts"]]
    for nsg in stack.of_type(NSG):
        if exempt(config, nsg.name, nsg.arm_name):
            continue
        rules, unknown = nsg_rules(stack, nsg)
        if unknown or any(r.uncertain for r in rules if r.direction in ("outbound", "")):
            continue
        open_ports: list[str] = []
        for port in ports:
            decision = _outbound_decision(rules, port)
            if decision is not None and decision.access == "deny":
                continue
            open_ports.append(
                f"{port} (allowed by {decision.where}, priority {decision.priority:g})"
                if decision is not None
                else f"{port} (no rule denies it: Azure's default AllowVnetOutBound allows it)"
            )
        if open_ports:
            yield nsg.urn, (
                f"{nsg.label}: outbound TCP to VirtualNetwork is not denied on management port(s) {'; '.join(open_ports)}; "
                "add an outbound Deny rule for these destination ports from VirtualNetwork to VirtualNetwork, ahead of "
                "any rule that allows them"
            )


lateral_traversal = stack_policy(
    PolicyInfo(
        name="azml-nsg-lateral-traversal",
        description=(
            "Every NSG denies outbound management connections (RDP 3389, WinRM 5985-5986 by default) to the virtual "
            "network ahead of any rule that allows them (PSRule Azure.NSG.LateralTraversal)."
        ),
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.MEDIUM,
        remediation=(
            "Add an outbound security rule: access Deny, protocol '*', source and destination 'VirtualNetwork', "
            "destinationPortRanges ['3389', '5985-5986'], a priority below (after) any rule that must allow traffic "
            "(components/network.py gives every subnet NSG one). 'Management protocols originating from application "
            "workload hosts should be blocked' (PSRule Azure.NSG.LateralTraversal; "
            "https://learn.microsoft.com/azure/security/fundamentals/network-best-practices#logically-segment-subnets)."
        ),
        resource_types=(NSG, SECURITY_RULE),
        properties=_RULE_PATHS,
        config={
            "deniedOutboundPorts": {
                "type": "array",
                "items": {"type": "integer"},
                "default": [3389, 5985, 5986],
                "description": (
                    "Management ports every NSG must deny outbound to the VNet. SSH (22) is not in the default: "
                    "Azure ML compute nodes in a customer subnet are reached over SSH when SSH access is enabled, and "
                    "PSRule passes an NSG that blocks either RDP or SSH."
                ),
            }
        },
        kind="stack",
        tags=("network", "nsg"),
    ),
    _lateral_traversal,
)

# --------------------------------------------------------------------------- deny-all inbound first


def _denies_everything(rule: Rule) -> bool:
    return (
        rule.access == "deny"
        and rule.protocol in ("*", "any")
        and rule.all_ports
        and any(is_every_host(s) for s in rule.sources)
        and any(is_vnet_wide(d) for d in rule.destinations)
    )


def _deny_all_inbound_first(stack: Stack, config: dict[str, Any]) -> Finding:
    for nsg in stack.of_type(NSG):
        if exempt(config, nsg.name, nsg.arm_name):
            continue
        rules, unknown = nsg_rules(stack, nsg)
        if unknown or any(r.uncertain for r in rules if r.direction in ("inbound", "")):
            continue
        for rule in in_order(rules, "inbound"):
            if rule.access == "allow":
                break  # something is let in before any deny-all
            if _denies_everything(rule):
                yield nsg.urn, (
                    f"{nsg.label}: {rule.where} (priority {rule.priority:g}) denies all inbound traffic before any rule "
                    "allows some: it overrides Azure's AllowVnetInBound and AllowAzureLoadBalancerInBound, so private "
                    "endpoints and hosts in the subnet become unreachable from the VNet; allow the required VNet "
                    "traffic at a lower priority number, or deny only the 'Internet' source"
                )
                break


deny_all_inbound_first = stack_policy(
    PolicyInfo(
        name="azml-nsg-no-deny-all-inbound-first",
        description=(
            "No NSG starts its inbound rules with a deny-all (any source, any port) that precedes every Allow "
            "(PSRule Azure.NSG.DenyAllInbound): it would cut the private endpoints off the VNet."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.MEDIUM,
        remediation=(
            "Give the NSG inbound Allow rules for the traffic the subnet must accept (VirtualNetwork to the private "
            "endpoints, AzureLoadBalancer probes) at lower priority numbers than the deny-all, or drop the deny-all: "
            f"Azure's default DenyAllInBound already rejects what no rule allows ({_HOW_NSGS_WORK})."
        ),
        resource_types=(NSG, SECURITY_RULE),
        properties=_RULE_PATHS,
        kind="stack",
        tags=("network", "nsg"),
    ),
    _deny_all_inbound_first,
)

POLICIES = [inbound_from_anywhere, management_ports_closed, lateral_traversal, deny_all_inbound_first]
