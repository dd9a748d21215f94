"""Delivery KPIs of a stack, computed from the release audit trail in MLflow.

Events (definitions in docs/release-operations.md):

* **completion** — an applied traffic change (kind ``traffic``, tag
  ``azml.applied=true``) after which a deployment has 100 % of live traffic
  and before which it had less: a release finished on the way up;
* **rollback** — an applied traffic change whose verdict run decided ROLLBACK;
* a release **reached a final decision** by one of the two.

KPIs over a period [since, until], each from the events that end in it:

* lead time = completion − commit time of the change (the earliest
  ``azml.git_commit_time`` on the verdict and traffic runs of that release);
* deployment frequency = completions per week of the period;
* change failure rate = rollbacks / (completions + rollbacks);
* time to restore = ROLLBACK verdict run → its applied traffic change;
* drift reaction time = first drifted drift run (``max_psi`` over its
  ``threshold`` param) since the previous retraining decision → the next
  retraining decision (kind ``retrain``).

Durations are medians. A KPI without samples is "no data", never met.

Before reading, a traffic change a killed ``advance`` recorded but never
tagged ``azml.applied`` is settled from the stack file
(:func:`azml.release.store.settle_changes`), so that it counts.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ... import tracking as t
from ...drift.defaults import psi_breaches
from ..target import commit_tags  # noqa: F401  (re-exported)

#: The platform's seed targets: (key, name, unit, comparison, target).
TARGETS = (
    ("leadTime", "lead time (commit to prod)", "h", "<", 2.0),
    ("deploymentFrequency", "deployment frequency", "/week", ">=", 5.0),
    ("changeFailureRate", "change failure rate", "%", "<", 5.0),
    ("timeToRestore", "time to restore", "min", "<", 30.0),
    ("driftReactionTime", "drift reaction time", "h", "<", 24.0),
)


@dataclass(frozen=True)
class Kpi:
    key: str
    name: str
    value: float | None  # None: no data
    unit: str
    samples: int
    comparison: str
    target: float
    note: str = ""
    open_breach: bool = False  # an unfinished event already past the target

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        within = self.value < self.target if self.comparison == "<" else self.value >= self.target
        return within and not self.open_breach

    @property
    def status(self) -> str:
        return {None: "no data", True: "met", False: "NOT met"}[self.met]

    def value_text(self) -> str:
        if self.value is None:
            return "no data"
        return f"{self.value:.2f} {self.unit}".replace(" /", "/")

    def target_text(self) -> str:
        return f"{self.comparison} {self.target:g} {self.unit}".replace(" /", "/")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "name": self.name, "value": self.value, "unit": self.unit, "samples": self.samples,
            "target": {"comparison": self.comparison, "value": self.target}, "met": self.met, "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class KpiReport:
    stack: str
    since: dt.datetime
    until: dt.datetime
    tracking_uri: str
    experiment: str
    kpis: tuple[Kpi, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "since": self.since.isoformat(), "until": self.until.isoformat(),
            "trackingUri": self.tracking_uri, "experiment": self.experiment, "kpis": [k.to_json() for k in self.kpis],
        }


@dataclass(frozen=True)
class _Run:
    id: str
    time: dt.datetime
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def endpoint(self) -> str | None:
        return self.tags.get(t.TAG_ENDPOINT) or None

    def commit_time(self) -> dt.datetime | None:
        text = self.tags.get(t.TAG_GIT_COMMIT_TIME)
        try:
            return dt.datetime.fromisoformat(text) if text else None
        except ValueError:
            return None

    def split(self, key: str) -> dict[str, int]:
        """Live traffic of a traffic run's ``before``/``after`` param."""
        try:
            return {k: int(v) for k, v in (json.loads(self.params.get(key, "{}")).get("traffic") or {}).items()}
        except (ValueError, TypeError, AttributeError):
            return {}


def _at(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)


