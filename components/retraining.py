"""The retraining trigger: new training data → Event Grid → Storage queue →
private Function App → Azure ML pipeline job.

Why a queue in between: Event Grid cannot push to a private endpoint, and the
Function App has public network access off. Event Grid delivers over the
host storage account's *public* endpoint, with the system topic's own
managed identity, as a trusted Azure service: "Currently, it's not possible
to deliver events using private endpoints"
(https://learn.microsoft.com/azure/event-grid/consume-private-endpoints).
So the host account is in "selected networks" mode (public network access
Enabled, default action Deny, no IP or virtual-network rules, bypass
AzureServices): only trusted services pass its firewall; the function reads
the queue through private endpoints. Failed deliveries go to a dead-letter
container, and dead-lettered or failed deliveries alert the action group.

The function reaches Azure Resource Manager (management.azure.com, to submit
pipeline jobs) and Application Insights ingestion over the internet: its
integration subnet has default outbound access off, so the stack gives that
subnet a NAT gateway (components.network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi_azure_native import eventgrid, monitor, storage, web

from azml.config.releases.retraining import RetrainingConfig
from azml.config.schema import StorageConfig
from azml.naming import Names

from .dependencies import Placement, locked_down_storage_account, recoverable_blobs
from .diagnostics import send_to_log_analytics
from .private_link import private_endpoint
from .roles import assign_role

EVENTS_QUEUE = "retraining-events"
PACKAGE_CONTAINER = "function-package"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
#: Built-in role that lets an identity send telemetry to Application Insights
#: with Microsoft Entra authentication.
MONITORING_METRICS_PUBLISHER = "Monitoring Metrics Publisher"
MONITORING_METRICS_PUBLISHER_ID = "3913510d-42f4-4e42-8a64-420c390055eb"
SYSTEM_TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"
#: Event Grid system topic metrics that mean an event did not reach the queue.
DELIVERY_FAILURE_METRICS = (
    ("dead-lettered", "DeadLetteredCount", "events dead-lettered (delivery to the queue gave up)"),
    ("delivery-failed", "DeliveryAttemptFailCount", "failed delivery attempts to the queue"),
)


@dataclass(frozen=True)
class RetrainingArgs:
    """Inputs of :class:`Retraining`. ``data_account_*`` is the storage
    account holding training data (the workspace's); ``integration_subnet_id``
    must be delegated to ``Microsoft.App/environments`` (Flex Consumption)."""

    config: RetrainingConfig
    names: Names
    location: str
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    data_account_id: pulumi.Input[str]
    data_account_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    workspace_name: str
    app_insights_connection_string: pulumi.Input[str]
    app_insights_id: pulumi.Input[str]
    log_analytics_id: pulumi.Input[str]
    private_endpoint_subnet_id: pulumi.Input[str]
    integration_subnet_id: pulumi.Input[str]
    dns_zone_ids: Mapping[str, pulumi.Input[str]]
    #: Receives the dead-letter / failed-delivery alerts (None: no alerts).
    action_group_id: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The stack's data-protection settings (``azml:storage``): the host
    #: account's blob and container soft delete use the same retention.
    storage: StorageConfig = field(default_factory=StorageConfig)


class Retraining(pulumi.ComponentResource):
    """Outputs: ``function_app_name``, ``system_topic_name``."""

    def __init__(self, name: str, args: RetrainingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Retraining", name, None, opts)
        config, names = args.config, args.names
        at = Placement(args.resource_group_name, args.location, args.tags, self)

        storage.BlobContainer(
            "training-data",
            container_name=config.container,
            account_name=args.data_account_name,
            resource_group_name=args.resource_group_name,
            public_access="None",
            opts=at.opts,
        )

        host = _host_storage(names.function_storage, config.host_storage_sku, at)
        # Dead letters are the only copy of an event Event Grid gave up on, and
        # the package container holds the running code: deleted blobs and
        # containers stay recoverable like the workspace account's (no
        # versioning: every deploy overwrites the package).
        recoverable_blobs("st-fn-blob", host, args.storage, at, versioning=False)
        queue = storage.Queue(
            "events-queue",
            queue_name=EVENTS_QUEUE,
            account_name=host.name,
            resource_group_name=args.resource_group_name,
            opts=at.opts,
        )
        for container in (PACKAGE_CONTAINER, config.dead_letter_container):
            storage.BlobContainer(
                f"fn-{container}",
                container_name=container,
                account_name=host.name,
                resource_group_name=args.resource_group_name,
                public_access="None",
                opts=at.opts,
            )
        for group_id in ("blob", "queue", "table"):
            self._private_endpoint(f"pe-stfn-{group_id}", host.id, group_id, args)
        # Audit the host storage like the workspace's: the account has metrics,
        # its services the audit logs (the queue holds the retraining events).
        send_to_log_analytics(
            "diag-stfn", target_id=host.id, workspace_id=args.log_analytics_id, log_category_groups=(), parent=self
        )
        for service in ("blob", "queue", "table"):
            send_to_log_analytics(
                f"diag-stfn-{service}",
                target_id=pulumi.Output.concat(host.id, f"/{service}Services/default"),
                workspace_id=args.log_analytics_id,
                parent=self,
            )

        app = self._function_app(args, host)
        self._private_endpoint("pe-func-sites", app.id, "sites", args)
        send_to_log_analytics(
            "diag-func", target_id=app.id, workspace_id=args.log_analytics_id, log_category_groups=("allLogs",), parent=self
        )
        app_principal = app.identity.apply(lambda identity: identity.principal_id if identity else None)
        for role, scope, label in (
            ("Storage Blob Data Owner", host.id, names.function_storage),
            ("Storage Queue Data Contributor", host.id, names.function_storage),
            ("Storage Table Data Contributor", host.id, names.function_storage),
            ("AzureML Data Scientist", args.workspace_id, args.workspace_name),
            # Submitting a pipeline uploads its code snapshot to the workspace store.
            ("Storage Blob Data Contributor", args.data_account_id, f"{args.workspace_name}/storage"),
        ):
            self._grant(f"ra-func-{role.lower().replace(' ', '-')}", app_principal, names.function_app, role, scope, label, args)
        # APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD: ingestion
        # accepts the identity's token only with this role on the component
        # (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).
        self._grant("ra-func-monitoring-metrics-publisher", app_principal, names.function_app, MONITORING_METRICS_PUBLISHER,
                    args.app_insights_id, names.app_insights, args,
                    definition_id=pulumi.Output.concat("/subscriptions/", args.subscription_id,
                                                       "/providers/Microsoft.Authorization/roleDefinitions/",
                                                       MONITORING_METRICS_PUBLISHER_ID))  # fmt: skip

        topic = eventgrid.SystemTopic(
            "system-topic",
            system_topic_name=names.system_topic,
            resource_group_name=args.resource_group_name,
            location=args.location,
            source=args.data_account_id,
            topic_type="Microsoft.Storage.StorageAccounts",
            identity={"type": "SystemAssigned"},
            tags=dict(args.tags),
            opts=at.opts,
        )
        topic_principal = topic.identity.apply(lambda identity: identity.principal_id if identity else None)
        queue_scope = pulumi.Output.concat(host.id, "/queueServices/default/queues/", queue.name)
        dead_letter_scope = pulumi.Output.concat(host.id, "/blobServices/default/containers/", config.dead_letter_container)
        grants = [
            self._grant("ra-topic-queue-sender", topic_principal, names.system_topic, "Storage Queue Data Message Sender",
                        queue_scope, f"{names.function_storage}/{EVENTS_QUEUE}", args),
            self._grant("ra-topic-dead-letter", topic_principal, names.system_topic, "Storage Blob Data Contributor",
                        dead_letter_scope, f"{names.function_storage}/{config.dead_letter_container}", args),
        ]  # fmt: skip

        prefix = f"/blobServices/default/containers/{config.container}/blobs/{config.prefix}"
        eventgrid.SystemTopicEventSubscription(
            "blob-created",
            event_subscription_name="retraining-blob-created",
            system_topic_name=topic.name,
            resource_group_name=args.resource_group_name,
            event_delivery_schema=config.event_schema,
            filter={"included_event_types": [BLOB_CREATED], "subject_begins_with": prefix},
            delivery_with_resource_identity={
                "identity": {"type": "SystemAssigned"},
                "destination": eventgrid.StorageQueueEventSubscriptionDestinationArgs(
                    endpoint_type="StorageQueue",
                    resource_id=host.id,
                    queue_name=queue.name,
                    # Messages wait in the queue until processed (-1 = never expire).
                    queue_message_time_to_live_in_seconds=-1,
                ),
            },
            retry_policy={
                "max_delivery_attempts": config.max_delivery_attempts,
                "event_time_to_live_in_minutes": config.event_time_to_live_minutes,
            },
            dead_letter_with_resource_identity={
                "identity": {"type": "SystemAssigned"},
                "dead_letter_destination": eventgrid.StorageBlobDeadLetterDestinationArgs(
                    endpoint_type="StorageBlob",
                    resource_id=host.id,
                    blob_container_name=config.dead_letter_container,
                ),
            },
            # Delivery fails until the topic's identity may write the queue.
            opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
        )

        if args.action_group_id is not None and config.delivery_alerts.enabled:
            self._delivery_alerts(topic, args)

        self.function_app_name = app.name
        self.system_topic_name = topic.name
        self.register_outputs({"functionAppName": app.name, "systemTopicName": topic.name})

    def _delivery_alerts(self, topic: eventgrid.SystemTopic, args: RetrainingArgs) -> None:
        """Event Grid retries, then dead-letters; neither is visible anywhere
        else. One metric alert per system topic metric (criteria of one
        alert are ANDed), on any occurrence in the window."""
        rule = args.config.delivery_alerts
        for key, metric, what in DELIVERY_FAILURE_METRICS:
            monitor.MetricAlert(
                f"alert-topic-{key}",
                rule_name=f"alert-{args.names.system_topic}-{key}",
                resource_group_name=args.resource_group_name,
                location="global",
                description=f"retraining trigger: {what}; no retraining run is submitted for these events",
                severity=rule.severity,
                enabled=True,
                scopes=[topic.id],
                target_resource_type=SYSTEM_TOPIC_TYPE,
                target_resource_region=args.location,
                evaluation_frequency=rule.frequency,
                window_size=rule.window,
                auto_mitigate=True,
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name=metric,
                            metric_name=metric,
                            metric_namespace=SYSTEM_TOPIC_TYPE,
                            operator="GreaterThan",
                            threshold=0,
                            time_aggregation="Total",
                        )
                    ],
                ),
                actions=[monitor.MetricAlertActionArgs(action_group_id=args.action_group_id)],
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _private_endpoint(self, name: str, target_id: pulumi.Input[str], group_id: str, args: RetrainingArgs) -> None:
        private_endpoint(
            name,
            target_id=target_id,
            group_id=group_id,
            subnet_id=args.private_endpoint_subnet_id,
            zone_ids=args.dns_zone_ids,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            parent=self,
        )

    def _grant(self, logical: str, principal_id: pulumi.Input[str], principal_label: str, role: str,
               scope: pulumi.Input[str], scope_label: str, args: RetrainingArgs,
               definition_id: pulumi.Input[str] | None = None) -> pulumi.Resource:  # fmt: skip
        return assign_role(
            logical,
            scope=scope,
            scope_label=scope_label,
            role=role,
            principal_id=principal_id,
            principal_label=f"{principal_label}/system-identity",
            principal_type="ServicePrincipal",
            subscription_id=args.subscription_id,
            description=f"azml: retraining trigger ({role})",
            parent=self,
            definition_id=definition_id,
        )

    def _function_app(self, args: RetrainingArgs, host: storage.StorageAccount) -> web.WebApp:
        config, names = args.config, args.names
        plan = web.AppServicePlan(
            "plan",
            name=names.function_plan,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp",
            reserved=True,  # Linux
            sku={"name": "FC1", "tier": "FlexConsumption"},
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        settings = {
            # Identity-based connections: no keys or connection strings anywhere.
            "AzureWebJobsStorage__accountName": host.name,
            "EventsQueue__queueServiceUri": pulumi.Output.concat("https://", host.name, ".queue.core.windows.net"),
            "EVENTS_QUEUE_NAME": EVENTS_QUEUE,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": args.app_insights_connection_string,
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
            "AZML_SUBSCRIPTION_ID": args.subscription_id,
            "AZML_RESOURCE_GROUP": args.resource_group_name,
            "AZML_WORKSPACE_NAME": args.workspace_name,
            "AZML_TRAINING_ACCOUNT": args.data_account_name,
            "AZML_TRAINING_CONTAINER": config.container,
            "AZML_TRAINING_PREFIX": config.prefix,
            "AZML_EXPERIMENT_NAME": config.pipeline_experiment,
        }
        return web.WebApp(
            "func",
            name=names.function_app,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp,linux",
            server_farm_id=plan.id,
            identity={"type": "SystemAssigned"},
            https_only=True,
            public_network_access="Disabled",
            virtual_network_subnet_id=args.integration_subnet_id,
            client_cert_enabled=False,
            site_config={
                "app_settings": [{"name": key, "value": value} for key, value in settings.items()],
                "min_tls_version": "1.2",
                "ftps_state": "Disabled",
                "http20_enabled": True,
                "scm_min_tls_version": "1.2",
            },
            function_app_config={
                "deployment": {
                    "storage": {
                        "type": "blobContainer",
                        "value": pulumi.Output.concat("https://", host.name, f".blob.core.windows.net/{PACKAGE_CONTAINER}"),
                        "authentication": {"type": "SystemAssignedIdentity"},
                    }
                },
                "runtime": {"name": "python", "version": "3.11"},
                "scale_and_concurrency": {
                    "maximum_instance_count": config.max_instances,
                    "instance_memory_mb": config.instance_memory_mb,
                },
            },
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _host_storage(account_name: str, sku: str, at: Placement) -> storage.StorageAccount:
    """The function's host account: locked down like the workspace's
    (components.dependencies.locked_down_storage_account), except that its
    public endpoint stays on for trusted Azure services only, so that Event
    Grid can deliver to its queue and dead-letter container.

    "If a firewall or virtual network rule is configured for the Azure Storage
    account, you can use only the system-assigned managed identity if Allow
    Azure services on the trusted service list to access the storage account
    is also enabled" (https://learn.microsoft.com/azure/event-grid/handler-storage-queues);
    with public network access Disabled "Traffic will be allowed only through
    a private endpoint" (https://learn.microsoft.com/azure/storage/common/storage-network-security),
    which Event Grid cannot use. Default action Deny with no IP or virtual
    network rules: nothing but trusted services (and the private endpoints)
    gets in. The checklist policy azml-storage-public-network-disabled exempts
    this one account (policies/config.*.json)."""
    return locked_down_storage_account("st-fn", account_name, sku, at, trusted_services=True)
