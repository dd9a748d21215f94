"""Serving assets: the environments the stack registers, and the ids of
models (in a registry, or declared registered in the workspace) and code
(declared registered in the workspace by the pipeline).

Every asset a deployment references must exist when its PUT runs
(concept-endpoints): the stack creates it and the deployment depends on it
(environments), it lives in an Azure ML registry that exists before the run
(models), or the config declares it registered by the pipeline (the
deployment's ``registered-assets`` tag records which, for the platform rule
``azure-ml-deployment-assets-exist``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pulumi
from pulumi_azure_native import machinelearningservices

from azml.config.platform.serving import CodeRef, EnvironmentRef, ModelRef
from azml.naming import label


#: Tag of a deployment naming the workspace assets its config declares
#: registered before the run (comma-separated kinds: model, code).
REGISTERED_ASSETS_TAG = "registered-assets"


def model_asset_id(workspace_id: pulumi.Input[str], model: ModelRef) -> pulumi.Input[str]:
    """``azureml://registries/...`` of a registry model version, or the ARM id
    of a workspace model version."""
    if model.uri is not None:
        # Deployments take registry models by this URI (how-to-share-models-
        # pipelines-across-workspaces-with-registries, "Deploy model from registry").
        return model.uri
    return pulumi.Output.concat(workspace_id, f"/models/{model.name}/versions/{model.version}")


def registered_assets_tag(model: ModelRef, code: CodeRef | None) -> dict[str, str]:
    """``{registered-assets: "code,model"}``: the workspace assets declared
    registered before the run (none: no tag)."""
    kinds = [kind for kind, ref in (("code", code), ("model", model)) if ref is not None and ref.registered]
    return {REGISTERED_ASSETS_TAG: ",".join(kinds)} if kinds else {}


def lineage_tags(model: ModelRef, lineage_file: Path | None = None) -> dict[str, str]:
    """Which model version a deployment serves, as tags, plus — when the
    deployment names a lineage.json (``azml lineage``) — the record's hashes,
    commit and training run (see docs/retraining-and-lineage.md)."""
    if model.uri is not None:
        # azureml://registries/<registry>/models/<name>/versions/<version>
        parts = model.uri.split("/")
        tags = {"model-name": parts[-3], "model-version": parts[-1], "model-registry": parts[3]}
    else:
        tags = {"model-name": str(model.name), "model-version": str(model.version)}
    if lineage_file is None:
        return tags
    from azml.lineage import read_record, record_tags

    record = read_record(lineage_file)
    recorded = record_tags(record)
    if (recorded["model-name"], recorded["model-version"]) != (tags["model-name"], tags["model-version"]):
        # Config validation refuses this first; kept as a tripwire.
        raise ValueError(
            f"{lineage_file} records model {label(recorded['model-name'], recorded['model-version'])}, "
            f"not the served {label(tags['model-name'], tags['model-version'])}"
        )
    return {**tags, **recorded}


def lineage_file(lineage: str | None, project_dir: Path | None) -> Path | None:
    """The deployment's lineage.json: relative to ``project_dir`` (default: the
    Pulumi program's root directory)."""
    if lineage is None:
        return None
    root = project_dir if project_dir is not None else Path(pulumi.get_root_directory())
    return root / lineage


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
