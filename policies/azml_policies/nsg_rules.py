"""Network security group rules as the network policies read them.

A rule comes from an NSG's ``securityRules[]`` (azure-native inputs: flat
keys; ARM and outputs: under ``properties``) or from a separate
``network:SecurityRule`` resource naming the NSG in
``networkSecurityGroupName``. Azure evaluates an NSG's rules of one direction
by priority, lowest number first, and stops at the first match; below every
custom rule sit the default rules (AllowVnetInBound, AllowVnetOutBound,
AllowInternetOutBound...)
(https://learn.microsoft.com/azure/virtual-network/network-security-group-how-it-works).

Address prefixes are compared case-insensitively and without surrounding
whitespace; a singular ``...AddressPrefix`` that carries a comma-separated
list is read as that list. Ports are ``*``, a number or a range ``"20-25"``
(numbers may arrive as floats: 22.0). What cannot be read (an unknown value)
makes the rule *uncertain*: checks that need it report nothing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from .azure import NSG, SECURITY_RULE
from .topology import Resource, Stack
from .values import UNKNOWN, as_number, get, has_unknown, unwrap

ALL_PORTS = (0, 65535)
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")

#: Sources meaning "anywhere": the wildcard, the Internet service tag, and any
#: /0 prefix (0.0.0.0/0, ::/0) are recognised by :func:`is_anywhere` besides these.
ANYWHERE = ("*", "Internet", "Any", "0.0.0.0/0", "::/0")


def clean(prefix: str) -> str:
    return prefix.strip().lower()


def is_anywhere(prefix: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``prefix`` admits any address on the internet: ``*``, ``Any``,
    the ``Internet`` tag, a /0 network, or one of ``extra``."""
    value = clean(prefix)
    if value in {clean(p) for p in (*ANYWHERE, *extra)}:
        return True
    try:
        return ipaddress.ip_network(value, strict=False).prefixlen == 0
    except ValueError:
        return False


def is_every_host(prefix: str) -> bool:
    """Whether ``prefix`` covers every address of the VNet and beyond (``*``, ``Any``, /0)."""
    return clean(prefix) != "internet" and is_anywhere(prefix)


def is_vnet_wide(prefix: str) -> bool:
    """Whether ``prefix`` covers every host of the VNet: every host, or the VirtualNetwork tag."""
    return is_every_host(prefix) or clean(prefix) == "virtualnetwork"


def reaches_vnet(prefix: str) -> bool:
    """Whether ``prefix`` may include hosts of the virtual network: every host,
    the VirtualNetwork tag, or a private (RFC 1918 / ULA) address range."""
    value = clean(prefix)
    if is_vnet_wide(value):
        return True
    try:
        return ipaddress.ip_network(value, strict=False).is_private
    except ValueError:
        return False


def parse_ports(values: Iterable[Any]) -> tuple[list[tuple[int, int]], bool]:
    """Port ranges ``(low, high)`` of ``values`` (``*``, ``22``, ``"20-25"``,
    numbers), and whether some could not be read."""
    ranges: list[tuple[int, int]] = []
    unreadable = False
    for value in values:
        value = unwrap(value)
        if value is UNKNOWN:
            unreadable = True
            continue
        number = as_number(value)
        if isinstance(number, float) and number.is_integer():
            ranges.append((int(number), int(number)))
            continue
        text = str(value).strip()
        if text == "*":
            ranges.append(ALL_PORTS)
            continue
        for part in text.split(","):
            match = _RANGE.match(part)
            if match:
                low = int(match.group(1))
                ranges.append((low, int(match.group(2) or low)))
            else:
                unreadable = True
    return ranges, unreadable


def _listed(props: Any, singular: str, plural: str) -> tuple[list[Any], bool]:
    """The values of a ``singular``/``plural`` pair (``sourceAddressPrefix``,
    ``sourceAddressPrefixes``): both are read, Azure takes one or the other."""
    values: list[Any] = []
    uncertain = False
    for key in (singular, plural):
        value = get(props, key)
        if value is UNKNOWN or has_unknown(value):
            uncertain = True
        value = unwrap(value)
        if isinstance(value, list):
            values += [unwrap(v) for v in value if unwrap(v) is not UNKNOWN]
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            values += value.split(",") if isinstance(value, str) and key == singular and "," in value else [value]
    return values, uncertain