def load_runs(client: Any, experiment: str, kind: str, stack: str, until: dt.datetime) -> list[_Run]:
    """Every finished run of ``kind`` of ``stack`` started by ``until``, oldest first."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = t.run_filter(kind, finished=True, stack=stack) + f" and attributes.start_time <= {t.millis(until)}"
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], query, max_results=5000, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs += [_Run(r.info.run_id, _at(r.info.start_time), dict(r.data.tags), dict(r.data.params), dict(r.data.metrics))
                 for r in page]
        token = page.token
        if not token:
            return runs


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600


def compute(
    stack: str,
    runs: dict[str, list[_Run]],
    *,
    since: dt.datetime,
    until: dt.datetime,
    default_psi_threshold: float,
    tracking_uri: str = "",
    experiment: str = "",
) -> KpiReport:
    """The report from runs by kind (``verdict``, ``traffic``, ``drift``, ``retrain``)."""
    verdicts = {r.id: r for r in runs.get(t.KIND_VERDICT, [])}
    applied = [r for r in runs.get(t.KIND_TRAFFIC, []) if r.tags.get(t.TAG_APPLIED) == "true"]
    inside = lambda r: since <= r.time <= until  # noqa: E731

    # Final decisions in time order: (run, "completion"|"rollback", deployment).
    finals: list[tuple[_Run, str, str]] = []
    for run in applied:
        verdict = verdicts.get(run.tags.get(t.TAG_VERDICT_RUN, ""))
        if verdict is not None and verdict.tags.get(t.TAG_DECISION) == "ROLLBACK":
            finals.append((run, "rollback", verdict.tags.get(t.TAG_DEPLOYMENT, "")))
            continue
        before, after = run.split("before"), run.split("after")
        done = [d for d, share in after.items() if share == 100 and before.get(d, 0) < 100]
        if done:
            finals.append((run, "completion", done[0]))

    completions = [(r, d) for r, kind, d in finals if kind == "completion" and inside(r)]
    rollbacks = [r for r, kind, _ in finals if kind == "rollback" and inside(r)]

    # Lead time: the release's runs lie between the previous final decision on
    # the endpoint and its completion; its change is the oldest commit they saw.
    lead, untagged = [], 0
    for run, deployment in completions:
        previous = max((f.time for f, _, _ in finals if f.endpoint == run.endpoint and f.time < run.time), default=None)
        members = [v for v in verdicts.values() if v.endpoint == run.endpoint and v.tags.get(t.TAG_DEPLOYMENT) == deployment]
        members += [a for a in applied if a.endpoint == run.endpoint]
        commits = [c for m in members if (previous is None or m.time > previous) and m.time <= run.time
                   if (c := m.commit_time()) is not None]
        if commits:
            lead.append(_hours(run.time - min(commits)))
        else:
            untagged += 1
    lead_note = f"{untagged} completed release(s) without {t.TAG_GIT_COMMIT_TIME} tags (git unavailable)" if untagged else ""

    weeks = (until - since).total_seconds() / (7 * 86400)
    audited = any(inside(r) for r in [*verdicts.values(), *runs.get(t.KIND_TRAFFIC, [])])
    frequency = len(completions) / weeks if audited and weeks > 0 else None

    decided = len(completions) + len(rollbacks)
    failure_rate = 100 * len(rollbacks) / decided if decided else None

    restore = []
    for run in rollbacks:
        verdict = verdicts[run.tags[t.TAG_VERDICT_RUN]]
        restore.append((run.time - verdict.time).total_seconds() / 60)

    reaction, open_note, open_breach = _drift_reaction(runs, since, until, default_psi_threshold)
    values = {
        "leadTime": (_median(lead), len(lead), lead_note, False),
        "deploymentFrequency": (frequency, len(completions), "" if audited else "no verdict or traffic run in the period", False),
        "changeFailureRate": (failure_rate, decided, f"{len(rollbacks)} rolled back of {decided}" if decided else "", False),
        "timeToRestore": (_median(restore), len(restore), "to the stack file change; pulumi up not included", False),
        "driftReactionTime": (_median(reaction), len(reaction), open_note, open_breach),
    }
    kpis = tuple(
        Kpi(key, name, values[key][0], unit, values[key][1], comparison, target, values[key][2], values[key][3])
        for key, name, unit, comparison, target in TARGETS
    )
    return KpiReport(stack, since, until, tracking_uri, experiment, kpis)


def _drifted(run: _Run, default_threshold: float) -> bool:
    value = run.metrics.get("max_psi")
    try:
        threshold = float(run.params.get("threshold", default_threshold))
    except ValueError:
        threshold = default_threshold
    return value is not None and psi_breaches(value, threshold)


def _drift_reaction(
    runs: dict[str, list[_Run]], since: dt.datetime, until: dt.datetime, default_threshold: float
) -> tuple[list[float], str, bool]:
    """Reaction times (hours) of retraining decisions in the period, a note
    on drift still unanswered, and whether that drift is already past the target."""
    decisions = runs.get(t.KIND_RETRAIN, [])
    drifted = [r for r in runs.get(t.KIND_DRIFT, []) if _drifted(r, default_threshold)]
    # Each drift run is answered by the next retraining decision of its
    # endpoint (a drift run without an endpoint tag: of any endpoint).
    first_drift: dict[str, dt.datetime] = {}
    unanswered: list[dt.datetime] = []
    for run in drifted:
        answer = next((d for d in decisions if d.time >= run.time and (run.endpoint is None or d.endpoint == run.endpoint)), None)
        if answer is None:
            unanswered.append(run.time)
        elif answer.id not in first_drift or run.time < first_drift[answer.id]:
            first_drift[answer.id] = run.time
    by_id = {d.id: d for d in decisions}
    reaction = [_hours(by_id[i].time - start) for i, start in first_drift.items() if since <= by_id[i].time <= until]
    if not unanswered:
        return reaction, "", False
    age = _hours(until - min(unanswered))
    target = dict((k, v) for k, _, _, _, v in TARGETS)["driftReactionTime"]
    return reaction, f"{len(unanswered)} drift run(s) not answered yet, oldest {age:.1f} h ago", age >= target


def delivery_kpis(
    stack: str,
    *,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> KpiReport:
    """KPIs of ``stack`` over [since, until] (default: the 28 days to now).
    Raises AdvanceError (code 2) for an unknown stack; store errors propagate."""
    from ..target import load_target, missing_sqlite_store
    from ..evidence.verdict import utc_now

    stack_file, config, uri, experiment_name = load_target(
        stack, None, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
    )
    until = until or utc_now()
    since = since or until - dt.timedelta(days=28)
    runs: dict[str, list[_Run]] = {}
    if missing_sqlite_store(uri) is None:  # else: nothing recorded, and reading would create the store
        from ..traffic.stackedit import StackEditError
        from ..traffic.status import SETTLE_LOCK_TIMEOUT
        from ..store import settle_changes

        try:
            settle_changes(uri, experiment_name, stack_file, lock_timeout=SETTLE_LOCK_TIMEOUT)
        except StackEditError:  # a writer holds the lock (and settles), or a read-only directory
            pass
        client = t.client(uri)
        for kind in (t.KIND_VERDICT, t.KIND_TRAFFIC, t.KIND_DRIFT, t.KIND_RETRAIN):
            runs[kind] = load_runs(client, experiment_name, kind, stack_file.stack, until)
    return compute(
        stack_file.stack, runs, since=since, until=until,
        default_psi_threshold=config.retraining.triggers.max_psi, tracking_uri=uri, experiment=experiment_name,
    )


def markdown(report: KpiReport) -> str:
    lines = [
        f"Delivery KPIs of **{report.stack}**, {report.since.isoformat(timespec='minutes')} → "
        f"{report.until.isoformat(timespec='minutes')}",
        "",
        "| KPI | value | n | target | status | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {k.name} | {k.value_text()} | {k.samples} | {k.target_text()} | {k.status} | {k.note} |" for k in report.kpis]
    return "\n".join(lines) + "\n"


def rows(report: KpiReport) -> Iterable[tuple[str, str, str, str, str, str]]:
    for k in report.kpis:
        yield k.name, k.value_text(), str(k.samples), k.target_text(), k.status, k.note
