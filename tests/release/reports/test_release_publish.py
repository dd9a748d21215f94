"""`azml release record --publish-to-app-insights`: the observation's metrics
reach Application Insights as custom metrics the workbook's drift and
fairness view reads, through the real azure-monitor-opentelemetry-exporter
and azure-core transport, against a local HTTPS stand-in of the ingestion
endpoint (``POST {IngestionEndpoint}/v2.1/track``).

What the stand-in enforces, as the ingestion API documents it: a JSON array
(or newline-delimited JSON, optionally gzip-encoded) of telemetry envelopes;
each with ``iKey`` equal to the resource's instrumentation key, a ``name``, an
ISO 8601 ``time``, and ``data.baseType`` ``MetricData`` whose ``baseData``
has ``metrics`` (each a ``name`` and a numeric ``value``) and string
``properties``. Invalid items are refused one by one (206 with ``errors``,
400 when none is valid); with ``token`` set, ``Authorization: Bearer <token>``
is required (401 otherwise), as for a resource with local authentication
disabled. It answers ``{"itemsReceived", "itemsAccepted", "errors"}``.

What it cannot prove: that Azure's ingestion accepts these envelopes, that
they land in ``AppMetrics`` with ``Name``/``Sum``/``ItemCount``/``Properties``
as the workbook query expects, and that a real Entra token for
``https://monitor.azure.com//.default`` is authorised (the identity needs
Monitoring Metrics Publisher).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
from azure.core.credentials import AccessToken
from typer.testing import CliRunner

from azml.cli import app
from azml.config import load_stack
from azml.config.platform.dashboards import DashboardsConfig
from azml.naming import endpoint_name
from azml import tracking as t
from azml.release.evidence.observations import SAMPLE_SIZE_OF, Measure
from azml.release.reports.publish import (
    ConnectionStringError,
    PublishError,
    connection_string_from_env,
    parse_connection_string,
    publish_measures,
)

from ...tls_server import LocalHttpsServer
from ...release_support import ENDPOINT, canary_project

RUNNER = CliRunner()
IKEY = "4b7f0d5e-8c1a-4e2f-9a3b-6d5c4e3f2a10"
ENV = "AZML_TEST_APPINSIGHTS"
EXPERIMENT = "credit-risk-release"
MONITOR_SCOPE = "https://monitor.azure.com//.default"


# --------------------------------------------------------------------------- the stand-in


@dataclass
class Received:
    headers: dict[str, str]
    envelopes: list[dict[str, Any]]
    status: int


@dataclass
class IngestionServer(LocalHttpsServer):
    ikey: str
    token: str | None = None  # set: Entra ID required (local auth disabled)
    fail_with: int | None = None  # answer every request with this status
    requests: list[Received] = field(default_factory=list)

    def start(self) -> "IngestionServer":
        # As the portal shows it: with a trailing slash, so the exporter posts to //v2.1/track.
        self.endpoint = self._start_https("ingestion-") + "/"
        return self

    def connection_string(self, ikey: str | None = None) -> str:
        return f"InstrumentationKey={ikey or self.ikey};IngestionEndpoint={self.endpoint};LiveEndpoint=https://127.0.0.1:9/"

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [e for r in self.requests if r.status == 200 for e in r.envelopes]

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        # Real ingestion takes the path the exporter builds from an endpoint with a trailing slash.
        if "/" + path.lstrip("/") != "/v2.1/track":
            return 404, _answer(0, 0, [{"index": 0, "statusCode": 404, "message": f"no such path {path}"}])
        if self.token is not None and headers.get("Authorization") != f"Bearer {self.token}":
            return self._record(headers, [], 401, _answer(0, 0, [{"index": 0, "statusCode": 401, "message": "Unauthorized"}]))
        if self.fail_with is not None:
            return self._record(headers, [], self.fail_with, _answer(0, 0, [{"index": 0, "statusCode": self.fail_with, "message": "failed"}]))
        if not (headers.get("Content-Type") or "").startswith(("application/json", "application/x-json-stream")):
            return 415, _answer(0, 0, [{"index": 0, "statusCode": 415, "message": "unsupported content type"}])
        try:
            if (headers.get("Content-Encoding") or "").lower() == "gzip":
                body = gzip.decompress(body)
            text = body.decode("utf-8")
            try:
                items = json.loads(text)
            except ValueError:
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError, ValueError):
            return 400, _answer(0, 0, [{"index": 0, "statusCode": 400, "message": "body is not JSON"}])
        if not isinstance(items, list) or not items:
            return 400, _answer(0, 0, [{"index": 0, "statusCode": 400, "message": "expected an array of envelopes"}])
        errors = [
            {"index": index, "statusCode": 400, "message": problem}
            for index, item in enumerate(items)
            if (problem := self._problem(item))
        ]
        accepted = len(items) - len(errors)
        status = 200 if not errors else 206 if accepted else 400
        return self._record(headers, items, status, _answer(len(items), accepted, errors))

    def _record(self, headers: Any, items: list[dict[str, Any]], status: int, answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(Received(dict(headers), items, status))
        return status, answer

    def _problem(self, item: Any) -> str | None:
        if not isinstance(item, dict):
            return "envelope is not an object"
        if item.get("iKey") != self.ikey:
            return "Invalid instrumentation key"
        if not isinstance(item.get("name"), str) or not item["name"]:
            return "Field 'name' on type 'Envelope' is required"
        try:
            dt.datetime.fromisoformat(str(item.get("time")).replace("Z", "+00:00"))
        except ValueError:
            return "Field 'time' on type 'Envelope' is not a valid date-time"
        data = item.get("data")
        if not isinstance(data, dict) or data.get("baseType") != "MetricData" or not isinstance(data.get("baseData"), dict):
            return "this stand-in takes MetricData only"
        metrics = data["baseData"].get("metrics")
        if not isinstance(metrics, list) or not metrics:
            return "Field 'metrics' on type 'MetricData' is required"
        for metric in metrics:
            if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or not metric["name"]:
                return "Field 'name' on type 'DataPoint' is required"
            if isinstance(metric.get("value"), bool) or not isinstance(metric.get("value"), (int, float)):
                return "Field 'value' on type 'DataPoint' is required"
        properties = data["baseData"].get("properties", {})
        if not isinstance(properties, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in properties.items()):
            return "properties must map strings to strings"
        return None


def _answer(received: int, accepted: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"itemsReceived": received, "itemsAccepted": accepted, "errors": errors}


@pytest.fixture
def ingestion(monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestionServer]:
    server = IngestionServer(IKEY).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    monkeypatch.setenv(ENV, server.connection_string())
    yield server
    server.stop()


class StaticCredential:
    """A TokenCredential that records the scopes it was asked for."""

    scopes: list[tuple[str, ...]] = []

    def __init__(self, token: str = "entra-token") -> None:
        self.token = token

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        StaticCredential.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


# --------------------------------------------------------------------------- helpers


def request_log(path: Path, rows: int = 2000, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    segment = rng.choice(["a", "b"], rows)
    # Group b is selected less often: a parity difference well above zero.
    prediction = np.where(rng.random(rows) < np.where(segment == "a", 0.6, 0.35), 1, 0)
    pd.DataFrame(
        {
            "income": rng.lognormal(10.9, 0.4, rows),  # shifted against the reference: PSI > 0
            "debt_ratio": rng.beta(2, 5, rows),
            "credit_score": rng.normal(680, 50, rows).round(),
            "label": label,
            "prediction": prediction,
            "latency_ms": rng.gamma(4.0, 30.0, rows),
            "status_code": np.where(rng.random(rows) < 0.01, 503, 200),
            "segment": segment,
        }
    ).to_csv(path, index=False)
    return path


def reference(path: Path) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {"income": rng.lognormal(10.5, 0.4, 5000), "debt_ratio": rng.beta(2, 5, 5000), "credit_score": rng.normal(680, 50, 5000).round()}
    ).to_parquet(path)
    return path


def record(tmp_path: Path, mlflow_uri: str, *extra: str) -> Any:
    project = tmp_path / "project"
    if not project.exists():
        canary_project(project, {"blue": 90, "green": 10})
    return RUNNER.invoke(
        app,
        ["release", "record", "prod", "--project-dir", str(project), "--tracking-uri", mlflow_uri, "-e", ENDPOINT,
         "-d", "green", "--requests", str(request_log(tmp_path / "green.csv")), "--sensitive-column", "segment",
         "--reference", str(reference(tmp_path / "reference.parquet")), *extra],
    )  # fmt: skip


def observation_runs(mlflow_uri: str) -> list[Any]:
    client = t.client(mlflow_uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return []
    return client.search_runs([found.experiment_id], filter_string=t.run_filter(t.KIND_OBSERVATION))


def stderr_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def workbook_dimensions() -> set[str]:
    """The customDimensions the workbook's drift query reads (components/dashboards.py)."""
    from components.dashboards import drift_query

    return set(re.findall(r'Properties\["(\w+)"\]', drift_query(DashboardsConfig().drift_metrics)))


