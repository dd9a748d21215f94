"""`azml release evaluate`: gather both sides' observations, run the gate,
log the verdict to MLflow, and return it for display.

The verdict reaches MLflow before anything else can act on it: `advance`
only ever applies a verdict it reads back from the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import ConfigError, StackConfig, StackFile, load_stack
from ...config.schema import OnlineEndpointConfig
from ...naming import endpoint_name
from .. import store
from ... import tracking as t
from .gate import evaluate as run_gate
from .monitor_gate import MonitorGateError, monitor_gate_row
from .observations import Observation, ObservationError, with_overrides
from .sources import from_azure_monitor, from_file, from_mlflow
from ..target import EvaluationError, find_endpoint, tracking_uri_of  # noqa: F401  (re-exported)
from .timelimit import time_limit
from .verdict import MetricResult, Phase, Verdict, file_sha256, utc_now


@dataclass(frozen=True)
class Release:
    """One endpoint's release as the stack file declares it."""

    stack_file: StackFile
    config: StackConfig
    endpoint: OnlineEndpointConfig
    champion: str
    canary: str
    phase: Phase


def resolve_release(
    stack: str, endpoint_name_: str, canary: str, champion: str | None, project_dir: Path | None
) -> Release:
    stack_file, config = load_stack(stack, project_dir)
    endpoint = find_endpoint(config, endpoint_name_, stack_file)
    names = [d.name for d in endpoint.deployments]
    where = f"{stack_file.path.name} endpoint {endpoint.name}"
    if canary not in names:
        raise EvaluationError([f"--canary: {canary!r} is not a deployment of {where} (declared: {', '.join(names)})"])
    if champion is None:
        others = sorted(((share, n) for n, share in endpoint.traffic.items() if n != canary and share > 0), reverse=True)
        if not others:
            raise EvaluationError([f"--champion: no deployment other than {canary} takes live traffic in {where}; name one"])
        champion = others[0][1]
    elif champion not in names:
        raise EvaluationError([f"--champion: {champion!r} is not a deployment of {where} (declared: {', '.join(names)})"])
    if champion == canary:
        raise EvaluationError([f"--champion and --canary are both {canary!r}; they must differ"])
    if endpoint.traffic.get(canary, 0) > 0:
        phase: Phase = "live"
    elif endpoint.mirror_traffic.get(canary, 0) > 0:
        phase = "mirror"
    else:
        raise EvaluationError(
            [
                f"--canary: {canary} takes neither live nor mirrored traffic in {where}; "
                f"set onlineEndpoints[].mirrorTraffic.{canary} (shadow phase) or a first traffic step"
            ]
        )
    return Release(stack_file, config, endpoint, champion, canary, phase)


def observe(
    release: Release,
    *,
    at: dt.datetime,
    tracking_uri: str,
    metrics_file: Path | None,
    logs_endpoint: str | None = None,
    credential: Any = None,
    require_evidence: bool = False,
) -> tuple[Observation, Observation, tuple[str, ...]]:
    """Champion and canary observations over the window ending at ``at``."""
    settings = release.config.release
    source = settings.metrics
    window = dt.timedelta(minutes=settings.window_minutes)
    names = [release.champion, release.canary]
    notes: list[str] = []
    try:
        if metrics_file is not None or source.source == "file":
            path = metrics_file or release.stack_file.project_dir / str(source.file)
            observed = from_file(path, names)
            notes.append(f"metrics from file {path.name}")
        else:
            observed = from_mlflow(
                tracking_uri, source.experiment, stack=release.stack_file.stack, endpoint=release.endpoint.name,
                deployments=names, start=at - window, end=at, require_experiment=require_evidence,
            )
            notes.append(f"metrics from MLflow experiment {source.experiment}, window {settings.window_minutes} min")
        if source.azure_monitor is not None and metrics_file is None:
            full_name = endpoint_name(release.config, release.endpoint.name)
            monitored = from_azure_monitor(
                source.azure_monitor.workspace_id, full_name, window, credential=credential, logs_endpoint=logs_endpoint
            )
            observed = {n: with_overrides(o, monitored.get(n, {})) for n, o in observed.items()}
            notes.append("p95 latency and error rate from Azure Monitor")
    except ObservationError as error:
        raise EvaluationError([str(error)]) from None
    return observed[release.champion], observed[release.canary], tuple(notes)


