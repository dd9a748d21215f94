"""Stack policies on private networking: every workspace, Key Vault,
container registry and storage account has private endpoints for the right
group ids, every private endpoint registers its records in the private
DNS zones of those group ids, and every zone so used is linked to the
endpoint's virtual network.

Links between resources are read by :class:`~azml_policies.topology.Stack`
(known ids, or recorded dependencies while ids are unknown). A check that
cannot tell (unknown values, no dependency recorded) reports nothing.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from . import checks
from .azure import (
    PRIVATE_DNS_ZONE_GROUP,
    PRIVATE_ENDPOINT,
    PRIVATE_ZONE,
    REGISTRY,
    STORAGE_ACCOUNT,
    VAULT,
    VIRTUAL_NETWORK,
    VIRTUAL_NETWORK_LINK,
    WORKSPACE,
    arm_id,
    segment_after,
)
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .topology import Resource, Stack
from .values import UNKNOWN, get, has_unknown, known, strings, unwrap

# --------------------------------------------------------------------------- private endpoints

_FIXED_GROUP_IDS = {WORKSPACE: "amlworkspace", VAULT: "vault", REGISTRY: "registry"}


def _endpoints_of(stack: Stack, target: Resource) -> list[Resource]:
    return stack.linking(target, (PRIVATE_ENDPOINT,), "privateLinkServiceConnections")


def _group_ids(pe: Resource) -> tuple[set[str], bool]:
    """The group ids of a private endpoint's connections, and whether some are unknown."""
    connections = unwrap(pe.get("privateLinkServiceConnections"))
    if not isinstance(connections, list):
        return set(), True
    found: set[str] = set()
    uncertain = False
    for connection in connections:
        ids = get(connection, "groupIds")
        uncertain = uncertain or has_unknown(ids) or ids is UNKNOWN
        found |= {g.lower() for g in strings(ids)}
    return found, uncertain


def _is_workspace_storage(stack: Stack, account: Resource) -> bool:
    return bool(stack.linking(account, (WORKSPACE,), "storageAccount"))


def _private_endpoints(stack: Stack, config: dict[str, Any]) -> Finding:
    for target in stack.of_type(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY):
        if exempt(config, target.name, target.arm_name):
            continue
        if target.type == STORAGE_ACCOUNT:
            workspace_storage = _is_workspace_storage(stack, target)
            required = config["workspaceStorageGroupIds"] if workspace_storage else config["storageGroupIds"]
        else:
            required = [_FIXED_GROUP_IDS[target.type]]
        endpoints = _endpoints_of(stack, target)
        if not endpoints:
            yield target.urn, (
                f"{target.label}: no private endpoint connects to it (network:PrivateEndpoint "
                f"privateLinkServiceConnections[].privateLinkServiceId); needs group ids {', '.join(required)}"
            )
            continue
        groups: set[str] = set()
        uncertain = False
        for pe in endpoints:
            found, unsure = _group_ids(pe)
            groups |= found
            uncertain = uncertain or unsure
        missing = [g for g in required if g.lower() not in groups]
        if missing and not uncertain:
            yield target.urn, (
                f"{target.label}: private endpoints cover group ids {', '.join(sorted(groups)) or 'none'}; "
                f"missing {', '.join(missing)}"
            )


private_endpoints = stack_policy(
    PolicyInfo(
        name="azml-private-endpoints",
        description=(
            "Workspace, Key Vault, container registry and storage accounts each have private endpoints "
            "(the workspace's storage: blob and file)."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.HIGH,
        remediation=(
            "Create a network:PrivateEndpoint in the private-endpoints subnet whose privateLinkServiceConnections "
            "point at the resource with the right group id (amlworkspace, vault, registry, blob, file) — "
            "components/private_link.py creates it together with its DNS zone group."
        ),
        resource_types=(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY, PRIVATE_ENDPOINT),
        properties=(
            "PrivateEndpoint.privateLinkServiceConnections[].privateLinkServiceId",
            "PrivateEndpoint.privateLinkServiceConnections[].groupIds",
            "Workspace.storageAccount",
            "Workspace.workspaceName",
            "Vault.vaultName",
            "StorageAccount.accountName",
            "Registry.registryName",
        ),
        config={
            "workspaceStorageGroupIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["blob", "file"],
                "description": "Group ids the workspace's storage account needs private endpoints for.",
            },
            "storageGroupIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["blob"],
                "description": "Group ids any other storage account needs private endpoints for.",
            },
        },
        kind="stack",
        tags=("network",),
    ),
    _private_endpoints,
)

# --------------------------------------------------------------------------- private DNS zone groups

DEFAULT_ZONES = {
    "amlworkspace": ["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"],
    "vault": ["privatelink.vaultcore.azure.net"],
    "registry": ["privatelink.azurecr.io"],
    "blob": ["privatelink.blob.core.windows.net"],
    "file": ["privatelink.file.core.windows.net"],
    "queue": ["privatelink.queue.core.windows.net"],
    "table": ["privatelink.table.core.windows.net"],
    "dfs": ["privatelink.dfs.core.windows.net"],
    "sites": ["privatelink.azurewebsites.net"],
}


