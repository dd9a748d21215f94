"""``azml release scoreboard``: the quality of every model version a stack
served recently, one row per (endpoint, model version).

Numbers come from MLflow observation runs (``azml.kind=observation``) of the
stack started inside the window, grouped by their ``azml.model`` tag and
pooled by :func:`azml.release.evidence.observations.combine` — the same pooling the
gate uses. The status comes from the stack file as it is now:

* champion — served by the deployment with the most live traffic of its
  endpoint (a tie goes to the deployment declared first);
* canary — served by another deployment with live traffic;
* shadow — served by a deployment that only receives mirrored traffic;
* retired — seen in MLflow, but no deployment serves it with any traffic
  (deployment removed, now serving another version, or at 0 %).

A version served by several deployments takes the strongest of their roles.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import tracking as t
from ...errors import ProblemsError
from ...naming import model_ref
from ..evidence.observations import Measure, Observation, ObservationError, combine, parse_record

STATUSES = ("champion", "canary", "shadow", "retired")
#: Metrics on the scoreboard, in column order (tracking-store names).
METRICS = (t.METRIC_ACCURACY, t.METRIC_PARITY, t.METRIC_PSI, t.METRIC_LATENCY_P95, t.METRIC_ERROR_RATE)
MISSING = "—"  # never 0: an unobserved metric is not a perfect one
_REGISTRY_MODEL = re.compile(r"^azureml://registries/[^/]+/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
_PAGE = 1000


class ScoreboardError(ProblemsError):
    """Bad input (code 2) or an unreadable tracking store (code 1)."""

    separator = "; "

    def __init__(self, code: int, problems: list[str]):
        self.code = code
        super().__init__(problems)


@dataclass(frozen=True)
class Row:
    endpoint: str
    model: str  # the azml.model tag: "<name>:<version>" or a registry URI
    name: str
    version: str
    status: str  # one of STATUSES
    deployments: tuple[str, ...]  # serving it now; for a retired version, those seen in MLflow
    live: int  # live traffic share of those deployments, percent
    mirror_traffic: int  # mirrored share, percent
    observation: Observation
    verdict: str | None = None  # decision of the endpoint's last verdict on this canary
    verdict_at: str | None = None

    def measure(self, metric: str) -> Measure | None:
        return self.observation.get(metric)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "deployments": list(self.deployments),
            "liveTraffic": self.live,
            "mirrorTraffic": self.mirror_traffic,
            "runs": self.observation.records,
            "metrics": {
                m: ({"value": s.value, "n": s.n} if (s := self.measure(m)) is not None else None) for m in METRICS
            },
            "lastVerdict": None if self.verdict is None else {"decision": self.verdict, "computedAt": self.verdict_at},
        }


@dataclass
class Scoreboard:
    stack: str
    tracking_uri: str
    experiment: str
    window_days: int
    generated_at: str  # ISO 8601, UTC
    gate: dict[str, float]  # the stack's azml:release.gate, camelCase keys
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def champion_accuracy(self, endpoint: str) -> float | None:
        for row in self.rows:
            if row.endpoint == endpoint and row.status == "champion" and (m := row.measure(t.METRIC_ACCURACY)):
                return m.value
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "trackingUri": self.tracking_uri,
            "experiment": self.experiment,
            "windowDays": self.window_days,
            "generatedAt": self.generated_at,
            "gate": self.gate,
            "rows": [r.to_json() for r in self.rows],
            "notes": self.notes,
        }


def split_model(tag: str) -> tuple[str, str]:
    """(name, version) of an ``azml.model`` tag; a registry URI is read too."""
    match = _REGISTRY_MODEL.match(tag)
    if match:
        return match["name"], match["version"]
    name, _, version = tag.rpartition(":")
    return (name, version) if name else (tag, "")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Numeric-aware: "2" < "10", "1.9" < "1.10"; text parts compare as text."""
    parts = re.findall(r"\d+|\D+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def model_tag(model: Any) -> str:
    """The ``azml.model`` tag ``azml release record`` writes for a deployment's model."""
    return model_ref(model)


def _roles(endpoint: Any) -> dict[str, str]:
    """Deployment name -> champion/canary/shadow/retired from the declared split."""
    live = {d.name: endpoint.traffic.get(d.name, 0) for d in endpoint.deployments}
    top = max(live.values(), default=0)
    champion = next((name for name, share in live.items() if share == top), None) if top > 0 else None
    roles = {}
    for d in endpoint.deployments:
        if d.name == champion:
            roles[d.name] = "champion"
        elif live[d.name] > 0:
            roles[d.name] = "canary"
        elif endpoint.mirror_traffic.get(d.name, 0) > 0:
            roles[d.name] = "shadow"
        else:
            roles[d.name] = "retired"
    return roles


def _observation_runs(uri: str, experiment: str, query: str, notes: list[str]) -> list[Any]:
    """All runs matching ``query``, page by page (a month of windows can pass one page)."""
    from ..target import missing_sqlite_store

    missing = missing_sqlite_store(uri)
    if missing is not None:  # reading would create an empty store: report it instead
        notes.append(f"no tracking store at {missing} yet: no observations")
        return []
    client = t.client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        notes.append(f"MLflow experiment {experiment!r} does not exist yet: no observations")
        return []
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [found.experiment_id], filter_string=query, order_by=["attributes.start_time ASC"],
            max_results=_PAGE, page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def build_scoreboard(
    stack: str,
    *,
    endpoint: str | None = None,
    window_days: int = 30,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    now: dt.datetime | None = None,
) -> Scoreboard:
    """The scoreboard of ``stack`` (optionally one endpoint) over the
    ``window_days`` before ``now``. Raises :class:`ScoreboardError`."""
    from ...errors import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR
    from ..target import AdvanceError, load_target

    if window_days < 1:
        raise ScoreboardError(EXIT_INVALID_INPUT, [f"--window-days: must be a whole number of days >= 1 (got {window_days})"])
    try:
        stack_file, config, uri, experiment_name = load_target(
            stack, None, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
        )
    except AdvanceError as error:
        raise ScoreboardError(error.code, error.problems) from None
    declared_names = [e.name for e in config.online_endpoints]
    if endpoint is not None and endpoint not in declared_names:
        raise ScoreboardError(
            EXIT_INVALID_INPUT,
            [f"--endpoint: {endpoint!r} is not an online endpoint of stack {stack_file.stack} "
             f"(declared: {', '.join(declared_names) or 'none'})"],
        )
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(days=window_days)
    notes: list[str] = []
    tags = {"stack": stack_file.stack} | ({"endpoint": endpoint} if endpoint else {})
    query = (
        t.run_filter(t.KIND_OBSERVATION, finished=True, **tags)
        + f" and attributes.start_time >= {t.millis(start)} and attributes.start_time <= {t.millis(now)}"
    )
    try:
        runs = _observation_runs(uri, experiment_name, query, notes)
    except Exception as problem:  # the store is unreachable or unreadable
        raise ScoreboardError(EXIT_PROGRAM_ERROR, [f"cannot read the tracking store {uri}: {problem}"]) from None

    records: dict[tuple[str, str], list[dict[str, Measure]]] = {}
    seen_on: dict[tuple[str, str], set[str]] = {}
    untagged = 0
    for run in runs:
        run_tags = run.data.tags
        model = run_tags.get(t.TAG_MODEL)
        if not model:  # without the tag the version it measured is unknown
            untagged += 1
            continue
        key = (run_tags.get(t.TAG_ENDPOINT, ""), model)
        try:
            record = parse_record(run_tags.get(t.TAG_DEPLOYMENT, ""), run.data.metrics, f"run {run.info.run_id}")
        except ObservationError as error:
            notes.append(f"skipped: {error}")
            continue
        records.setdefault(key, []).append(record)
        seen_on.setdefault(key, set()).add(run_tags.get(t.TAG_DEPLOYMENT, "?"))
    if untagged:
        notes.append(f"skipped {untagged} observation run(s) without an {t.TAG_MODEL} tag")

    # What the stack file serves now: (endpoint, model) -> roles and deployments.
    served: dict[tuple[str, str], list[tuple[str, str, int, int]]] = {}
    for declared in config.online_endpoints:
        if endpoint is not None and declared.name != endpoint:
            continue
        roles = _roles(declared)
        for d in declared.deployments:
            entry = (roles[d.name], d.name, declared.traffic.get(d.name, 0), declared.mirror_traffic.get(d.name, 0))
            served.setdefault((declared.name, model_tag(d.model)), []).append(entry)

    rows: list[Row] = []
    for key in set(records) | set(served):
        endpoint_name, model = key
        active = [e for e in served.get(key, []) if e[0] != "retired"]
        status = min((e[0] for e in active), key=STATUSES.index, default="retired")
        deployments = tuple(e[1] for e in active) if active else tuple(sorted(seen_on.get(key, set())))
        name, version = split_model(model)
        rows.append(
            Row(
                endpoint=endpoint_name, model=model, name=name, version=version, status=status,
                deployments=deployments, live=sum(e[2] for e in active), mirror_traffic=sum(e[3] for e in active),
                observation=combine(model, records.get(key, [])),
            )
        )
    rows = _with_verdicts(rows, uri, experiment_name, stack_file.stack, notes)
    rows.sort(key=lambda r: (r.name, version_key(r.version), r.endpoint))
    gate = config.release.gate
    return Scoreboard(
        stack=stack_file.stack, tracking_uri=uri, experiment=experiment_name, window_days=window_days,
        generated_at=now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        gate={
            "minAccuracyDelta": gate.min_accuracy_delta, "maxLatencyP95Ms": gate.max_latency_p95_ms,
            "maxErrorRate": gate.max_error_rate, "maxPsi": gate.max_psi,
            "maxParityDifference": gate.max_parity_difference,
        },
        rows=rows, notes=notes,
    )


def _with_verdicts(rows: list[Row], uri: str, experiment: str, stack: str, notes: list[str]) -> list[Row]:
    """Attach each endpoint's last verdict to the canary or shadow row it judged."""
    from dataclasses import replace

    from ..target import missing_sqlite_store
    from ..store import last_verdict

    if missing_sqlite_store(uri) is not None:
        return rows
    result = list(rows)
    for endpoint in sorted({r.endpoint for r in rows if r.status in ("canary", "shadow")}):
        try:
            verdict = last_verdict(uri, experiment, stack, endpoint)
        except Exception as problem:  # StoreError or a store that went away: the numbers still stand
            notes.append(f"{endpoint}: last verdict unreadable ({problem})")
            continue
        if verdict is None:
            continue
        for index, row in enumerate(result):
            if row.endpoint == endpoint and row.status in ("canary", "shadow") and verdict.canary in row.deployments:
                result[index] = replace(row, verdict=verdict.decision.value, verdict_at=verdict.computed_at)
    return result


# Rendering shared by the text, markdown and HTML tables.
HEADERS = ("model", "version", "endpoint", "status", "deployments", "accuracy", "parity diff", "PSI",
           "p95 ms", "error rate", "runs", "last verdict")
_DIGITS = {t.METRIC_LATENCY_P95: 1}  # milliseconds: a tenth is plenty; ratios get 4 decimals


def value_text(measure: Measure | None, metric: str) -> str:
    return MISSING if measure is None else f"{measure.value:.{_DIGITS.get(metric, 4)}f}"


def cell(row: Row, metric: str) -> str:
    """``0.9123 (n=3000)``, or ``—`` for a metric never observed."""
    measure = row.measure(metric)
    return MISSING if measure is None else f"{value_text(measure, metric)} (n={measure.n})"


def status_text(row: Row) -> str:
    if row.status in ("champion", "canary"):
        return f"{row.status} {row.live}%"
    if row.status == "shadow":
        return f"shadow (mirror {row.mirror_traffic}%)"
    return row.status


def table_rows(board: Scoreboard) -> list[tuple[str, ...]]:
    return [
        (
            row.name, row.version, row.endpoint, status_text(row), ", ".join(row.deployments) or MISSING,
            *(cell(row, m) for m in METRICS), str(row.observation.records),
            f"{row.verdict} {_minute(row.verdict_at)}" if row.verdict else MISSING,
        )
        for row in board.rows
    ]


def _minute(moment: str | None) -> str:
    """An ISO time to the minute, in UTC: the table has no room for microseconds."""
    try:
        parsed = dt.datetime.fromisoformat(moment or "")
    except ValueError:
        return moment or ""
    return (parsed.astimezone(dt.timezone.utc) if parsed.tzinfo else parsed).strftime("%Y-%m-%d %H:%MZ")


def window_text(board: Scoreboard) -> str:
    return (
        f"stack {board.stack} — observations of the last {board.window_days} days "
        f"(until {board.generated_at}) from MLflow experiment {board.experiment}"
    )


def render_text(board: Scoreboard, html_path: Path | None = None) -> None:
    """Print the scoreboard as a rich table on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colour = {"champion": "green", "canary": "yellow", "shadow": "cyan", "retired": "dim"}
    table = Table(*HEADERS, title=window_text(board), title_justify="left")
    for row, cells in zip(board.rows, table_rows(board)):
        table.add_row(*(escape(c) for c in cells), style=colour[row.status])
    console = Console(width=220, highlight=False)
    console.print(table if board.rows else f"{window_text(board)}: no model versions observed or served")
    for note in board.notes:
        console.print(f"note: {escape(note)}")
    if html_path is not None:
        console.print(f"HTML scoreboard: {html_path}")


def render_markdown(board: Scoreboard) -> str:
    def escaped(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [f"**Quality scoreboard** — {escaped(window_text(board))}", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(escaped(c) for c in cells) + " |" for cells in table_rows(board)]
    lines += [""] + [f"- note: {escaped(n)}" for n in board.notes]
    return "\n".join(lines).rstrip() + "\n"
