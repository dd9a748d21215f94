"""Stack config for serving: ``azml:onlineEndpoints`` and ``azml:batchEndpoints``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, field_validator, model_validator

from ..base import Model

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

# Descriptions shared by online and batch deployments.
_DEPLOYMENT_NAME_TEXT = "3-32 letters, digits and hyphens, starting with a letter; unique in its endpoint."
_MODEL_TEXT = (
    "The model served, an asset that exists when Azure creates the deployment: {name, version, registry} or "
    "{registryUri} of an Azure ML registry model, or {name, version, registered: true} of a workspace model."
)
_ENVIRONMENT_TEXT = "Environment the stack registers: {name, version, image} or {name, version, baseImage, condaFile}."
_CODE_TEXT = "Scoring code, a workspace code asset: {name, version, scoringScript, registered: true} (registries hold no code)."


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

    name: AssetName | None = Field(default=None, description="Model name (with version, and registry or registered: true).")
    version: AssetVersion | None = Field(
        default=None, description="Model version; Azure ML versions are strings (a bare number is read as its digits)."
    )
    registry: AssetName | None = Field(default=None, description="Azure ML registry holding the model version.")
    registry_uri: Annotated[str, StringConstraints(pattern=r"^azureml://registries/[^/]+/models/[^/]+/versions/[^/]+$")] | None = Field(
        default=None, description="The registry model as one URI, instead of name, version and registry."
    )
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

    name: AssetName = Field(
        description="Environment the stack registers; one definition per name and version (asset versions are immutable)."
    )
    version: AssetVersion = Field(description="Environment version.")
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_.-]+$")] | None = Field(
        default=None, description="`repository:tag` in the workspace's own registry (instead of baseImage)."
    )
    base_image: str | None = Field(
        default=None,
        description="Approved base image (mcr.microsoft.com/azureml/…) the conda spec builds on; needs condaFile.",
    )
    conda_file: str | None = Field(
        default=None, description="Conda spec, relative to Pulumi.yaml and inside the project; only with baseImage."
    )

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

    name: AssetName = Field(description="Code asset in the workspace, registered by the training pipeline.")
    version: AssetVersion = Field(description="Code asset version.")
    scoring_script: Annotated[str, StringConstraints(pattern=r"^[^/\\][^\\]*\.py$")] = Field(
        description="Scoring script inside the code asset: a relative path to a .py file."
    )
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
    request_timeout_ms: int = Field(
        default=5000, ge=1, le=180_000, description="Scoring request timeout; raise it to cover queueing delays."
    )
    max_concurrent_requests_per_instance: int = Field(
        default=1, ge=1, le=1000, description="Requests one instance serves at a time."
    )
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
    initial_delay_seconds: int = Field(
        default=10, ge=0, le=3600, description="Seconds after the container starts before the first probe."
    )
    period_seconds: int = Field(default=10, ge=1, le=3600, description="Seconds between probes.")
    timeout_seconds: int = Field(default=2, ge=1, le=600, description="Seconds a probe waits for an answer.")
    failure_threshold: int = Field(
        default=30, ge=1, le=100,
        description="Consecutive failures before Azure gives up on the container (liveness: restart; readiness: "
        "no traffic).",
    )
    success_threshold: int = Field(
        default=1, ge=1, le=100, description="Consecutive successes before the container counts as healthy again."
    )


class Autoscale(Model):
    min_instances: int = Field(
        ge=1, le=100, description="Fewest instances; at most maxInstances, and instanceCount lies within min..max."
    )
    max_instances: int = Field(ge=1, le=100, description="Most instances.")
    cpu_scale_out_percent: int = Field(
        default=70, ge=1, le=100, description="Average CPU above which one instance is added."
    )
    cpu_scale_in_percent: int = Field(
        default=25, ge=0, le=99, description="Average CPU below which one instance is removed; below cpuScaleOutPercent."
    )
    latency_p95_scale_out_ms: int | None = Field(
        default=None, ge=1, description="Endpoint p95 latency above which one instance is added; unset: CPU only."
    )
    cooldown_minutes: int = Field(default=5, ge=1, le=10080, description="Minutes between two scale actions.")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscale":
        if self.min_instances > self.max_instances:
            raise ValueError(f"minInstances ({self.min_instances}) must not exceed maxInstances ({self.max_instances})")
        if self.cpu_scale_in_percent >= self.cpu_scale_out_percent:
            raise ValueError("cpuScaleInPercent must be below cpuScaleOutPercent (or instances flap)")
        return self


class OnlineDeploymentConfig(Model):
    name: DeploymentName = Field(description=_DEPLOYMENT_NAME_TEXT)
    model: ModelRef = Field(description=_MODEL_TEXT)
    environment: EnvironmentRef = Field(description=_ENVIRONMENT_TEXT)
    code: CodeRef = Field(description=_CODE_TEXT)
    instance_type: Annotated[str, StringConstraints(pattern=r"^Standard_[A-Za-z0-9_]+$")] = Field(
        description="VM size of the deployment's instances."
    )
    instance_count: int = Field(
        default=1, ge=1, le=100, description="Instances; with autoscale, where it starts (within its bounds)."
    )
    environment_variables: dict[str, str] = Field(
        default_factory=dict, description="Environment variables of the scoring container."
    )
    request_settings: RequestSettings = Field(
        default_factory=RequestSettings, description="Request timeout and concurrency per instance."
    )
    liveness_probe: Probe = Field(default_factory=Probe, description="Liveness probe: restarts a failing container.")
    readiness_probe: Probe = Field(
        default_factory=lambda: Probe(initial_delay_seconds=10, failure_threshold=3),
        description="Readiness probe: traffic goes only to ready instances.",
    )
    data_collection: bool = Field(default=True, description="Collect model inputs/outputs (model monitoring needs it).")
    data_collection_sampling_rate: float = Field(
        default=1.0, gt=0, le=1, description="Share of requests whose inputs/outputs are collected."
    )
    autoscale: Autoscale | None = Field(
        default=None,
        description="Autoscale on CPU and optionally p95 latency; it then owns the instance count. Unset: fixed count.",
    )
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

    name: EndpointName = Field(
        description="3-32 lowercase letters, digits and hyphens; deployed as <prefix>-<env>-<name> (endpoint names "
        "are region-unique; the full name must fit 32 characters)."
    )
    auth_mode: Literal["key", "aml_token", "aad_token"] = Field(
        default="aad_token", description="How callers authenticate: `aad_token` is Entra ID."
    )
    public_network_access: bool = Field(default=False, description="Scoring over the public internet.")
    description: str | None = Field(default=None, description="Description of the endpoint.")
    deployments: list[OnlineDeploymentConfig] = Field(min_length=1, description="Deployments, names unique.")
    traffic: dict[str, int] = Field(
        default_factory=dict,
        description="Live split, deployment -> whole percent 0..100; values sum to 0 or 100; keys are declared "
        "deployments. A routing resource applies it after the deployments exist.",
    )
    mirror_traffic: dict[str, int] = Field(
        default_factory=dict,
        description="Shadow copy of live traffic (responses discarded), deployment -> percent 0..50: at most one "
        "deployment, never one with live traffic.",
    )

    @field_validator("deployments")
    @classmethod
    def _unique(cls, deployments: list[OnlineDeploymentConfig]) -> list[OnlineDeploymentConfig]:
        names = [d.name for d in deployments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"deployment name(s) declared twice: {', '.join(duplicates)}")
        return deployments


class BatchRetry(Model):
    max_retries: int = Field(default=3, ge=0, le=100, description="Retries of a failed mini-batch.")
    timeout_seconds: int = Field(
        default=300, ge=1, le=86400, description="Seconds a mini-batch may run before it counts as failed."
    )


class BatchDeploymentConfig(Model):
    name: DeploymentName = Field(description=_DEPLOYMENT_NAME_TEXT)
    model: ModelRef = Field(description=_MODEL_TEXT)
    environment: EnvironmentRef = Field(description=_ENVIRONMENT_TEXT)
    code: CodeRef = Field(description=_CODE_TEXT)
    compute: str = Field(description="A declared compute cluster.")
    instance_count: int = Field(default=1, ge=1, le=1000, description="Nodes a job runs on.")
    max_concurrency_per_instance: int = Field(
        default=1, ge=1, le=100, description="Scoring processes run in parallel on each node."
    )
    mini_batch_size: int = Field(
        default=10, ge=1, le=100_000, description="Inputs (files, for file inputs) handed to one scoring call."
    )
    retry: BatchRetry = Field(default_factory=BatchRetry, description="Retry policy of a failed mini-batch.")
    error_threshold: int = Field(default=-1, ge=-1, description="-1 = ignore failed mini-batches.")
    output_action: Literal["append_row", "summary_only"] = Field(
        default="append_row",
        description="`append_row`: each scoring call's results are appended to outputFileName; `summary_only`: the "
        "scoring script writes its own outputs.",
    )
    output_file_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] = Field(
        default="predictions.csv", description="File the appended rows go to."
    )
    logging_level: Literal["info", "warning", "debug"] = Field(default="info", description="Log level of batch jobs.")
    lineage: LineagePath | None = Field(
        default=None,
        description="lineage.json of the served model version (written by `azml lineage`), relative to Pulumi.yaml: "
        "its hashes and commit become the deployment's tags.",
    )


class BatchEndpointConfig(Model):
    name: EndpointName = Field(description="Short name; the deployed name is <prefix>-<env>-<name> (region-unique).")
    description: str | None = Field(default=None, description="Description of the endpoint.")
    deployments: list[BatchDeploymentConfig] = Field(min_length=1, description="Deployments, names unique.")
    default_deployment: str = Field(description="The deployment invocations go to: a declared deployment.")

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
