"""The availability error budget of a stack for the current calendar month,
and the freeze it imposes on promotions.

budget   = (1 − objective) × requests this month (UTC calendar month so far)
consumed = failed requests (HTTP status ≥ 500) this month

across every online endpoint of the stack and every deployment — the requests
the burn-rate alert (``azml:alerts.availability``) watches. The counts come
from the observation runs in MLflow (``requests`` × ``error_rate`` per run,
rounded to whole requests) or, when ``azml:release.metrics.azureMonitor`` is
set, from the endpoints' ``AmlOnlineEndpointTrafficLog`` in Log Analytics.

The budget is exhausted when consumed ≥ budget: at exactly 100 % no failure
is left to spend. The comparison is exact (decimal arithmetic), so 50 failures
in 10 000 requests at 99.5 % are exactly the budget. A month without requests
has no budget to judge: it is *unknown*, which never freezes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from ...config import StackConfig
from ... import tracking as t


class BudgetUnavailable(Exception):
    """The request counts could not be read (store or Log Analytics failed)."""


@dataclass(frozen=True)
class ErrorBudget:
    stack: str
    enabled: bool
    objective_percent: float
    start: dt.datetime  # first instant of the month (UTC)
    end: dt.datetime  # when it was measured
    source: str  # "MLflow observation runs" or "Azure Monitor"
    requests: int | None = None  # None: the source could not be read
    failures: int | None = None
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.error is None and bool(self.requests)

    @property
    def budget(self) -> Decimal | None:
        """Failed requests the objective allows this month so far."""
        if not self.known:
            return None
        assert self.requests is not None
        return Decimal(self.requests) * (Decimal(100) - Decimal(str(self.objective_percent))) / Decimal(100)

    @property
    def consumed_percent(self) -> float | None:
        budget = self.budget
        if budget is None:
            return None
        if budget == 0:
            return 0.0 if not self.failures else float("inf")
        return float(Decimal(self.failures or 0) / budget * 100)

    @property
    def exhausted(self) -> bool:
        budget = self.budget
        return budget is not None and Decimal(self.failures or 0) >= budget

    @property
    def freezes(self) -> bool:
        """Whether a PROMOTE must be refused now."""
        return self.enabled and self.exhausted

    def describe(self) -> str:
        """One line: objective, requests, failures, budget and consumed share."""
        month = self.start.strftime("%Y-%m")
        head = f"error budget of {self.stack} for {month} (objective {self.objective_percent:g} %, {self.source})"
        if self.error is not None:
            return f"{head}: unavailable: {self.error}"
        if not self.requests:
            return f"{head}: unknown, no requests recorded since {self.start.isoformat(timespec='minutes')}"
        budget = self.budget
        assert budget is not None
        consumed = self.consumed_percent
        state = "EXHAUSTED" if self.exhausted else f"{_count(budget - Decimal(self.failures or 0))} failures left"
        return (
            f"{head}: {self.requests} requests, {self.failures} failures, budget {_count(budget)} failures, "
            f"{consumed:.1f} % consumed — {state}"
        )

    def to_json(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "enabled": self.enabled,
            "objectivePercent": self.objective_percent,
            "month": self.start.strftime("%Y-%m"),
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "source": self.source,
            "requests": self.requests,
            "failures": self.failures,
            "budget": None if budget is None else float(budget),
            "consumedPercent": self.consumed_percent,
            "known": self.known,
            "exhausted": self.exhausted,
            "freezesPromotion": self.freezes,
            "error": self.error,
        }


def _count(value: Decimal) -> str:
    """A number of requests: whole when it is (50, not 50.0), else 4 digits."""
    return str(int(value)) if value == value.to_integral_value() else f"{float(value):.4g}"


def policy(config: StackConfig) -> tuple[bool, float]:
    """(enabled, objective percent) of the stack's freeze, unset values
    taken from the availability alert so both judge the same objective."""
    alert = config.alerts.availability
    settings = config.release.error_budget
    enabled = settings.enabled if settings.enabled is not None else bool(config.alerts.enabled and alert.enabled)
    objective = settings.objective_percent if settings.objective_percent is not None else alert.objective_percent
    return enabled, objective


def month_start(moment: dt.datetime) -> dt.datetime:
    utc = moment.astimezone(dt.timezone.utc)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def counts_from_mlflow(
    tracking_uri: str, experiment: str, *, stack: str, endpoints: Iterable[str], start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(requests, failures) of finished observation runs of ``endpoints``
    started in [start, end]. Each run is one window of one deployment, so
    windows add up; a run without ``requests`` and ``error_rate`` says nothing
    about availability and is skipped."""
    client = t.client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0, 0
    requests = failures = 0
    for endpoint in endpoints:
        query = t.run_filter(t.KIND_OBSERVATION, finished=True, stack=stack, endpoint=endpoint)
        query += f" and attributes.start_time >= {t.millis(start)} and attributes.start_time <= {t.millis(end)}"
        token = None
        while True:  # paged: a month of 5-minute windows over many deployments exceeds one page
            page = client.search_runs([found.experiment_id], query, max_results=5000, page_token=token)
            for run in page:
                metrics = run.data.metrics
                n, rate = metrics.get(t.METRIC_REQUESTS), metrics.get(t.METRIC_ERROR_RATE)
                if n is None or rate is None or n <= 0:
                    continue
                requests += int(n)
                failures += round(n * rate)  # the run's rate is failures / requests: undo it
            token = page.token
            if not token:
                break
    return requests, failures


