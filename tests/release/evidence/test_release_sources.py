"""The Azure Monitor metric source through the real azure-monitor-query
client against a local Log Analytics stand-in (tests/loganalytics_server.py)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from azure.core.credentials import AccessToken

from azml.config import load_stack
from azml.naming import endpoint_name
from azml import tracking as t
from azml.release.evidence.evaluate import evaluate_release
from azml.release.evidence.observations import Measure, SourceUnavailable
from azml.release.evidence.sources import from_azure_monitor, log_observation
from azml.release.evidence.verdict import Decision

from ...loganalytics_server import LogAnalyticsServer, loganalytics, parse_duration  # noqa: F401  (fixture)
from ...release_support import ENDPOINT, canary_project


class StaticCredential:
    def __init__(self, token: str = "test-token") -> None:
        self.token, self.scopes = token, []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def seed(server: LogAnalyticsServer, full_name: str) -> None:
    rng = np.random.default_rng(3)
    server.add_requests(full_name, "blue", rng.gamma(4, 25, 5000), np.full(5000, 200), dt.timedelta(minutes=30))
    codes = np.where(rng.random(3000) < 0.004, 503, 200)
    server.add_requests(full_name, "green", rng.gamma(4, 120, 3000), codes, dt.timedelta(minutes=20))
    # Outside a 24 h window: must not count.
    server.add_requests(full_name, "green", np.full(10_000, 5.0), np.full(10_000, 200), dt.timedelta(days=3))


def test_latency_and_errors_come_from_log_analytics(tmp_path: Path, loganalytics: LogAnalyticsServer) -> None:
    credential = StaticCredential()
    seed(loganalytics, "azml-prd-credit-risk-endpoint")
    measures = from_azure_monitor(
        loganalytics.workspace_id, "azml-prd-credit-risk-endpoint", dt.timedelta(hours=24),
        credential=credential, logs_endpoint=loganalytics.endpoint,
    )
    assert set(measures) == {"blue", "green"}
    assert measures["green"][t.METRIC_LATENCY_P95].n == 3000  # the 3-day-old rows are outside the timespan
    assert measures["blue"][t.METRIC_ERROR_RATE] == Measure(0.0, 5000)
    assert parse_duration(loganalytics.queries[0]["timespan"]) == dt.timedelta(hours=24)
    assert credential.scopes == [(f"{loganalytics.endpoint}/.default",)]


def test_a_rejected_query_is_a_source_failure_not_a_verdict(loganalytics: LogAnalyticsServer) -> None:
    with pytest.raises(SourceUnavailable, match="Azure Monitor query failed"):
        from_azure_monitor(
            loganalytics.workspace_id, "x", dt.timedelta(hours=1),
            credential=StaticCredential("wrong"), logs_endpoint=loganalytics.endpoint,
        )


def test_evaluate_overrides_latency_with_azure_monitor(tmp_path: Path, loganalytics: LogAnalyticsServer, mlflow_uri: str) -> None:
    project = canary_project(
        tmp_path / "project", {"blue": 90, "green": 10}, metrics={"azureMonitor": {"workspaceId": loganalytics.workspace_id}}
    )
    _, config = load_stack("prod", project)
    seed(loganalytics, endpoint_name(config, ENDPOINT))
    good = {
        t.METRIC_ACCURACY: Measure(0.9, 5000), t.METRIC_PSI: Measure(0.02, 5000), t.METRIC_PARITY: Measure(0.01, 5000),
        t.METRIC_LATENCY_P95: Measure(90.0, 5000), t.METRIC_ERROR_RATE: Measure(0.001, 5000),
    }
    for deployment in ("blue", "green"):
        log_observation(mlflow_uri, "credit-risk-release", stack="prod", endpoint=ENDPOINT, deployment=deployment, measures=good)
    verdict = evaluate_release(
        "prod", endpoint=ENDPOINT, canary="green", project_dir=project, tracking_uri=mlflow_uri,
        logs_endpoint=loganalytics.endpoint, credential=StaticCredential(),
    )
    latency = next(m for m in verdict.metrics if m.name == "latencyP95Ms")
    # Gamma(4, 120) has a p95 near 930 ms: far over SLA + 25 %, whatever MLflow said.
    assert latency.value is not None and latency.value > 700 and latency.n == 3000
    assert verdict.decision is Decision.ROLLBACK
    assert "p95 latency and error rate from Azure Monitor" in verdict.notes