def further_gate_rows(
    release: Release, *, at: dt.datetime, tracking_uri: str
) -> tuple[tuple[MetricResult, ...], tuple[str, ...]]:
    """Gate rows beyond the live metrics, each present only when the stack
    configures it: the canary's load test, its data validation and its
    attribution stability. Each provider returns ``(rows, notes)``."""
    # Imported here: loadtest imports this module (find_endpoint, EvaluationError).
    from . import attribution
    from . import loadtest
    from . import validation

    rows: list[MetricResult] = []
    notes: list[str] = []
    for provider in (loadtest.gate_rows, validation.gate_rows, attribution.gate_rows):
        more_rows, more_notes = provider(release, at=at, tracking_uri=tracking_uri)
        rows.extend(more_rows)
        notes.extend(more_notes)
    return tuple(rows), tuple(notes)


def evaluate_release(
    stack: str,
    *,
    endpoint: str,
    canary: str,
    champion: str | None = None,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    metrics_file: Path | None = None,
    at: dt.datetime | None = None,
    logs_endpoint: str | None = None,
    credential: Any = None,
    require_evidence: bool = False,
    monitor_results: Path | None = None,
) -> Verdict:
    """Evaluate and log; returns the logged verdict (with its run id).
    ``monitor_results``: the canary's model monitor signal metrics, one more
    gate row (:mod:`.monitor_gate`).
    Raises ConfigError / EvaluationError on bad input, TrackingUriError /
    TrackingUnavailable when the tracking store is refused or fails, and
    SourceUnavailable when ``require_evidence`` and the store has never
    recorded an observation."""
    release = resolve_release(stack, endpoint, canary, champion, project_dir)
    monitor_rows: tuple[MetricResult, ...] = ()
    monitor_notes: tuple[str, ...] = ()
    if monitor_results is not None:  # read before any store is touched: a bad file logs nothing
        try:
            row, monitor_notes = monitor_gate_row(monitor_results)
        except MonitorGateError as error:
            raise EvaluationError([str(error)]) from None
        monitor_rows = (row,)
    project = release.stack_file.project_dir
    uri = tracking_uri_of(release.config, project, tracking_uri)
    # Fingerprint first: a file edited while metrics load must not pass for the one evaluated.
    fingerprint = file_sha256(release.stack_file.path)
    moment = at or utc_now()
    # A store that fails mid-way (after answering the first request) ends in one line naming it.
    with t.store_errors(uri):
        champion_obs, canary_obs, notes = observe(
            release, at=moment, tracking_uri=uri, metrics_file=metrics_file, logs_endpoint=logs_endpoint, credential=credential,
            require_evidence=require_evidence,
        )
        extra_metrics, extra_notes = further_gate_rows(release, at=moment, tracking_uri=uri)
        verdict = run_gate(
            release.config.release,
            stack=release.stack_file.stack,
            endpoint=release.endpoint.name,
            champion=champion_obs,
            canary=canary_obs,
            phase=release.phase,
            traffic=release.endpoint.traffic,
            mirror_traffic=release.endpoint.mirror_traffic,
            stack_file_sha256=fingerprint,
            computed_at=moment.isoformat(),
            notes=notes + extra_notes + monitor_notes,
            extra_metrics=extra_metrics + monitor_rows,
        )
        # A canary that lingers past the stack's maxCanaryMinutes is decided, not held.
        verdict = time_limit(release, verdict, tracking_uri=uri, now=moment)
        return store.log_verdict(uri, release.config.release.metrics.experiment, verdict, project_dir=project)


__all__ = ["ConfigError", "EvaluationError", "evaluate_release", "resolve_release", "tracking_uri_of"]
