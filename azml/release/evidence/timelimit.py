"""Canary time limit (``azml:release.maxCanaryMinutes``): a canary still
HOLD after the limit is rolled back instead of lingering on part of the
traffic. Every gate PASS is already PROMOTE, so past the limit the canary is
decided either way.

The canary's start is read from the audit trail in MLflow:

1. the latest applied traffic change (kind ``traffic``, ``azml.applied=true``)
   that gave the canary live or mirror traffic when it had none before — the
   start of its current stint, after any earlier rollback;
2. else (its first traffic was set by hand in the stack file, the usual
   shadow start) the first verdict run of that canary since the last applied
   change that took all its traffic away (or ever, without one).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ... import tracking as t
from .verdict import Decision, Verdict

if TYPE_CHECKING:
    from .evaluate import Release

TRIGGER = "timeLimit"


def _has_traffic(split: Any, deployment: str) -> bool:
    if not isinstance(split, dict):
        return False
    return any((split.get(key) or {}).get(deployment, 0) > 0 for key in ("traffic", "mirrorTraffic"))


def _param(run: Any, key: str) -> Any:
    try:
        return json.loads(run.data.params.get(key, "{}"))
    except ValueError:
        return {}


def canary_start(
    tracking_uri: str, experiment: str, *, stack: str, endpoint: str, canary: str, now: dt.datetime
) -> tuple[dt.datetime, str] | None:
    """When ``canary`` started taking traffic, and the run that shows it; None
    when the audit trail holds neither a traffic change nor a verdict for it."""
    from ..target import missing_sqlite_store

    if missing_sqlite_store(tracking_uri) is not None:
        return None
    client = t.client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    until = f" and attributes.start_time <= {t.millis(now)}"
    changes = client.search_runs(
        [found.experiment_id],
        t.run_filter(t.KIND_TRAFFIC, stack=stack, endpoint=endpoint) + until,
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    start: Any = None
    ended_ms: int | None = None  # the last applied change that took all its traffic away
    for run in changes:
        if run.data.tags.get(t.TAG_APPLIED) != "true":
            continue  # recorded, but the stack file was never replaced
        had, has = _has_traffic(_param(run, "before"), canary), _has_traffic(_param(run, "after"), canary)
        if has and not had:
            start = run
        elif had and not has:
            start, ended_ms = None, run.info.start_time
    if start is not None:
        return _at(start.info.start_time), f"traffic change run {start.info.run_id}"
    query = t.run_filter(t.KIND_VERDICT, finished=True, stack=stack, endpoint=endpoint, deployment=canary) + until
    if ended_ms is not None:
        query += f" and attributes.start_time > {ended_ms}"
    first = client.search_runs([found.experiment_id], query, order_by=["attributes.start_time ASC"], max_results=1)
    if not first:
        return None
    return _at(first[0].info.start_time), f"first verdict run {first[0].info.run_id}"


def _at(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)


def time_limit(release: "Release", verdict: Verdict, *, tracking_uri: str, now: dt.datetime) -> Verdict:
    """``verdict`` with the stack's canary time limit applied: a HOLD whose
    canary started more than ``maxCanaryMinutes`` before ``now`` becomes
    ROLLBACK with a ``timeLimit`` trigger; PROMOTE and ROLLBACK are kept.
    Without a limit the verdict is returned as is; without a known start it
    is kept with a note saying the limit could not be checked."""
    limit = release.config.release.max_canary_minutes
    if limit is None or verdict.decision is not Decision.HOLD:
        return verdict
    try:
        found = canary_start(
            tracking_uri, release.config.release.metrics.experiment, stack=release.stack_file.stack,
            endpoint=release.endpoint.name, canary=verdict.canary, now=now,
        )
    except Exception as error:  # the store unreachable: keep the gate's verdict, say why
        return replace(verdict, notes=(*verdict.notes, f"time limit not checked: cannot read {tracking_uri}: {error}"))
    if found is None:
        note = f"time limit not checked: no traffic change or verdict shows when {verdict.canary} started"
        return replace(verdict, notes=(*verdict.notes, note))
    started, evidence = found
    minutes = int(max(now - started, dt.timedelta(0)).total_seconds() // 60)
    if now - started <= dt.timedelta(minutes=limit):
        note = f"time limit: {verdict.canary} live for {minutes} of {limit} min (since {started.isoformat()}, {evidence})"
        return replace(verdict, notes=(*verdict.notes, note))
    note = (
        f"time limit: {verdict.canary} started at {started.isoformat()} ({evidence}); a HOLD past "
        f"maxCanaryMinutes ({limit}) is rolled back"
    )
    return replace(
        verdict,
        decision=Decision.ROLLBACK,
        rollback_triggers=(*verdict.rollback_triggers, f"{TRIGGER} canary live for {minutes} min > {limit}"),
        notes=(*verdict.notes, note),
    )
