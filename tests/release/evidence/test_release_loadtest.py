"""`azml release loadtest` against a local scoring server on 127.0.0.1 that
behaves like an Azure ML online endpoint (bearer key, deployment header, JSON
bodies) and can be told to answer slowly or fail a share of requests; the
load comes from the real locust worker process and lands in a real MLflow
store, and the gate rows read it back."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azml.cli import app
from azml import tracking as t
from azml.release.evidence.evaluate import resolve_release
from azml.release.evidence.gate import evaluate as run_gate
from azml.release.evidence.loadtest import LoadResult, authorization, drive, gate_rows, log_load_test, read_bodies, resolve_target
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.verdict import Decision, Outcome

from ...release_support import ENDPOINT, canary_project, prod_stack_document

RUNNER = CliRunner()
KEY = "test-endpoint-key-5f1c"  # what the local server accepts; must never appear in any output
EXPERIMENT = "credit-risk-release"


class ScoringServer:
    """An online endpoint on 127.0.0.1: POST /score with ``Authorization:
    Bearer <key>`` (else 401), ``azureml-model-deployment: <deployment>``
    (else 404, as Azure answers for an unknown deployment) and a JSON body
    (else 400). ``delay_ms`` delays every answer; ``fail_every`` = k answers
    every k-th accepted request with 500, so the failed share is exactly 1/k."""

    def __init__(self, *, token: str, deployment: str, delay_ms: float = 0, fail_every: int = 0):
        self.token, self.deployment, self.delay_ms, self.fail_every = token, deployment, delay_ms, fail_every
        self.accepted = 0
        self.statuses: dict[int, int] = {}
        self.bodies: set[str] = set()
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoint

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = server.answer(self.path, self.headers, body)
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 resets connections of 30 users starting at once

        self.http = Server(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        # The load generator stops mid-request; the resets that follow are expected.
        self.http.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/score"

    def answer(self, path: str, headers: object, body: bytes) -> int:
        import time

        if path != "/score":
            status = 404
        elif headers.get("Authorization") != f"Bearer {self.token}":  # type: ignore[attr-defined]
            status = 401
        elif headers.get("azureml-model-deployment") != self.deployment:  # type: ignore[attr-defined]
            status = 404
        elif not (headers.get("Content-Type") or "").startswith("application/json"):  # type: ignore[attr-defined]
            status = 415
        else:
            try:
                json.loads(body)
                status = 200
            except ValueError:
                status = 400
        if status == 200:
            with self.lock:
                self.accepted += 1
                self.bodies.add(body.decode())
                if self.fail_every and self.accepted % self.fail_every == 0:
                    status = 500
            time.sleep(self.delay_ms / 1000)
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def __enter__(self) -> "ScoringServer":
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


BODIES = [{"income": 52000 + i, "debt_ratio": 0.3, "credit_score": 700 - i} for i in range(5)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The prod stack with a green canary at 10 %, a key-auth endpoint, a
    small load-test config and a sample file of five request bodies."""
    return load_test_project(tmp_path / "project", load_test={
        "users": 4, "spawnRate": 100, "durationSeconds": 2, "requestsFile": "loadtest/requests.jsonl",
        "requestTimeoutSeconds": 5, "minRequests": 10, "maxAgeMinutes": 60,
    })


def load_test_project(target: Path, *, load_test: dict | None, auth_mode: str = "key") -> Path:
    project = canary_project(target, {"blue": 90, "green": 10})
    with prod_stack_document(project) as document:
        document["config"]["azml:onlineEndpoints"][0]["authMode"] = auth_mode
        if load_test is not None:
            document["config"]["azml:release"]["loadTest"] = load_test
    (project / "loadtest").mkdir()
    (project / "loadtest" / "requests.jsonl").write_text("".join(json.dumps(b) + "\n" for b in BODIES) + "\n")
    return project


