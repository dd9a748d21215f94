"""A batch endpoint, its deployments on declared compute clusters, and its
default deployment set once the deployments exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pulumi
from pulumi_azure_native import machinelearningservices

from azml.config.platform.serving import BatchEndpointConfig
from azml.serving.routing_resource import EndpointRouting

from .serving_assets import code_asset_id, lineage_file, lineage_tags, model_asset_id, registered_assets_tag

OUTPUT_ACTIONS = {"append_row": "AppendRow", "summary_only": "SummaryOnly"}
LOGGING_LEVELS = {"info": "Info", "warning": "Warning", "debug": "Debug"}


@dataclass(frozen=True)
class BatchEndpointArgs:
    """Inputs of :class:`BatchEndpoint`; ``compute_ids`` maps a declared
    cluster name to its ARM id."""

    config: BatchEndpointConfig
    endpoint_name: str
    workspace_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    environment_ids: Mapping[tuple[str, str], pulumi.Input[str]]
    compute_ids: Mapping[str, pulumi.Input[str]]
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Where deployments' lineage files are (default: the Pulumi program's root directory).
    project_dir: Path | None = None


class BatchEndpoint(pulumi.ComponentResource):
    """Batch endpoint (Entra ID auth only — batch endpoints support nothing
    else), one deployment per entry, and an ``EndpointRouting`` resource that
    sets ``defaults.deploymentName`` after the deployments exist.

    Outputs: ``endpoint_id``, ``deployment_ids``.
    """

    def __init__(self, name: str, args: BatchEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:BatchEndpoint", name, None, opts)
        config = args.config
        tags = dict(args.tags)
        common = {
            "workspace_name": args.workspace_name,
            "resource_group_name": args.resource_group_name,
            "location": args.location,
        }
        endpoint = machinelearningservices.BatchEndpoint(
            config.name,
            endpoint_name=args.endpoint_name,
            identity={"type": "SystemAssigned"},
            properties={"auth_mode": "AADToken", "description": config.description},
            tags=tags,
            **common,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["properties.defaults"]),
        )

        self.deployment_ids: dict[str, pulumi.Output[str]] = {}
        deployments = []
        for deployment in config.deployments:
            resource = machinelearningservices.BatchDeployment(
                f"{config.name}-{deployment.name}",
                deployment_name=deployment.name,
                endpoint_name=endpoint.name,
                properties={
                    "compute": args.compute_ids[deployment.compute],
                    "model": {"reference_type": "Id", "asset_id": model_asset_id(args.workspace_id, deployment.model)},
                    "environment_id": args.environment_ids[(deployment.environment.name, deployment.environment.version)],
                    "code_configuration": {
                        "code_id": code_asset_id(args.workspace_id, deployment.code),
                        "scoring_script": deployment.code.scoring_script,
                    },
                    "resources": {"instance_count": deployment.instance_count},
                    "max_concurrency_per_instance": deployment.max_concurrency_per_instance,
                    "mini_batch_size": deployment.mini_batch_size,
                    "retry_settings": {
                        "max_retries": deployment.retry.max_retries,
                        "timeout": f"PT{deployment.retry.timeout_seconds}S",
                    },
                    "error_threshold": deployment.error_threshold,
                    "output_action": OUTPUT_ACTIONS[deployment.output_action],
                    "output_file_name": deployment.output_file_name,
                    "logging_level": LOGGING_LEVELS[deployment.logging_level],
                },
                tags={
                    **tags,
                    **lineage_tags(deployment.model, lineage_file(deployment.lineage, args.project_dir)),
                    **registered_assets_tag(deployment.model, deployment.code),
                },
                **common,
                opts=pulumi.ResourceOptions(parent=self),
            )
            deployments.append(resource)
            self.deployment_ids[deployment.name] = resource.id

        EndpointRouting(
            f"{config.name}-default",
            endpoint_id=endpoint.id,
            kind="batch",
            deployments=[d.name for d in config.deployments],
            default_deployment=config.default_deployment,
            # Azure stamps every write of the endpoint: a new stamp re-applies the split in preview and up
            # (the endpoint's PUT replaces the whole endpoint, split included).
            endpoint_revision=endpoint.system_data.apply(lambda data: data.last_modified_at if data else None),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deployments),
        )

        self.endpoint_id = endpoint.id
        self.register_outputs({"endpointId": endpoint.id, "deploymentIds": self.deployment_ids})
