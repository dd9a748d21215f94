"""The release audit trail in MLflow: verdicts and applied traffic changes.

A verdict is one run (kind ``verdict``) holding the gate's metrics, the param
``promotion_gate`` (``PASSED`` or ``FAILED:<names>``) and ``verdict.json`` as
an artifact; ``advance`` reads the newest one back. A traffic change is one
run (kind ``traffic``) naming the verdict run it applied.

A change is recorded before the stack file is replaced and tagged
``azml.applied`` after; a process killed in between leaves a run without the
tag. :func:`settle_changes` decides such a run from the stack file itself on
the next run of ``advance``, ``bandit``, ``status`` or ``kpis``.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .. import tracking as t
from .target import commit_tags
from .evidence.verdict import Verdict, dumps

if TYPE_CHECKING:
    from ..config import StackFile

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


# --- settling changes a killed process never marked -------------------------

#: Tag of a change run whose ``azml.applied`` was set by a later run: when, and
#: what in the stack file decided it.
TAG_SETTLED = "azml.applied_settled"

#: Kinds of run that record a rewrite of the stack file before it happens.
_WRITE_KINDS = (t.KIND_TRAFFIC, t.KIND_BANDIT)


@dataclass(frozen=True)
class Settled:
    """A change run marked from the stack file by a later run."""

    run_id: str
    kind: str
    endpoint: str
    applied: bool
    reason: str

    def text(self) -> str:
        outcome = "applied" if self.applied else "not applied"
        return f"{self.kind} run {self.run_id} ({self.endpoint}) marked {outcome}: {self.reason}"


def _unsettled(client: Any, experiment_id: str, stack: str) -> list[Any]:
    """Change runs of ``stack`` without ``azml.applied`` that no applied
    change followed, newest first. Older ones are beyond settling: a later
    change rewrote the file, which no longer says what they did."""
    runs: list[Any] = []
    for kind in _WRITE_KINDS:
        token = None
        while True:
            page = client.search_runs(
                [experiment_id], t.run_filter(kind, stack=stack), max_results=200,
                order_by=["attributes.start_time DESC"], page_token=token,
            )
            runs += page
            token = page.token
            if not token or any(r.data.tags.get(t.TAG_APPLIED) == "true" for r in page):
                break
    runs.sort(key=lambda r: r.info.start_time, reverse=True)
    pending = []
    for run in runs:
        if run.data.tags.get(t.TAG_APPLIED) == "true":
            break
        if t.TAG_APPLIED not in run.data.tags:
            pending.append(run)
    return pending


def _shares(value: Any) -> dict[str, int] | None:
    """A split as compared: whole shares, zero shares dropped (a 0 % entry
    and a missing one route the same traffic)."""
    if not isinstance(value, Mapping):
        return None
    try:
        return {str(k): int(v) for k, v in value.items() if int(v)}
    except (TypeError, ValueError):
        return None


def _recorded(run: Any, key: str) -> tuple[dict[str, int] | None, dict[str, int] | None] | None:
    """(live, mirror) split of a change run's ``before``/``after`` param;
    mirror None for a bandit run (it leaves the mirror as it is)."""
    try:
        value = json.loads(run.data.params.get(key, ""))
    except ValueError:
        return None
    if run.data.tags.get(t.TAG_KIND) == t.KIND_BANDIT:
        return _shares(value), None
    if not isinstance(value, Mapping):
        return None
    return _shares(value.get("traffic") or {}), _shares(value.get("mirrorTraffic") or {})


def _judge(
    run: Any, file_sha: str, splits: dict[str, tuple[dict[str, int], dict[str, int]]] | None
) -> tuple[bool, str] | None:
    """(applied, why) of an unmarked change run from the stack file as it is
    now, or None when the file cannot tell."""
    if run.info.status == "RUNNING":  # the file is replaced only after the record is complete
        return False, "its process stopped while recording it, before the stack file could be replaced"
    if run.data.params.get("stack_file_sha256") == file_sha:
        return True, f"the stack file is byte for byte the one it wrote (sha256 {file_sha[:12]})"
    endpoint = run.data.tags.get(t.TAG_ENDPOINT, "")
    if splits is None or endpoint not in splits:
        return None
    live, mirror_traffic = splits[endpoint]
    before, after = _recorded(run, "before"), _recorded(run, "after")

    def holds(recorded: tuple[dict[str, int] | None, dict[str, int] | None] | None) -> bool:
        return recorded is not None and recorded[0] == live and recorded[1] in (None, mirror_traffic)

    if holds(after) and not holds(before):
        return True, f"the stack file holds the split it wrote for {endpoint}"
    if holds(before) and not holds(after):
        return False, f"the stack file still holds the split from before it for {endpoint}: its process stopped before replacing the file"
    return None


def _file_splits(stack_file: "StackFile") -> dict[str, tuple[dict[str, int], dict[str, int]]] | None:
    """Each online endpoint's (live, mirror) split in the stack file, or
    None when the file does not load (then only its hash can decide)."""
    from ..config import ConfigError, load_stack

    try:
        _, config = load_stack(str(stack_file.path), stack_file.project_dir)
    except ConfigError:
        return None
    return {
        e.name: (_shares(e.traffic) or {}, _shares(e.mirror_traffic) or {}) for e in config.online_endpoints
    }


def settle_changes(
    tracking_uri: str, experiment: str, stack_file: "StackFile", *, lock_timeout: float = 0, now: dt.datetime | None = None
) -> list[Settled]:
    """Mark the change runs a killed process recorded but never marked.

    A run is recorded before the file is replaced and tagged after, so an
    unmarked run of a process that is gone was either applied (killed after
    the replace) or not (killed before). Under the stack file's lock — no
    writer is between recording and replacing then — the file decides:

    * it hashes to the sha256 the run recorded, or the run's endpoint holds
      the split the run wrote: ``azml.applied=true``;
    * the endpoint still holds the split from before the run, or the run was
      never finished recording: ``azml.applied=false`` and the run FAILED;
    * anything else (the split was edited by hand since): left unmarked.

    Newest first, stopping at the first run found applied (it rewrote what
    older ones would be judged on). Each marked run also gets
    :data:`TAG_SETTLED`. Idempotent: a marked run is never looked at again.
    Without unmarked runs the lock is not taken. Raises
    :class:`azml.release.traffic.stackedit.LockHeld` / ``WriteFailed`` when the lock
    cannot be had; tracking-store errors propagate.
    """
    from .traffic.stackedit import locked, sha256_bytes
    from .evidence.verdict import utc_now

    client = t.client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None or not _unsettled(client, found.experiment_id, stack_file.stack):
        return []
    settled: list[Settled] = []
    with locked(stack_file.path, timeout=lock_timeout):
        # Again under the lock: the run's own process may have marked it meanwhile.
        pending = _unsettled(client, found.experiment_id, stack_file.stack)
        if not pending:
            return []
        file_sha = sha256_bytes(stack_file.path.read_bytes())
        splits = _file_splits(stack_file)
        at = (now or utc_now()).isoformat(timespec="seconds")
        for run in pending:
            decided = _judge(run, file_sha, splits)
            if decided is None:
                break
            applied, reason = decided
            client.set_tag(run.info.run_id, TAG_SETTLED, f"{at}: {reason}"[:5000])
            client.set_tag(run.info.run_id, t.TAG_APPLIED, "true" if applied else "false")
            if not applied:
                client.set_terminated(run.info.run_id, status="FAILED")
            settled.append(
                Settled(run.info.run_id, run.data.tags.get(t.TAG_KIND, ""), run.data.tags.get(t.TAG_ENDPOINT, ""), applied, reason)
            )
            if applied:
                break
    return settled
