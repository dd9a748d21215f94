"""Stack policies on monitoring served models: every online endpoint has
enabled alerts on request latency and error rate, and a drift monitor
watching it (and, by default, each deployment serving live traffic).

An alert counts for an endpoint when it is scoped to it (metric or log alert)
or when its log query names the endpoint or reads every endpoint's traffic
log. A check that cannot tell (unknown values) reports nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from . import checks
from .azure import ENDPOINT_ROUTING, METRIC_ALERT, ONLINE_DEPLOYMENT, ONLINE_ENDPOINT, SCHEDULE, SCHEDULED_QUERY_RULE
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .routing import deployments_of, enabled, live_deployments, named
from .topology import Resource, Stack
from .values import UNKNOWN, get, same, strings, unwrap

# --------------------------------------------------------------------------- endpoint alerts

_LATENCY = re.compile(r"latency|duration", re.IGNORECASE)
_ERRORS = re.compile(r"responsecode|statuscode|5xx|error", re.IGNORECASE)


def _metric_alert_kinds(alert: Resource) -> set[str]:
    criteria = unwrap(alert.get("criteria.allOf"))
    if criteria is UNKNOWN:
        return {"latency", "errors"}
    kinds: set[str] = set()
    for criterion in criteria if isinstance(criteria, list) else []:
        metric = get(criterion, "metricName")
        if metric is UNKNOWN:
            return {"latency", "errors"}
        if not isinstance(metric, str):
            continue
        if _LATENCY.search(metric):
            kinds.add("latency")
        dimension_values = [
            v
            for dimension in (unwrap(get(criterion, "dimensions")) or [])
            if isinstance(dimension, dict) and str(get(dimension, "name")).lower() in ("statuscodeclass", "statuscode")
            for v in strings(get(dimension, "values"))
        ]
        if any(v.startswith(("5", "4")) for v in dimension_values) or re.search(r"error|fail", metric, re.IGNORECASE):
            kinds.add("errors")
    return kinds


def _mentions(query: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", query, re.IGNORECASE) is not None


def _covers_all(query: str) -> bool:
    """A traffic-log query that does not filter by endpoint covers every endpoint."""
    return "amlonlineendpointtrafficlog" in query.lower() and not re.search(r"endpointname\s*(==|in\b|=~|has\b)", query, re.IGNORECASE)


def _query_covers(query: str, endpoint_name: str | None) -> bool:
    if endpoint_name and _mentions(query, endpoint_name):
        return True
    return _covers_all(query)


_TOKEN = re.compile(r"[\w-]+")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _index_rules(stack: Stack) -> tuple[list[Resource], dict[str, list[Resource]]]:
    """Enabled log alert rules that may cover any endpoint (a query that covers
    all, a non-ASCII query, unknown criteria), and the others by the
    lower-cased words of their queries: an ASCII name made of word characters
    is :func:`_mentions`-ed only by a query with that word."""
    anywhere: list[Resource] = []
    by_word: dict[str, list[Resource]] = {}
    for rule in stack.of_type(SCHEDULED_QUERY_RULE):
        if not enabled(rule):
            continue
        criteria = unwrap(rule.get("criteria.allOf"))
        queries = [get(c, "query") for c in criteria] if isinstance(criteria, list) else []
        texts = [q for q in queries if isinstance(q, str)]
        if criteria is UNKNOWN or any(not q.isascii() or _covers_all(q) for q in texts):
            anywhere.append(rule)
            continue
        for word in {w.lower() for q in texts for w in _TOKEN.findall(q)}:
            by_word.setdefault(word, []).append(rule)
    return anywhere, by_word


def _rules_for(stack: Stack, endpoint: Resource) -> list[Resource]:
    """A superset of the enabled log alert rules :func:`_log_alert_kinds` may
    credit to ``endpoint``: scoped to it, or with a query covering it."""
    anywhere, by_word = stack.memo("log-alert-rules", lambda: _index_rules(stack))
    name = endpoint.arm_name
    if name and not _PLAIN_NAME.fullmatch(name):
        named = [r for r in stack.of_type(SCHEDULED_QUERY_RULE) if enabled(r)]
    else:
        named = by_word.get(name.lower(), []) if name else []
    scoped = [r for r in stack.linking(endpoint, (SCHEDULED_QUERY_RULE,), "scopes") if enabled(r)]
    return stack.in_order([*anywhere, *named, *scoped])


def _log_alert_kinds(stack: Stack, rule: Resource, endpoint: Resource) -> set[str]:
    criteria = unwrap(rule.get("criteria.allOf"))
    if criteria is UNKNOWN:
        return {"latency", "errors"} if stack.linked(rule, "scopes", endpoint) else set()
    scoped = stack.linked(rule, "scopes", endpoint)
    kinds: set[str] = set()
    for criterion in criteria if isinstance(criteria, list) else []:
        query = get(criterion, "query")
        if query is UNKNOWN:
            return {"latency", "errors"} if scoped else set()
        if not isinstance(query, str) or not (scoped or _query_covers(query, endpoint.arm_name)):
            continue
        if _LATENCY.search(query):
            kinds.add("latency")
        if _ERRORS.search(query):
            kinds.add("errors")
    return kinds


# Each signal: its name in messages, and what counts as an alert on it.
_SIGNALS = {
    "latency": (
        "request latency",
        "a monitor:MetricAlert scoped to the endpoint on a latency metric (e.g. RequestLatency_P95), or a "
        "ScheduledQueryRule whose query reads request durations from AmlOnlineEndpointTrafficLog",
    ),
    "errors": (
        "error rate",
        "a monitor:MetricAlert scoped to the endpoint on RequestsPerMinute with dimension statusCodeClass 5xx, or a "
        "ScheduledQueryRule whose query counts failed (5xx) requests in AmlOnlineEndpointTrafficLog",
    ),
}


def _endpoint_alerts(stack: Stack, config: dict[str, Any]) -> Finding:
    for endpoint in stack.of_type(ONLINE_ENDPOINT):
        if exempt(config, endpoint.name, endpoint.arm_name):
            continue
        covered: set[str] = set()
        for alert in stack.linking(endpoint, (METRIC_ALERT,), "scopes"):
            if enabled(alert):
                covered |= _metric_alert_kinds(alert)
        for rule in _rules_for(stack, endpoint):
            covered |= _log_alert_kinds(stack, rule, endpoint)
        wanted = [k for k, on in (("latency", config["requireLatencyAlert"]), ("errors", config["requireErrorAlert"])) if on]
        present = ", ".join(_SIGNALS[k][0] for k in ("latency", "errors") if k in covered) or "neither signal"
        for kind in wanted:
            if kind not in covered:
                signal, counts = _SIGNALS[kind]
                yield endpoint.urn, (
                    f"{endpoint.label}: missing signal '{signal}': no enabled alert watches its {signal} "
                    f"(alerts found cover: {present}); add {counts}"
                )


endpoint_alerts = stack_policy(
    PolicyInfo(
        name="azml-endpoint-alerts",
        description="Every online endpoint has enabled alerts on request latency and on its error rate.",
        checklist=checks.MONITORING,
        severity=Severity.MEDIUM,
        remediation=(
            "Keep azml:alerts enabled with latencyP95 and serverErrors (metric alerts scoped to the endpoint) or "
            "logLatencyP95 / errorRate (log alerts on AmlOnlineEndpointTrafficLog naming the endpoint)."
        ),
        resource_types=(ONLINE_ENDPOINT, METRIC_ALERT, SCHEDULED_QUERY_RULE),
        properties=(
            "OnlineEndpoint.endpointName",
            "MetricAlert.scopes",
            "MetricAlert.enabled",
            "MetricAlert.criteria.allOf[].metricName",
            "MetricAlert.criteria.allOf[].dimensions",
            "ScheduledQueryRule.scopes",
            "ScheduledQueryRule.enabled",
            "ScheduledQueryRule.criteria.allOf[].query",
        ),
        config={
            "requireLatencyAlert": {"type": "boolean", "default": True, "description": "Require a latency alert."},
            "requireErrorAlert": {"type": "boolean", "default": True, "description": "Require an error-rate alert."},
        },
        kind="stack",
        tags=("serving", "monitoring"),
    ),
    _endpoint_alerts,
)

# --------------------------------------------------------------------------- drift monitors

_TARGET = "properties.action.monitorDefinition.monitoringTarget.deploymentId"


def _is_drift_monitor(schedule: Resource, signals: list[str]) -> bool:
    if not enabled(schedule, "properties.isEnabled"):
        return False
    action = schedule.get("properties.action.actionType")
    if action is not UNKNOWN and not same(action, "CreateMonitor"):
        return False
    configured = unwrap(schedule.get("properties.action.monitorDefinition.signals"))
    if configured is UNKNOWN or action is UNKNOWN:
        return True
    if not isinstance(configured, dict):
        return False
    wanted = {s.lower() for s in signals}
    for signal in configured.values():
        kind = get(signal, "signalType")
        if kind is UNKNOWN or (isinstance(kind, str) and kind.lower() in wanted):
            return True
    return False


def _drift_monitors(stack: Stack, config: dict[str, Any]) -> Finding:
    monitor_ids = {id(s) for s in stack.of_type(SCHEDULE) if _is_drift_monitor(s, config["driftSignals"])}
    for endpoint in stack.of_type(ONLINE_ENDPOINT):
        if exempt(config, endpoint.name, endpoint.arm_name):
            continue
        deployments = deployments_of(stack, endpoint)
        if not deployments:
            continue
        monitored = {d.urn for d in deployments if any(id(m) in monitor_ids for m in stack.linking(d, (SCHEDULE,), _TARGET))}
        if not monitored:
            yield endpoint.urn, (
                f"{endpoint.label}: no drift monitor (machinelearningservices:Schedule creating a monitor with a "
                f"{' or '.join(config['driftSignals'])} signal) targets any of its deployments"
            )
            continue
        if not config["everyLiveDeployment"]:
            continue
        live = live_deployments(stack, endpoint) or set()
        for name in sorted(live):
            for deployment in named(deployments, name):
                if deployment.urn not in monitored:
                    yield deployment.urn, (
                        f"{deployment.label} of {endpoint.label}: serves live traffic but no drift monitor targets it"
                    )


endpoint_drift_monitor = stack_policy(
    PolicyInfo(
        name="azml-endpoint-drift-monitor",
        description="Every online endpoint — and every deployment serving live traffic — is watched by a model monitor with a drift signal.",
        checklist=checks.MONITORING,
        severity=Severity.MEDIUM,
        remediation=(
            "Enable azml:modelMonitoring for the endpoint (with dataDrift or predictionDrift on) and keep "
            "dataCollection on for its deployments, so a monitor schedule targets each live deployment."
        ),
        resource_types=(ONLINE_ENDPOINT, ONLINE_DEPLOYMENT, SCHEDULE, ENDPOINT_ROUTING),
        properties=(
            "Schedule.properties.isEnabled",
            "Schedule.properties.action.actionType",
            "Schedule.properties.action.monitorDefinition.monitoringTarget.deploymentId",
            "Schedule.properties.action.monitorDefinition.signals.*.signalType",
            "OnlineDeployment.endpointName",
            "EndpointRouting.traffic",
        ),
        config={
            "driftSignals": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["DataDrift", "PredictionDrift"],
                "description": "Signal types that count as drift monitoring.",
            },
            "everyLiveDeployment": {
                "type": "boolean",
                "default": True,
                "description": "Each deployment with live traffic needs its own monitor.",
            },
        },
        kind="stack",
        tags=("serving", "monitoring"),
    ),
    _drift_monitors,
)

POLICIES = [endpoint_alerts, endpoint_drift_monitor]
