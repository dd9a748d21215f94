"""``azml retrain check --submit``: the retraining pipeline, through the same
code the Event Grid handler uses (``retraining/submit.py``:
:class:`RetrainRequest`, :class:`AzureMLJobSubmitter`, :func:`job_name_for`,
and the job-exists check of :func:`submit_once`).

Job names are deterministic per (stack, endpoint, reason set, UTC day of the
check time): a rerun the same day finds its job and submits nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..naming import names_for

SUBSCRIPTION_CONFIG_KEY = "azure-native:subscriptionId"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
TRIGGER_REASON = "retrain_check"


class SubmissionError(ValueError):
    """Missing workspace coordinates or pipeline; one line naming what is missing."""


def retraining_modules(project_dir: Path) -> tuple[ModuleType, ModuleType]:
    """``retraining.settings`` and ``retraining.submit`` of the project checkout
    (the handler's package is not installed with azml; it ships with the
    Function App)."""
    try:
        return importlib.import_module("retraining.settings"), importlib.import_module("retraining.submit")
    except ModuleNotFoundError:
        if not (project_dir / "retraining" / "submit.py").is_file():
            raise SubmissionError(f"--submit: no retraining/submit.py under {project_dir} (the retraining handler's code)") from None
        sys.path.insert(0, str(project_dir))
        try:
            return importlib.import_module("retraining.settings"), importlib.import_module("retraining.submit")
        finally:
            sys.path.remove(str(project_dir))


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    workspace_name: str


def workspace_for(stack_config: dict[str, Any], config: Any, env: dict[str, str] | None = None) -> Workspace:
    """Subscription from the stack's ``azure-native:subscriptionId`` or
    ``AZURE_SUBSCRIPTION_ID``; resource group and workspace from the
    project's naming rules."""
    env = dict(os.environ) if env is None else env
    subscription = str(stack_config.get(SUBSCRIPTION_CONFIG_KEY) or "").strip() or env.get(SUBSCRIPTION_ENV, "").strip()
    if not subscription:
        raise SubmissionError(
            f"--submit: no Azure subscription: set {SUBSCRIPTION_CONFIG_KEY} in the stack file or {SUBSCRIPTION_ENV}"
        )
    names = names_for(config)
    return Workspace(subscription, names.resource_group, names.workspace)


def job_key(stack: str, endpoint: str, reasons: tuple[str, ...], now: dt.datetime) -> str:
    day = now.astimezone(dt.timezone.utc).date().isoformat()
    return f"retrain-check/{stack}/{endpoint}/{'+'.join(sorted(reasons))}/{day}"


def build_request(
    submit_module: ModuleType,
    *,
    stack: str,
    endpoint: str,
    deployment: str,
    model: str,
    reasons: tuple[str, ...],
    now: dt.datetime,
    training_data: str,
) -> Any:
    key = job_key(stack, endpoint, reasons, now)
    return submit_module.RetrainRequest(
        job_name=submit_module.job_name_for(key),
        event_id=key,
        blob_url=training_data,
        input_path=training_data,
        tags={
            "trigger_reason": TRIGGER_REASON,
            "retrain-reason": ",".join(sorted(reasons)),
            "stack": stack,
            "endpoint": endpoint,
            "deployment": deployment,
            "model": model,
        },
    )


def _default_submitter(settings: Any, submit_module: ModuleType) -> Any:
    return submit_module.AzureMLJobSubmitter(settings)


#: How the submitter is made from the settings; tests replace it to stand in for Azure ML.
make_submitter: Callable[[Any, ModuleType], Any] = _default_submitter


def settings_for(settings_module: ModuleType, workspace: Workspace, config: Any, project_dir: Path) -> Any:
    pipeline = project_dir / "retraining" / "pipeline.yml"
    if not pipeline.is_file():
        raise SubmissionError(f"--submit: no pipeline definition {pipeline}")
    retraining = config.retraining
    return settings_module.RetrainingSettings(
        container=retraining.container,
        prefix=retraining.prefix,
        subscription_id=workspace.subscription_id,
        resource_group=workspace.resource_group,
        workspace_name=workspace.workspace_name,
        pipeline_path=pipeline,
        experiment_name=retraining.pipeline_experiment,
    )


def submit(request: Any, settings: Any, submit_module: ModuleType) -> Any:
    """``SubmitOutcome`` of submitting ``request`` once."""
    return submit_module.submit_once(make_submitter(settings, submit_module), request)
