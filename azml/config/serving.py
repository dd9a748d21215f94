"""Stack config for serving: ``azml:onlineEndpoints`` and ``azml:batchEndpoints``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, field_validator, model_validator

from .base import Model

#: Base images an environment may build on (Microsoft's curated Azure ML images).
APPROVED_BASE_IMAGE_PREFIXES = ("mcr.microsoft.com/azureml/",)

# Azure: deployment names 3-32 chars, letters/digits/hyphens, starting with a letter.
_DEPLOYMENT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")

AssetName = Annotated[str, StringConstraints(pattern=_ASSET_NAME.pattern)]


def _version_text(value: object) -> object:
    """``pulumi config set --path '...model.version' 4`` stores the number 4
    (the CLI types a bare integer as a number), while Azure ML asset versions
    are strings: a whole non-negative number is read as its digits. Anything
    else (true, 1.5, text) goes on to the strict string check."""
    if type(value) is int and value >= 0:
        return str(value)
    return value


AssetVersion = Annotated[
    str, BeforeValidator(_version_text), StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,29}$")
]


def _check_deployment_name(value: str) -> str:
    if not _DEPLOYMENT_NAME.match(value):
        raise ValueError("must be 3-32 characters: letters, digits and hyphens, starting with a letter")
    return value


def _check_endpoint_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", value):
        raise ValueError("must be 3-32 characters: lowercase letters, digits and hyphens, starting with a letter")
    return value


def _check_lineage_path(value: str) -> str:
    if not value.endswith(".json") or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value) or ".." in value.split("/"):
        raise ValueError("must be the path of a lineage .json file relative to Pulumi.yaml, inside the project")
    return value


DeploymentName = Annotated[str, AfterValidator(_check_deployment_name)]
LineagePath = Annotated[str, AfterValidator(_check_lineage_path)]
EndpointName = Annotated[str, AfterValidator(_check_endpoint_name)]


class ModelRef(Model):
    """The model a deployment serves, as an asset that exists when the
    deployment's PUT runs (a first ``pulumi up`` creates the workspace, so
    nothing is registered in it yet):

    - ``{name, version, registry}``: a model version in an Azure ML registry
      that exists before the run (models promoted dev -> prod through a
      registry: how-to-share-models-pipelines-across-workspaces-with-registries);
    - ``{registryUri}``: the same, as
      ``azureml://registries/<registry>/models/<name>/versions/<version>``;
    - ``{name, version, registered: true}``: a model version in this stack's
      workspace, declared registered by the training pipeline (only true once
      the workspace exists and the pipeline has run).
    """

    name: AssetName | None = None
    version: AssetVersion | None = None
    registry: AssetName | None = Field(default=None, description="Azure ML registry holding the model version.")
    registry_uri: Annotated[str, StringConstraints(pattern=r"^azureml://registries/[^/]+/models/[^/]+/versions/[^/]+$")] | None = None
    registered: bool = Field(
        default=False,
        description="The workspace model version is registered (by the training pipeline) before this run.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> "ModelRef":
        workspace_form = self.name is not None and self.version is not None
        if workspace_form == (self.registry_uri is not None) or (self.name is None) != (self.version is None):
            raise ValueError("give either name and version (with registry, or registered: true), or registryUri")
        if self.registry_uri is not None and self.registered:
            raise ValueError("registered only goes with a workspace model (name and version without registry)")
        if workspace_form and self.registry is not None and self.registered:
            raise ValueError("a registry model is not registered in the workspace: give registry or registered: true, not both")
        if workspace_form and self.registry is None and not self.registered:
            raise ValueError(
                "a workspace model does not exist when a new workspace's deployments are created: reference it from "
                "an Azure ML registry (registry: <name>) or, once the training pipeline has registered it in this "
                "workspace, declare it with registered: true"
            )
        return self

    @property
    def registry_name(self) -> str | None:
        """The registry holding the model, or None for a workspace model."""
        if self.registry_uri is not None:
            return self.registry_uri.split("/")[3]
        return self.registry

    @property
    def uri(self) -> str | None:
        """``azureml://registries/...`` of a registry model, None for a workspace model."""
        if self.registry_uri is not None:
            return self.registry_uri
        if self.registry is not None:
            return f"azureml://registries/{self.registry}/models/{self.name}/versions/{self.version}"
        return None


