"""The release audit trail in MLflow: verdicts and applied traffic changes.

A verdict is one run (kind ``verdict``) holding the gate's metrics, the param
``promotion_gate`` (``PASSED`` or ``FAILED:<names>``) and ``verdict.json`` as
an artifact; ``advance`` reads the newest one back. A traffic change is one
run (kind ``traffic``) naming the verdict run it applied.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping

from . import tracking as t
from .kpis import commit_tags
from .verdict import Verdict, dumps

VERDICT_ARTIFACT = "verdict.json"


class StoreError(Exception):
    """The tracking store is unreachable or holds an unreadable record."""


def _run_tags(kind: str, stack: str, endpoint: str) -> dict[str, str]:
    return {t.TAG_KIND: kind, t.TAG_STACK: stack, t.TAG_ENDPOINT: endpoint}


def log_verdict(tracking_uri: str, experiment: str, verdict: Verdict, project_dir: Path | None = None) -> Verdict:
    """Log ``verdict`` as a finished run and return it with its run id. The
    run is terminated only after the artifact is stored, so a reader never
    sees a verdict run without its ``verdict.json``."""
    client = t.client(tracking_uri)
    run = client.create_run(
        t.experiment_id(client, experiment),
        run_name=f"verdict-{verdict.endpoint}-{verdict.canary}",
        tags={
            **_run_tags(t.KIND_VERDICT, verdict.stack, verdict.endpoint),
            t.TAG_DEPLOYMENT: verdict.canary,
            "azml.champion": verdict.champion,
            "azml.phase": verdict.phase,
            "azml.decision": verdict.decision.value,
            **commit_tags(project_dir),
        },
    )
    run_id = run.info.run_id
    recorded = verdict.with_run_id(run_id)
    try:
        for metric in verdict.metrics:
            if metric.value is not None:
                client.log_metric(run_id, metric.name, float(metric.value))
            client.log_metric(run_id, f"{metric.name}_n", float(metric.n))
        client.log_param(run_id, "promotion_gate", verdict.gate_param())
        client.log_param(run_id, "decision", verdict.decision.value)
        client.log_param(run_id, "window_minutes", str(verdict.window_minutes))
        client.log_param(run_id, "stack_file_sha256", verdict.stack_file_sha256)
        client.log_text(run_id, dumps(recorded), VERDICT_ARTIFACT)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return recorded


def last_verdict(tracking_uri: str, experiment: str, stack: str, endpoint: str) -> Verdict | None:
    """The newest finished verdict of ``stack``/``endpoint``, or None."""
    client = t.client(tracking_uri)
    run = t.newest_run(client, experiment, t.run_filter(t.KIND_VERDICT, finished=True, stack=stack, endpoint=endpoint))
    if run is None:
        return None
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as scratch:
        try:
            local = client.download_artifacts(run_id, VERDICT_ARTIFACT, scratch)
            return Verdict.from_json(json.loads(Path(local).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(f"verdict run {run_id} has no readable {VERDICT_ARTIFACT}: {error}") from error


def log_traffic_change(
    tracking_uri: str,
    experiment: str,
    *,
    stack: str,
    endpoint: str,
    verdict_run_id: str | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    stack_file_sha256: str,
    project_dir: Path | None = None,
) -> str:
    """Record an applied traffic change (``before``/``after`` hold ``traffic``
    and ``mirrorTraffic``); returns the run id."""
    client = t.client(tracking_uri)
    run = client.create_run(
        t.experiment_id(client, experiment),
        run_name=f"traffic-{endpoint}",
        tags={**_run_tags(t.KIND_TRAFFIC, stack, endpoint), "azml.verdict_run": verdict_run_id or "", **commit_tags(project_dir)},
    )
    run_id = run.info.run_id
    client.log_param(run_id, "before", json.dumps(dict(before), sort_keys=True)[:6000])
    client.log_param(run_id, "after", json.dumps(dict(after), sort_keys=True)[:6000])
    client.log_param(run_id, "stack_file_sha256", stack_file_sha256)
    client.set_terminated(run_id, status="FINISHED")
    return run_id
