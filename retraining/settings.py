"""App settings of the retraining trigger: what it reacts to and where jobs go.

Exists so that reading and checking the Function App's configuration lives in
one place, apart from event parsing and job submission. The setting names are
shared with ``components/retraining.py``, which sets them; they are read on
first invocation (see ``function_app.py``), and :class:`ConfigError` names
every missing or invalid setting at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PIPELINE = Path(__file__).resolve().parent / "pipeline.yml"
DEFAULT_INPUT_NAME = "training_data"
DEFAULT_EXPERIMENT = "retraining"


class ConfigError(ValueError):
    """App settings are missing or invalid (message names every bad setting)."""


@dataclass(frozen=True)
class RetrainingSettings:
    """What the trigger reacts to and what it submits.

    ``container``/``prefix`` select the blobs (the subject filter of the Event
    Grid subscription should match; this is enforced again here).
    ``storage_account``, when set, also requires events to come from that
    account and their ``data.url`` to point at it. ``input_datastore``, when
    set, hands the job ``azureml://datastores/<ds>/paths/<blob path>`` instead
    of the https URL (the datastore must point at ``container``)."""

    container: str
    prefix: str = ""
    subscription_id: str = ""
    resource_group: str = ""
    workspace_name: str = ""
    pipeline_path: Path = DEFAULT_PIPELINE
    input_name: str = DEFAULT_INPUT_NAME
    experiment_name: str = DEFAULT_EXPERIMENT
    storage_account: str | None = None
    input_datastore: str | None = None
    allowed_origins: tuple[str, ...] = ()  # CloudEvents webhook origins; empty = any

    # App settings (names shared with components/retraining.py, which sets them).
    ENV = {
        "subscription_id": "AZML_SUBSCRIPTION_ID",
        "resource_group": "AZML_RESOURCE_GROUP",
        "workspace_name": "AZML_WORKSPACE_NAME",
        "container": "AZML_TRAINING_CONTAINER",
        "prefix": "AZML_TRAINING_PREFIX",
        "experiment_name": "AZML_EXPERIMENT_NAME",
        "pipeline_path": "AZML_PIPELINE_PATH",
        "input_name": "AZML_PIPELINE_INPUT",
        "storage_account": "AZML_TRAINING_ACCOUNT",
        "input_datastore": "AZML_INPUT_DATASTORE",
        "allowed_origins": "AZML_WEBHOOK_ALLOWED_ORIGINS",
    }
    REQUIRED = ("subscription_id", "resource_group", "workspace_name", "container")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainingSettings:
        env = os.environ if env is None else env
        values = {key: env.get(name, "").strip() for key, name in cls.ENV.items()}
        problems = [f"{cls.ENV[key]} is not set" for key in cls.REQUIRED if not values[key]]
        if values["prefix"].startswith("/"):
            problems.append(f"{cls.ENV['prefix']} must not start with '/' (it is a blob name prefix)")
        pipeline = Path(values["pipeline_path"]) if values["pipeline_path"] else DEFAULT_PIPELINE
        if not pipeline.is_file():
            problems.append(f"pipeline definition {str(pipeline)!r} is not a file (set {cls.ENV['pipeline_path']})")
        if problems:
            raise ConfigError("retraining trigger misconfigured: " + "; ".join(problems))
        return cls(
            container=values["container"],
            prefix=values["prefix"],
            subscription_id=values["subscription_id"],
            resource_group=values["resource_group"],
            workspace_name=values["workspace_name"],
            pipeline_path=pipeline,
            input_name=values["input_name"] or DEFAULT_INPUT_NAME,
            experiment_name=values["experiment_name"] or DEFAULT_EXPERIMENT,
            storage_account=values["storage_account"] or None,
            input_datastore=values["input_datastore"] or None,
            allowed_origins=tuple(o.strip() for o in values["allowed_origins"].split(",") if o.strip()),
        )