# --------------------------------------------------------------------------- record --publish


def test_record_publishes_the_measured_metrics_with_the_workbooks_dimensions(
    tmp_path: Path, mlflow_uri: str, ingestion: IngestionServer
) -> None:
    result = record(tmp_path, mlflow_uri, "--publish-to-app-insights", "--app-insights-connection-string-env", ENV)
    assert result.exit_code == 0, result.output
    [run] = observation_runs(mlflow_uri)
    logged = run.data.metrics
    assert "Published 5 metrics" in result.stdout

    [request] = ingestion.requests
    assert request.status == 200 and "Authorization" not in request.headers  # instrumentation key only
    published: dict[str, tuple[float, int, dict[str, str]]] = {}
    for envelope in ingestion.accepted:
        assert envelope["iKey"] == IKEY
        base = envelope["data"]["baseData"]
        [metric] = base["metrics"]
        published[metric["name"]] = (metric["value"], metric.get("count", 1), base["properties"])
    assert set(published) == {t.METRIC_ACCURACY, t.METRIC_LATENCY_P95, t.METRIC_ERROR_RATE, t.METRIC_PSI, t.METRIC_PARITY}
    assert set(DashboardsConfig().drift_metrics) <= set(published)
    assert logged[t.METRIC_PSI] > 0.1 and logged[t.METRIC_PARITY] > 0.1  # real signals, not zeros

    full_name = endpoint_name(load_stack("prod", tmp_path / "project")[1], ENDPOINT)
    assert workbook_dimensions() == {"endpoint", "deployment"}
    for name, (value, count, properties) in published.items():
        # The workbook's sum(Sum) / sum(ItemCount) over one series is the measured value.
        assert value / count == logged[name], name
        assert properties["endpoint"] == full_name and properties["deployment"] == "green"
        assert properties["model"] == "credit-risk:4" and properties["stack"] == "prod"
        assert properties["mlflow_run_id"] == run.info.run_id
        assert properties["n"] == str(int(logged[SAMPLE_SIZE_OF[name]]))


