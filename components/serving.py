"""Serving: the environments endpoints run in, online endpoints and batch endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pulumi

from azml.config.schema import StackConfig
from azml.naming import endpoint_name

from .batch_endpoint import BatchEndpoint, BatchEndpointArgs
from .online_endpoint import OnlineEndpoint, OnlineEndpointArgs
from .serving_assets import register_environments


@dataclass(frozen=True)
class ServingArgs:
    """Inputs of :class:`Serving`: the stack config (its ``onlineEndpoints`` and
    ``batchEndpoints``), the workspace and its dependencies, the compute
    clusters batch deployments run on, and ``project_dir`` for conda files."""

    config: StackConfig
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    registry_login_server: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    compute_ids: Mapping[str, pulumi.Input[str]]
    project_dir: Path
    tags: Mapping[str, str] = field(default_factory=dict)


class Serving(pulumi.ComponentResource):
    """Registered environments, one :class:`OnlineEndpoint` and one
    :class:`BatchEndpoint` component per configured endpoint.

    Outputs: ``online`` and ``batch`` (configured name -> component).
    """

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Serving", name, None, opts)
        config = args.config
        endpoints = [*config.online_endpoints, *config.batch_endpoints]
        environment_ids = register_environments(
            [d.environment for e in endpoints for d in e.deployments],
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            registry_login_server=args.registry_login_server,
            project_dir=args.project_dir,
            tags=args.tags,
            parent=self,
        )
        common = {
            "workspace_name": args.workspace_name,
            "workspace_id": args.workspace_id,
            "resource_group_name": args.resource_group_name,
            "location": config.location,
            "environment_ids": environment_ids,
            "tags": args.tags,
        }
        child = pulumi.ResourceOptions(parent=self)
        self.online = {
            e.name: OnlineEndpoint(
                f"online-{e.name}",
                OnlineEndpointArgs(
                    config=e,
                    endpoint_name=endpoint_name(config, e.name),
                    managed_network=config.workspace.uses_managed_network,
                    **common,
                ),
                child,
            )
            for e in config.online_endpoints
        }
        self.batch = {
            e.name: BatchEndpoint(
                f"batch-{e.name}",
                BatchEndpointArgs(
                    config=e,
                    endpoint_name=endpoint_name(config, e.name),
                    compute_ids=args.compute_ids,
                    **common,
                ),
                child,
            )
            for e in config.batch_endpoints
        }
        self.register_outputs(
            {
                "onlineEndpoints": {n: e.endpoint_name for n, e in self.online.items()},
                "batchEndpoints": {n: e.endpoint_id for n, e in self.batch.items()},
            }
        )
