"""The one table from azure-native type token to Azure Resource Manager type.

The SDK does not carry ARM types, yet we need them to build Azure-shaped
resource ids under mocks (and, later, an ARM export for checkov). Each row
says which input holds the resource's own name, which inputs name its parents
(for child types such as ``virtualNetworks/subnets``) and, for extension
resources (diagnostic settings, role assignments), which input holds the scope
they attach to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class ArmType:
    arm_type: str
    name_key: str
    parent_keys: tuple[str, ...] = ()
    scope_key: str | None = None


ARM_TYPES: dict[str, ArmType] = {
    "azure-native:resources:ResourceGroup": ArmType("Microsoft.Resources/resourceGroups", "resourceGroupName"),
    "azure-native:network:VirtualNetwork": ArmType("Microsoft.Network/virtualNetworks", "virtualNetworkName"),
    "azure-native:network:Subnet": ArmType(
        "Microsoft.Network/virtualNetworks/subnets", "subnetName", ("virtualNetworkName",)
    ),
    "azure-native:network:NetworkSecurityGroup": ArmType(
        "Microsoft.Network/networkSecurityGroups", "networkSecurityGroupName"
    ),
    "azure-native:network:SecurityRule": ArmType(
        "Microsoft.Network/networkSecurityGroups/securityRules", "securityRuleName", ("networkSecurityGroupName",)
    ),
    "azure-native:network:PrivateEndpoint": ArmType("Microsoft.Network/privateEndpoints", "privateEndpointName"),
    "azure-native:network:PublicIPAddress": ArmType("Microsoft.Network/publicIPAddresses", "publicIpAddressName"),
    "azure-native:network:NatGateway": ArmType("Microsoft.Network/natGateways", "natGatewayName"),
    "azure-native:network:PrivateDnsZoneGroup": ArmType(
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups", "privateDnsZoneGroupName", ("privateEndpointName",)
    ),
    "azure-native:privatedns:PrivateZone": ArmType("Microsoft.Network/privateDnsZones", "privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": ArmType(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "virtualNetworkLinkName", ("privateZoneName",)
    ),
    "azure-native:operationalinsights:Workspace": ArmType(
        "Microsoft.OperationalInsights/workspaces", "workspaceName"
    ),
    "azure-native:applicationinsights:Component": ArmType("Microsoft.Insights/components", "resourceName"),
    # Workbook names are GUIDs (components/dashboards.py derives one per stack).
    "azure-native:applicationinsights:Workbook": ArmType("Microsoft.Insights/workbooks", "resourceName"),
    "azure-native:storage:StorageAccount": ArmType("Microsoft.Storage/storageAccounts", "accountName"),
    "azure-native:storage:BlobServiceProperties": ArmType(
        "Microsoft.Storage/storageAccounts/blobServices", "blobServicesName", ("accountName",)
    ),
    "azure-native:storage:FileServiceProperties": ArmType(
        "Microsoft.Storage/storageAccounts/fileServices", "fileServicesName", ("accountName",)
    ),
    "azure-native:storage:BlobContainer": ArmType(
        "Microsoft.Storage/storageAccounts/blobServices/containers", "containerName", ("accountName", "=default")
    ),
    "azure-native:storage:Queue": ArmType(
        "Microsoft.Storage/storageAccounts/queueServices/queues", "queueName", ("accountName", "=default")
    ),
    "azure-native:storage:ManagementPolicy": ArmType(
        "Microsoft.Storage/storageAccounts/managementPolicies", "managementPolicyName", ("accountName",)
    ),
    "azure-native:web:AppServicePlan": ArmType("Microsoft.Web/serverfarms", "name"),
    "azure-native:web:WebApp": ArmType("Microsoft.Web/sites", "name"),
    "azure-native:eventgrid:SystemTopic": ArmType("Microsoft.EventGrid/systemTopics", "systemTopicName"),
    "azure-native:eventgrid:SystemTopicEventSubscription": ArmType(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions", "eventSubscriptionName", ("systemTopicName",)
    ),
    "azure-native:authorization:RoleDefinition": ArmType(
        "Microsoft.Authorization/roleDefinitions", "roleDefinitionId", scope_key="scope"
    ),
    "azure-native:authorization:PolicyAssignment": ArmType(
        "Microsoft.Authorization/policyAssignments", "policyAssignmentName", scope_key="scope"
    ),
    "azure-native:authorization:ManagementLockByScope": ArmType(
        "Microsoft.Authorization/locks", "lockName", scope_key="scope"
    ),
    "azure-native:consumption:Budget": ArmType("Microsoft.Consumption/budgets", "budgetName", scope_key="scope"),
    # Defender plans: an extension of the subscription ("/subscriptions/<id>").
    "azure-native:security:Pricing": ArmType("Microsoft.Security/pricings", "pricingName", scope_key="scopeId"),
    "azure-native:keyvault:Vault": ArmType("Microsoft.KeyVault/vaults", "vaultName"),
    "azure-native:managedidentity:UserAssignedIdentity": ArmType(
        "Microsoft.ManagedIdentity/userAssignedIdentities", "resourceName"
    ),
    "azure-native:containerregistry:Registry": ArmType("Microsoft.ContainerRegistry/registries", "registryName"),
    "azure-native:machinelearningservices:Workspace": ArmType(
        "Microsoft.MachineLearningServices/workspaces", "workspaceName"
    ),
    "azure-native:machinelearningservices:Compute": ArmType(
        "Microsoft.MachineLearningServices/workspaces/computes", "computeName", ("workspaceName",)
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": ArmType(
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints", "endpointName", ("workspaceName",)
    ),
    "azure-native:machinelearningservices:OnlineDeployment": ArmType(
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
        "deploymentName",
        ("workspaceName", "endpointName"),
    ),
    "azure-native:machinelearningservices:BatchEndpoint": ArmType(
        "Microsoft.MachineLearningServices/workspaces/batchEndpoints", "endpointName", ("workspaceName",)
    ),
    "azure-native:machinelearningservices:BatchDeployment": ArmType(
        "Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments",
        "deploymentName",
        ("workspaceName", "endpointName"),
    ),
    "azure-native:machinelearningservices:EnvironmentVersion": ArmType(
        "Microsoft.MachineLearningServices/workspaces/environments/versions", "version", ("workspaceName", "name")
    ),
    "azure-native:machinelearningservices:Schedule": ArmType(
        "Microsoft.MachineLearningServices/workspaces/schedules", "name", ("workspaceName",)
    ),
    "azure-native:monitor:AutoscaleSetting": ArmType("Microsoft.Insights/autoscalesettings", "autoscaleSettingName"),
    "azure-native:monitor:ActionGroup": ArmType("Microsoft.Insights/actionGroups", "actionGroupName"),
    "azure-native:monitor:MetricAlert": ArmType("Microsoft.Insights/metricAlerts", "ruleName"),
    "azure-native:monitor:ScheduledQueryRule": ArmType("Microsoft.Insights/scheduledQueryRules", "ruleName"),
    "azure-native:monitor:DiagnosticSetting": ArmType(
        "Microsoft.Insights/diagnosticSettings", "name", scope_key="resourceUri"
    ),
    "azure-native:authorization:RoleAssignment": ArmType(
        "Microsoft.Authorization/roleAssignments", "roleAssignmentName", scope_key="scope"
    ),
}


class UnknownResourceType(KeyError):
    pass


def arm_type_of(token: str) -> ArmType:
    try:
        return ARM_TYPES[token]
    except KeyError:
        raise UnknownResourceType(
            f"{token} has no row in azml.plan.arm.ARM_TYPES; add its ARM type before using it"
        ) from None


def arm_id(token: str, name: str, inputs: Mapping[str, Any], subscription_id: str) -> str:
    """The ARM resource id Azure would assign, e.g.
    ``/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<name>``."""
    row = arm_type_of(token)
    if token == "azure-native:resources:ResourceGroup":
        return f"/subscriptions/{subscription_id}/resourceGroups/{name}"
    namespace, *types = row.arm_type.split("/")
    if row.scope_key is not None:
        scope = str(inputs.get(row.scope_key, "")).rstrip("/")
        return f"{scope}/providers/{namespace}/{types[0]}/{name}"
    # "=literal" parent keys stand for fixed segments (e.g. blobServices/default).
    segments = [key[1:] if key.startswith("=") else str(inputs.get(key)) for key in row.parent_keys] + [name]
    path = "/".join(f"{t}/{n}" for t, n in zip(types, segments))
    group = inputs.get("resourceGroupName")
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{namespace}/{path}"
