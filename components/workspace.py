"""The secure Azure Machine Learning workspace and everything it depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi_azure_native import machinelearningservices

from azml.config.schema import StackConfig
from azml.naming import Names

from . import dependencies
from .diagnostics import send_to_log_analytics
from .private_link import private_endpoint
from .roles import assign_role

#: Data-plane roles the workspace's system identity needs on its dependencies,
#: and why. Nothing broader (no Contributor/Owner).
WORKSPACE_IDENTITY_ROLES: tuple[tuple[str, str, str], ...] = (
    ("storage", "Storage Blob Data Contributor", "read/write datasets, models and run artifacts in blob storage"),
    ("storage", "Storage File Data Privileged Contributor", "code snapshots and notebooks on the file share"),
    ("vault", "Key Vault Secrets Officer", "store and read connection secrets in the workspace vault"),
    ("registry", "AcrPush", "push environment images it builds, and pull them"),
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
    private endpoints, diagnostic settings and least-privilege role assignments
    for the workspace identity (persona roles live in the governance component).

    Outputs: ``workspace_name``, ``workspace_id``, ``principal_id``,
    ``storage_account_id``, ``key_vault_id``, ``registry_id``, ``registry_login_server``,
    ``log_analytics_id``, ``app_insights_id``.
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
        workspace = machinelearningservices.Workspace(
            "mlw",
            workspace_name=names.workspace,
            resource_group_name=args.resource_group_name,
            location=config.location,
            friendly_name=ws.friendly_name or names.workspace,
            sku={"name": "Basic", "tier": "Basic"},
            identity={"type": "SystemAssigned"},
            storage_account=account.id,
            key_vault=vault.id,
            application_insights=insights.id,
            container_registry=registry.id,
            public_network_access="Disabled",
            managed_network={"isolation_mode": ws.isolation_mode},
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
        scopes = {
            "storage": (account.id, names.storage_account),
            "vault": (vault.id, names.key_vault),
            "registry": (registry.id, names.registry),
        }
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

        self.workspace_name = workspace.name
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
        self.register_outputs(
            {
                "workspaceName": workspace.name,
                "workspaceId": workspace.id,
                "storageAccountId": account.id,
                "keyVaultId": vault.id,
                "registryId": registry.id,
                "logAnalyticsId": log.id,
                "appInsightsId": insights.id,
            }
        )
