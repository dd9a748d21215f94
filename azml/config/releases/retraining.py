"""Stack config for the retraining trigger: ``azml:retraining``."""

from __future__ import annotations

from typing import Annotated, Literal

import re

from pydantic import AfterValidator, Field, StringConstraints

from ..base import Model
from ..platform.alerts import MetricRule
from .release import RetrainTriggers


def _container_name(value: str) -> str:
    # Azure: 3-63 lowercase letters, digits and single hyphens, no hyphen at either end.
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", value) or "--" in value:
        raise ValueError("must be 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit")
    return value


ContainerName = Annotated[str, AfterValidator(_container_name)]


class RetrainingConfig(Model):
    """New blobs under ``container``/``prefix`` of the workspace storage account
    submit the retraining pipeline. Event Grid delivers to a Storage queue
    (it cannot push to a private endpoint); a private Function App consumes it."""

    enabled: bool = Field(
        default=True, description="The trigger and its function app (needs network.subnets.integration)."
    )
    container: ContainerName = Field(
        default="training-data", description="Container of the workspace storage whose new blobs trigger retraining."
    )
    prefix: Annotated[str, StringConstraints(pattern=r"^[^/].*$|^$")] = Field(
        default="", description="Blob path prefix inside the container (no leading /); empty: every new blob."
    )
    event_schema: Literal["CloudEventSchemaV1_0", "EventGridSchema"] = Field(
        default="CloudEventSchemaV1_0", description="Schema Event Grid delivers events in."
    )
    max_delivery_attempts: int = Field(
        default=10, ge=1, le=30, description="Event Grid delivery attempts before an event is dead-lettered."
    )
    event_time_to_live_minutes: int = Field(
        default=1440, ge=1, le=1440, description="Minutes Event Grid keeps retrying an event."
    )
    dead_letter_container: ContainerName = Field(
        default="retraining-dead-letter", description="Container of the function's host storage for undeliverable events."
    )
    pipeline_experiment: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")] = Field(
        default="retraining", description="Azure ML experiment of the submitted retraining jobs."
    )
    host_storage_sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GZRS"] = Field(
        default="Standard_GZRS", description="Function host storage (event queue, dead letters, package)."
    )
    # "Currently the lowest maximum instance count value is 1, and the highest
    # supported maximum instance count value is 1000"
    # (https://learn.microsoft.com/azure/azure-functions/event-driven-scaling#limit-scale-out;
    # earlier versions of the page gave 40 as the floor).
    max_instances: int = Field(default=10, ge=1, le=1000, description="Flex Consumption scale-out limit (1..1000).")
    instance_memory_mb: Literal[512, 2048, 4096] = Field(
        default=2048, description="Memory of each Flex Consumption instance."
    )
    delivery_alerts: MetricRule = Field(
        default_factory=lambda: MetricRule(severity=1, frequency="PT5M", window="PT15M"),
        description="Metric alerts on the system topic's dead-lettered and failed deliveries (to the azml:alerts action group).",
    )
    triggers: RetrainTriggers = Field(
        default_factory=RetrainTriggers, description="Thresholds of `azml retrain check` (drift, performance, staleness)."
    )
