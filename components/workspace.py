"""The secure Azure Machine Learning workspace and everything it depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi_azure_native import machinelearningservices, managedidentity

from azml.config.schema import StackConfig
from azml.naming import Names

from . import dependencies
from .diagnostics import send_to_log_analytics
from .managed_network import ManagedNetworkProvisioning, monitors_run, outbound_rules
from .private_link import private_endpoint
from .roles import assign_role

#: Roles the stack grants the workspace's system identity on its dependencies
#: (target, role, why). None: for a system-assigned workspace identity, role
#: assignment creation is "Managed by Microsoft" (how-to-identity-based-service-
#: authentication, "Workspace identity types"), and with identity-based storage
#: access "As the workspace is created, the managed identity is automatically
#: assigned the permissions it needs to access the storage account"
#: (how-to-disable-local-auth-storage). A grant here would duplicate one Azure
#: ML makes itself (RoleAssignmentExists on the same principal, role and
#: scope) or add nothing; the platform rule azure-ml-workspace-identity-auto-
#: roles refuses the duplicates.
WORKSPACE_IDENTITY_ROLES: tuple[tuple[str, str, str], ...] = ()

#: Data-plane roles of the stack's compute identity (a user-assigned identity
#: on every compute cluster, on the model monitors and on the workspace), and
#: why. The workspace storage allows no shared key, so every data path is RBAC.
#: For a user-assigned identity, role assignment creation is "Managed by you"
#: (how-to-identity-based-service-authentication): Azure ML makes none of these.
COMPUTE_IDENTITY_ROLES: tuple[tuple[str, str, str], ...] = (
    # how-to-identity-based-service-authentication: the cluster's identity sets
    # up "the user's storage mounts, container registry, and datastores";
    # how-to-disable-local-auth-storage: "Monitoring (evaluating model
    # quality/perf) | User-assigned managed identity | Storage Blob Data Contributor".
    ("storage", "Storage Blob Data Contributor", "read and write job data, outputs and monitoring results"),
    # Clusters pull the environment images from the private registry.
    ("registry", "AcrPull", "pull environment images for jobs"),
)
#: Batch deployments run Parallel Run Step: "Parallel Run Step (PRS) |
#: User-assigned managed identity | Storage Table Data Contributor, Storage
#: Queue Data Contributor" (how-to-disable-local-auth-storage).
BATCH_COMPUTE_IDENTITY_ROLES: tuple[tuple[str, str, str], ...] = (
    ("storage", "Storage Queue Data Contributor", "keep batch (parallel run) task queues"),
    ("storage", "Storage Table Data Contributor", "keep batch (parallel run) progress tables"),
)


@dataclass(frozen=True)
class MlWorkspaceArgs:
    """Inputs of :class:`MlWorkspace`.

    ``config`` is the validated stack config; ``names`` the derived names;
    ``private_endpoint_subnet_id`` and ``dns_zone_ids`` come from the
    :class:`components.network.Network` component; ``tenant_id`` and
    ``subscription_id`` from the Azure client config.
    """

    config: StackConfig
    names: Names
    resource_group_name: pulumi.Input[str]
    private_endpoint_subnet_id: pulumi.Input[str]
    dns_zone_ids: Mapping[str, pulumi.Input[str]]
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class MlWorkspace(pulumi.ComponentResource):
    """ML workspace (private, managed network, identity-based storage access)
    with Log Analytics, App Insights, storage, Key Vault and registry, their
    private endpoints and diagnostic settings; Azure ML assigns the workspace
    identity's roles itself (see :data:`WORKSPACE_IDENTITY_ROLES`; persona
    roles live in the governance component).

    With a managed network, the network is provisioned by the stack (with
    serverless Spark when model monitors run) and ``workspace_name`` resolves
    only once it is: everything built in the workspace from that name
    (compute, endpoints and deployments, monitors) waits for the network.
    A user-assigned *compute identity*, granted the data roles key-less
    storage needs, is attached to the workspace for clusters and monitors;
    ``compute_identity_id`` resolves once its roles are granted.

    Outputs: ``workspace_name``, ``workspace_id``, ``principal_id``,
    ``storage_account_id``, ``key_vault_id``, ``registry_id``, ``registry_login_server``,
    ``log_analytics_id``, ``app_insights_id``, ``compute_identity_id``,
    ``network_provisioning`` (``None`` without a managed network).
    """

    def __init__(self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:MlWorkspace", name, None, opts)
        config, names = args.config, args.names
        at = dependencies.Placement(args.resource_group_name, config.location, args.tags, self)

        log, insights = dependencies.observability(names, config.monitoring, at)
        account = dependencies.storage_account(names, config.storage, at)
        vault = dependencies.key_vault(names, config.key_vault, args.tenant_id, at)
        registry = dependencies.container_registry(names, config.registry, at)

        ws = config.workspace
        compute_identity = managedidentity.UserAssignedIdentity(
            "id-compute",
            resource_name_=f"id-{names.base}-compute",
            resource_group_name=args.resource_group_name,
            location=config.location,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        scopes = {
            "storage": (account.id, names.storage_account),
            "vault": (vault.id, names.key_vault),
            "registry": (registry.id, names.registry),
        }
        grants = self._grant_compute_identity(compute_identity, config, names, scopes, args.subscription_id)
        # The identity's id once its roles are granted: whatever runs as it
        # (the workspace's monitors, clusters) is created after the grants.
        compute_identity_id: pulumi.Output[str] = pulumi.Output.all(
            compute_identity.id, *[g.id for g in grants]
        ).apply(lambda v: v[0])
        rules = outbound_rules(config, account.id) if ws.uses_managed_network else {}
        managed_network: dict = {"isolation_mode": ws.isolation_mode}
        if rules:
            managed_network["outbound_rules"] = rules
        if ws.firewall_sku is not None and ws.approved_fqdns:
            # FQDN rules run on an Azure Firewall (billed; Standard unless set).
            managed_network["firewall_sku"] = ws.firewall_sku
        workspace = machinelearningservices.Workspace(
            "mlw",
            workspace_name=names.workspace,
            resource_group_name=args.resource_group_name,
            location=config.location,
            friendly_name=ws.friendly_name or names.workspace,
            sku={"name": "Basic", "tier": "Basic"},
            # The system identity stays the workspace's own; the compute
            # identity is added for monitoring on key-less storage ("The
            # user-assigned managed identity is in addition to the
            # system-assigned managed identity for your workspace",
            # how-to-disable-local-auth-storage).
            identity={"type": "SystemAssigned,UserAssigned", "user_assigned_identities": [compute_identity_id]},
            storage_account=account.id,
            key_vault=vault.id,
            application_insights=insights.id,
            container_registry=registry.id,
            public_network_access="Disabled",
            managed_network=managed_network,
            # The registry is private, so images must be built on our own
            # compute inside the network rather than on ACR Tasks.
            image_build_compute=ws.image_build_compute,
            # Datastores use the caller's or the compute's identity, not keys.
            system_datastores_auth_mode="identity",
            hbi_workspace=ws.hbi,
            v1_legacy_mode=False,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

        links = (
            ("mlw", workspace.id, "amlworkspace"),
            ("st", account.id, "blob"),
            ("st", account.id, "file"),
            ("kv", vault.id, "vault"),
            ("cr", registry.id, "registry"),
        )
        for short, target_id, group_id in links:
            private_endpoint(
                f"pe-{short}-{group_id}",
                target_id=target_id,
                group_id=group_id,
                subnet_id=args.private_endpoint_subnet_id,
                zone_ids=args.dns_zone_ids,
                resource_group_name=args.resource_group_name,
                location=config.location,
                tags=args.tags,
                parent=self,
            )

        diagnostics = (
            ("diag-mlw", workspace.id, ("audit",)),
            ("diag-kv", vault.id, ("audit",)),
            ("diag-cr", registry.id, ("audit",)),
            ("diag-st", account.id, ()),
            ("diag-st-blob", pulumi.Output.concat(account.id, "/blobServices/default"), ("audit",)),
            ("diag-st-file", pulumi.Output.concat(account.id, "/fileServices/default"), ("audit",)),
        )
        for logical, target_id, groups in diagnostics:
            send_to_log_analytics(
                logical, target_id=target_id, workspace_id=log.id, log_category_groups=groups, parent=self
            )

        principal_id = workspace.identity.apply(lambda identity: identity.principal_id if identity else None)
        for target, role, why in WORKSPACE_IDENTITY_ROLES:
            scope, scope_label = scopes[target]
            assign_role(
                f"ra-mlw-{target}-{role.lower().replace(' ', '-')}",
                scope=scope,
                scope_label=scope_label,
                role=role,
                principal_id=principal_id,
                principal_label=f"{names.workspace}/system-identity",
                principal_type="ServicePrincipal",
                subscription_id=args.subscription_id,
                description=f"azml: workspace identity may {why}",
                parent=self,
            )

        self.network_provisioning: ManagedNetworkProvisioning | None = None
        workspace_name: pulumi.Output[str] = workspace.name
        if ws.uses_managed_network:
            # "To create an online deployment, you must manually provision the
            # managed network" and, for serverless Spark, "provision it and flag
            # it to allow Spark jobs" (how-to-managed-network).
            self.network_provisioning = ManagedNetworkProvisioning(
                "mlw-network",
                workspace_id=workspace.id,
                include_spark=monitors_run(config),
                outbound_rules=list(rules),
                opts=pulumi.ResourceOptions(parent=self),
            )
            workspace_name = pulumi.Output.all(workspace.name, self.network_provisioning.id).apply(lambda v: v[0])

        self.workspace_name = workspace_name
        self.workspace_id = workspace.id
        self.principal_id = principal_id
        self.storage_account_id = account.id
        self.storage_account_name = account.name
        self.key_vault_id = vault.id
        self.registry_id = registry.id
        self.registry_login_server = registry.login_server
        self.log_analytics_id = log.id
        self.app_insights_id = insights.id
        self.app_insights_connection_string = insights.connection_string
        self.compute_identity_id = compute_identity_id
        self.compute_identity_principal_id = compute_identity.principal_id
        self.register_outputs(
            {
                "workspaceName": workspace.name,
                "workspaceId": workspace.id,
                "storageAccountId": account.id,
                "keyVaultId": vault.id,
                "registryId": registry.id,
                "logAnalyticsId": log.id,
                "appInsightsId": insights.id,
                "computeIdentityId": compute_identity.id,
            }
        )

    def _grant_compute_identity(
        self,
        identity: managedidentity.UserAssignedIdentity,
        config: StackConfig,
        names: Names,
        scopes: Mapping[str, tuple[pulumi.Input[str], str]],
        subscription_id: pulumi.Input[str],
    ) -> list[pulumi.Resource]:
        roles = COMPUTE_IDENTITY_ROLES + (BATCH_COMPUTE_IDENTITY_ROLES if config.batch_endpoints else ())
        grants: list[pulumi.Resource] = []
        for target, role, why in roles:
            scope, scope_label = scopes[target]
            grants.append(assign_role(
                f"ra-compute-{target}-{role.lower().replace(' ', '-')}",
                scope=scope,
                scope_label=scope_label,
                role=role,
                principal_id=identity.principal_id,
                principal_label=f"id-{names.base}-compute",
                # A new managed identity: ServicePrincipal avoids Entra ID replication-delay failures.
                principal_type="ServicePrincipal",
                subscription_id=subscription_id,
                description=f"azml: compute identity may {why}",
                parent=self,
            ))  # fmt: skip
        return grants
