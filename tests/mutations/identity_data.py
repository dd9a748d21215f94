"""Identity and data protection outside the ML core: soft delete, cross-tenant
replication, Entra-only telemetry, Event Grid's identity, the workspace's v1
legacy mode and the required tags (policies/azml_policies/data_protection.py,
identity.py)."""

from __future__ import annotations

from azml.plan.model import Plan

from . import Mutation, added, combined, one, removal, setting

CATEGORY = "identity-data"
STORAGE = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
SYSTEM_TOPIC = "azure-native:eventgrid:SystemTopic"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"

BLOB_SOFT_DELETE = "azml-storage-blob-soft-delete"
CONTAINER_SOFT_DELETE = "azml-storage-container-soft-delete"
ENTRA_WRITERS = "azml-appinsights-entra-writers"
IDENTITY_DELIVERY = "azml-eventgrid-identity-delivery"
V1_LEGACY = "azml-workspace-v1-legacy-mode-disabled"
TAGS = "azml-required-tags"


def _unset(type_token: str, path: str, name: str | None = None):
    def mutate(plan: Plan) -> None:
        *parents, last = path.split(".")
        inputs = one(plan, type_token, name).inputs
        for key in parents:
            inputs = inputs[key]
        del inputs[last]

    return mutate


def _keyed_delivery(plan: Plan) -> None:
    inputs = one(plan, SUBSCRIPTION).inputs
    inputs["destination"] = inputs.pop("deliveryWithResourceIdentity")["destination"]


def _keyed_dead_letter(plan: Plan) -> None:
    inputs = one(plan, SUBSCRIPTION).inputs
    inputs["deadLetterDestination"] = inputs.pop("deadLetterWithResourceIdentity")["deadLetterDestination"]


def _deployments_without_app_insights(plan: Plan) -> None:
    for deployment in plan.resources:
        if deployment.type == ONLINE_DEPLOYMENT:
            deployment.inputs["properties"]["appInsightsEnabled"] = False


def _function_without_entra_telemetry(plan: Plan) -> None:
    settings = one(plan, WEB_APP, "func").inputs["siteConfig"]["appSettings"]
    settings[:] = [s for s in settings if s["name"] != "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


MUTATIONS: list[Mutation] = [
    Mutation(
        "host-storage-soft-delete-removed",
        CATEGORY,
        "The function host account's blob service (soft delete) is dropped from the retraining component.",
        removal(BLOB_SERVICE, "st-fn-blob"),
        (BLOB_SOFT_DELETE, CONTAINER_SOFT_DELETE),
    ),
    Mutation(
        "workspace-storage-blob-soft-delete-off",
        CATEGORY,
        "deleteRetentionPolicy.enabled: false on the workspace account's blob service.",
        setting(BLOB_SERVICE, "deleteRetentionPolicy.enabled", False, "st-blob"),
        (BLOB_SOFT_DELETE,),
    ),
    Mutation(
        "workspace-storage-soft-delete-one-day",
        CATEGORY,
        "Blob soft delete shortened to one day in prod.",
        setting(BLOB_SERVICE, "deleteRetentionPolicy.days", 1, "st-blob"),
        (BLOB_SOFT_DELETE,),
    ),
    Mutation(
        "host-storage-container-soft-delete-off",
        CATEGORY,
        "containerDeleteRetentionPolicy.enabled: false on the function host account.",
        setting(BLOB_SERVICE, "containerDeleteRetentionPolicy.enabled", False, "st-fn-blob"),
        (CONTAINER_SOFT_DELETE,),
    ),
    Mutation(
        "workspace-storage-cross-tenant-replication",
        CATEGORY,
        "allowCrossTenantReplication: true on the workspace storage account.",
        setting(STORAGE, "allowCrossTenantReplication", True, "st"),
        ("azml-storage-cross-tenant-replication-disabled",),
    ),
    Mutation(
        "host-storage-cross-tenant-replication-unset",
        CATEGORY,
        "allowCrossTenantReplication left out of the host account (older API versions default to true).",
        _unset(STORAGE, "allowCrossTenantReplication", "st-fn"),
        ("azml-storage-cross-tenant-replication-disabled",),
    ),
    Mutation(
        "app-insights-entra-only-with-key-writers",
        CATEGORY,
        "disableLocalAuth: true on App Insights while the online deployments still send with the instrumentation key.",
        setting(APP_INSIGHTS, "disableLocalAuth", True),
        (ENTRA_WRITERS,),
    ),
    Mutation(
        "function-telemetry-back-to-key",
        CATEGORY,
        "After the switch to Entra-only ingestion, the function loses APPLICATIONINSIGHTS_AUTHENTICATION_STRING.",
        combined(setting(APP_INSIGHTS, "disableLocalAuth", True), _deployments_without_app_insights, _function_without_entra_telemetry),
        (ENTRA_WRITERS,),
    ),
    Mutation(
        "log-analytics-shared-keys",
        CATEGORY,
        "features.disableLocalAuth: false on the Log Analytics workspace.",
        setting(LOG_ANALYTICS, "features.disableLocalAuth", False),
        ("azml-log-analytics-local-auth-disabled",),
    ),
    Mutation(
        "event-grid-topic-without-identity",
        CATEGORY,
        "The system topic's identity block is removed.",
        setting(SYSTEM_TOPIC, "identity", None),
        ("azml-eventgrid-managed-identity", "azure-eventgrid-storage-delivery-reachable"),
    ),
    Mutation(
        "event-grid-delivery-with-keys",
        CATEGORY,
        "The subscription delivers to the queue with destination (Event Grid's keys) instead of its identity.",
        _keyed_delivery,
        (IDENTITY_DELIVERY,),
    ),
    Mutation(
        "event-grid-dead-letter-with-keys",
        CATEGORY,
        "Dead letters go through deadLetterDestination (keys) instead of deadLetterWithResourceIdentity.",
        _keyed_dead_letter,
        (IDENTITY_DELIVERY,),
    ),
    Mutation(
        "event-grid-delivery-identity-dropped",
        CATEGORY,
        "deliveryWithResourceIdentity keeps its destination but loses its identity.",
        _unset(SUBSCRIPTION, "deliveryWithResourceIdentity.identity"),
        (IDENTITY_DELIVERY,),
    ),
    Mutation(
        "workspace-v1-legacy-mode-on",
        CATEGORY,
        "v1LegacyMode: true on the workspace.",
        setting(WORKSPACE, "v1LegacyMode", True),
        (V1_LEGACY,),
    ),
    Mutation(
        "workspace-v1-legacy-mode-unset",
        CATEGORY,
        "v1LegacyMode removed from the workspace (its default depends on the API version).",
        _unset(WORKSPACE, "v1LegacyMode"),
        (V1_LEGACY,),
    ),
    Mutation(
        "vault-owner-tag-removed",
        CATEGORY,
        "The Key Vault is created without the owner tag.",
        _unset(VAULT, "tags.owner"),
        (TAGS,),
    ),
    Mutation(
        "environment-classification-tag-removed",
        CATEGORY,
        "The environment asset loses its data-classification tag.",
        _unset(ENVIRONMENT, "properties.tags.data-classification"),
        (TAGS,),
    ),
    Mutation(
        "untagged-account-without-soft-delete",
        CATEGORY,
        "A new storage account copied from the host account, without tags and without a blob service.",
        added(STORAGE, "st-fn", "st-scratch", accountName="stscratchazmlprd", tags={}),
        (TAGS, BLOB_SOFT_DELETE),
    ),
]
