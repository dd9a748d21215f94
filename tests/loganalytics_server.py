"""A local HTTPS stand-in for the Log Analytics query API
(``POST /v1/workspaces/{workspaceId}/query``), holding an endpoint traffic
log, so the release controller's Azure Monitor source runs through the real
azure-monitor-query client and azure-core transport with TLS verified.

Rules it enforces, as Log Analytics documents them: ``Authorization: Bearer``
on every request (401 otherwise); a workspace id that is a GUID of a known
workspace (404 ``WorkspaceNotFoundError``); a JSON body with a ``query``
string (400 ``BadArgumentError``) and, when present, an ISO 8601
``timespan``, which bounds the rows by ``TimeGenerated``.

What it cannot do is run KQL: it answers only the traffic summary the
controller sends (``azml.release.evidence.sources.TRAFFIC_QUERY``: requests, 5xx
failures and p95 of ``TotalDurationMs`` per ``DeploymentName`` for one
``EndpointName``), computing it in Python with an exact percentile where
Log Analytics' ``percentile()`` is an estimate. That the KQL itself runs
against the real table can only be proven in Azure.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pytest

from .tls_server import LocalHttpsServer

_PATH = re.compile(r"^/v1/workspaces/(?P<id>[0-9a-fA-F-]{36})/query$")
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True)
class TrafficRow:
    endpoint: str
    deployment: str
    response_code: int
    duration_ms: float
    time: dt.datetime


def parse_duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text)
    if not match or text in ("P", "PT"):
        raise ValueError(text)
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return dt.timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))


class LogAnalyticsServer(LocalHttpsServer):
    def __init__(self, workspace_id: str, token: str = "test-token") -> None:
        self.workspace_id, self.token = workspace_id.lower(), token
        self.rows: list[TrafficRow] = []
        self.queries: list[dict[str, Any]] = []

    def add_requests(self, endpoint: str, deployment: str, durations: np.ndarray, codes: np.ndarray, age: dt.timedelta) -> None:
        moment = dt.datetime.now(dt.timezone.utc) - age
        self.rows += [TrafficRow(endpoint, deployment, int(c), float(d), moment) for d, c in zip(durations, codes)]

    def start(self) -> "LogAnalyticsServer":
        self.endpoint = self._start_https("loganalytics-")
        return self

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _error("AuthorizationRequiredError", "Valid authentication was not provided")
        match = _PATH.match(path)
        if not match or match.group("id").lower() != self.workspace_id:
            return 404, _error("WorkspaceNotFoundError", f"The workspace could not be found: {path}")
        try:
            request = json.loads(body)
        except ValueError:
            return 400, _error("BadArgumentError", "The request body is not JSON")
        if not isinstance(request, dict) or not isinstance(request.get("query"), str) or not request["query"].strip():
            return 400, _error("BadArgumentError", "The request had some invalid properties: query is required")
        self.queries.append(request)
        rows = self.rows
        if "timespan" in request:
            try:
                since = dt.datetime.now(dt.timezone.utc) - parse_duration(request["timespan"])
            except ValueError:
                return 400, _error("BadArgumentError", f"Invalid timespan {request['timespan']!r}")
            rows = [r for r in rows if r.time >= since]
        return self._summarise(request["query"], rows)

    def _summarise(self, query: str, rows: list[TrafficRow]) -> tuple[int, Any]:
        endpoint = re.search(r"EndpointName == '([^']*)'", query)
        if "AmlOnlineEndpointTrafficLog" not in query or endpoint is None or "by DeploymentName" not in query:
            return 400, _error("SemanticError", "this stand-in answers only the release controller's traffic summary")
        columns = [("DeploymentName", "string"), ("Requests", "long"), ("Errors", "long"), ("P95", "real")]
        table: list[list[Any]] = []
        for deployment in sorted({r.deployment for r in rows if r.endpoint == endpoint.group(1)}):
            mine = [r for r in rows if r.endpoint == endpoint.group(1) and r.deployment == deployment]
            durations = np.array([r.duration_ms for r in mine])
            errors = sum(1 for r in mine if r.response_code >= 500)
            table.append([deployment, len(mine), errors, float(np.percentile(durations, 95))])
        return 200, {
            "tables": [
                {"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns], "rows": table}
            ]
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def loganalytics(monkeypatch: pytest.MonkeyPatch) -> Iterator[LogAnalyticsServer]:
    server = LogAnalyticsServer("3f2504e0-4f89-41d3-9a0c-0305e82c3301").start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    yield server
    server.stop()
