"""How azure-native inputs map onto an ARM resource body.

azure-native flattens ARM's ``properties`` envelope into top-level inputs and,
for a few properties, uses the SDK's client name instead of the REST name
(``x-ms-client-name`` in the Azure REST API specs). The provider maps them
back on the wire from metadata that the Python SDK does not ship, so the few
differences that matter for the resources azml creates are kept here, each
taken from the REST spec of the API version in use. checkov reads the REST
names (``properties.supportsHttpsTrafficOnly``, ``properties.networkAcls``),
so a missing rename here makes a check read nothing.

Three kinds of difference:

* ``renames``: SDK name → REST name, by dotted path below ``properties``
  (lists are walked through: ``a.b`` applies to every item of a list ``a``).
* ``properties_input``: the SDK input ``properties`` already *is* the ARM
  ``properties`` object (Azure ML child resources, Key Vault).
* ``subresources``: lists of ARM sub-resources (``{name, properties: {...}}``)
  whose item properties azure-native flattens (NSG rules, private link service
  connections, DNS zone configs, subnet delegations...); the export puts them
  back under each item's ``properties``.

``in_properties`` names inputs that would be top-level ARM keys for most types
but live under ``properties`` for this one (Log Analytics' ``sku``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Inputs that are top-level keys of an ARM resource, not ``properties``.
TOP_LEVEL_KEYS: tuple[str, ...] = ("location", "tags", "sku", "identity", "kind", "zones", "extendedLocation")

#: Keys of an ARM sub-resource item that stay outside its ``properties``.
SUBRESOURCE_OUTER_KEYS = frozenset({"name", "id", "type", "etag"})


@dataclass(frozen=True)
class Shape:
    properties_input: bool = False
    renames: Mapping[str, str] = field(default_factory=dict)
    subresources: tuple[str, ...] = ()
    in_properties: frozenset[str] = frozenset()


_PRIVATE_ENDPOINT_SUBRESOURCES = (
    "privateLinkServiceConnections",
    "manualPrivateLinkServiceConnections",
    "ipConfigurations",
)

SHAPES: dict[str, Shape] = {
    # Microsoft.Storage 2024-01-01, storage.json StorageAccountPropertiesCreateParameters / Encryption.
    "azure-native:storage:StorageAccount": Shape(
        renames={
            "enableHttpsTrafficOnly": "supportsHttpsTrafficOnly",
            "networkRuleSet": "networkAcls",
            "enableNfsV3": "isNfsV3Enabled",
            "encryption.keyVaultProperties": "keyvaultproperties",
            "encryption.keyVaultProperties.keyName": "keyname",
            "encryption.keyVaultProperties.keyVersion": "keyversion",
            "encryption.keyVaultProperties.keyVaultUri": "keyvaulturi",
            "encryption.encryptionIdentity": "identity",
            "encryption.encryptionIdentity.encryptionUserAssignedIdentity": "userAssignedIdentity",
            "encryption.encryptionIdentity.encryptionFederatedIdentityClientId": "federatedIdentityClientId",
        }
    ),
    # Microsoft.Insights/components 2020-02-02: the REST names are PascalCase, some with underscores.
    "azure-native:applicationinsights:Component": Shape(
        renames={
            "applicationType": "Application_Type",
            "flowType": "Flow_Type",
            "requestSource": "Request_Source",
            "workspaceResourceId": "WorkspaceResourceId",
            "ingestionMode": "IngestionMode",
            "disableLocalAuth": "DisableLocalAuth",
            "disableIpMasking": "DisableIpMasking",
            "retentionInDays": "RetentionInDays",
            "samplingPercentage": "SamplingPercentage",
            "immediatePurgeDataOn30Days": "ImmediatePurgeDataOn30Days",
            "hockeyAppId": "HockeyAppId",
            "forceCustomerStorageForProfiler": "ForceCustomerStorageForProfiler",
        }
    ),
    # Log Analytics keeps its sku under properties.
    "azure-native:operationalinsights:Workspace": Shape(in_properties=frozenset({"sku"})),
    # Metric alert criteria carry the discriminator as "odata.type".
    "azure-native:monitor:MetricAlert": Shape(renames={"criteria.odataType": "odata.type"}),
    # Custom role: REST properties.type is the SDK's roleType.
    "azure-native:authorization:RoleDefinition": Shape(renames={"roleType": "type"}),
    "azure-native:keyvault:Vault": Shape(properties_input=True),
    "azure-native:machinelearningservices:Compute": Shape(properties_input=True),
    "azure-native:machinelearningservices:OnlineEndpoint": Shape(properties_input=True),
    "azure-native:machinelearningservices:OnlineDeployment": Shape(properties_input=True),
    "azure-native:machinelearningservices:BatchEndpoint": Shape(properties_input=True),
    "azure-native:machinelearningservices:BatchDeployment": Shape(properties_input=True),
    "azure-native:machinelearningservices:Schedule": Shape(properties_input=True),
    "azure-native:machinelearningservices:EnvironmentVersion": Shape(properties_input=True),
    # Microsoft.Network sub-resources: {name, properties: {...}} on the wire.
    "azure-native:network:NetworkSecurityGroup": Shape(subresources=("securityRules",)),
    "azure-native:network:VirtualNetwork": Shape(subresources=("subnets", "virtualNetworkPeerings")),
    "azure-native:network:Subnet": Shape(subresources=("delegations", "serviceEndpointPolicies")),
    "azure-native:network:PrivateEndpoint": Shape(subresources=_PRIVATE_ENDPOINT_SUBRESOURCES),
    "azure-native:network:PrivateDnsZoneGroup": Shape(subresources=("privateDnsZoneConfigs",)),
}

DEFAULT_SHAPE = Shape()


def shape_of(token: str) -> Shape:
    return SHAPES.get(token, DEFAULT_SHAPE)


def _rename_tree(renames: Mapping[str, str]) -> dict[str, Any]:
    """``{"a.b": "B"}`` → ``{"a": {"": None, "b": {"": "B"}}}``: per segment, the new name under ``""``."""
    tree: dict[str, Any] = {}
    for path, new_name in renames.items():
        node = tree
        for segment in path.split("."):
            node = node.setdefault(segment, {})
        node[""] = new_name
    return tree


def _apply_renames(value: Any, tree: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [_apply_renames(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        node = tree.get(key)
        if node is None:
            renamed[key] = item
            continue
        renamed[node.get("") or key] = _apply_renames(item, node)
    return renamed


def rename_properties(token: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Apply the SDK → REST renames of ``token`` to an ARM ``properties`` object."""
    renames = shape_of(token).renames
    if not renames:
        return properties
    return _apply_renames(properties, _rename_tree(renames))


def nest_subresources(token: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Put the flattened item properties of ARM sub-resource lists back under ``properties``."""
    keys = shape_of(token).subresources
    if not keys:
        return properties
    nested = dict(properties)
    for key in keys:
        items = nested.get(key)
        if not isinstance(items, list):
            continue
        nested[key] = [_nest_item(item) for item in items]
    return nested


def _nest_item(item: Any) -> Any:
    if not isinstance(item, dict) or "properties" in item:
        return item
    outer = {k: v for k, v in item.items() if k in SUBRESOURCE_OUTER_KEYS}
    inner = {k: v for k, v in item.items() if k not in SUBRESOURCE_OUTER_KEYS}
    if inner:
        outer["properties"] = inner
    return outer
