"""``azml release status``: where each online endpoint of a stack stands.

Per endpoint: the live and mirror split as the stack file declares it (what
the next ``pulumi up`` applies), the canary and its ladder position, and the
newest verdict from MLflow with its age, whether it is still fresh enough for
``advance`` and whether it was computed on the current file (``advance``
refuses it otherwise). A change a killed run recorded but never marked is
settled from the stack file first (:func:`azml.release.store.settle_changes`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..target import _minutes, load_target, missing_sqlite_store, verdict_age
from ..evidence.budget import ErrorBudget, error_budget
from .ladder import Position, Split, infer_roles, position
from ..evidence.verdict import Verdict, file_sha256, utc_now


@dataclass
class EndpointStatus:
    endpoint: str
    deployments: list[str]
    split: Split
    champion: str | None
    canary: str | None
    position: Position
    verdict: Verdict | None
    verdict_age: dt.timedelta | None
    verdict_fresh: bool | None  # younger than verdictMaxAgeMinutes
    verdict_matches_file: bool | None  # computed on the stack file as it is now
    last_change_at: str | None  # ISO time of the newest applied traffic change
    verdict_applied: bool | None = None  # the newest traffic change applied this verdict
    store_error: str | None = None
    strategy: str = "ladder"  # "bandit": azml release bandit sets the split, advance refuses it

    def to_json(self) -> dict[str, Any]:
        verdict = None
        if self.verdict is not None:
            verdict = {
                "decision": self.verdict.decision.value,
                "computedAt": self.verdict.computed_at,
                "ageMinutes": int(self.verdict_age.total_seconds() // 60) if self.verdict_age is not None else None,
                "champion": self.verdict.champion,
                "canary": self.verdict.canary,
                "phase": self.verdict.phase,
                "gate": self.verdict.gate_param(),
                "runId": self.verdict.run_id,
                "fresh": self.verdict_fresh,
                "matchesStackFile": self.verdict_matches_file,
                "applied": self.verdict_applied,
            }
        return {
            "endpoint": self.endpoint,
            "strategy": self.strategy,
            "deployments": self.deployments,
            "traffic": self.split.traffic,
            "mirrorTraffic": self.split.mirror_traffic,
            "champion": self.champion,
            "canary": self.canary,
            "position": self.position.to_json(),
            "lastVerdict": verdict,
            "lastTrafficChangeAt": self.last_change_at,
            "storeError": self.store_error,
        }


@dataclass
class StackStatus:
    stack: str
    stack_file: Path
    ladder: list[int]
    tracking_uri: str
    experiment: str
    endpoints: list[EndpointStatus]
    budget: ErrorBudget | None = None  # the stack's availability error budget this month

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "stackFile": str(self.stack_file),
            "ladder": self.ladder,
            "trackingUri": self.tracking_uri,
            "experiment": self.experiment,
            "endpoints": [e.to_json() for e in self.endpoints],
            "errorBudget": None if self.budget is None else self.budget.to_json(),
        }

    @property
    def store_errors(self) -> list[str]:
        errors = [f"{e.endpoint}: {e.store_error}" for e in self.endpoints if e.store_error]
        if self.budget is not None and self.budget.enabled and self.budget.error is not None:
            errors.append(self.budget.describe())
        return errors


def _last_change(uri: str, experiment: str, stack: str, endpoint: str) -> tuple[str | None, str | None]:
    """(ISO time, verdict run id) of the newest applied traffic change."""
    from ... import tracking as t

    query = t.run_filter(t.KIND_TRAFFIC, finished=True, stack=stack, endpoint=endpoint)
    run = t.newest_run(t.client(uri), experiment, f"{query} and tags.`{t.TAG_APPLIED}` = 'true'")
    if run is None:
        return None, None
    started = dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.timezone.utc)
    return started.isoformat(timespec="seconds"), run.data.tags.get("azml.verdict_run") or None


#: Seconds a reading command waits for a writer's lock before it leaves the
#: settling to that writer (which holds it for one MLflow record and a replace).
SETTLE_LOCK_TIMEOUT = 5.0


def settle_quietly(uri: str, experiment: str, stack_file: Any) -> str | None:
    """Settle changes of killed runs (:func:`azml.release.store.settle_changes`)
    for a command that only reads: when a writer holds the lock (it settles
    them itself) or the directory is read-only, nothing is settled and
    nothing fails. Returns the error of an unreachable store, else None."""
    from .. import store
    from .stackedit import StackEditError

    if missing_sqlite_store(uri) is not None:
        return None
    try:
        store.settle_changes(uri, experiment, stack_file, lock_timeout=SETTLE_LOCK_TIMEOUT)
    except StackEditError:
        return None
    except Exception as problem:  # the store unreachable
        return f"cannot read the tracking store {uri}: {str(problem).splitlines()[0]}"
    return None


def stack_status(
    stack: str,
    endpoint: str | None = None,
    *,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    now: dt.datetime | None = None,
) -> StackStatus:
    """The status of ``endpoint`` (default: every online endpoint) of ``stack``.
    Raises :class:`azml.release.traffic.advance.AdvanceError` (code 2) for an unknown
    stack or endpoint; a store that cannot be read is reported per endpoint."""
    from .. import store

    stack_file, config, uri, experiment_name = load_target(
        stack, endpoint, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
    )
    ladder = list(config.release.ladder)
    settle_error = settle_quietly(uri, experiment_name, stack_file)
    current_sha = file_sha256(stack_file.path)
    max_age = dt.timedelta(minutes=config.release.verdict_max_age_minutes)
    now = now or utc_now()
    statuses = []
    for e in config.online_endpoints:
        if endpoint is not None and e.name != endpoint:
            continue
        names = [d.name for d in e.deployments]
        split = Split.of(e.traffic, e.mirror_traffic)
        verdict: Verdict | None = None
        changed_at: str | None = None
        changed_by: str | None = None
        error: str | None = None
        try:
            if missing_sqlite_store(uri) is None:  # else: nothing recorded yet, and reading would create it
                verdict = store.last_verdict(uri, experiment_name, stack_file.stack, e.name)
                changed_at, changed_by = _last_change(uri, experiment_name, stack_file.stack, e.name)
        except Exception as problem:  # StoreError, or the store unreachable
            error = f"cannot read the tracking store {uri}: {problem}"
        error = error or settle_error
        champion, canary = infer_roles(split, names)
        if verdict is not None and verdict.champion in names and verdict.canary in names:
            inferred_canary = canary
            champion, canary = verdict.champion, verdict.canary
            if position(split, canary, ladder).phase == "none" and inferred_canary not in (None, canary):
                champion, canary = infer_roles(split, names)  # a newer canary than the verdict's
        age = verdict_age(verdict, now) if verdict is not None else None
        statuses.append(
            EndpointStatus(
                endpoint=e.name,
                deployments=names,
                split=split,
                champion=champion,
                canary=canary,
                position=position(split, canary, ladder),
                verdict=verdict,
                verdict_age=age,
                verdict_fresh=None if age is None else age <= max_age,
                verdict_matches_file=None if verdict is None else verdict.stack_file_sha256 == current_sha,
                last_change_at=changed_at,
                verdict_applied=None if verdict is None else changed_by is not None and changed_by == verdict.run_id,
                store_error=error,
                strategy="bandit" if e.name in config.release.bandits else "ladder",
            )
        )
    budget = error_budget(config, stack_file.stack, tracking_uri=uri, experiment=experiment_name, now=now)
    return StackStatus(stack_file.stack, stack_file.path, ladder, uri, experiment_name, statuses, budget)


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}%" for k, v in split.items()) or "—"


def render_text(status: StackStatus) -> None:
    """Print ``status`` as a table (rich) on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"stack {status.stack} — ladder {' → '.join(str(s) for s in status.ladder)}",
        title_justify="left",
    )
    for column in ("endpoint", "live", "mirror", "canary", "position", "last verdict", "last change"):
        table.add_column(column)
    for e in status.endpoints:
        if e.store_error:
            verdict_text = "unavailable"
        elif e.verdict is None:
            verdict_text = "none"
        else:
            notes = [f"{_minutes(e.verdict_age or dt.timedelta(0))} ago"]
            if e.verdict_applied:
                notes.append("applied")
            elif e.verdict_matches_file is False:
                notes.append("stack file changed since")
            if e.verdict_fresh is False:
                notes.append("stale")
            verdict_text = f"{e.verdict.decision.value} at {e.verdict.computed_at} ({'; '.join(notes)})"
        mirror = {k: v for k, v in e.split.mirror_traffic.items() if v}
        table.add_row(
            e.endpoint,
            _split_text(e.split.traffic),
            _split_text(mirror),
            e.canary or "—",
            e.position.label,
            verdict_text,
            e.last_change_at or "—",
        )
    console = Console(width=200)
    console.print(table)
    if status.budget is not None:
        console.print(_budget_text(status.budget), highlight=False)


def _budget_text(budget: ErrorBudget) -> str:
    if not budget.enabled:
        return f"{budget.describe()} (freeze off: azml:release.errorBudget)"
    if budget.freezes:
        return f"{budget.describe()}: PROMOTE frozen, ROLLBACK allowed"
    if not budget.known:
        return f"{budget.describe()}: not frozen"
    return budget.describe()
