"""azml: a secure Azure Machine Learning platform, one stack per environment.

Thin on purpose: load and validate config, build the components, export.
"""

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, resources

from azml.config import ConfigError, load_from_pulumi
from azml.config.platform.observability import webhook_urls_from_pulumi
from azml.config.secrets import secret_values_from_pulumi
from azml.naming import names_for
from components.compute import ComputeClusters, ComputeClustersArgs
from components.dashboards import Dashboards, DashboardsArgs
from components.governance import Governance, GovernanceArgs, protect_workspace
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.retraining import Retraining, RetrainingArgs
from components.secrecy import keep_secrets_secret
from components.serving import Serving, ServingArgs
from components.workspace import MlWorkspace, MlWorkspaceArgs

try:
    # azml:phase platform (the first run on an empty subscription) leaves serving and monitors out.
    config = load_from_pulumi().deployed()
except ConfigError as error:
    # RunError ends the program with this message and no traceback.
    raise pulumi.RunError("invalid stack config:\n" + "\n".join(error.problems)) from None

# Every input that carries a `pulumi config set --secret` value stays a Pulumi secret.
keep_secrets_secret(secret_values_from_pulumi())

names = names_for(config)
tags = {**config.tags, "environment": config.environment, "managed-by": "azml"}
client = authorization.get_client_config_output()

group = resources.ResourceGroup(
    "rg", resource_group_name=names.resource_group, location=config.location, tags=tags
)

net = Network("network", NetworkArgs(
    config=config.network, names=names, resource_group_name=group.name, location=config.location,
    # The retraining function calls ARM and App Insights from the integration subnet.
    nat_gateway_subnets=("integration",) if config.retraining.enabled else (),
    tags=tags,
))  # fmt: skip

workspace = MlWorkspace(
    "workspace",
    MlWorkspaceArgs(
        config=config,
        names=names,
        resource_group_name=group.name,
        private_endpoint_subnet_id=net.subnet_ids["privateEndpoints"],
        dns_zone_ids=net.dns_zone_ids,
        tenant_id=client.tenant_id,
        subscription_id=client.subscription_id,
        tags=tags,
    ),
    # With governance locks, Pulumi protects the workspace (an Azure lock would block releases).
    opts=pulumi.ResourceOptions(transformations=[protect_workspace]) if config.governance.locks else None,
)

compute = ComputeClusters(
    "compute",
    ComputeClustersArgs(
        clusters=config.compute.clusters,
        workspace_name=workspace.workspace_name,
        resource_group_name=group.name,
        location=config.location,
        # With a managed network Azure places compute in the managed VNet and
        # accepts no customer subnet; without one, compute joins our training subnet.
        subnet_id=None if config.workspace.uses_managed_network else net.subnet_ids["training"],
        # Clusters run as the compute identity (data roles on key-less storage).
        identity_id=workspace.compute_identity_id,
        image_build_compute=config.workspace.image_build_compute,
        tags=tags,
    ),
)

serving = Serving(
    "serving",
    ServingArgs(
        config=config,
        resource_group_name=group.name,
        # Resolves after network provisioning and the image-build cluster:
        # environments and deployments wait for both.
        workspace_name=compute.workspace_name,
        workspace_id=workspace.workspace_id,
        registry_id=workspace.registry_id,
        registry_login_server=workspace.registry_login_server,
        storage_account_id=workspace.storage_account_id,
        subscription_id=client.subscription_id,
        compute_ids=compute.cluster_ids,
        project_dir=Path(pulumi.get_root_directory()),
        tags=tags,
    ),
)

# Alerts and model monitors on what serving created; webhook URLs stay secrets.
ops = Observability("observability", ObservabilityArgs.wire(
    config, names, group.name, workspace, serving, webhook_urls_from_pulumi(config.alert_webhooks), tags
))

# Workbook over the stack's Log Analytics workspace (on unless azml:dashboards.enabled is false).
dashboards = Dashboards("dashboards", DashboardsArgs.wire(config, names, group.name, workspace, tags))

Governance("governance", GovernanceArgs(
    config=config.governance,
    principals=config.principals,
    name_prefix=names.base,
    resource_group_id=group.id,
    resource_group_name=group.name,
    workspace_id=workspace.workspace_id,
    workspace_name=names.workspace,
    storage_account_name=workspace.storage_account_name,
    subscription_id=client.subscription_id,
    locked_ids={"key-vault": workspace.key_vault_id, "storage": workspace.storage_account_id},
    action_group_id=ops.action_group_id,
    storage_policy_exclusions=[pulumi.Output.concat(
        group.id, "/providers/Microsoft.Storage/storageAccounts/", names.function_storage
    )] if config.retraining.enabled else [],
    tags=tags,
))  # fmt: skip

if config.retraining.enabled:
    Retraining("retraining", RetrainingArgs(
        config=config.retraining,
        names=names,
        location=config.location,
        resource_group_name=group.name,
        subscription_id=client.subscription_id,
        data_account_id=workspace.storage_account_id,
        data_account_name=workspace.storage_account_name,
        workspace_id=workspace.workspace_id,
        workspace_name=names.workspace,
        app_insights_connection_string=workspace.app_insights_connection_string,
        app_insights_id=workspace.app_insights_id,
        log_analytics_id=workspace.log_analytics_id,
        private_endpoint_subnet_id=net.subnet_ids["privateEndpoints"],
        integration_subnet_id=net.subnet_ids["integration"],
        dns_zone_ids=net.dns_zone_ids,
        action_group_id=ops.action_group_id,
        tags=tags,
        storage=config.storage,
    ))  # fmt: skip

pulumi.export("resourceGroupName", group.name)
pulumi.export("workspaceName", workspace.workspace_name)
pulumi.export("workspaceId", workspace.workspace_id)
pulumi.export("vnetId", net.vnet_id)
pulumi.export("computeClusters", compute.cluster_names)
pulumi.export("onlineEndpoints", {name: e.endpoint_name for name, e in serving.online.items()})
pulumi.export("batchEndpoints", {name: e.endpoint_id for name, e in serving.batch.items()})
pulumi.export("actionGroupId", ops.action_group_id)
pulumi.export("workbookId", dashboards.workbook_id)
