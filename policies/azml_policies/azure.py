"""azure-native type tokens the pack reads, and how a resource's ARM id is
recognised from its properties.

Ids of resources still to be created are unknown during preview, so a
reference (``privateLinkServiceId``, ``resourceUri``, ``scopes``) is matched by
the target's ARM id suffix ``/providers/<namespace>/<type>/<name>`` built
from its name input (``vaultName``, ``accountName``...), or by the target's
``id`` when the engine knows it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from .values import get

WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
BATCH_ENDPOINT = "azure-native:machinelearningservices:BatchEndpoint"
BATCH_DEPLOYMENT = "azure-native:machinelearningservices:BatchDeployment"
ENVIRONMENT_VERSION = "azure-native:machinelearningservices:EnvironmentVersion"
SCHEDULE = "azure-native:machinelearningservices:Schedule"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
PRIVATE_DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
VIRTUAL_NETWORK_LINK = "azure-native:privatedns:VirtualNetworkLink"
VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
NAT_GATEWAY = "azure-native:network:NatGateway"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
SYSTEM_TOPIC = "azure-native:eventgrid:SystemTopic"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
SCHEDULED_QUERY_RULE = "azure-native:monitor:ScheduledQueryRule"
AUTOSCALE_SETTING = "azure-native:monitor:AutoscaleSetting"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
WEB_APP = "azure-native:web:WebApp"
ENDPOINT_ROUTING = "pulumi-python:dynamic/azml:EndpointRouting"

_VERSIONED_MODULE = re.compile(r"^(azure-native:[A-Za-z0-9]+)/v[0-9A-Za-z]+(:.+)$")


def base_type(type_token: str) -> str:
    """``azure-native:keyvault/v20230701:Vault`` -> ``azure-native:keyvault:Vault``."""
    match = _VERSIONED_MODULE.match(type_token or "")
    return f"{match.group(1)}{match.group(2)}" if match else (type_token or "")


_MLS = "providers/Microsoft.MachineLearningServices/workspaces"
_VNETS = "providers/Microsoft.Network/virtualNetworks"

# type -> path segments of its ARM id after the resource group, each with the
# property keys (inputs first, then the output form) that hold its name.
ARM_PATHS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    WORKSPACE: ((_MLS, ("workspaceName", "name")),),
    VAULT: (("providers/Microsoft.KeyVault/vaults", ("vaultName", "name")),),
    STORAGE_ACCOUNT: (("providers/Microsoft.Storage/storageAccounts", ("accountName", "name")),),
    REGISTRY: (("providers/Microsoft.ContainerRegistry/registries", ("registryName", "name")),),
    WEB_APP: (("providers/Microsoft.Web/sites", ("name",)),),
    APP_INSIGHTS: (("providers/Microsoft.Insights/components", ("resourceName", "name")),),
    LOG_ANALYTICS: (("providers/Microsoft.OperationalInsights/workspaces", ("workspaceName", "name")),),
    SYSTEM_TOPIC: (("providers/Microsoft.EventGrid/systemTopics", ("systemTopicName", "name")),),
    PRIVATE_ENDPOINT: (("providers/Microsoft.Network/privateEndpoints", ("privateEndpointName", "name")),),
    PRIVATE_ZONE: (("providers/Microsoft.Network/privateDnsZones", ("privateZoneName", "name")),),
    VIRTUAL_NETWORK: ((_VNETS, ("virtualNetworkName", "name")),),
    SUBNET: ((_VNETS, ("virtualNetworkName",)), ("subnets", ("subnetName", "name"))),
    NSG: (("providers/Microsoft.Network/networkSecurityGroups", ("networkSecurityGroupName", "name")),),
    PUBLIC_IP: (("providers/Microsoft.Network/publicIPAddresses", ("publicIpAddressName", "name")),),
    NAT_GATEWAY: (("providers/Microsoft.Network/natGateways", ("natGatewayName", "name")),),
    ONLINE_ENDPOINT: ((_MLS, ("workspaceName",)), ("onlineEndpoints", ("endpointName", "name"))),
    BATCH_ENDPOINT: ((_MLS, ("workspaceName",)), ("batchEndpoints", ("endpointName", "name"))),
    ONLINE_DEPLOYMENT: (
        (_MLS, ("workspaceName",)),
        ("onlineEndpoints", ("endpointName",)),
        ("deployments", ("deploymentName", "name")),
    ),
    BATCH_DEPLOYMENT: (
        (_MLS, ("workspaceName",)),
        ("batchEndpoints", ("endpointName",)),
        ("deployments", ("deploymentName", "name")),
    ),
    ENVIRONMENT_VERSION: ((_MLS, ("workspaceName",)), ("environments", ("name",)), ("versions", ("version",))),
    COMPUTE: ((_MLS, ("workspaceName",)), ("computes", ("computeName", "name"))),
}


def _first_string(props: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = get(props, key)
        if isinstance(value, str) and value:
            return value
    return None


def arm_name(type_token: str, props: Mapping[str, Any]) -> str | None:
    """The resource's own ARM name when known."""
    path = ARM_PATHS.get(type_token)
    if path:
        return _first_string(props, path[-1][1])
    return _first_string(props, ("name",))