class EnvironmentRef(Model):
    """Serving environment, registered as ``name``/``version`` by the stack:
    ``image`` (``repository:tag`` in the workspace's own registry), or
    ``baseImage`` (an approved base image) plus ``condaFile`` (path in this
    repository, relative to Pulumi.yaml)."""

    name: AssetName
    version: AssetVersion
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_.-]+$")] | None = None
    base_image: str | None = None
    conda_file: str | None = None

    @field_validator("base_image")
    @classmethod
    def _approved(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(APPROVED_BASE_IMAGE_PREFIXES):
            allowed = ", ".join(f"{p}…" for p in APPROVED_BASE_IMAGE_PREFIXES)
            raise ValueError(f"must be an approved base image ({allowed})")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> "EnvironmentRef":
        if (self.image is None) == (self.base_image is None):
            raise ValueError("give either image (repository:tag in the workspace registry) or baseImage with condaFile")
        if self.base_image is not None and self.conda_file is None:
            raise ValueError("baseImage needs condaFile")
        if self.image is not None and self.conda_file is not None:
            raise ValueError("condaFile only goes with baseImage")
        return self


class CodeRef(Model):
    """Scoring code: a code asset of the workspace and the script inside it.

    Azure ML registries hold no code assets ("Registry only supports named
    assets (data/model/component/environment)":
    how-to-share-models-pipelines-across-workspaces-with-registries), and this
    stack cannot upload code into its own private, key-less storage; so the
    code asset exists only once the pipeline has registered it in the
    workspace, which ``registered: true`` declares (the second phase of the
    bootstrap: see README "Running it for real")."""

    name: AssetName
    version: AssetVersion
    scoring_script: Annotated[str, StringConstraints(pattern=r"^[^/\\][^\\]*\.py$")]
    registered: bool = Field(
        default=False,
        description="The code asset is registered in the workspace (by the pipeline) before this run.",
    )

    @model_validator(mode="after")
    def _exists(self) -> "CodeRef":
        if not self.registered:
            raise ValueError(
                "a workspace code asset does not exist when a new workspace's deployments are created (registries hold "
                "no code assets): register it with the pipeline first, then declare it with registered: true"
            )
        return self


class RequestSettings(Model):
    request_timeout_ms: int = Field(default=5000, ge=1, le=180_000)
    max_concurrent_requests_per_instance: int = Field(default=1, ge=1, le=1000)
    max_queue_wait_ms: int | None = Field(
        default=None, description="Deprecated: Azure ignores it for managed online deployments; refused when set."
    )

    @field_validator("max_queue_wait_ms")
    @classmethod
    def _deprecated(cls, value: int | None) -> int | None:
        # "(Deprecated) The maximum amount of time in milliseconds a request will
        # stay in the queue. (Now increase request_timeout_ms to account for any
        # networking/queue delays)": reference-yaml-deployment-managed-online.
        if value is not None:
            raise ValueError(
                "is deprecated and ignored by Azure for managed online deployments: remove it and raise "
                "requestTimeoutMs to cover queueing delays"
            )
        return value


class Probe(Model):
    initial_delay_seconds: int = Field(default=10, ge=0, le=3600)
    period_seconds: int = Field(default=10, ge=1, le=3600)
    timeout_seconds: int = Field(default=2, ge=1, le=600)
    failure_threshold: int = Field(default=30, ge=1, le=100)
    success_threshold: int = Field(default=1, ge=1, le=100)


class Autoscale(Model):
    min_instances: int = Field(ge=1, le=100)
    max_instances: int = Field(ge=1, le=100)
    cpu_scale_out_percent: int = Field(default=70, ge=1, le=100)
    cpu_scale_in_percent: int = Field(default=25, ge=0, le=99)
    latency_p95_scale_out_ms: int | None = Field(default=None, ge=1)
    cooldown_minutes: int = Field(default=5, ge=1, le=10080)

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscale":
        if self.min_instances > self.max_instances:
            raise ValueError(f"minInstances ({self.min_instances}) must not exceed maxInstances ({self.max_instances})")
        if self.cpu_scale_in_percent >= self.cpu_scale_out_percent:
            raise ValueError("cpuScaleInPercent must be below cpuScaleOutPercent (or instances flap)")
        return self


class OnlineDeploymentConfig(Model):
    name: DeploymentName
    model: ModelRef
    environment: EnvironmentRef
    code: CodeRef
    instance_type: Annotated[str, StringConstraints(pattern=r"^Standard_[A-Za-z0-9_]+$")]
    instance_count: int = Field(default=1, ge=1, le=100)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    request_settings: RequestSettings = Field(default_factory=RequestSettings)
    liveness_probe: Probe = Field(default_factory=Probe)
    readiness_probe: Probe = Field(default_factory=lambda: Probe(initial_delay_seconds=10, failure_threshold=3))
    data_collection: bool = Field(default=True, description="Collect model inputs/outputs (model monitoring needs it).")
    data_collection_sampling_rate: float = Field(
        default=1.0, gt=0, le=1, description="Share of requests whose inputs/outputs are collected."
    )
    autoscale: Autoscale | None = None
    lineage: LineagePath | None = Field(
        default=None,
        description="lineage.json of the served model version (written by `azml lineage`), relative to Pulumi.yaml: "
        "its hashes and commit become the deployment's tags.",
    )

    @model_validator(mode="after")
    def _autoscale_covers_instances(self) -> "OnlineDeploymentConfig":
        scale = self.autoscale
        if scale is not None and not scale.min_instances <= self.instance_count <= scale.max_instances:
            raise ValueError(
                f"instanceCount ({self.instance_count}) must lie within autoscale "
                f"minInstances..maxInstances ({scale.min_instances}..{scale.max_instances})"
            )
        return self


class OnlineEndpointConfig(Model):
    """Traffic rules are checked with the whole stack (see ``checks.py``) so
    that each problem names its exact key."""

    name: EndpointName = Field(description="Short name; the deployed name is <prefix>-<env>-<name> (region-unique).")
    auth_mode: Literal["key", "aml_token", "aad_token"] = "aad_token"
    public_network_access: bool = False
    description: str | None = None
    deployments: list[OnlineDeploymentConfig] = Field(min_length=1)
    traffic: dict[str, int] = Field(default_factory=dict)
    mirror_traffic: dict[str, int] = Field(default_factory=dict)

    @field_validator("deployments")
    @classmethod
    def _unique(cls, deployments: list[OnlineDeploymentConfig]) -> list[OnlineDeploymentConfig]:
        names = [d.name for d in deployments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"deployment name(s) declared twice: {', '.join(duplicates)}")
        return deployments


class BatchRetry(Model):
    max_retries: int = Field(default=3, ge=0, le=100)
    timeout_seconds: int = Field(default=300, ge=1, le=86400)


class BatchDeploymentConfig(Model):
    name: DeploymentName
    model: ModelRef
    environment: EnvironmentRef
    code: CodeRef
    compute: str = Field(description="A declared compute cluster.")
    instance_count: int = Field(default=1, ge=1, le=1000)
    max_concurrency_per_instance: int = Field(default=1, ge=1, le=100)
    mini_batch_size: int = Field(default=10, ge=1, le=100_000)
    retry: BatchRetry = Field(default_factory=BatchRetry)
    error_threshold: int = Field(default=-1, ge=-1, description="-1 = ignore failed mini-batches.")
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] = "predictions.csv"
    logging_level: Literal["info", "warning", "debug"] = "info"
    lineage: LineagePath | None = Field(
        default=None,
        description="lineage.json of the served model version (written by `azml lineage`), relative to Pulumi.yaml: "
        "its hashes and commit become the deployment's tags.",
    )


class BatchEndpointConfig(Model):
    name: EndpointName
    description: str | None = None
    deployments: list[BatchDeploymentConfig] = Field(min_length=1)
    default_deployment: str

    @model_validator(mode="after")
    def _default_declared(self) -> "BatchEndpointConfig":
        names = [d.name for d in self.deployments]
        if len(set(names)) != len(names):
            raise ValueError("deployment names must be unique")
        if self.default_deployment not in names:
            raise ValueError(
                f"defaultDeployment {self.default_deployment!r} is not a declared deployment (declared: {', '.join(names)})"
            )
        return self