def loadtest(project: Path, uri: str, *args: str, key: str | None = KEY):
    env = {"AML_KEY": key} if key is not None else {}
    return RUNNER.invoke(
        app,
        ["release", "loadtest", "prod", "-e", ENDPOINT, "-d", "green", "--project-dir", str(project),
         "--tracking-uri", uri, *args],
        env=env,
    )


def loadtest_runs(uri: str) -> list:
    client = t.client(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], t.run_filter(t.KIND_LOADTEST))


def test_a_healthy_deployment_is_measured_logged_and_passes_the_gate(project: Path, mlflow_uri: str) -> None:
    with ScoringServer(token=KEY, deployment="green") as server:
        result = loadtest(project, mlflow_uri, "--scoring-uri", server.url, "--key-env", "AML_KEY", "--format", "json")
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    document = json.loads(result.stdout)
    assert document["requests"] >= 10 and document["failures"] == 0 and document["errorRate"] == 0
    assert document["statuses"] == {"200": document["requests"]}
    assert 0 < document["p50Ms"] <= document["p95Ms"] <= document["p99Ms"]
    # Every request reached the model with one of the sample bodies (all five, replayed in turn).
    assert server.bodies == {json.dumps(b, separators=(",", ":")) for b in BODIES}
    assert server.statuses == {200: server.accepted}
    # Requests the server answered but the generator abandoned at the end are not counted.
    assert document["requests"] <= server.accepted <= document["requests"] + 4

    (run,) = loadtest_runs(mlflow_uri)
    assert run.info.run_id == document["runId"] and run.info.status == "FINISHED"
    assert run.data.tags[t.TAG_STACK] == "prod" and run.data.tags[t.TAG_ENDPOINT] == ENDPOINT
    assert run.data.tags[t.TAG_DEPLOYMENT] == "green" and run.data.tags[t.TAG_MODEL] == "credit-risk:4"
    metrics = run.data.metrics
    assert metrics[t.METRIC_LOADTEST_REQUESTS] == document["requests"]
    assert metrics[t.METRIC_LOADTEST_P95] == document["p95Ms"] and metrics[t.METRIC_LOADTEST_ERROR_RATE] == 0
    assert run.data.params["auth"] == "env:AML_KEY" and run.data.params["users"] == "4"
    assert KEY not in json.dumps({**run.data.params, **run.data.tags})

    release = resolve_release("prod", ENDPOINT, "green", None, project)
    rows, triggers = gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri)
    assert [(r.name, r.outcome) for r in rows] == [("loadTestP95Ms", Outcome.PASS), ("loadTestErrorRate", Outcome.PASS)]
    assert triggers == ()
    # The thresholds default to the gate's own (prod: 350 ms, 0.02).
    assert [r.threshold for r in rows] == [350, 0.02]


def test_injected_delay_shows_in_the_percentiles_and_fails_the_p95_row(project: Path, mlflow_uri: str) -> None:
    # Enough users that even a slow machine completes more than minRequests (10) in the 2 s.
    with ScoringServer(token=KEY, deployment="green", delay_ms=400) as server:
        result = loadtest(
            project, mlflow_uri, "--scoring-uri", server.url, "--key-env", "AML_KEY", "--users", "30", "--format", "json"
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["p50Ms"] >= 400 and document["p95Ms"] >= 400
    assert document["errorRate"] == 0, document["errors"]
    rows = {r["metric"]: r["outcome"] for r in document["gate"]}
    assert rows == {"loadTestP95Ms": "FAIL", "loadTestErrorRate": "PASS"}


def test_a_share_of_server_errors_shows_as_the_error_rate_with_an_entra_token(tmp_path: Path, mlflow_uri: str) -> None:
    """The library path of an aad_token endpoint: the token comes from the credential."""
    project = load_test_project(
        tmp_path / "aad", load_test={"users": 4, "durationSeconds": 2, "minRequests": 10}, auth_mode="aad_token"
    )

    class Credential:
        def get_token(self, scope: str):
            assert scope == "https://ml.azure.com/.default"
            return type("Token", (), {"token": "entra-token-abc"})()

    with ScoringServer(token="entra-token-abc", deployment="green", delay_ms=5, fail_every=2) as server:
        target = resolve_target("prod", ENDPOINT, "green", scoring_uri=server.url, project_dir=project)
        header, how = authorization(target.endpoint, None, {}, credential=Credential())
        measured = drive(target, read_bodies(project / "loadtest" / "requests.jsonl"), header)
    assert how == "entra-token"
    # Every second accepted request fails; only the few abandoned at the end can skew the share.
    assert measured.requests >= 40
    assert abs(measured.error_rate - 0.5) <= 4 / measured.requests
    assert measured.statuses["500"] == measured.failures
    run_id = log_load_test(mlflow_uri, EXPERIMENT, target, measured, started=dt.datetime.now(dt.timezone.utc), params={})
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    rows, _ = gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri)
    assert {r.name: r.outcome for r in rows}["loadTestErrorRate"] is Outcome.FAIL
    assert t.client(mlflow_uri).get_run(run_id).data.metrics[t.METRIC_LOADTEST_ERROR_RATE] == measured.error_rate