def counts_from_azure_monitor(
    workspace_id: str, full_names: Iterable[str], window: dt.timedelta, *, credential: Any = None, logs_endpoint: str | None = None
) -> tuple[int, int]:
    """(requests, failures) over the last ``window`` from the traffic log,
    through the release controller's own query (one per endpoint)."""
    from .observations import ObservationError
    from .sources import from_azure_monitor

    requests = failures = 0
    for name in full_names:
        try:
            measures = from_azure_monitor(workspace_id, name, window, credential=credential, logs_endpoint=logs_endpoint)
        except ObservationError as error:  # SourceUnavailable is one
            raise BudgetUnavailable(str(error)) from None
        for by_metric in measures.values():
            measure = by_metric[t.METRIC_ERROR_RATE]
            requests += measure.n
            failures += round(measure.value * measure.n)
    return requests, failures


def error_budget(
    config: StackConfig,
    stack: str,
    *,
    tracking_uri: str,
    experiment: str,
    now: dt.datetime,
    credential: Any = None,
    logs_endpoint: str | None = None,
) -> ErrorBudget:
    """The stack's budget for the month of ``now``, month start to ``now``.
    A source that cannot be read gives a budget with ``error`` set."""
    from ...naming import endpoint_name
    from ..target import missing_sqlite_store

    enabled, objective = policy(config)
    start = month_start(now)
    azure = config.release.metrics.azure_monitor
    source = "Azure Monitor" if azure is not None else "MLflow observation runs"
    names = [e.name for e in config.online_endpoints]
    try:
        if azure is not None:
            # Log Analytics takes a duration ending now: month-to-date is "since the 1st".
            requests, failures = counts_from_azure_monitor(
                azure.workspace_id, [endpoint_name(config, n) for n in names], now - start,
                credential=credential, logs_endpoint=logs_endpoint,
            )
        elif missing_sqlite_store(tracking_uri) is not None:
            requests, failures = 0, 0  # nothing recorded; reading would create the store
        else:
            requests, failures = counts_from_mlflow(
                tracking_uri, experiment, stack=stack, endpoints=names, start=start, end=now
            )
    except BudgetUnavailable as error:
        return ErrorBudget(stack, enabled, objective, start, now, source, error=str(error))
    except Exception as error:  # the tracking store unreachable
        return ErrorBudget(stack, enabled, objective, start, now, source, error=f"cannot read {tracking_uri}: {error}")
    return ErrorBudget(stack, enabled, objective, start, now, source, requests, failures)


def freeze_problem(budget: ErrorBudget) -> str | None:
    """Why a PROMOTE must not be applied now, or None. An unreadable source
    refuses too: like ``evaluate``, the controller acts only on what it read."""
    if not budget.enabled:
        return None
    if budget.error is not None:
        return f"{budget.describe()}; a PROMOTE is applied only when the budget can be read (ROLLBACK stays allowed)"
    if budget.exhausted:
        return (
            f"promotion frozen: {budget.describe()}; only ROLLBACK verdicts are applied until the budget "
            f"recovers or the month ends"
        )
    return None


def check_promotion(config: StackConfig, stack: str, tracking_uri: str, experiment: str, now: dt.datetime) -> str | None:
    """For ``advance`` before it applies a PROMOTE: raise its refusal (exit 1)
    while the freeze holds; else return the line to show beside the result
    (None when the freeze is off for the stack)."""
    from ..target import EXIT_REFUSED, AdvanceError

    budget = error_budget(config, stack, tracking_uri=tracking_uri, experiment=experiment, now=now)
    problem = freeze_problem(budget)
    if problem is not None:
        raise AdvanceError(EXIT_REFUSED, [problem])
    if not budget.enabled:
        return None
    if not budget.known:
        return f"{budget.describe()}: not frozen, as nothing shows the budget spent"
    return budget.describe()