def test_entra_id_sends_a_bearer_token_for_azure_monitor(
    tmp_path: Path, mlflow_uri: str, ingestion: IngestionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.identity

    ingestion.token = "entra-token"
    StaticCredential.scopes = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", StaticCredential)
    result = record(
        tmp_path, mlflow_uri, "--publish-to-app-insights", "--app-insights-connection-string-env", ENV,
        "--app-insights-auth", "entra",
    )
    assert result.exit_code == 0, result.output
    assert ingestion.requests[-1].headers["Authorization"] == "Bearer entra-token"
    assert {e["data"]["baseData"]["metrics"][0]["name"] for e in ingestion.accepted} >= {"psi", "parity_difference"}
    assert StaticCredential.scopes and set(StaticCredential.scopes) == {(MONITOR_SCOPE,)}


def test_a_resource_without_local_auth_refuses_the_key_exit_1_and_the_run_stays(
    tmp_path: Path, mlflow_uri: str, ingestion: IngestionServer
) -> None:
    ingestion.token = "entra-token"
    result = record(tmp_path, mlflow_uri, "--publish-to-app-insights", "--app-insights-connection-string-env", ENV)
    assert result.exit_code == 1, result.output
    [run] = observation_runs(mlflow_uri)
    assert run.info.status == "FINISHED" and run.data.metrics[t.METRIC_PSI] > 0
    [line] = stderr_lines(result)
    assert line.startswith("error: --publish-to-app-insights:") and "HTTP 401" in line
    assert "--app-insights-auth entra" in line and run.info.run_id in line
    assert ingestion.accepted == []


def test_a_failing_ingestion_endpoint_is_exit_1_in_one_line_after_the_run_is_logged(
    tmp_path: Path, mlflow_uri: str, ingestion: IngestionServer
) -> None:
    ingestion.fail_with = 500
    started = time.monotonic()
    result = record(tmp_path, mlflow_uri, "--publish-to-app-insights", "--app-insights-connection-string-env", ENV)
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 20
    [run] = observation_runs(mlflow_uri)
    [line] = stderr_lines(result)
    assert "HTTP 500" in line and f"MLflow run {run.info.run_id}" in line
    assert f"Logged observation of {ENDPOINT}/green to MLflow run {run.info.run_id}" in result.stdout
    assert 1 <= len(ingestion.requests) <= 3  # the exporter's bounded retries, then a verdict


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--app-insights-connection-string-env", ENV], None, f"environment variable {ENV} is not set"),
        (["--app-insights-connection-string-env", ENV], "InstrumentationKey=not-a-guid", "has no InstrumentationKey GUID"),
        (["--app-insights-connection-string-env", f"InstrumentationKey={IKEY}"], None, "must name an environment variable"),
        ([], None, "environment variable APPLICATIONINSIGHTS_CONNECTION_STRING is not set"),
        (["--app-insights-connection-string-env", ENV, "--app-insights-auth", "sas"], "x", "--app-insights-auth: 'sas' is not key or entra"),
    ],
)
def test_bad_publishing_input_exits_2_before_anything_is_logged(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None, expected: str
) -> None:
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    result = record(tmp_path, mlflow_uri, "--publish-to-app-insights", *args)
    assert result.exit_code == 2, result.output
    [line] = stderr_lines(result)
    assert line.startswith("error: --app-insights-") and expected in line, line
    assert IKEY not in line and "not-a-guid" not in line  # the connection string is never echoed
    assert observation_runs(mlflow_uri) == []


