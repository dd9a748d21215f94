"""Insecure changes to the ML core: the workspace and what it stands on
(storage, Key Vault, container registry), its compute, its online endpoint and
deployment, and the diagnostics, alerts and monitors that watch them.

Each is a change a pull request could plausibly make to the program (a
setting flipped "to unblock a test", a resource dropped "as unused"), and
names the checklist policy written to catch it.
"""

from __future__ import annotations

from typing import Callable

from azml.plan.model import Plan

from . import Mutation, combined, one, removal, setting

ML = "azure-native:machinelearningservices:"
WORKSPACE = ML + "Workspace"
COMPUTE = ML + "Compute"
ONLINE_ENDPOINT = ML + "OnlineEndpoint"
ONLINE_DEPLOYMENT = ML + "OnlineDeployment"
SCHEDULE = ML + "Schedule"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"

CLUSTER = "cluster-cpu-train"
ENDPOINT = "credit-risk-endpoint"
DEPLOYMENT = "credit-risk-endpoint-blue"


def _endpoint_diagnostics_audit_group(plan: Plan) -> None:
    one(plan, DIAGNOSTICS, f"diag-{ENDPOINT}").inputs["logs"] = [{"categoryGroup": "audit", "enabled": True}]


def _without_lineage_tags(plan: Plan) -> None:
    tags = one(plan, ONLINE_DEPLOYMENT, DEPLOYMENT).inputs["tags"]
    for key in ("model-name", "model-version"):
        tags.pop(key)


def _alerts_disabled(*names: tuple[str, str]) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        for token, name in names:
            one(plan, token, name).inputs["enabled"] = False

    return mutate


def _ml(mutation_id: str, description: str, apply: Callable[[Plan], None], *caught_by: str) -> Mutation:
    return Mutation(id=mutation_id, category="ml-core", description=description, apply=apply, caught_by=caught_by)


MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------------ workspace
    _ml(
        "ml-workspace-public-network-enabled",
        "Workspace publicNetworkAccess flipped to Enabled so the studio opens from a laptop",
        setting(WORKSPACE, "publicNetworkAccess", "Enabled", "mlw"),
        "azml-workspace-public-network-disabled",
    ),
    _ml(
        "ml-workspace-public-behind-vnet",
        "Workspace allowPublicAccessWhenBehindVnet set to true",
        setting(WORKSPACE, "allowPublicAccessWhenBehindVnet", True, "mlw"),
        "azml-workspace-public-network-disabled",
    ),
    _ml(
        "ml-workspace-internet-outbound",
        "Managed network isolation relaxed to AllowInternetOutbound in prod to pip-install from PyPI",
        setting(WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound", "mlw"),
        "azml-workspace-managed-network-isolation",
    ),
    _ml(
        "ml-workspace-not-hbi",
        "Prod workspace created without hbiWorkspace",
        setting(WORKSPACE, "hbiWorkspace", False, "mlw"),
        "azml-workspace-hbi",
    ),
    _ml(
        "ml-workspace-datastores-account-keys",
        "Workspace default datastores switched to account-key auth (systemDatastoresAuthMode accessKey)",
        setting(WORKSPACE, "systemDatastoresAuthMode", "accessKey", "mlw"),
        "azml-workspace-identity-datastore-auth",
    ),
    # ------------------------------------------------------------------ storage, Key Vault, registry
    _ml(
        "ml-storage-shared-key-enabled",
        "Workspace storage allowSharedKeyAccess turned back on for a notebook using a connection string",
        setting(STORAGE, "allowSharedKeyAccess", True, "st"),
        "azml-storage-shared-key-disabled",
    ),
    _ml(
        "ml-storage-tls-1-0",
        "Workspace storage minimumTlsVersion lowered to TLS1_0 for an old client",
        setting(STORAGE, "minimumTlsVersion", "TLS1_0", "st"),
        "azml-storage-min-tls",
    ),
    _ml(
        "ml-storage-public-blob-access",
        "Workspace storage allowBlobPublicAccess set to true to share a sample dataset",
        setting(STORAGE, "allowBlobPublicAccess", True, "st"),
        "azml-storage-no-public-blob-access",
    ),
    _ml(
        "ml-keyvault-access-policies",
        "Workspace Key Vault switched from RBAC to access policies",
        setting(VAULT, "properties.enableRbacAuthorization", False, "kv"),
        "azml-keyvault-rbac-authorization",
    ),
    _ml(
        "ml-keyvault-purgeable",
        "Key Vault purge protection dropped so the vault name can be reused after a teardown",
        setting(VAULT, "properties.enablePurgeProtection", False, "kv"),
        "azml-keyvault-purge-protection",
    ),
    _ml(
        "ml-keyvault-short-retention",
        "Key Vault soft-delete retention cut to 7 days in prod",
        setting(VAULT, "properties.softDeleteRetentionInDays", 7, "kv"),
        "azml-keyvault-soft-delete",
    ),
    _ml(
        "ml-keyvault-public-network",
        "Key Vault publicNetworkAccess Enabled for a CI runner outside the VNet",
        setting(VAULT, "properties.publicNetworkAccess", "Enabled", "kv"),
        "azml-keyvault-public-network-disabled",
    ),
    _ml(
        "ml-registry-admin-user",
        "Container registry admin user enabled for a docker login from a build agent",
        setting(REGISTRY, "adminUserEnabled", True, "cr"),
        "azml-registry-admin-user-disabled",
    ),
    _ml(
        "ml-registry-anonymous-pull",
        "Container registry anonymous pull enabled",
        setting(REGISTRY, "anonymousPullEnabled", True, "cr"),
        "azml-registry-anonymous-pull-disabled",
    ),
    _ml(
        "ml-registry-public-network",
        "Container registry publicNetworkAccess Enabled so a hosted build agent can push",
        setting(REGISTRY, "publicNetworkAccess", "Enabled", "cr"),
        "azml-registry-public-network-disabled",
    ),
    _ml(
        "ml-registry-standard-sku",
        "Container registry downgraded to Standard (no private endpoint, no quarantine) to save cost",
        setting(REGISTRY, "sku.name", "Standard", "cr"),
        "azml-registry-premium-retention",
    ),
    # ------------------------------------------------------------------ compute
    _ml(
        "ml-compute-node-public-ip",
        "Training cluster nodes get public IPs (enableNodePublicIp true)",
        setting(COMPUTE, "properties.properties.enableNodePublicIp", True, CLUSTER),
        "azml-compute-no-public-ip",
    ),
    _ml(
        "ml-compute-ssh-setting-dropped",
        "Training cluster loses remoteLoginPortPublicAccess (Azure then uses NotSpecified)",
        lambda plan: one(plan, COMPUTE, CLUSTER).inputs["properties"]["properties"].pop("remoteLoginPortPublicAccess"),
        "azml-compute-ssh-disabled",
    ),
    _ml(
        "ml-compute-local-auth",
        "Training cluster accepts local keys (disableLocalAuth false)",
        setting(COMPUTE, "properties.disableLocalAuth", False, CLUSTER),
        "azml-compute-local-auth-disabled",
    ),
    # ------------------------------------------------------------------ endpoint and deployment
    _ml(
        "ml-endpoint-key-auth",
        "Online endpoint authMode Key: static keys instead of Entra ID tokens",
        setting(ONLINE_ENDPOINT, "properties.authMode", "Key", ENDPOINT),
        "azml-endpoint-auth-mode",
    ),
    _ml(
        "ml-endpoint-aml-token-in-prod",
        "Online endpoint authMode AMLToken in prod (allowed in dev only)",
        setting(ONLINE_ENDPOINT, "properties.authMode", "AMLToken", ENDPOINT),
        "azml-endpoint-auth-mode",
    ),
    _ml(
        "ml-endpoint-public-network",
        "Online endpoint publicNetworkAccess Enabled for a partner integration",
        setting(ONLINE_ENDPOINT, "properties.publicNetworkAccess", "Enabled", ENDPOINT),
        "azml-endpoint-public-network-disabled",
    ),
    _ml(
        "ml-deployment-single-instance",
        "Live deployment scaled down to one instance",
        setting(ONLINE_DEPLOYMENT, "sku.capacity", 1, DEPLOYMENT),
        "azml-deployment-min-instances",
    ),
    _ml(
        "ml-deployment-lineage-tags-dropped",
        "Deployment loses its model-name and model-version lineage tags",
        _without_lineage_tags,
        "azml-deployment-lineage-tags",
    ),
    # ------------------------------------------------------------------ diagnostics, alerts, monitors
    _ml(
        "ml-diagnostics-workspace-removed",
        "The workspace's diagnostic setting removed as noise",
        removal(DIAGNOSTICS, "diag-mlw"),
        "azml-diagnostic-settings",
    ),
    _ml(
        "ml-diagnostics-vault-metrics-only",
        "Key Vault diagnostic setting keeps metrics but drops its audit logs",
        setting(DIAGNOSTICS, "logs", [], "diag-kv"),
        "azml-diagnostic-settings",
    ),
    _ml(
        "ml-diagnostics-endpoint-audit-group",
        "Endpoint diagnostic setting asks for the audit group, which Microsoft does not list for online endpoints",
        _endpoint_diagnostics_audit_group,
        "azml-diagnostic-settings",
    ),
    _ml(
        "ml-alerts-latency-removed",
        "Both latency alerts of the endpoint removed",
        combined(removal(METRIC_ALERT, f"{ENDPOINT}-latency-p95"), removal(LOG_ALERT, "traffic-latency-p95")),
        "azml-endpoint-alerts",
    ),
    _ml(
        "ml-alerts-errors-disabled",
        "The endpoint's error-rate alerts disabled during an incident and never turned back on",
        _alerts_disabled(
            (METRIC_ALERT, f"{ENDPOINT}-server-errors"), (LOG_ALERT, "traffic-error-rate"), (LOG_ALERT, "availability-burn-rate")
        ),
        "azml-endpoint-alerts",
    ),
    _ml(
        "ml-drift-monitor-removed",
        "The live deployment's drift monitor schedule removed",
        removal(SCHEDULE, f"{DEPLOYMENT}-monitor"),
        "azml-endpoint-drift-monitor",
    ),
]