def _zone_group_of(group: Resource, pe: Resource) -> bool:
    """Whether the zone group ``group`` is the private endpoint ``pe``'s."""
    name = pe.arm_name
    value = group.get("privateEndpointName")
    if isinstance(value, str) and name:
        rg, pe_group = group.get("resourceGroupName"), pe.get("resourceGroupName")
        same_rg = not (isinstance(rg, str) and isinstance(pe_group, str) and rg.lower() != pe_group.lower())
        return value.lower() == name.lower() and same_rg
    group_id = arm_id(group.props)
    if group_id and name and f"/privateendpoints/{name.lower()}/privatednszonegroups/" in group_id:
        return True
    return group.depends_on(pe, "privateEndpointName") or (not known(value) and group.depends_on(pe))


def _index_zone_groups(stack: Stack) -> dict[int, list[Resource]]:
    """Zone groups by the private endpoint they belong to (:func:`_zone_group_of`):
    candidates by name, by the id segment after ``privateEndpoints`` and by
    dependency, each confirmed by the predicate itself."""
    endpoints = stack.of_type(PRIVATE_ENDPOINT)
    slashed = [pe for pe in endpoints if pe.arm_name and "/" in pe.arm_name]  # not one id segment
    index: dict[int, list[Resource]] = {}
    for group in stack.of_type(PRIVATE_DNS_ZONE_GROUP):
        value = group.get("privateEndpointName")
        candidates = stack.named(value) if isinstance(value, str) else []
        group_id = arm_id(group.props)
        if group_id:
            parts = group_id.split("/")
            candidates += [r for i, p in enumerate(parts[:-1]) if p == "privateendpoints" for r in stack.named(parts[i + 1])]
            candidates += slashed
        candidates += stack.with_urns(group.dependencies | group.property_dependencies.get("privateEndpointName", frozenset()))
        for pe in stack.in_order(candidates):
            if pe.type == PRIVATE_ENDPOINT and _zone_group_of(group, pe):
                index.setdefault(id(pe), []).append(group)
    return index


def _zone_groups_of(stack: Stack, pe: Resource) -> list[Resource]:
    return list(stack.memo("zone-groups", lambda: _index_zone_groups(stack)).get(id(pe), ()))


def _zone_name(zone: Resource) -> str | None:
    for key in ("privateZoneName", "name"):
        value = zone.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return None


def _zones_of(stack: Stack, group: Resource) -> tuple[set[str], bool]:
    """The zone names a zone group links, and whether some could not be resolved."""
    names: set[str] = set()
    unresolved = False
    configs = unwrap(group.get("privateDnsZoneConfigs"))
    if isinstance(configs, list):
        for config in configs:
            zone_id = get(config, "privateDnsZoneId")
            zone = segment_after(zone_id, "privateDnsZones") if isinstance(zone_id, str) else None
            if zone:
                names.add(zone.lower())
            else:
                unresolved = True
    else:
        unresolved = True
    if unresolved:
        from_deps = {
            _zone_name(zone)
            for zone in stack.with_urns(group.property_dependencies.get("privateDnsZoneConfigs", ()))
            if zone.type == PRIVATE_ZONE
        } - {None}
        names |= from_deps  # type: ignore[arg-type]
        unresolved = not from_deps
    return names, unresolved


def _dns_zone_groups(stack: Stack, config: dict[str, Any]) -> Finding:
    zones_by_group = {k.lower(): [z.lower() for z in v] for k, v in config["zonesByGroupId"].items()}
    for pe in stack.of_type(PRIVATE_ENDPOINT):
        if exempt(config, pe.name, pe.arm_name):
            continue
        group_ids, uncertain = _group_ids(pe)
        required = sorted({zone for g in group_ids for zone in zones_by_group.get(g, [])})
        if uncertain or not required:
            continue
        groups = _zone_groups_of(stack, pe)
        if not groups:
            yield pe.urn, (
                f"{pe.label}: no private DNS zone group (network:PrivateDnsZoneGroup with privateEndpointName "
                f"{pe.arm_name!r}); needs zones {', '.join(required)}"
            )
            continue
        linked: set[str] = set()
        unresolved = False
        for group in groups:
            names, unsure = _zones_of(stack, group)
            linked |= names
            unresolved = unresolved or unsure
        missing = [zone for zone in required if zone not in linked]
        if missing and not unresolved:
            yield pe.urn, (
                f"{pe.label} (group ids {', '.join(sorted(group_ids))}): DNS zone group links "
                f"{', '.join(sorted(linked)) or 'no zones'}; missing {', '.join(missing)}"
            )