def test_publishing_options_without_the_flag_are_refused(tmp_path: Path, mlflow_uri: str) -> None:
    result = record(tmp_path, mlflow_uri, "--app-insights-connection-string-env", ENV)
    assert result.exit_code == 2
    assert stderr_lines(result) == ["error: --app-insights-connection-string-env: only used with --publish-to-app-insights"]
    assert observation_runs(mlflow_uri) == []


def test_record_without_the_flag_publishes_nothing(tmp_path: Path, mlflow_uri: str, ingestion: IngestionServer) -> None:
    result = record(tmp_path, mlflow_uri)
    assert result.exit_code == 0, result.output
    assert ingestion.requests == [] and len(observation_runs(mlflow_uri)) == 1


# --------------------------------------------------------------------------- publish_measures


def test_a_wrong_instrumentation_key_is_refused_by_item(ingestion: IngestionServer) -> None:
    wrong = ingestion.connection_string("00000000-0000-4000-8000-000000000000")
    with pytest.raises(PublishError, match=r"HTTP 400"):
        publish_measures({"psi": Measure(0.2, 100)}, {"endpoint": "e", "deployment": "d"}, wrong, timeout=5)
    assert ingestion.accepted == []


def test_an_unreachable_endpoint_is_a_publish_error(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = "InstrumentationKey=" + IKEY + ";IngestionEndpoint=https://127.0.0.1:9/"
    with pytest.raises(PublishError, match="not delivered"):
        publish_measures({"psi": Measure(0.2, 100)}, {"endpoint": "e"}, closed, timeout=2, retries=0)


def test_publish_sends_one_metric_per_measure_with_its_value(ingestion: IngestionServer) -> None:
    sent = publish_measures(
        {"psi": Measure(0.25, 400), "parity_difference": Measure(0.125, 300)},
        {"endpoint": "p-prd-ep", "deployment": "green", "model": "m:1", "stack": "prod"},
        ingestion.connection_string(),
        timeout=5,
    )
    assert sent == 2
    values = {e["data"]["baseData"]["metrics"][0]["name"]: e["data"]["baseData"]["metrics"][0]["value"] for e in ingestion.accepted}
    assert values == {"psi": 0.25, "parity_difference": 0.125}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "has no InstrumentationKey GUID"),
        ("just-a-key", "is not a connection string"),
        (f"InstrumentationKey={IKEY};IngestionEndpoint=http://plain.example/", "not an https:// URL"),
        (f"InstrumentationKey={IKEY};Authorization=aad", "Authorization other than ikey"),
    ],
)
def test_connection_strings_are_checked(text: str, problem: str) -> None:
    with pytest.raises(ConnectionStringError, match=re.escape(problem)):
        parse_connection_string(text)


def test_a_valid_connection_string_keeps_key_and_endpoint() -> None:
    target = connection_string_from_env(
        "CS", {"CS": f"InstrumentationKey={IKEY.upper()};IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;"}
    )
    assert target.instrumentation_key == IKEY
    assert target.ingestion_endpoint == "https://westeurope-5.in.applicationinsights.azure.com/"


def test_a_refused_entra_token_says_so(ingestion: IngestionServer) -> None:
    ingestion.token = "entra-token"
    with pytest.raises(PublishError, match=r"HTTP 401 \(the Entra ID token was not accepted\)"):
        publish_measures({"psi": Measure(0.2, 100)}, {"endpoint": "e"}, ingestion.connection_string(), StaticCredential("expired"), timeout=5)
    assert ingestion.requests[-1].headers["Authorization"] == "Bearer expired" and ingestion.accepted == []
