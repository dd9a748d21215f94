"""The checklist pack's network policies (policies/azml_policies/network_security.py,
virtual_network.py and the zone-link policy of stack_network.py): each rule,
broken on a copy of the recorded prod plan, fires by name and alone; the
tricky spellings Azure accepts (``internet``, ``*`` inside a list, a range
covering 3389, ports as numbers) are read; what Azure forbids or the config
allows stays quiet; unknown values report nothing.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from azml.plan.model import Plan, PlannedResource

from .test_policy_pack import Finding, evaluate, one

from azml_policies.nsg_rules import is_anywhere, parse_ports, reaches_vnet, read_rule  # noqa: E402 (path set by test_policy_pack)

NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
LINK = "azure-native:privatedns:VirtualNetworkLink"

NETWORK_POLICIES = {
    "azml-nsg-no-inbound-from-anywhere",
    "azml-nsg-management-ports-closed",
    "azml-nsg-lateral-traversal",
    "azml-nsg-no-deny-all-inbound-first",
    "azml-subnet-nsg",
    "azml-subnet-default-outbound-disabled",
    "azml-vnet-dns-servers",
    "azml-public-ip-nat-only",
    "azml-private-dns-zone-vnet-links",
}

Mutate = Callable[[Plan], None]


def rule(**fields: Any) -> dict[str, Any]:
    """An NSG rule as azure-native inputs carry it, with harmless defaults."""
    base = {
        "name": "added",
        "priority": 200,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "Tcp",
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "443",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def add_rule(nsg: str = "nsg-training", **fields: Any) -> Mutate:
    return lambda plan: one(plan, NSG, nsg).inputs["securityRules"].append(rule(**fields))


def add_security_rule_resource(nsg: str = "nsg-inference", **fields: Any) -> Mutate:
    """A separate network:SecurityRule resource attached to ``nsg`` by name."""

    def mutate(plan: Plan) -> None:
        parent = one(plan, NSG, nsg)
        inputs = {
            "securityRuleName": "added",
            "networkSecurityGroupName": parent.inputs["networkSecurityGroupName"],
            "resourceGroupName": parent.inputs["resourceGroupName"],
            **{k: v for k, v in rule(**fields).items() if k != "name"},
        }
        urn = parent.urn.replace(f"{NSG}::{nsg}", f"{SECURITY_RULE}::rule-added")
        plan.resources.append(
            PlannedResource(urn, SECURITY_RULE, "rule-added", True, parent.parent, [parent.urn], {"networkSecurityGroupName": [parent.urn]}, inputs, {})
        )

    return mutate


def set_input(type_token: str, name: str, path: str, value: Any) -> Mutate:
    def mutate(plan: Plan) -> None:
        inputs = one(plan, type_token, name).inputs
        keys = path.split(".")
        for key in keys[:-1]:
            inputs = inputs[int(key)] if isinstance(inputs, list) else inputs.setdefault(key, {})
        if value is DELETE:
            inputs.pop(keys[-1])
        else:
            inputs[keys[-1]] = value

    return mutate


DELETE = object()


def add_subnet(name: str, **inputs: Any) -> Mutate:
    """A new Subnet resource like snet-training, named ``name`` in Azure."""

    def mutate(plan: Plan) -> None:
        template = one(plan, SUBNET, "snet-training")
        added = copy.deepcopy(template)
        added.name, added.urn = f"snet-{name}", template.urn.replace("::snet-training", f"::snet-{name}")
        added.inputs.update(subnetName=name, addressPrefix="10.30.200.0/26")
        for key, value in inputs.items():
            if value is DELETE:
                added.inputs.pop(key, None)
            else:
                added.inputs[key] = value
        if "networkSecurityGroup" in inputs:
            added.property_dependencies.pop("networkSecurityGroup", None)
        plan.resources.append(added)

    return mutate


def add_public_ip(plan: Plan) -> None:
    template = one(plan, PUBLIC_IP, "pip-nat")
    added = copy.deepcopy(template)
    added.name, added.urn = "pip-jumpbox", template.urn.replace("::pip-nat", "::pip-jumpbox")
    added.inputs["publicIpAddressName"] = "pip-azml-prd-jumpbox"
    plan.resources.append(added)


def drop(type_token: str, name: str) -> Mutate:
    def mutate(plan: Plan) -> None:
        gone = one(plan, type_token, name).urn
        plan.resources[:] = [r for r in plan.resources if r.urn != gone]

    return mutate


def both(*mutations: Mutate) -> Mutate:
    def mutate(plan: Plan) -> None:
        for mutation in mutations:
            mutation(plan)

    return mutate


def new_findings(prod_plan: Plan, mutate: Mutate, overrides: dict[str, Any] | None = None) -> list[Finding]:
    plan = copy.deepcopy(prod_plan)
    before = set(evaluate(plan, "prod", overrides))
    mutate(plan)
    return [f for f in evaluate(plan, "prod", overrides) if f not in before]


# --------------------------------------------------------------------------- the untouched stacks


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_untouched_stacks_break_no_network_policy(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    assert [f for f in evaluate(plan, stack) if f.policy in NETWORK_POLICIES] == []


def test_the_program_denies_outbound_rdp_and_winrm_on_every_subnet_nsg(prod_plan: Plan) -> None:
    nsgs = prod_plan.of_type(NSG)
    assert len(nsgs) == len(prod_plan.of_type(SUBNET)) == 4
    for nsg in nsgs:
        (deny,) = nsg.inputs["securityRules"]
        assert (deny["direction"], deny["access"], deny["destinationAddressPrefix"]) == ("Outbound", "Deny", "VirtualNetwork")
        assert deny["destinationPortRanges"] == ["3389", "5985-5986"]


# --------------------------------------------------------------------------- each rule broken alone

CASES: dict[str, tuple[Mutate, str]] = {
    "inbound from lower-case internet": (add_rule(sourceAddressPrefix=" internet "), "azml-nsg-no-inbound-from-anywhere"),
    "inbound from * inside a list": (
        add_rule(sourceAddressPrefix=None, sourceAddressPrefixes=["10.30.0.0/16", "*"]),
        "azml-nsg-no-inbound-from-anywhere",
    ),
    "inbound from 0.0.0.0/0": (add_rule(sourceAddressPrefix="0.0.0.0/0"), "azml-nsg-no-inbound-from-anywhere"),
    "inbound from ::/0": (add_rule(sourceAddressPrefix="::/0"), "azml-nsg-no-inbound-from-anywhere"),
    "inbound from Any": (add_rule(sourceAddressPrefix="Any"), "azml-nsg-no-inbound-from-anywhere"),
    "inbound from anywhere as a separate rule resource": (
        add_security_rule_resource(sourceAddressPrefix="Internet", destinationPortRange="8443"),
        "azml-nsg-no-inbound-from-anywhere",
    ),
    "range covering 3389 from the VNet": (add_rule(destinationPortRange="3000-3400"), "azml-nsg-management-ports-closed"),
    "ssh as a number from a peer range": (
        add_rule(sourceAddressPrefix="10.40.0.0/16", destinationPortRange=22),
        "azml-nsg-management-ports-closed",
    ),
    "every port from the VNet": (add_rule(destinationPortRange="*", protocol="*"), "azml-nsg-management-ports-closed"),
    "winrm in a port list, separate rule": (
        add_security_rule_resource(destinationPortRange=None, destinationPortRanges=["443", " 5985 - 5986 "]),
        "azml-nsg-management-ports-closed",
    ),
    "deny rule gone": (set_input(NSG, "nsg-training", "securityRules", []), "azml-nsg-lateral-traversal"),
    "deny rule only for ssh": (
        set_input(NSG, "nsg-privateEndpoints", "securityRules.0.destinationPortRanges", ["22"]),
        "azml-nsg-lateral-traversal",
    ),
    "deny rule for a narrower source": (
        set_input(NSG, "nsg-inference", "securityRules.0.sourceAddressPrefix", "10.30.8.0/24"),
        "azml-nsg-lateral-traversal",
    ),
    "deny all inbound first": (
        add_rule(access="Deny", protocol="*", sourceAddressPrefix="*", destinationAddressPrefix="*", destinationPortRange="*", priority=100),
        "azml-nsg-no-deny-all-inbound-first",
    ),
    "subnet without its nsg": (set_input(SUBNET, "snet-privateEndpoints", "networkSecurityGroup", DELETE), "azml-subnet-nsg"),
    "new subnet without an nsg": (add_subnet("snet-batch", networkSecurityGroup=DELETE), "azml-subnet-nsg"),
    "default outbound back on": (
        set_input(SUBNET, "snet-training", "defaultOutboundAccess", True),
        "azml-subnet-default-outbound-disabled",
    ),
    "default outbound left to Azure": (
        set_input(SUBNET, "snet-inference", "defaultOutboundAccess", DELETE),
        "azml-subnet-default-outbound-disabled",
    ),
    "inline subnet on the vnet, default outbound on": (
        set_input(
            VNET, "vnet", "subnets",
            [{"name": "snet-x", "addressPrefix": "10.30.201.0/26", "defaultOutboundAccess": True,
              "networkSecurityGroup": {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkSecurityGroups/n"}}],
        ),
        "azml-subnet-default-outbound-disabled",
    ),
    "one public dns server": (set_input(VNET, "vnet", "dhcpOptions", {"dnsServers": ["8.8.8.8"]}), "azml-vnet-dns-servers"),
    "two dns servers outside the vnet": (
        set_input(VNET, "vnet", "dhcpOptions", {"dnsServers": ["192.168.0.4", "10.30.1.5"]}),
        "azml-vnet-dns-servers",
    ),
    "public ip beside the nat gateway's": (add_public_ip, "azml-public-ip-nat-only"),
    "zone without its vnet link": (drop(LINK, "link-vaultcore-azure-net"), "azml-private-dns-zone-vnet-links"),
    "zone linked to another vnet": (
        set_input(LINK, "link-azurecr-io", "virtualNetwork.id",
                  "/subscriptions/s/resourceGroups/hub/providers/Microsoft.Network/virtualNetworks/vnet-hub"),
        "azml-private-dns-zone-vnet-links",
    ),
}


@pytest.mark.parametrize(("mutate", "expected"), list(CASES.values()), ids=list(CASES))
def test_a_broken_rule_fires_its_policy_alone(mutate: Mutate, expected: str, prod_plan: Plan) -> None:
    new = new_findings(prod_plan, mutate)
    assert new and {f.policy for f in new} == {expected}, new


def test_every_network_policy_has_a_case() -> None:
    assert {expected for _, expected in CASES.values()} == NETWORK_POLICIES


def test_messages_name_the_resource_the_rule_and_what_to_do(prod_plan: Plan) -> None:
    (anywhere,) = new_findings(prod_plan, add_rule(name="open-https", sourceAddressPrefixes=["10.0.0.0/8", "*"], sourceAddressPrefix=None))
    assert anywhere.name == "nsg-training"
    assert "NetworkSecurityGroup 'nsg-azml-prd-training' (nsg-training) rule 'open-https': inbound Allow from '*'" in anywhere.message
    (ranged,) = new_findings(prod_plan, add_rule(name="ops", destinationPortRange="3000-3400"))
    assert "management port(s) 3389 (destination ports 3000-3400) from 'VirtualNetwork'" in ranged.message
    # Outbound SSH is not in the lateral-traversal default (components/network.py): only the port policy fires.
    (ssh_out,) = new_findings(prod_plan, add_rule(direction="Outbound", destinationPortRange="22", priority=100, name="ssh"))
    assert ssh_out.policy == "azml-nsg-management-ports-closed" and "outbound Allow on management port(s) 22" in ssh_out.message
    lateral_all = new_findings(prod_plan, add_rule(direction="Outbound", destinationPortRange="3389", priority=100, name="rdp"))
    assert {f.policy for f in lateral_all} == {"azml-nsg-management-ports-closed", "azml-nsg-lateral-traversal"}
    (traversal,) = [f for f in lateral_all if f.policy == "azml-nsg-lateral-traversal"]
    assert "3389 (allowed by NetworkSecurityGroup 'nsg-azml-prd-training' (nsg-training) rule 'rdp', priority 100)" in traversal.message
    (link,) = new_findings(prod_plan, drop(LINK, "link-vaultcore-azure-net"))
    assert link.name == "zone-vaultcore-azure-net" and "VNet vnet-azml-prd" in link.message and "pe-kv-vault" in link.message


# --------------------------------------------------------------------------- what stays quiet

QUIET: dict[str, Mutate] = {
    "gateway subnet without an nsg": add_subnet("GatewaySubnet", networkSecurityGroup=DELETE),
    "firewall subnet without an nsg": add_subnet("AzureFirewallSubnet", networkSecurityGroup=DELETE),
    "route server subnet without an nsg": add_subnet("routeserversubnet", networkSecurityGroup=DELETE),
    "dedicated hsm delegation without an nsg": add_subnet(
        "snet-hsm", networkSecurityGroup=DELETE,
        delegations=[{"name": "hsm", "serviceName": "Microsoft.HardwareSecurityModules/dedicatedHSMs"}],
    ),
    "https from the vnet": add_rule(),
    "deny from the internet": add_rule(access="Deny", sourceAddressPrefix="Internet", destinationPortRange="*", priority=100),
    "deny all after an allow": both(
        add_rule(priority=90),
        add_rule(name="deny-rest", access="Deny", protocol="*", sourceAddressPrefix="*", destinationAddressPrefix="*", destinationPortRange="*", priority=4090),
    ),
    "icmp to every port": add_rule(protocol="Icmp", destinationPortRange="*"),
    "outbound https to the internet": add_rule(direction="Outbound", destinationAddressPrefix="Internet", destinationPortRange="443", priority=100),
    "two dns forwarders in the vnet": set_input(VNET, "vnet", "dhcpOptions", {"dnsServers": ["10.30.1.4", "10.30.1.5"]}),
    "rule fields unknown": add_rule(sourceAddressPrefix="[unknown]", destinationPortRange="[unknown]"),
    "security rules unknown": set_input(NSG, "nsg-training", "securityRules", "[unknown]"),
    "subnet nsg id unknown": set_input(SUBNET, "snet-training", "networkSecurityGroup.id", "[unknown]"),
    "link target unknown": set_input(LINK, "link-azurecr-io", "virtualNetwork.id", "[unknown]"),
}


@pytest.mark.parametrize("mutate", list(QUIET.values()), ids=list(QUIET))
def test_allowed_or_unknown_settings_report_nothing(mutate: Mutate, prod_plan: Plan) -> None:
    assert new_findings(prod_plan, mutate) == []


def test_a_bastion_source_may_reach_ssh_when_configured(prod_plan: Plan) -> None:
    mutate = add_rule(sourceAddressPrefix="10.30.250.0/26", destinationPortRange="22")
    assert {f.policy for f in new_findings(prod_plan, mutate)} == {"azml-nsg-management-ports-closed"}
    allowed = {"azml-nsg-management-ports-closed": {"allowedManagementSources": ["10.30.250.0/26"]}}
    assert new_findings(prod_plan, mutate, allowed) == []


def test_lateral_traversal_ports_are_configurable(prod_plan: Plan) -> None:
    """SSH is not denied by the program (see components/network.py); a stack
    that wants it denied too says so and then sees every NSG fire."""
    overrides = {"azml-nsg-lateral-traversal": {"deniedOutboundPorts": [22, 3389]}}
    findings = [f for f in evaluate(prod_plan, "prod", overrides) if f.policy in NETWORK_POLICIES]
    assert {(f.policy, f.name) for f in findings} == {("azml-nsg-lateral-traversal", n.name) for n in prod_plan.of_type(NSG)}
    assert all("management port(s) 22 (no rule denies it" in f.message for f in findings)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("values", "ranges", "unreadable"),
    [
        (["*"], [(0, 65535)], False),
        ([22.0], [(22, 22)], False),
        (["20-25"], [(20, 25)], False),
        ([" 5985 - 5986 ", "443"], [(5985, 5986), (443, 443)], False),
        (["80,443"], [(80, 80), (443, 443)], False),
        (["ssh"], [], True),
        (["[unknown]"], [], True),
    ],
)
def test_ports_are_read_as_azure_accepts_them(values: list[Any], ranges: list[tuple[int, int]], unreadable: bool) -> None:
    from azml_policies.values import normalize

    assert parse_ports(normalize(values)) == (ranges, unreadable)


@pytest.mark.parametrize("prefix", ["*", "Internet", " INTERNET ", "any", "0.0.0.0/0", "::/0", "0.0.0.0/00"])
def test_anywhere_sources(prefix: str) -> None:
    assert is_anywhere(prefix)


@pytest.mark.parametrize("prefix", ["VirtualNetwork", "10.0.0.0/8", "AzureLoadBalancer", "203.0.113.7/32", "Storage.WestEurope"])
def test_sources_that_are_not_anywhere(prefix: str) -> None:
    assert not is_anywhere(prefix)


def test_vnet_reach_and_arm_shaped_rules() -> None:
    assert reaches_vnet("VirtualNetwork") and reaches_vnet("10.30.5.0/24") and reaches_vnet("*")
    assert not reaches_vnet("Internet") and not reaches_vnet("52.0.0.0/8")
    arm = {"name": "r", "properties": {"access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "TCP",
                                       "sourceAddressPrefix": "10.0.0.0/8, *", "destinationPortRanges": ["3389"]}}
    parsed = read_rule(arm, "nsg")
    assert (parsed.access, parsed.direction, parsed.protocol, parsed.sources) == ("allow", "inbound", "tcp", ("10.0.0.0/8", "*"))
    assert parsed.covers(3389) and not parsed.covers(22) and not parsed.uncertain