private_dns_zone_groups = stack_policy(
    PolicyInfo(
        name="azml-private-dns-zone-groups",
        description=(
            "Every private endpoint registers its records in the private DNS zones of its group ids "
            "(workspace: api.azureml.ms and notebooks.azure.net)."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.HIGH,
        remediation=(
            "Give the private endpoint a network:PrivateDnsZoneGroup whose privateDnsZoneConfigs link every zone "
            "of its group id (privatelink.api.azureml.ms and privatelink.notebooks.azure.net for a workspace); "
            "components/private_link.py builds both from the zone ids it is given."
        ),
        resource_types=(PRIVATE_ENDPOINT, PRIVATE_DNS_ZONE_GROUP, PRIVATE_ZONE),
        properties=(
            "PrivateEndpoint.privateEndpointName",
            "PrivateEndpoint.privateLinkServiceConnections[].groupIds",
            "PrivateDnsZoneGroup.privateEndpointName",
            "PrivateDnsZoneGroup.privateDnsZoneConfigs[].privateDnsZoneId",
            "PrivateZone.privateZoneName",
        ),
        config={
            "zonesByGroupId": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "default": DEFAULT_ZONES,
                "description": "Private DNS zones required per private-link group id (Azure public cloud by default).",
            }
        },
        kind="stack",
        tags=("network", "dns"),
    ),
    _dns_zone_groups,
)

# --------------------------------------------------------------------------- zone links to the VNet


def _vnets_of(stack: Stack, pe: Resource) -> set[str]:
    """The name of the VNet the private endpoint sits in: from its subnet id,
    else from the subnet resource it depends on, else every VNet of the stack."""
    name = segment_after(pe.get("subnet.id"), "virtualNetworks")
    if name:
        return {name.lower()}
    subnets = [s for s in stack.with_urns(pe.property_dependencies.get("subnet", ())) if isinstance(s.get("virtualNetworkName"), str)]
    if subnets:
        return {s.get("virtualNetworkName").lower() for s in subnets}
    return {v.arm_name.lower() for v in stack.of_type(VIRTUAL_NETWORK) if v.arm_name}


def _linked_vnets(stack: Stack, zone: Resource) -> tuple[set[str], bool]:
    """The VNets the zone's virtual network links point at, and whether some link's target is unknown."""
    names: set[str] = set()
    unknown = False
    for link in stack.children(zone, (VIRTUAL_NETWORK_LINK,), "privateZoneName"):
        target = segment_after(link.get("virtualNetwork.id"), "virtualNetworks")
        if target:
            names.add(target.lower())
            continue
        found = [v.arm_name.lower() for v in stack.of_type(VIRTUAL_NETWORK) if v.arm_name and link.depends_on(v, "virtualNetwork")]
        names |= set(found)
        unknown = unknown or not found
    return names, unknown


def _zone_vnet_links(stack: Stack, config: dict[str, Any]) -> Finding:
    zones = {name: zone for zone in stack.of_type(PRIVATE_ZONE) if (name := _zone_name(zone))}
    needed: dict[str, dict[str, list[str]]] = {}  # zone -> VNet -> private endpoints resolving there
    for pe in stack.of_type(PRIVATE_ENDPOINT):
        for group in _zone_groups_of(stack, pe):
            for zone_name in _zones_of(stack, group)[0]:
                for vnet in _vnets_of(stack, pe):
                    needed.setdefault(zone_name, {}).setdefault(vnet, []).append(pe.arm_name or pe.name)
    for zone_name, vnets in needed.items():
        zone = zones.get(zone_name)
        if zone is None or exempt(config, zone.name, zone.arm_name):
            continue  # a zone outside the stack (a hub's) is linked where it lives
        linked, unknown = _linked_vnets(stack, zone)
        missing = sorted(v for v in vnets if v not in linked)
        if missing and not unknown:
            users = sorted({pe for v in missing for pe in vnets[v]})
            yield zone.urn, (
                f"{zone.label}: no privatedns:VirtualNetworkLink to VNet {', '.join(missing)} (linked: "
                f"{', '.join(sorted(linked)) or 'none'}); the records of {', '.join(users)} in this zone do not resolve "
                "from that VNet, so clients there reach the public endpoint or nothing"
            )


private_dns_zone_vnet_links = stack_policy(
    PolicyInfo(
        name="azml-private-dns-zone-vnet-links",
        description=(
            "Every private DNS zone a private endpoint's zone group uses is linked (privatedns:VirtualNetworkLink) to "
            "the VNet the endpoint sits in."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.HIGH,
        remediation=(
            "Create a privatedns:VirtualNetworkLink from the zone to the VNet (components/network.py links every zone "
            "it creates): a private DNS zone answers only in the virtual networks linked to it, so an endpoint's "
            "records resolve nowhere else (https://learn.microsoft.com/azure/private-link/private-endpoint-dns-integration)."
        ),
        resource_types=(PRIVATE_ZONE, VIRTUAL_NETWORK_LINK, PRIVATE_DNS_ZONE_GROUP, PRIVATE_ENDPOINT, VIRTUAL_NETWORK),
        properties=(
            "VirtualNetworkLink.privateZoneName",
            "VirtualNetworkLink.virtualNetwork.id",
            "PrivateDnsZoneGroup.privateDnsZoneConfigs[].privateDnsZoneId",
            "PrivateEndpoint.subnet.id",
            "VirtualNetwork.virtualNetworkName",
        ),
        kind="stack",
        tags=("network", "dns"),
    ),
    _zone_vnet_links,
)

POLICIES = [private_endpoints, private_dns_zone_groups, private_dns_zone_vnet_links]
