"""Serving: assets a deployment references exist when its PUT runs; role
assignments Azure ML makes itself; deployment settings Azure ignores or
advises against; autoscale owning the instance count."""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from azml_policies.checks import Finding
from azml_policies.topology import Resource, Stack
from azml_policies.values import MISSING, UNKNOWN, same, show

from .rules import Rule, resource_rule, stack_rule

WORKSPACE = "azure-native:machinelearningservices:Workspace"
ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
BATCH_DEPLOYMENT = "azure-native:machinelearningservices:BatchDeployment"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
AUTOSCALE_SETTING = "azure-native:monitor:AutoscaleSetting"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
APP_INSIGHTS = "azure-native:insights:Component"

#: Asset version types the stack may create, by the kind segment of their ids.
ASSET_TYPES = {
    "models": "azure-native:machinelearningservices:ModelVersion",
    "codes": "azure-native:machinelearningservices:CodeVersion",
    "environments": "azure-native:machinelearningservices:EnvironmentVersion",
    "data": "azure-native:machinelearningservices:DataVersion",
}
#: The kind a deployment's ``registered-assets`` tag names (components/serving_assets.py).
_TAG_KINDS = {"models": "model", "codes": "code", "environments": "environment", "data": "data"}
REGISTERED_ASSETS_TAG = "registered-assets"

