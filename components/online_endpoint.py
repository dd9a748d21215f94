"""A managed online endpoint with blue/green deployments, autoscale, and its
traffic split owned by a separate routing resource."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pulumi
from pulumi_azure_native import machinelearningservices, monitor

from azml.config.platform.serving import Autoscale, OnlineDeploymentConfig, OnlineEndpointConfig, Probe
from azml.serving.routing_resource import EndpointRouting

from .serving_assets import code_asset_id, lineage_file, lineage_tags, model_asset_id, registered_assets_tag

AUTH_MODES = {"key": "Key", "aml_token": "AMLToken", "aad_token": "AADToken"}


@dataclass(frozen=True)
class OnlineEndpointArgs:
    """Inputs of :class:`OnlineEndpoint`.

    ``endpoint_name`` is the deployed (region-unique) name; ``environment_ids``
    maps (name, version) to a registered environment's id; ``managed_network``
    says whether the workspace isolates outbound traffic with its managed
    network (then deployments leave ``egressPublicNetworkAccess`` unset).
    """

    config: OnlineEndpointConfig
    endpoint_name: str
    workspace_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    environment_ids: Mapping[tuple[str, str], pulumi.Input[str]]
    managed_network: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Where deployments' lineage files are (default: the Pulumi program's root directory).
    project_dir: Path | None = None


def _probe(probe: Probe) -> dict:
    return {
        "initial_delay": f"PT{probe.initial_delay_seconds}S",
        "period": f"PT{probe.period_seconds}S",
        "timeout": f"PT{probe.timeout_seconds}S",
        "failure_threshold": probe.failure_threshold,
        "success_threshold": probe.success_threshold,
    }


def _millis(value: int) -> str:
    return f"PT{value / 1000:g}S"


def _rule(metric: str, resource_uri: pulumi.Input[str], operator: str, threshold: float, direction: str, cooldown: int) -> dict:
    return {
        "metric_trigger": {
            "metric_name": metric,
            "metric_resource_uri": resource_uri,
            "time_grain": "PT1M",
            "statistic": "Average",
            "time_window": "PT5M",
            "time_aggregation": "Average",
            "operator": operator,
            "threshold": threshold,
        },
        "scale_action": {"direction": direction, "type": "ChangeCount", "value": "1", "cooldown": f"PT{cooldown}M"},
    }


class OnlineEndpoint(pulumi.ComponentResource):
    """Endpoint (private unless configured, no keys unless ``authMode: key``),
    one managed deployment per entry (App Insights on, inputs/outputs
    collected, outbound through the workspace managed network), optional
    autoscale per deployment (which then owns the instance count), and the
    ``EndpointRouting`` resource that applies ``traffic``/``mirrorTraffic``
    after every deployment exists.

    The endpoint's system-assigned identity gets its roles from Azure ML
    itself: "If the endpoint identity is a system-assigned identity, some
    roles are assigned to the endpoint identity for convenience" (AcrPull on
    the workspace registry, Storage Blob Data Reader on its storage:
    concept-endpoints-online-auth), and on key-less storage Storage Blob Data
    Contributor, "Automatically assigned the role when provisioned. Don't
    manually change this role assignment." (how-to-disable-local-auth-storage).
    The stack creates none of them: the same (principal, role, scope) under
    another name fails with RoleAssignmentExists.

    Outputs: ``endpoint_id``, ``endpoint_name``, ``deployment_ids``.
    """

    def __init__(self, name: str, args: OnlineEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:OnlineEndpoint", name, None, opts)
        config = args.config
        tags = dict(args.tags)
        common = {
            "workspace_name": args.workspace_name,
            "resource_group_name": args.resource_group_name,
            "location": args.location,
        }

        endpoint = machinelearningservices.OnlineEndpoint(
            config.name,
            endpoint_name=args.endpoint_name,
            identity={"type": "SystemAssigned"},
            kind="Managed",
            properties={
                "auth_mode": AUTH_MODES[config.auth_mode],
                "public_network_access": "Enabled" if config.public_network_access else "Disabled",
                "description": config.description,
            },
            tags=tags,
            **common,
            # The routing resource owns the split; a PUT here must not fight it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["properties.traffic", "properties.mirrorTraffic"]),
        )

        self.deployment_ids: dict[str, pulumi.Output[str]] = {}
        deployments = []
        for deployment_config in config.deployments:
            deployment = self._deployment(deployment_config, endpoint, args, common, tags)
            deployments.append(deployment)
            self.deployment_ids[deployment_config.name] = deployment.id
            if deployment_config.autoscale is not None:
                self._autoscale(deployment_config, deployment, endpoint, args, tags)

        EndpointRouting(
            f"{config.name}-traffic",
            endpoint_id=endpoint.id,
            kind="online",
            deployments=[d.name for d in config.deployments],
            traffic=config.traffic,
            mirror_traffic=config.mirror_traffic,
            # Azure stamps every write of the endpoint: a new stamp re-applies the split in preview and up
            # (the endpoint's PUT replaces the whole endpoint, split included).
            endpoint_revision=endpoint.system_data.apply(lambda data: data.last_modified_at if data else None),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deployments),
        )

        self.endpoint_id = endpoint.id
        self.endpoint_name = endpoint.name
        self.register_outputs({"endpointId": endpoint.id, "deploymentIds": self.deployment_ids})

    def _deployment(
        self,
        deployment: OnlineDeploymentConfig,
        endpoint: machinelearningservices.OnlineEndpoint,
        args: OnlineEndpointArgs,
        common: dict,
        tags: dict,
    ) -> machinelearningservices.OnlineDeployment:
        request = deployment.request_settings
        collect = "Enabled" if deployment.data_collection else "Disabled"
        # `properties` is a union (managed | Kubernetes): only the typed
        # Args class gets its keys translated to the REST API's camelCase.
        properties = machinelearningservices.ManagedOnlineDeploymentArgs(
            endpoint_compute_type="Managed",
            model=model_asset_id(args.workspace_id, deployment.model),
            environment_id=args.environment_ids[(deployment.environment.name, deployment.environment.version)],
            code_configuration={
                "code_id": code_asset_id(args.workspace_id, deployment.code),
                "scoring_script": deployment.code.scoring_script,
            },
            instance_type=deployment.instance_type,
            environment_variables=dict(deployment.environment_variables),
            # No max_queue_wait: "(Deprecated for Managed Online Endpoints)
            # ... (Now increase request_timeout_ms to account for any
            # networking/queue delays)" (OnlineRequestSettings, REST API).
            request_settings={
                "request_timeout": _millis(request.request_timeout_ms),
                "max_concurrent_requests_per_instance": request.max_concurrent_requests_per_instance,
            },
            liveness_probe=_probe(deployment.liveness_probe),
            readiness_probe=_probe(deployment.readiness_probe),
            scale_settings=machinelearningservices.DefaultScaleSettingsArgs(scale_type="Default"),
            app_insights_enabled=True,
            data_collector={
                "collections": {
                    "model_inputs": {"data_collection_mode": collect, "sampling_rate": deployment.data_collection_sampling_rate},
                    "model_outputs": {"data_collection_mode": collect, "sampling_rate": deployment.data_collection_sampling_rate},
                }
            },
            # Only without a workspace managed network (legacy isolation):
            # the deployment's own flag keeps model, code and image downloads private.
            egress_public_network_access=None if args.managed_network else "Disabled",
        )
        if args.managed_network:
            # In a managed-network workspace "the `egress_public_access` flag for
            # managed online deployments no longer applies. Avoid setting this
            # flag" (concept-secure-online-endpoint); the SDK's Args class fills
            # in 'Enabled' when it is not given, so clear it (None is not sent).
            pulumi.set(properties, "egress_public_network_access", None)
        # With autoscale, the autoscale setting owns the instance count: a
        # Pulumi update must not reset sku.capacity to the configured start.
        ignore = ["sku.capacity"] if deployment.autoscale is not None else []
        return machinelearningservices.OnlineDeployment(
            f"{args.config.name}-{deployment.name}",
            deployment_name=deployment.name,
            endpoint_name=endpoint.name,
            sku={"name": "Default", "capacity": deployment.instance_count},
            properties=properties,
            tags={
                **tags,
                **lineage_tags(deployment.model, lineage_file(deployment.lineage, args.project_dir)),
                **registered_assets_tag(deployment.model, deployment.code),
            },
            **common,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )

    def _autoscale(
        self,
        deployment: OnlineDeploymentConfig,
        resource: machinelearningservices.OnlineDeployment,
        endpoint: machinelearningservices.OnlineEndpoint,
        args: OnlineEndpointArgs,
        tags: dict,
    ) -> monitor.AutoscaleSetting:
        scale: Autoscale = deployment.autoscale  # type: ignore[assignment]
        rules = [
            _rule("CpuUtilizationPercentage", resource.id, "GreaterThan", scale.cpu_scale_out_percent, "Increase", scale.cooldown_minutes),
            _rule("CpuUtilizationPercentage", resource.id, "LessThan", scale.cpu_scale_in_percent, "Decrease", scale.cooldown_minutes),
        ]
        if scale.latency_p95_scale_out_ms is not None:
            # Latency is an endpoint metric (milliseconds), not a deployment one.
            rules.append(
                _rule("RequestLatency_P95", endpoint.id, "GreaterThan", scale.latency_p95_scale_out_ms, "Increase", scale.cooldown_minutes)
            )
        return monitor.AutoscaleSetting(
            f"{args.config.name}-{deployment.name}-autoscale",
            autoscale_setting_name=f"autoscale-{args.endpoint_name}-{deployment.name}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            target_resource_uri=resource.id,
            enabled=True,
            profiles=[
                {
                    "name": "default",
                    "capacity": {
                        "minimum": str(scale.min_instances),
                        "maximum": str(scale.max_instances),
                        "default": str(deployment.instance_count),
                    },
                    "rules": rules,
                }
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
