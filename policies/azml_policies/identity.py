"""Identity outside the ML core and resource hygiene: Event Grid delivers with
its managed identity (never keys), the workspace runs without the v1 legacy
mode (which disables the v2 API), and every taggable resource carries the required tags.

Event Grid: the system topic's identity is what the storage account trusts
("you can use only the system-assigned managed identity if Allow Azure
services on the trusted service list to access the storage account is also
enabled", event-grid/handler-storage-queues), and a storage account that
refuses shared keys (azml-storage-shared-key-disabled) accepts nothing else.
Whether the account's firewall lets that identity through is the platform
pack's rule (azure-eventgrid-storage-delivery-reachable); here: the identity
exists and every storage destination is reached with it.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import SYSTEM_TOPIC, WORKSPACE
from .checks import PolicyInfo, expect_bool, resource_policy
from .topology import Resource
from .values import MISSING, UNKNOWN, get, show, unwrap

TOPIC = "azure-native:eventgrid:Topic"
SYSTEM_TOPIC_SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
EVENT_SUBSCRIPTION = "azure-native:eventgrid:EventSubscription"

# --------------------------------------------------------------------------- Event Grid

_IDENTITY_TYPES = {"systemassigned", "userassigned", "systemassigned,userassigned"}


def _topic_identity(topic: Resource, _config: dict[str, Any]) -> Iterator[str]:
    kind = topic.get("identity.type")
    if kind is UNKNOWN:
        return
    if isinstance(kind, str) and kind.lower().replace(" ", "") in _IDENTITY_TYPES:
        return
    yield (
        f"{topic.label}: identity.type is {show(kind)}; must be SystemAssigned (or UserAssigned) so that events are "
        "delivered with a managed identity, not keys"
    )


topic_managed_identity = resource_policy(
    PolicyInfo(
        name="azml-eventgrid-managed-identity",
        description="Event Grid topics have a managed identity to deliver events with.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.MEDIUM,
        remediation=(
            "Set identity: {type: 'SystemAssigned'} on the system topic (components/retraining.py does) and grant that "
            "identity the data roles on the destinations (PSRule Azure.EventGrid.ManagedIdentity; "
            "event-grid/managed-service-identity)."
        ),
        resource_types=(SYSTEM_TOPIC, TOPIC),
        properties=("identity.type",),
        tags=("identity", "integration"),
    ),
    _topic_identity,
)

# (property Azure reads without an identity, the one to use instead, its destination path)
_KEYED_DELIVERIES = (
    ("destination", "deliveryWithResourceIdentity", "deliveryWithResourceIdentity.destination"),
    ("deadLetterDestination", "deadLetterWithResourceIdentity", "deadLetterWithResourceIdentity.deadLetterDestination"),
)
_STORAGE_ENDPOINTS = ("storagequeue", "storageblob")


def _endpoint_type(value: Any) -> Any:
    kind = get(value, "endpointType") if isinstance(unwrap(value), dict) else MISSING
    return kind.lower() if isinstance(kind, str) else kind


def _identity_delivery(subscription: Resource, _config: dict[str, Any]) -> Iterator[str]:
    for keyed, with_identity, destination in _KEYED_DELIVERIES:
        if _endpoint_type(subscription.get(keyed)) in _STORAGE_ENDPOINTS:
            yield (
                f"{subscription.label}: {keyed} sends to a storage account with Event Grid's keys; use "
                f"{with_identity} with identity {{type: 'SystemAssigned'}} instead"
            )
        if _endpoint_type(subscription.get(destination)) in _STORAGE_ENDPOINTS:
            kind = subscription.get(f"{with_identity}.identity.type")
            if kind is not UNKNOWN and not (isinstance(kind, str) and kind.lower() in ("systemassigned", "userassigned")):
                yield f"{subscription.label}: {with_identity}.identity.type is {show(kind)}; must name the topic's managed identity"


identity_delivery = resource_policy(
    PolicyInfo(
        name="azml-eventgrid-identity-delivery",
        description="Event subscriptions deliver (and dead-letter) to storage with the topic's managed identity, never with keys.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Replace destination / deadLetterDestination with deliveryWithResourceIdentity / "
            "deadLetterWithResourceIdentity, identity {type: 'SystemAssigned'}; grant the topic's identity Storage Queue "
            "Data Message Sender (queue) and Storage Blob Data Contributor (dead-letter container) "
            "(event-grid/managed-service-identity)."
        ),
        resource_types=(SYSTEM_TOPIC_SUBSCRIPTION, EVENT_SUBSCRIPTION),
        properties=(
            "destination.endpointType",
            "deadLetterDestination.endpointType",
            "deliveryWithResourceIdentity.identity.type",
            "deadLetterWithResourceIdentity.identity.type",
        ),
        tags=("identity", "integration"),
    ),
    _identity_delivery,
)

# --------------------------------------------------------------------------- workspace

v1_legacy_mode_disabled = resource_policy(
    PolicyInfo(
        name="azml-workspace-v1-legacy-mode-disabled",
        description="Azure ML workspaces leave the v1 legacy mode off (it disables the v2 API the platform is built on).",
        checklist=checks.PUBLIC_ACCESS,
        severity=Severity.MEDIUM,
        remediation=(
            "Set v1LegacyMode: false on the workspace explicitly (components/workspace.py does): \"When enabled, this "
            "parameter disables the v2 API for your workspace\" (managed online endpoints, managed networks), and its "
            "default is true for workspaces created with a REST API older than 2022-05-01 "
            "(machine-learning/how-to-configure-network-isolation-with-v2). Keep operations private with the workspace "
            "private endpoint and managed network instead. PSRule Azure.ML.V1LegacyMode."
        ),
        resource_types=(WORKSPACE,),
        properties=("v1LegacyMode",),
        tags=("workspace", "network"),
    ),
    # Unset is not enough: the default depends on the API version of the create.
    lambda ws, _config: expect_bool(ws, "v1LegacyMode", False),
)

# --------------------------------------------------------------------------- required tags

#: Types the stacks create that take ARM tags (learn.microsoft.com/azure/azure-resource-manager/management/tag-support),
#: with where their tags live. Asset versions and schedules carry theirs in properties.
TAGGED_TYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "azure-native:resources:ResourceGroup",
            "azure-native:storage:StorageAccount",
            "azure-native:keyvault:Vault",
            "azure-native:containerregistry:Registry",
            "azure-native:operationalinsights:Workspace",
            "azure-native:applicationinsights:Component",
            "azure-native:applicationinsights:Workbook",
            "azure-native:machinelearningservices:Workspace",
            "azure-native:machinelearningservices:Compute",
            "azure-native:machinelearningservices:OnlineEndpoint",
            "azure-native:machinelearningservices:OnlineDeployment",
            "azure-native:machinelearningservices:BatchEndpoint",
            "azure-native:machinelearningservices:BatchDeployment",
            "azure-native:managedidentity:UserAssignedIdentity",
            "azure-native:network:VirtualNetwork",
            "azure-native:network:NetworkSecurityGroup",
            "azure-native:network:PrivateEndpoint",
            "azure-native:network:NatGateway",
            "azure-native:network:PublicIPAddress",
            "azure-native:privatedns:PrivateZone",
            "azure-native:privatedns:VirtualNetworkLink",
            "azure-native:monitor:ActionGroup",
            "azure-native:monitor:MetricAlert",
            "azure-native:monitor:ScheduledQueryRule",
            "azure-native:monitor:AutoscaleSetting",
            "azure-native:web:AppServicePlan",
            "azure-native:web:WebApp",
            SYSTEM_TOPIC,
        ),
        "tags",
    ),
    "azure-native:machinelearningservices:EnvironmentVersion": "properties.tags",
    "azure-native:machinelearningservices:Schedule": "properties.tags",
}


def _required_tags(resource: Resource, config: dict[str, Any]) -> Iterator[str]:
    path = TAGGED_TYPES[resource.type]
    tags = resource.get(path)
    if tags is UNKNOWN:
        return
    tags = tags if isinstance(tags, dict) else {}
    missing = []
    for key in config["requiredTags"]:
        value = get(tags, key)
        if value is not UNKNOWN and not (isinstance(value, str) and value.strip()):
            missing.append(key)
    if missing:
        yield (
            f"{resource.label}: {path} has no (or an empty) {', '.join(missing)}; every resource carries "
            f"{', '.join(config['requiredTags'])} (azml:tags, plus environment and managed-by from the program)"
        )


required_tags = resource_policy(
    PolicyInfo(
        name="azml-required-tags",
        description="Every taggable resource carries the required tags (ownership, cost, environment, data classification).",
        checklist=checks.BASELINE_TAGGED,
        severity=Severity.MEDIUM,
        remediation=(
            "Set the missing keys in azml:tags (the program adds environment and managed-by and passes the map to "
            "every resource); a resource created outside the components must take the same map (PSRule "
            "Azure.Resource.UseTags; azure-resource-manager/management/tag-resources)."
        ),
        resource_types=tuple(TAGGED_TYPES),
        properties=("tags", "properties.tags"),
        config={
            "requiredTags": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "default": ["managed-by", "environment", "cost-center", "owner", "data-classification"],
                "description": "Tag keys every taggable resource must carry with a non-empty value.",
            }
        },
        tags=("governance",),
    ),
    _required_tags,
)

POLICIES = [topic_managed_identity, identity_delivery, v1_legacy_mode_disabled, required_tags]