_WORKSPACE_ASSET = re.compile(
    r"/workspaces/(?P<workspace>[^/]+)/(?P<kind>models|codes|environments|data)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------- assets exist


def _references(deployment: Resource) -> Iterator[tuple[str, Any]]:
    """(property path, value) of each asset the deployment references."""
    if deployment.type == BATCH_DEPLOYMENT:
        yield "properties.model.assetId", deployment.get("properties.model.assetId")
    else:
        yield "properties.model", deployment.get("properties.model")
    yield "properties.codeConfiguration.codeId", deployment.get("properties.codeConfiguration.codeId")
    yield "properties.environmentId", deployment.get("properties.environmentId")


def _declared(deployment: Resource) -> set[str] | None:
    """Kinds the deployment's tag declares registered before the run (None: unknown)."""
    value = deployment.get(f"tags.{REGISTERED_ASSETS_TAG}")
    if value is UNKNOWN:
        return None
    if not isinstance(value, str):
        return set()
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def _created_by_stack(stack: Stack, deployment: Resource, kind: str, workspace: str, name: str, version: str) -> Resource | None:
    for asset in stack.of_type(ASSET_TYPES[kind]):
        values = (asset.get("workspaceName"), asset.get("name"), asset.get("version"))
        if all(isinstance(v, str) for v in values) and [v.lower() for v in values] == [workspace.lower(), name.lower(), version.lower()]:  # type: ignore[union-attr]
            return asset
    return None


def _assets_exist(stack: Stack, config: dict) -> Finding:
    for deployment in stack.of_type(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT):
        declared = _declared(deployment)
        dependencies = set(deployment.dependencies)
        for urns in deployment.property_dependencies.values():
            dependencies |= urns
        for path, value in _references(deployment):
            if value is MISSING or value is None:
                continue  # not referenced (MLflow no-code deployments name no code or environment)
            if value is UNKNOWN:
                continue  # an id of a resource still to be created: the engine orders it
            if not isinstance(value, str):
                continue
            reference = value.removeprefix("azureml:") if value.lower().startswith("azureml:/subscriptions/") else value
            if reference.lower().startswith("azureml://registries/"):
                continue  # lives in an Azure ML registry, which exists before the run
            match = _WORKSPACE_ASSET.search(reference)
            if match is None:
                continue  # not an asset id this rule knows (curated environment names, ...)
            kind = match.group("kind").lower()
            asset = _created_by_stack(stack, deployment, kind, match.group("workspace"), match.group("name"), match.group("version"))
            if asset is not None:
                if asset.urn in dependencies:
                    continue
                yield deployment.urn, (
                    f"{deployment.label}: {path} is {value!r}, created by {asset.label} in this stack, but the "
                    "deployment does not depend on it: its PUT may run before the asset exists"
                )
                continue
            if declared is None or _TAG_KINDS[kind] in declared:
                continue
            yield deployment.urn, (
                f"{deployment.label}: {path} is {value!r}, a workspace {_TAG_KINDS[kind]} asset that no resource of "
                f"this stack creates and that is not declared registered before the run (tag {REGISTERED_ASSETS_TAG}); "
                "it does not exist when the deployment's PUT runs on a new workspace: reference it from an Azure ML "
                "registry, create it in the stack, or declare it registered once the pipeline has registered it"
            )


# --------------------------------------------------------------------------- roles Azure ML assigns itself

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
AZUREML_METRICS_WRITER = "635dd51f-9968-44d3-b7fb-6d9a6bd613ae"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"

ROLE_NAMES = {
    ACR_PULL: "AcrPull",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR: "Storage File Data Privileged Contributor",
    AZUREML_METRICS_WRITER: "AzureML Metrics Writer (preview)",
    CONTRIBUTOR: "Contributor",
    KEY_VAULT_ADMINISTRATOR: "Key Vault Administrator",
}

#: (role, scope: the workspace property naming it, or "" for the workspace)
#: Azure ML assigns a system-assigned *endpoint* identity: AcrPull, Storage
#: Blob Data Reader, AzureML Metrics Writer (concept-endpoints-online-auth)
#: and, on key-less storage, Storage Blob Data Contributor
#: (how-to-disable-local-auth-storage).
ENDPOINT_AUTO_ROLES = {
    ACR_PULL: "containerRegistry",
    STORAGE_BLOB_DATA_READER: "storageAccount",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "storageAccount",
    AZUREML_METRICS_WRITER: "",
}
#: ... and a system-assigned *workspace* identity: role assignment creation is
#: "Managed by Microsoft" (how-to-identity-based-service-authentication), for
#: the roles that page lists for a workspace identity (Contributor on the
#: dependencies, Storage Blob Data Contributor, Key Vault Administrator) and,
#: with identity-based storage access, the storage data roles
#: (how-to-disable-local-auth-storage).
WORKSPACE_AUTO_ROLES = {
    CONTRIBUTOR: ("storageAccount", "keyVault", "containerRegistry", "applicationInsights", ""),
    STORAGE_BLOB_DATA_CONTRIBUTOR: ("storageAccount",),
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR: ("storageAccount",),
    KEY_VAULT_ADMINISTRATOR: ("keyVault",),
}
_SCOPE_TYPES = {
    "storageAccount": (STORAGE_ACCOUNT, "/providers/microsoft.storage/storageaccounts/"),
    "keyVault": (VAULT, "/providers/microsoft.keyvault/vaults/"),
    "containerRegistry": (REGISTRY, "/providers/microsoft.containerregistry/registries/"),
    "applicationInsights": (APP_INSIGHTS, "/providers/microsoft.insights/components/"),
    "": (WORKSPACE, "/providers/microsoft.machinelearningservices/workspaces/"),
}


def _system_assigned(resource: Resource) -> bool:
    kind = resource.get("identity.type")
    return isinstance(kind, str) and "systemassigned" in kind.replace(" ", "").replace("_", "").lower()


def _workspace_of(stack: Stack, endpoint: Resource) -> Resource | None:
    for workspace in stack.of_type(WORKSPACE):
        if stack.child_of(endpoint, "workspaceName", workspace):
            return workspace
    return None


def _scope_is(stack: Stack, assignment: Resource, workspace: Resource | None, key: str) -> bool:
    """Whether the assignment's scope is the workspace's dependency named by
    ``key`` (the workspace itself for ""): by link when the workspace is in the
    stack, else by the scope's resource type."""
    scope = assignment.get("scope")
    resource_type, segment = _SCOPE_TYPES[key]
    if workspace is not None:
        targets = [workspace] if key == "" else stack.links(workspace, key)
        if targets:
            return any(stack.linked(assignment, "scope", t) and t.type == resource_type for t in targets)
    if not isinstance(scope, str):
        return False
    scope = scope.rstrip("/").lower()
    return segment in scope and scope.rsplit("/", 2)[-2] == segment.strip("/").rsplit("/", 1)[-1]


def _principal(stack: Stack, assignment: Resource, types: tuple[str, ...]) -> Resource | None:
    """The resource of ``types`` whose system identity the assignment grants."""
    principal = assignment.get("principalId")
    for resource in stack.of_type(*types):
        if not _system_assigned(resource):
            continue
        own = resource.get("identity.principalId")
        if assignment.depends_on(resource, "principalId") or (isinstance(own, str) and own and same(principal, own)):
            return resource
    return None


def _auto_roles(stack: Stack, kind: str) -> Finding:
    types = (ONLINE_ENDPOINT,) if kind == "endpoint" else (WORKSPACE,)
    for assignment in stack.of_type(ROLE_ASSIGNMENT):
        role = assignment.get("roleDefinitionId")
        if not isinstance(role, str):
            continue
        role_id = role.rstrip("/").rsplit("/", 1)[-1].lower()
        owner = _principal(stack, assignment, types)
        if owner is None:
            continue
        if kind == "endpoint":
            keys: tuple[str, ...] = (ENDPOINT_AUTO_ROLES[role_id],) if role_id in ENDPOINT_AUTO_ROLES else ()
            workspace = _workspace_of(stack, owner)
        else:
            keys = WORKSPACE_AUTO_ROLES.get(role_id, ())
            workspace = owner
        for key in keys:
            if _scope_is(stack, assignment, workspace, key):
                target = "the workspace" if key == "" else f"the workspace's {key}"
                yield assignment.urn, (
                    f"{assignment.label}: roleDefinitionId is {ROLE_NAMES[role_id]} on {target} "
                    f"({show(assignment.get('scope'))}) for the system-assigned identity of {owner.label}; Azure ML "
                    "assigns this role to that identity itself, so this assignment fails with RoleAssignmentExists "
                    "(or fights Azure's): drop it, or give the resource a user-assigned identity the stack grants"
                )
                break


# --------------------------------------------------------------------------- deployment settings


def _workspace_isolation(stack: Stack, deployment: Resource) -> Any:
    for workspace in stack.of_type(WORKSPACE):
        if stack.child_of(deployment, "workspaceName", workspace):
            return workspace.get("managedNetwork.isolationMode")
    return MISSING


def _egress_unset(stack: Stack, config: dict) -> Finding:
    for deployment in stack.of_type(ONLINE_DEPLOYMENT):
        if same(deployment.get("properties.endpointComputeType"), "Kubernetes"):
            continue
        value = deployment.get("properties.egressPublicNetworkAccess")
        if value is MISSING:
            continue
        mode = _workspace_isolation(stack, deployment)
        if not isinstance(mode, str) or same(mode, "Disabled"):
            continue  # legacy isolation (or workspace unknown): the flag applies
        yield deployment.urn, (
            f"{deployment.label}: properties.egressPublicNetworkAccess is {show(value)} in a workspace with a managed "
            f"network ({mode}); the flag no longer applies there: leave it unset"
        )


def _max_queue_wait(deployment: Resource, config: dict) -> Iterator[str]:
    if same(deployment.get("properties.endpointComputeType"), "Kubernetes"):
        return
    value = deployment.get("properties.requestSettings.maxQueueWait")
    if value is MISSING or value is None:
        return
    yield (
        f"{deployment.label}: properties.requestSettings.maxQueueWait is {show(value)}; Azure ignores it for managed "
        "online deployments: remove it and raise requestTimeout to cover queueing delays"
    )


def _targets(stack: Stack, autoscale: Resource) -> list[Resource]:
    return [r for r in stack.links(autoscale, "targetResourceUri") if r.type == ONLINE_DEPLOYMENT]


def _autoscale_owns_capacity(stack: Stack, config: dict) -> Finding:
    for autoscale in stack.of_type(AUTOSCALE_SETTING):
        if autoscale.get("enabled") is False:
            continue
        for deployment in _targets(stack, autoscale):
            ignored = {path.strip().lower() for path in deployment.ignore_changes}
            if ignored & {"sku.capacity", "sku", "*"}:
                continue
            yield deployment.urn, (
                f"{deployment.label}: sku.capacity is {show(deployment.get('sku.capacity'))} and not in ignoreChanges, "
                f"but {autoscale.label} scales it: every update resets the instance count the autoscale setting chose "
                "(add sku.capacity to the deployment's ignore_changes)"
            )


POLICIES = [
    stack_rule(
        Rule(
            name="azure-ml-deployment-assets-exist",
            description=(
                "The model, code and environment an online or batch deployment references exist when its PUT runs: "
                "in an Azure ML registry, created by the stack (the deployment depends on it), or declared registered "
                "before the run."
            ),
            severity=Severity.HIGH,
            remediation=(
                "Reference the model from an Azure ML registry (model.registry in azml:onlineEndpoints / "
                "azml:batchEndpoints), let the stack register environments, and declare workspace code (and models) "
                "registered: true only once the pipeline has registered them (bootstrap phase two)."
            ),
            source="machine-learning/reference-yaml-deployment-managed-online",
            quote=(
                "This value can be either a reference to an existing versioned model in the workspace or an inline "
                "model specification."
            ),
            resource_types=(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT, *ASSET_TYPES.values()),
            properties=(
                "OnlineDeployment.properties.model",
                "BatchDeployment.properties.model.assetId",
                "properties.codeConfiguration.codeId",
                "properties.environmentId",
                f"tags.{REGISTERED_ASSETS_TAG}",
            ),
            area="serving",
        ),
        _assets_exist,
    ),
    stack_rule(
        Rule(
            name="azure-ml-endpoint-identity-auto-roles",
            description=(
                "No role assignment duplicates one Azure ML makes itself for an online endpoint's system-assigned "
                "identity (AcrPull, Storage Blob Data Reader/Contributor, AzureML Metrics Writer)."
            ),
            severity=Severity.HIGH,
            remediation=(
                "Drop the assignment (Azure ML makes it when it creates the endpoint), or give the endpoint a "
                "user-assigned identity and grant that identity the roles instead."
            ),
            source="machine-learning/concept-endpoints-online-auth",
            quote="If the endpoint identity is a system-assigned identity, some roles are assigned to the endpoint identity for convenience.",
            resource_types=(ROLE_ASSIGNMENT, ONLINE_ENDPOINT, WORKSPACE),
            properties=("RoleAssignment.principalId", "RoleAssignment.roleDefinitionId", "RoleAssignment.scope", "OnlineEndpoint.identity.type"),
            area="identity",
        ),
        lambda stack, config: _auto_roles(stack, "endpoint"),
    ),
    stack_rule(
        Rule(
            name="azure-ml-workspace-identity-auto-roles",
            description=(
                "No role assignment duplicates one Azure ML makes itself for a workspace's system-assigned identity "
                "on the workspace's storage, vault, registry or Application Insights."
            ),
            severity=Severity.HIGH,
            remediation=(
                "Drop the assignment (Azure ML makes it when it creates the workspace), or use a user-assigned "
                "workspace identity whose roles the stack grants."
            ),
            source="machine-learning/how-to-identity-based-service-authentication",
            quote="System-assigned (SAI) | Managed by Microsoft | Lifecycle tied to resource; single resource use; simple to get started",
            resource_types=(ROLE_ASSIGNMENT, WORKSPACE),
            properties=("RoleAssignment.principalId", "RoleAssignment.roleDefinitionId", "RoleAssignment.scope", "Workspace.identity.type"),
            area="identity",
        ),
        lambda stack, config: _auto_roles(stack, "workspace"),
    ),
    stack_rule(
        Rule(
            name="azure-ml-deployment-egress-unset-in-managed-network",
            description="A managed online deployment in a workspace with a managed network does not set egressPublicNetworkAccess.",
            severity=Severity.LOW,
            remediation="Leave properties.egressPublicNetworkAccess unset; the workspace managed network governs outbound traffic.",
            source="machine-learning/concept-secure-online-endpoint",
            quote=(
                "When you secure your workspace with a managed virtual network, the `egress_public_access` flag for "
                "managed online deployments no longer applies. Avoid setting this flag when creating the managed "
                "online deployment."
            ),
            resource_types=(ONLINE_DEPLOYMENT, WORKSPACE),
            properties=("OnlineDeployment.properties.egressPublicNetworkAccess", "Workspace.managedNetwork.isolationMode"),
            area="serving",
        ),
        _egress_unset,
    ),
    resource_rule(
        Rule(
            name="azure-ml-deployment-no-max-queue-wait",
            description="Managed online deployments do not send the deprecated requestSettings.maxQueueWait.",
            severity=Severity.LOW,
            remediation="Remove maxQueueWaitMs from the deployment's requestSettings and raise requestTimeoutMs instead.",
            source="machine-learning/reference-yaml-deployment-managed-online",
            quote=(
                "(Deprecated) The maximum amount of time in milliseconds a request will stay in the queue. (Now "
                "increase `request_timeout_ms` to account for any networking/queue delays)"
            ),
            resource_types=(ONLINE_DEPLOYMENT,),
            properties=("properties.endpointComputeType", "properties.requestSettings.maxQueueWait"),
            area="serving",
        ),
        _max_queue_wait,
    ),
    stack_rule(
        Rule(
            name="azure-ml-autoscale-owns-instance-count",
            description="An online deployment scaled by an autoscale setting leaves sku.capacity to it (ignoreChanges).",
            severity=Severity.MEDIUM,
            remediation="Add sku.capacity to the deployment's ignore_changes resource option when it has autoscale.",
            source="machine-learning/reference-yaml-deployment-managed-online",
            quote=(
                "With this `default` scale type, you can either manually scale the instance count up and down after "
                "deployment creation by updating the `instance_count` property, or create an autoscaling policy."
            ),
            resource_types=(ONLINE_DEPLOYMENT, AUTOSCALE_SETTING),
            properties=("OnlineDeployment.sku.capacity", "AutoscaleSetting.targetResourceUri", "AutoscaleSetting.enabled"),
            area="serving",
        ),
        _autoscale_owns_capacity,
    ),
]