@dataclass(frozen=True)
class Rule:
    """One security rule, read."""

    where: str  # "NetworkSecurityGroup 'nsg-x' (nsg) rule 'allow-ssh'"
    name: str
    access: str  # "allow" / "deny" / "" when unknown
    direction: str  # "inbound" / "outbound" / ""
    priority: float | None
    protocol: str  # "*", "tcp", "udp", "icmp", ... ("" when unknown)
    sources: tuple[str, ...]  # as written, stripped; compare with clean()
    destinations: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]  # destination ports
    uncertain: bool  # some field could not be read

    def covers(self, port: int) -> bool:
        return any(low <= port <= high for low, high in self.ports)

    @property
    def all_ports(self) -> bool:
        return any(low <= 0 and high >= 65535 for low, high in self.ports)

    def carries(self, protocol: str) -> bool:
        """Whether the rule applies to ``protocol`` traffic (``tcp``/``udp``)."""
        return self.protocol in ("*", "any", protocol)

    @property
    def ports_text(self) -> str:
        return ", ".join("*" if (lo, hi) == ALL_PORTS else str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)


def read_rule(props: Any, where: str) -> Rule:
    """A :class:`Rule` from one rule's properties (flat or under ``properties``)."""
    body = get(props, "properties")
    body = props if not isinstance(body, dict) else body
    name = get(props, "name")
    name = name if isinstance(name, str) else get(props, "securityRuleName")
    uncertain = False

    def text(key: str) -> str:
        nonlocal uncertain
        value = get(body, key)
        if isinstance(value, str):
            return value.strip().lower()
        uncertain = True
        return ""

    access, direction, protocol = text("access"), text("direction"), text("protocol")
    priority = as_number(get(body, "priority"))
    if not isinstance(priority, float):
        uncertain = True
    sources, unsure_sources = _listed(body, "sourceAddressPrefix", "sourceAddressPrefixes")
    destinations, unsure_destinations = _listed(body, "destinationAddressPrefix", "destinationAddressPrefixes")
    port_values, unsure_ports = _listed(body, "destinationPortRange", "destinationPortRanges")
    ports, unreadable = parse_ports(port_values)
    label = name if isinstance(name, str) else "<unnamed>"
    return Rule(
        where=f"{where} rule {label!r}",
        name=label,
        access=access,
        direction=direction,
        priority=priority if isinstance(priority, float) else None,
        protocol=protocol,
        sources=tuple(str(s).strip() for s in sources if str(s).strip()),
        destinations=tuple(str(d).strip() for d in destinations if str(d).strip()),
        ports=tuple(ports),
        uncertain=uncertain or unsure_sources or unsure_destinations or unsure_ports or unreadable,
    )


def rules_of(resource: Resource) -> tuple[list[Rule], bool]:
    """The rules a resource declares: an NSG's ``securityRules[]``, or a
    ``SecurityRule`` resource itself; and whether the list is unknown."""
    if resource.type == SECURITY_RULE:
        nsg = resource.get("networkSecurityGroupName")
        where = f"{resource.label} (NSG {nsg!r})" if isinstance(nsg, str) else resource.label
        return [replace(read_rule(resource.props, where), where=where)], False
    value = unwrap(resource.get("securityRules"))
    if value is UNKNOWN:
        return [], True
    if not isinstance(value, list):
        return [], False
    unknown = any(unwrap(item) is UNKNOWN for item in value)
    return [read_rule(unwrap(item), resource.label) for item in value if isinstance(unwrap(item), dict)], unknown


def nsg_rules(stack: Stack, nsg: Resource) -> tuple[list[Rule], bool]:
    """Every rule of ``nsg``: its ``securityRules[]`` and the separate
    ``SecurityRule`` resources that name it; whether some are unknown."""
    rules, unknown = rules_of(nsg)
    for child in stack.children(nsg, (SECURITY_RULE,), "networkSecurityGroupName"):
        rules += rules_of(child)[0]
    return rules, unknown


def in_order(rules: Iterable[Rule], direction: str) -> list[Rule]:
    """The rules of ``direction`` in Azure's evaluation order (lowest priority number first)."""
    chosen = [r for r in rules if r.direction == direction]
    return sorted(chosen, key=lambda r: r.priority if r.priority is not None else float("inf"))


__all__ = [
    "ALL_PORTS",
    "ANYWHERE",
    "NSG",
    "Rule",
    "in_order",
    "is_anywhere",
    "is_every_host",
    "is_vnet_wide",
    "nsg_rules",
    "parse_ports",
    "reaches_vnet",
    "read_rule",
    "rules_of",
]
