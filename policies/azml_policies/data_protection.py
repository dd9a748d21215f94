"""Data protection outside the ML core: soft delete on every storage account,
no cross-tenant object replication, and telemetry stores that accept
Microsoft Entra ID only (Application Insights ingestion, Log Analytics queries).

Application Insights local authentication is the one setting here a stack
cannot simply flip: once ``DisableLocalAuth`` is true, "only telemetry
exclusively authenticated by using managed identities and Microsoft Entra
ID is ingested" (azure-monitor/app/azure-ad-authentication). Every writer must
then send Entra tokens, so :data:`appinsights_entra_writers` reports the
writers in the stack that cannot, before the switch silently drops their
telemetry: Azure ML online deployments with ``appInsightsEnabled`` (the
Azure ML inference server, ``azureml-inference-server-http``
``server/appinsights_client.py``, exports with the instrumentation key only)
and apps that send a connection string without
``APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD``.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import APP_INSIGHTS, LOG_ANALYTICS, ONLINE_DEPLOYMENT, STORAGE_ACCOUNT, WEB_APP, WORKSPACE
from .checks import Finding, PolicyInfo, exempt, expect_bool, resource_policy, stack_policy
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_bool, as_number, get, known, same, show, unwrap

BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"

_SOFT_DELETE_CONFIG = {
    "minRetentionDays": {
        "type": "integer",
        "minimum": 1,
        "maximum": 365,
        "default": 30,
        "description": "Fewest days deleted data must stay recoverable (Azure allows 1..365).",
    }
}

# --------------------------------------------------------------------------- soft delete


def _blob_services(stack: Stack, account: Resource) -> list[Resource]:
    return stack.children(account, (BLOB_SERVICE,), "accountName")


def _retention_problem(service: Resource, path: str, minimum: int) -> str | None:
    """What is wrong with the retention policy at ``path`` of a blob service
    (``None``: enabled long enough, or not known yet)."""
    enabled = as_bool(service.get(f"{path}.enabled"))
    days = as_number(service.get(f"{path}.days"))
    if enabled is UNKNOWN or days is UNKNOWN:
        return None
    if enabled is not True:
        return f"{path}.enabled is {show(enabled)}"
    if not known(days) or days < minimum:
        return f"{path}.days is {show(days)}; must be at least {minimum}"
    return None


def _soft_delete(path: str, what: str) -> Any:
    def check(stack: Stack, config: dict[str, Any]) -> Finding:
        minimum = config["minRetentionDays"]
        for account in stack.of_type(STORAGE_ACCOUNT):
            if exempt(config, account.name, account.arm_name) or same(account.get("kind"), "FileStorage"):
                continue  # FileStorage accounts have no blob service
            services = _blob_services(stack, account)
            if not services:
                yield account.urn, (
                    f"{account.label}: no storage:BlobServiceProperties in the stack, so {path} is Azure's default "
                    f"(off): deleted {what} cannot be recovered; declare the account's 'default' blob service with "
                    f"{path} {{enabled: true, days: >= {minimum}}}"
                )
                continue
            for service in services:
                problem = _retention_problem(service, path, minimum)
                if problem:
                    yield account.urn, f"{account.label}: blob service {service.name!r}: {problem}; deleted {what} must stay recoverable"

    return check


_SOFT_DELETE_PROPS = ("StorageAccount.accountName", "StorageAccount.kind", "BlobServiceProperties.accountName")

blob_soft_delete = stack_policy(
    PolicyInfo(
        name="azml-storage-blob-soft-delete",
        description="Every storage account keeps deleted blobs recoverable (blob soft delete).",
        checklist=checks.BASELINE_RECOVERABLE,
        severity=Severity.MEDIUM,
        remediation=(
            "Give every storage account a storage:BlobServiceProperties 'default' with deleteRetentionPolicy "
            "{enabled: true, days: N} (azml:storage.blobSoftDeleteDays; the function host account uses the same "
            "value). PSRule Azure.Storage.SoftDelete; learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview."
        ),
        resource_types=(STORAGE_ACCOUNT, BLOB_SERVICE),
        properties=(*_SOFT_DELETE_PROPS, "BlobServiceProperties.deleteRetentionPolicy"),
        config=_SOFT_DELETE_CONFIG,
        kind="stack",
        tags=("storage", "data-protection"),
    ),
    _soft_delete("deleteRetentionPolicy", "blobs"),
)

container_soft_delete = stack_policy(
    PolicyInfo(
        name="azml-storage-container-soft-delete",
        description="Every storage account keeps deleted containers recoverable (container soft delete).",
        checklist=checks.BASELINE_RECOVERABLE,
        severity=Severity.MEDIUM,
        remediation=(
            "Give every storage account a storage:BlobServiceProperties 'default' with containerDeleteRetentionPolicy "
            "{enabled: true, days: N} (azml:storage.containerSoftDeleteDays). PSRule Azure.Storage.ContainerSoftDelete; "
            "learn.microsoft.com/azure/storage/blobs/soft-delete-container-overview."
        ),
        resource_types=(STORAGE_ACCOUNT, BLOB_SERVICE),
        properties=(*_SOFT_DELETE_PROPS, "BlobServiceProperties.containerDeleteRetentionPolicy"),
        config=_SOFT_DELETE_CONFIG,
        kind="stack",
        tags=("storage", "data-protection"),
    ),
    _soft_delete("containerDeleteRetentionPolicy", "containers"),
)

# --------------------------------------------------------------------------- cross-tenant replication

cross_tenant_replication_disabled = resource_policy(
    PolicyInfo(
        name="azml-storage-cross-tenant-replication-disabled",
        description="Storage accounts never replicate objects to accounts in another Microsoft Entra tenant.",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Set allowCrossTenantReplication: false on the account (components.dependencies.locked_down_storage_account "
            "does). Object replication policies then only accept accounts of this tenant "
            "(learn.microsoft.com/azure/storage/blobs/object-replication-prevent-cross-tenant-policies)."
        ),
        resource_types=(STORAGE_ACCOUNT,),
        properties=("allowCrossTenantReplication",),
        tags=("storage", "data-protection"),
    ),
    # Stated explicitly: the service default changed over API versions, and
    # an account created with an older one keeps true.
    lambda st, _config: expect_bool(st, "allowCrossTenantReplication", False),
)

# --------------------------------------------------------------------------- telemetry stores

appinsights_local_auth_disabled = resource_policy(
    PolicyInfo(
        name="azml-appinsights-local-auth-disabled",
        description="Application Insights ingests only Microsoft Entra-authenticated telemetry (no instrumentation-key writes).",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Move every writer to Entra ingestion (Monitoring Metrics Publisher on the component, "
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD), then set disableLocalAuth: true on the "
            "component (PSRule Azure.AppInsights.LocalAuth; azure-monitor/app/azure-ad-authentication). "
            "azml-appinsights-entra-writers names the writers that cannot switch yet."
        ),
        resource_types=(APP_INSIGHTS,),
        properties=("disableLocalAuth",),
        tags=("identity", "monitoring"),
    ),
    lambda component, _config: expect_bool(component, "disableLocalAuth", True, azure_default=False),
)

log_analytics_local_auth_disabled = resource_policy(
    PolicyInfo(
        name="azml-log-analytics-local-auth-disabled",
        description="Log Analytics workspaces answer queries and ingestion authenticated with Microsoft Entra ID only (no shared keys).",
        checklist=checks.LEAST_PRIVILEGE,
        severity=Severity.HIGH,
        remediation=(
            "Set features.disableLocalAuth: true on the Log Analytics workspace (components.dependencies.observability "
            "does); diagnostic settings and workspace-based Application Insights do not use the workspace keys."
        ),
        resource_types=(LOG_ANALYTICS,),
        properties=("features.disableLocalAuth",),
        tags=("identity", "monitoring"),
    ),
    lambda workspace, _config: expect_bool(workspace, "features.disableLocalAuth", True, azure_default=False),
)


def _app_settings(app: Resource) -> dict[str, Any]:
    settings = unwrap(app.get("siteConfig.appSettings"))
    return {get(s, "name"): get(s, "value") for s in settings if isinstance(get(s, "name"), str)} if isinstance(settings, list) else {}


def _key_only_writers(stack: Stack, component: Resource) -> Iterator[tuple[Resource, str]]:
    """Writers of ``component`` that can only send the instrumentation key."""
    for workspace in stack.of_type(WORKSPACE):
        if not stack.linked(workspace, "applicationInsights", component):
            continue
        for deployment in stack.children(workspace, (ONLINE_DEPLOYMENT,), "workspaceName"):
            if as_bool(deployment.get("properties.appInsightsEnabled")) is True:
                yield deployment, (
                    "properties.appInsightsEnabled is true and the Azure ML inference server sends its telemetry with "
                    "the instrumentation key only: it would be dropped. Set appInsightsEnabled false first (the "
                    "endpoint's metrics and AmlOnlineEndpoint* logs stay), or keep local authentication on"
                )
    for app in stack.of_type(WEB_APP):
        if not app.depends_on(component, "siteConfig"):
            continue
        settings = _app_settings(app)
        if "APPLICATIONINSIGHTS_CONNECTION_STRING" not in settings:
            continue
        auth = settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", MISSING)
        if auth is UNKNOWN or (isinstance(auth, str) and "authorization=aad" in auth.lower().replace(" ", "")):
            continue
        yield app, (
            f"siteConfig.appSettings APPLICATIONINSIGHTS_AUTHENTICATION_STRING is {show(auth)}; set it to "
            "'Authorization=AAD' (and grant Monitoring Metrics Publisher) or its telemetry is refused"
        )


def _entra_writers(stack: Stack, config: dict[str, Any]) -> Finding:
    for component in stack.of_type(APP_INSIGHTS):
        if as_bool(component.get("disableLocalAuth")) is not True:
            continue  # instrumentation keys still work: nothing is dropped
        for writer, problem in _key_only_writers(stack, component):
            if not exempt(config, writer.name, writer.arm_name):
                yield writer.urn, f"{writer.label}: writes to {component.label}, whose disableLocalAuth is true; {problem}"


appinsights_entra_writers = stack_policy(
    PolicyInfo(
        name="azml-appinsights-entra-writers",
        description=(
            "An Application Insights component with local authentication disabled has no writer in the stack that "
            "can only send the instrumentation key (its telemetry would be silently refused)."
        ),
        checklist=checks.AUDIT_LOGGING,
        severity=Severity.HIGH,
        remediation=(
            "Before disableLocalAuth: true, switch every writer to Entra ingestion: apps set "
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD with Monitoring Metrics Publisher on the "
            "component; Azure ML online deployments set appInsightsEnabled false (the inference server has no Entra "
            "option). azure-monitor/app/azure-ad-authentication."
        ),
        resource_types=(APP_INSIGHTS, WORKSPACE, ONLINE_DEPLOYMENT, WEB_APP),
        properties=(
            "Component.disableLocalAuth",
            "Workspace.applicationInsights",
            "OnlineDeployment.workspaceName",
            "OnlineDeployment.properties.appInsightsEnabled",
            "WebApp.siteConfig.appSettings",
        ),
        kind="stack",
        tags=("identity", "monitoring"),
    ),
    _entra_writers,
)

POLICIES = [
    blob_soft_delete,
    container_soft_delete,
    cross_tenant_replication_disabled,
    appinsights_local_auth_disabled,
    log_analytics_local_auth_disabled,
    appinsights_entra_writers,
]
