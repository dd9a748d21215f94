"""Azure ML job submission for the retraining trigger.

Exists to keep the azure-ai-ml dependency behind a small :class:`JobSubmitter`
protocol: the handler decides *what* to submit (a :class:`RetrainRequest`),
this module decides *how*, and tests can substitute a recording submitter.
azure-ai-ml and azure-identity are imported lazily, on first use.

Idempotency: Event Grid delivers at least once. The job name is derived from
the event id (``retrain-<sha256(id)[:20]>``, :func:`job_name_for`) and a job
with that name is looked up before submitting, so Azure ML itself is the
idempotency store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

try:  # imported as retraining.submit (tests, tooling)
    from .settings import ConfigError, RetrainingSettings
except ImportError:  # the Functions host: the app root is on sys.path
    from settings import ConfigError, RetrainingSettings  # type: ignore[no-redef]

JOB_NAME_PREFIX = "retrain-"


@dataclass(frozen=True)
class RetrainRequest:
    """Everything the submitter needs for one job."""

    job_name: str
    event_id: str
    blob_url: str
    input_path: str
    tags: Mapping[str, str]


class JobSubmitter(Protocol):
    """Where jobs go. ``job_exists`` must answer from the service (it is the
    idempotency store); ``submit`` creates the job and returns its name."""

    def job_exists(self, name: str) -> bool: ...

    def submit(self, request: RetrainRequest) -> str: ...


def job_name_for(event_id: str) -> str:
    """Deterministic, valid Azure ML job name for an event id."""
    return JOB_NAME_PREFIX + hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class SubmitOutcome:
    """What :func:`submit_once` did: ``submitted``, ``exists`` (a job of that
    name was already there) or ``concurrent`` (created meanwhile by another
    submitter; this submission failed because of it)."""

    job_name: str
    status: str


def submit_once(submitter: JobSubmitter, request: RetrainRequest) -> SubmitOutcome:
    """Submit ``request`` unless Azure ML already has a job of its name: the
    idempotency rule of the trigger, for callers outside the handler
    (``azml retrain check --submit``). A failure is raised unless the job
    turns out to exist (a lost race)."""
    if submitter.job_exists(request.job_name):
        return SubmitOutcome(request.job_name, "exists")
    try:
        name = submitter.submit(request)
    except Exception:
        try:
            created = submitter.job_exists(request.job_name)
        except Exception:  # noqa: BLE001 - the original error is what gets raised
            created = False
        if created:
            return SubmitOutcome(request.job_name, "concurrent")
        raise
    return SubmitOutcome(name, "submitted")


class AzureMLJobSubmitter:
    """Submits the pipeline job in ``settings.pipeline_path`` with azure-ai-ml.

    ``ml_client`` may be injected (tests pass a stand-in for the service);
    otherwise an ``MLClient(DefaultAzureCredential(), ...)`` is built on first
    use from the workspace coordinates in ``settings``."""

    def __init__(self, settings: RetrainingSettings, ml_client: Any = None, credential: Any = None) -> None:
        self.settings = settings
        self._ml_client = ml_client
        self._credential = credential

    @property
    def ml_client(self) -> Any:
        if self._ml_client is None:
            from azure.ai.ml import MLClient

            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._ml_client = MLClient(
                credential,
                subscription_id=self.settings.subscription_id,
                resource_group_name=self.settings.resource_group,
                workspace_name=self.settings.workspace_name,
            )
        return self._ml_client

    def job_exists(self, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            return False
        return True

    def build_job(self, request: RetrainRequest) -> Any:
        """The pipeline job for ``request``, built by azure-ai-ml's own loader."""
        from azure.ai.ml import Input, load_job

        job = load_job(self.settings.pipeline_path)
        name = self.settings.input_name
        if name not in job.inputs:
            raise ConfigError(
                f"{self.settings.pipeline_path} declares no input {name!r} "
                f"(inputs: {', '.join(sorted(job.inputs)) or 'none'}); set AZML_PIPELINE_INPUT"
            )
        declared = getattr(job.inputs[name], "_data", None)
        mode = getattr(declared, "mode", None)
        # Attribute assignment keeps the PipelineInput wrapper the child jobs bind to
        # (item assignment would replace it with a bare Input).
        setattr(job.inputs, name, Input(type="uri_file", path=request.input_path, mode=mode))
        job.name = request.job_name
        job.tags = {**(job.tags or {}), **request.tags}
        job.experiment_name = self.settings.experiment_name
        return job

    def submit(self, request: RetrainRequest) -> str:
        job = self.build_job(request)
        created = self.ml_client.jobs.create_or_update(job, experiment_name=self.settings.experiment_name)
        return getattr(created, "name", None) or request.job_name