def arm_id(props: Mapping[str, Any]) -> str | None:
    """The full ARM id when the engine knows it (outputs of existing resources)."""
    value = get(props, "id")
    if isinstance(value, str) and value.lower().startswith("/subscriptions/"):
        return value.rstrip("/").lower()
    return None


def id_suffix(type_token: str, props: Mapping[str, Any]) -> str | None:
    """``/resourcegroups/<rg>/providers/<ns>/<type>/<name>`` (lower case) as far
    as it is known; ``None`` when the own name is unknown, or the parent's
    name is unknown for a nested type (``/deployments/blue`` alone is ambiguous)."""
    path = ARM_PATHS.get(type_token)
    if not path:
        return None
    segments: list[str] = []
    for segment, keys in reversed(path):
        value = _first_string(props, keys)
        if value is None:
            break
        segments.insert(0, f"/{segment}/{value}")
    if len(segments) < min(len(path), 2) or not segments:
        return None
    if len(segments) == len(path):
        group = get(props, "resourceGroupName")
        if isinstance(group, str) and group:
            segments.insert(0, f"/resourceGroups/{group}")
    return "".join(segments).lower()


def own_id(type_token: str, props: Mapping[str, Any]) -> tuple[str | None, bool]:
    """What a reference to the resource is matched against: its full ARM id
    when known (``True``), else its id suffix (``False``); ``None`` if neither."""
    full = arm_id(props)
    return (full, True) if full else (id_suffix(type_token, props), False)


def refers_to(reference: Any, type_token: str, props: Mapping[str, Any], *, children: tuple[str, ...] = ()) -> bool:
    """Whether the string ``reference`` is the ARM id of the resource with
    ``props`` — or of one of its child resources of the types in ``children``
    (``blobServices`` of a storage account)."""
    if not isinstance(reference, str) or not reference:
        return False
    own, full = own_id(type_token, props)
    return refers_to_id(reference, own, full, children=children)


def refers_to_id(reference: Any, own: str | None, full: bool, *, children: tuple[str, ...] = ()) -> bool:
    """:func:`refers_to` against an :func:`own_id` computed once."""
    if not own or not isinstance(reference, str) or not reference:
        return False
    ref = reference.rstrip("/").lower()
    exact = ref == own if full else ref.endswith(own)
    if exact:
        return True
    for child in children:
        marker = f"{own}/{child.lower()}/"
        if ref.startswith(marker) if full else marker in ref:
            return True
    return False


def last_segment(reference: Any) -> str | None:
    if not isinstance(reference, str) or not reference:
        return None
    return reference.rstrip("/").rsplit("/", 1)[-1]


def segment_after(reference: Any, name: str) -> str | None:
    """The path segment following ``/<name>/`` in an id (case-insensitive)."""
    if not isinstance(reference, str):
        return None
    parts = reference.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == name.lower():
            return parts[index + 1]
    return None