def test_refused_credentials_exit_1_and_log_nothing(project: Path, mlflow_uri: str) -> None:
    with ScoringServer(token="another-key", deployment="green") as server:
        result = loadtest(project, mlflow_uri, "--scoring-uri", server.url, "--key-env", "AML_KEY", "--duration", "2")
    assert result.exit_code == 1, result.output
    assert "refused the credentials" in result.stderr and KEY not in result.output
    assert server.statuses.get(401, 0) > 0 and loadtest_runs(mlflow_uri) == []


def test_an_unreachable_scoring_uri_exits_1_and_logs_nothing(project: Path, mlflow_uri: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/score"
        result = loadtest(project, mlflow_uri, "--scoring-uri", url, "--key-env", "AML_KEY", "--duration", "2")
    assert result.exit_code == 1, result.output
    assert "never answered" in result.stderr and loadtest_runs(mlflow_uri) == []


@pytest.mark.parametrize(
    ("args", "key", "edit", "message"),
    [
        (["--requests-file", "missing.jsonl"], KEY, None, "--requests-file: missing.jsonl does not exist"),
        ([], KEY, "malformed", "--requests-file: line 3 of requests.jsonl is not JSON"),
        ([], KEY, "empty", "--requests-file: requests.jsonl holds no request body"),
        (["-d", "purple"], KEY, None, "--deployment: 'purple' is not a deployment of credit-risk-endpoint (declared: blue, green)"),
        (["-e", "nope"], KEY, None, "--endpoint: 'nope' is not an online endpoint"),
        ([], None, None, "--key-env: environment variable AML_KEY is not set or empty"),
        (["--scoring-uri", "http://10.0.0.4/score"], KEY, None, "--scoring-uri: plain http is allowed only to 127.0.0.1"),
        (["--scoring-uri", "ftp://host/score"], KEY, None, "--scoring-uri: 'ftp://host/score' is not an http(s) URL"),
        (["--key-env", "1BAD"], KEY, None, "--key-env: '1BAD' is not an environment variable name"),
    ],
)
def test_bad_input_exits_2_with_one_line(project: Path, mlflow_uri: str, args, key, edit, message) -> None:
    sample = project / "loadtest" / "requests.jsonl"
    if edit == "malformed":
        sample.write_text('{"income": 1}\n\n{"income": \n{"income": 2}\n')
    elif edit == "empty":
        sample.write_text("\n  \n")
    base = ["--scoring-uri", "http://127.0.0.1:9/score", "--key-env", "AML_KEY"]
    result = loadtest(project, mlflow_uri, *base, *args, key=key)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert loadtest_runs(mlflow_uri) == []


def test_key_auth_needs_key_env_and_the_requests_file_has_no_default(tmp_path: Path, mlflow_uri: str) -> None:
    project = load_test_project(tmp_path / "p", load_test=None)
    result = loadtest(project, mlflow_uri, "--scoring-uri", "http://127.0.0.1:9/score", "--requests-file", "x.jsonl")
    assert result.exit_code == 2
    assert result.output.strip() == "error: --requests-file: x.jsonl does not exist"
    sample = str(project / "loadtest" / "requests.jsonl")
    result = loadtest(project, mlflow_uri, "--scoring-uri", "http://127.0.0.1:9/score", "--requests-file", sample)
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: --key-env: endpoint credit-risk-endpoint uses authMode key;")
    result = loadtest(project, mlflow_uri, "--scoring-uri", "http://127.0.0.1:9/score", "--key-env", "AML_KEY")
    assert result.exit_code == 2 and result.output.strip().startswith("error: --requests-file: required")


def test_out_of_range_config_and_options_are_refused(tmp_path: Path, mlflow_uri: str) -> None:
    project = load_test_project(tmp_path / "p", load_test={"users": 5000, "durationSeconds": 0})
    result = loadtest(project, mlflow_uri, "--key-env", "AML_KEY")
    assert result.exit_code == 2
    assert "loadTest.users" in result.output and "loadTest.durationSeconds" in result.output
    project = load_test_project(tmp_path / "q", load_test={})
    result = loadtest(project, mlflow_uri, "--key-env", "AML_KEY", "--users", "0")
    assert result.exit_code == 2 and "--users" in result.output


def test_the_scoring_uri_defaults_to_the_endpoint_azure_serves(project: Path) -> None:
    target = resolve_target("prod", ENDPOINT, "green", project_dir=project)
    assert target.url_derived
    assert target.url == "https://azml-prd-credit-risk-endpoint.westeurope.inference.ml.azure.com/score"


# --- the gate rows, over runs logged straight into the store ---------------------------------

def result(p95: float, error_rate: float, requests: int, rps: float = 50.0) -> LoadResult:
    failures = round(error_rate * requests)
    return LoadResult(requests, failures, p95 / 2, p95, p95 * 1.2, rps, 10.0, {"200": requests - failures}, [])


def log(project: Path, uri: str, measured: LoadResult, *, started: dt.datetime, deployment: str = "green") -> None:
    target = resolve_target("prod", ENDPOINT, deployment, scoring_uri="https://x.example/score", project_dir=project)
    log_load_test(uri, EXPERIMENT, target, measured, started=started, params={})


NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def outcomes(project: Path, uri: str, at: dt.datetime = NOW) -> dict[str, tuple[Outcome, float | None]]:
    rows, triggers = gate_rows(resolve_release("prod", ENDPOINT, "green", None, project), at=at, tracking_uri=uri)
    assert triggers == ()
    return {r.name: (r.outcome, r.value) for r in rows}


def test_gate_rows_read_the_newest_recent_load_test_of_the_canary(project: Path, mlflow_uri: str) -> None:
    inconclusive = {"loadTestP95Ms": (Outcome.INCONCLUSIVE, None), "loadTestErrorRate": (Outcome.INCONCLUSIVE, None)}
    assert outcomes(project, mlflow_uri) == inconclusive  # no experiment yet
    log(project, mlflow_uri, result(100, 0.0, 800), started=NOW - dt.timedelta(minutes=61))  # too old (maxAge 60)
    log(project, mlflow_uri, result(100, 0.0, 800), started=NOW - dt.timedelta(minutes=5), deployment="blue")
    assert outcomes(project, mlflow_uri) == inconclusive
    log(project, mlflow_uri, result(100, 0.0, 8), started=NOW - dt.timedelta(minutes=30))  # too few requests
    assert {k: o for k, (o, _) in outcomes(project, mlflow_uri).items()} == {
        "loadTestP95Ms": Outcome.INCONCLUSIVE, "loadTestErrorRate": Outcome.INCONCLUSIVE
    }
    log(project, mlflow_uri, result(120, 0.01, 800), started=NOW - dt.timedelta(minutes=20))
    assert outcomes(project, mlflow_uri) == {"loadTestP95Ms": (Outcome.PASS, 120), "loadTestErrorRate": (Outcome.PASS, 0.01)}
    log(project, mlflow_uri, result(360, 0.05, 800), started=NOW - dt.timedelta(minutes=10))
    assert outcomes(project, mlflow_uri) == {"loadTestP95Ms": (Outcome.FAIL, 360), "loadTestErrorRate": (Outcome.FAIL, 0.05)}
    # As of before the failing test, the passing one was the newest.
    assert outcomes(project, mlflow_uri, NOW - dt.timedelta(minutes=15))["loadTestP95Ms"] == (Outcome.PASS, 120)


def test_a_load_test_of_another_model_version_does_not_count(project: Path, mlflow_uri: str) -> None:
    log(project, mlflow_uri, result(100, 0.0, 800), started=NOW - dt.timedelta(minutes=5))
    assert outcomes(project, mlflow_uri)["loadTestP95Ms"][0] is Outcome.PASS
    stack = project / "Pulumi.prod.yaml"
    green_model = '{name: credit-risk, version: "4", registry: azml-models}'
    assert stack.read_text().count(green_model) == 1
    stack.write_text(stack.read_text().replace(green_model, '{name: credit-risk, version: "5", registry: azml-models}'))
    assert outcomes(project, mlflow_uri)["loadTestP95Ms"][0] is Outcome.INCONCLUSIVE


def test_own_thresholds_a_throughput_row_and_no_rows_without_config(tmp_path: Path, mlflow_uri: str) -> None:
    strict = load_test_project(
        tmp_path / "strict", load_test={"maxP95Ms": 100, "maxErrorRate": 0.001, "minRps": 80, "minRequests": 100}
    )
    log(strict, mlflow_uri, result(120, 0.01, 800, rps=60), started=NOW - dt.timedelta(minutes=5))
    assert outcomes(strict, mlflow_uri) == {
        "loadTestP95Ms": (Outcome.FAIL, 120), "loadTestErrorRate": (Outcome.FAIL, 0.01), "loadTestRps": (Outcome.FAIL, 60)
    }
    unset = load_test_project(tmp_path / "unset", load_test=None)
    assert outcomes(unset, mlflow_uri) == {}


def test_the_verdict_uses_the_rows(project: Path, mlflow_uri: str) -> None:
    passing = {
        t.METRIC_ACCURACY: Measure(0.9, 5000), t.METRIC_LATENCY_P95: Measure(100, 5000),
        t.METRIC_ERROR_RATE: Measure(0.001, 5000), t.METRIC_PSI: Measure(0.01, 5000), t.METRIC_PARITY: Measure(0.01, 5000),
    }
    release = resolve_release("prod", ENDPOINT, "green", None, project)

    def decision(at: dt.datetime) -> Decision:
        rows, triggers = gate_rows(release, at=at, tracking_uri=mlflow_uri)
        verdict = run_gate(
            release.config.release, stack="prod", endpoint=ENDPOINT, champion=Observation("blue", passing),
            canary=Observation("green", passing), phase="live", traffic={"blue": 90, "green": 10}, mirror_traffic={},
            stack_file_sha256="0" * 64, computed_at=at.isoformat(), extra_metrics=rows, extra_triggers=triggers,
        )
        return verdict.decision

    assert decision(NOW) is Decision.HOLD  # configured but never load-tested
    log(project, mlflow_uri, result(100, 0.0, 800), started=NOW - dt.timedelta(minutes=5))
    assert decision(NOW) is Decision.PROMOTE
    log(project, mlflow_uri, result(500, 0.0, 800), started=NOW - dt.timedelta(minutes=1))
    assert decision(NOW) is Decision.HOLD  # a slow load test holds, it does not roll back
