"""Serving assets: the environments the stack registers, and the ids of
models and code registered by training pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pulumi
from pulumi_azure_native import machinelearningservices

from azml.config.serving import CodeRef, EnvironmentRef, ModelRef


def model_asset_id(workspace_id: pulumi.Input[str], model: ModelRef) -> pulumi.Input[str]:
    """ARM id of a workspace model version, or the registry URI as given."""
    if model.registry_uri is not None:
        return model.registry_uri
    return pulumi.Output.concat(workspace_id, f"/models/{model.name}/versions/{model.version}")


def lineage_tags(model: ModelRef) -> dict[str, str]:
    """Which model version a deployment serves, as tags (the lineage record)."""
    if model.registry_uri is not None:
        # azureml://registries/<registry>/models/<name>/versions/<version>
        parts = model.registry_uri.split("/")
        return {"model-name": parts[-3], "model-version": parts[-1], "model-registry": parts[3]}
    return {"model-name": str(model.name), "model-version": str(model.version)}


def code_asset_id(workspace_id: pulumi.Input[str], code: CodeRef) -> pulumi.Output[str]:
    return pulumi.Output.concat(workspace_id, f"/codes/{code.name}/versions/{code.version}")


def register_environments(
    environments: Iterable[EnvironmentRef],
    *,
    workspace_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    registry_login_server: pulumi.Input[str],
    project_dir: Path,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> dict[tuple[str, str], pulumi.Output[str]]:
    """One ``EnvironmentVersion`` per distinct environment name and version:
    an image from the workspace's private registry, or a conda spec (a file
    under ``project_dir``) on an approved base image, built on the workspace's
    image-build compute. Returns ``{(name, version): ARM id}``.
    """
    ids: dict[tuple[str, str], pulumi.Output[str]] = {}
    for env in environments:
        key = (env.name, env.version)
        if key in ids:
            continue  # config validation guarantees equal definitions
        properties: dict = {"os_type": "Linux", "tags": dict(tags), "auto_rebuild": "Disabled"}
        if env.image is not None:
            properties["image"] = pulumi.Output.concat(registry_login_server, "/", env.image)
        else:
            properties["image"] = env.base_image
            properties["conda_file"] = (project_dir / str(env.conda_file)).read_text(encoding="utf-8")
        version = machinelearningservices.EnvironmentVersion(
            f"env-{env.name}-{env.version}",
            name=env.name,
            version=env.version,
            workspace_name=workspace_name,
            resource_group_name=resource_group_name,
            # Azure ML asset versions are immutable: a changed definition
            # needs a new version in config (Azure refuses an in-place change).
            properties=properties,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        ids[key] = version.id
    return ids
