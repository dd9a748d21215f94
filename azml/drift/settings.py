"""What ``azml drift --stack S`` takes from the stack, so that it measures drift as
the stack's Azure ML model monitors do:

* the metrics and thresholds: ``azml:modelMonitoring.dataDrift.thresholds`` (the
  data drift signal's ``metricThresholds``, components/model_monitors.py);
* the minimum sample size: ``azml:release.minSamples.psi`` (rows per sample below
  which the drift of a sample is INCONCLUSIVE, the promotion gate's own floor for
  its PSI row);
* the MLflow store: ``azml:release.metrics.trackingUri`` (the store ``azml retrain
  check`` and ``azml release`` read), a relative ``sqlite:///`` path relative to
  the project directory, never to the current one.

Without ``--stack`` the same keys' defaults apply: PSI above 0.2 (``--threshold``),
at least 500 rows (``MinSamples().psi``, ``--min-samples``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

THRESHOLDS_KEY = "azml:modelMonitoring.dataDrift.thresholds"
MIN_SAMPLES_KEY = "azml:release.minSamples.psi"
TRACKING_KEY = "azml:release.metrics.trackingUri"


def default_min_samples() -> int:
    from ..config.releases.release import MinSamples

    return MinSamples().psi


@dataclass(frozen=True)
class StackDrift:
    stack: str
    metric_thresholds: dict[str, float]
    min_samples: int
    tracking_uri: str  # resolved
    project_dir: Path


def from_stack(stack: str, project_dir: Path | None) -> StackDrift:
    """The stack's drift settings; raises ConfigError (one line per problem)."""
    from ..config import load_stack
    from ..tracking import resolve_tracking_uri

    stack_file, config = load_stack(stack, project_dir)
    project = stack_file.project_dir
    return StackDrift(
        stack=stack_file.stack,
        metric_thresholds=config.model_monitoring.data_drift.thresholds.metrics(),
        min_samples=config.release.min_samples.psi,
        tracking_uri=resolve_tracking_uri(config.release.metrics.tracking_uri, project, config),
        project_dir=project,
    )
