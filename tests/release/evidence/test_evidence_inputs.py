"""Evidence stores and inputs: the real `azml` program, run as a subprocess,
refuses each bad metrics file, request log, tracking URI, unreachable
tracking server and drift option with one `error:` line, the documented exit
code, no traceback, no hang and nothing written."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from azml import tracking as t
from azml.release.evidence.observations import Measure, ObservationError
from azml.release.evidence.sources import log_observation

from ...conftest import AZML
from ...release_support import ENDPOINT, canary_project

#: Generous: the old behaviour took minutes (MLflow's retries), a refusal takes seconds.
TIMEOUT = 60
EXPERIMENT = "credit-risk-release"


@dataclass
class Env:
    root: Path
    project: Path
    closed_url: str  # nothing listens there: connections are refused
    silent_url: str  # accepts connections, never answers

    @property
    def store_uri(self) -> str:
        """A sqlite store in an existing directory, not created yet."""
        return f"sqlite:///{self.root / 'store' / 'mlruns.db'}"

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Env], list[str]]
    code: int
    message: str | tuple[str, ...]  # the error line holds this (or one of these)


def evaluate(env: Env, *extra: str, uri: str | None = None) -> list[str]:
    return ["release", "evaluate", "prod", "--project-dir", str(env.project), "-e", ENDPOINT, "--canary", "green",
            "--tracking-uri", uri or env.store_uri, *extra]


def metrics_file(name: str, content: str | bytes) -> Callable[[Env], list[str]]:
    return lambda env: evaluate(env, "--metrics-file", str(env.write(name, content)))


def record(env: Env, log: Path | None = None, uri: str | None = None) -> list[str]:
    log = log or env.write("good.csv", "prediction,label,latency_ms,status_code\n1,1,10,200\n0,0,12,200\n")
    return ["release", "record", "prod", "--project-dir", str(env.project), "-e", ENDPOINT, "-d", "green",
            "--requests", str(log), "--tracking-uri", uri or env.store_uri]


def request_log(rows: str) -> Callable[[Env], list[str]]:
    return lambda env: record(env, env.write("requests.csv", "prediction,label,latency_ms,status_code\n" + rows))


def drift(env: Env, *extra: str) -> list[str]:
    reference = env.write("reference.csv", "age,segment\n" + "".join(f"{20 + i % 40},{'ab'[i % 2]}\n" for i in range(200)))
    return ["drift", "-r", str(reference), "-c", str(reference), "--out", str(env.root / "report"), *extra]


def with_tracking_uri_in_stack(value: str, command: Callable[[Env], list[str]]) -> Callable[[Env], list[str]]:
    """The stack file's azml:release.metrics.trackingUri set to ``value`` (a YAML scalar)."""

    def build(env: Env) -> list[str]:
        stack = env.project / "Pulumi.prod.yaml"
        text = stack.read_text(encoding="utf-8")
        assert "trackingUri: sqlite:///mlruns.db" in text
        stack.write_text(text.replace("trackingUri: sqlite:///mlruns.db", f"trackingUri: {value}"), encoding="utf-8")
        return [a for a in command(env)]

    return build


def without_tracking_uri(args: list[str]) -> list[str]:
    index = args.index("--tracking-uri")
    return args[:index] + args[index + 2:]


CSV = "deployment,metric,value,n\n"
CASES = [
    # Metrics files (`evaluate --metrics-file`): JSON refused a negative size, CSV read it as 0.
    Case("csv-negative-n", metrics_file("m.csv", CSV + "green,accuracy,0.9,-5\n"), 2, "m.csv:2: green.accuracy_n: must be a finite whole number >= 0 (got -5.0)"),
    Case("csv-infinity-n", metrics_file("m.csv", CSV + "green,accuracy,0.9,Infinity\n"), 2, "accuracy_n: must be a finite whole number >= 0 (got inf)"),
    Case("csv-1e400-n", metrics_file("m.csv", CSV + "green,accuracy,0.9,1e400\n"), 2, "accuracy_n: must be a finite whole number >= 0 (got inf)"),
    Case("csv-nan-value", metrics_file("m.csv", CSV + "green,latency_p95_ms,nan,100\n"), 2, "latency_p95_ms: must be a finite number (got nan)"),
    Case("json-infinity-n", metrics_file("m.json", '{"deployments": {"green": {"accuracy": 0.9, "accuracy_n": Infinity}}}'), 2, "deployments.green.accuracy_n: must be a finite whole number >= 0 (got inf)"),
    Case("json-1e400-n", metrics_file("m.json", '{"deployments": {"green": {"accuracy": 0.9, "accuracy_n": 1e400}}}'), 2, "deployments.green.accuracy_n: must be a finite whole number >= 0 (got inf)"),
    Case("json-huge-integer-n", metrics_file("m.json", '{"deployments": {"green": {"accuracy": 0.9, "accuracy_n": 1' + "0" * 400 + "}}}"), 2, "accuracy_n: must be a finite whole number >= 0"),
    Case("json-nan-latency", metrics_file("m.json", '{"deployments": {"green": {"latency_p95_ms": NaN, "requests": 100}}}'), 2, "latency_p95_ms: must be a finite number (got nan)"),
    Case("json-negative-latency", metrics_file("m.json", '{"deployments": {"green": {"latency_p95_ms": -5, "requests": 100}}}'), 2, "latency_p95_ms: must be >= 0 (got -5)"),
    Case("json-not-utf8", metrics_file("m.json", b'{"deployments": {"gr\xe9en": {}}}'), 2, "m.json: not UTF-8 text (byte 0xe9 at offset 20)"),
    Case("csv-not-utf8", metrics_file("m.csv", b"deployment,metric,value,n\n\xffgreen,accuracy,0.9,10\n"), 2, "m.csv: not UTF-8 text (byte 0xff at offset 26)"),
    Case("json-100000-deep", metrics_file("m.json", "[" * 100_000 + "]" * 100_000), 2, "m.json: nested too deeply to be a metrics file"),
    # Request logs (`record`): a bad latency or status is refused before anything is logged.
    Case("record-negative-latency", request_log("1,1,10,200\n0,0,-5,200\n"), 2, "--latency-column 'latency_ms': data row 2 has -5"),
    Case("record-empty-latency", request_log("1,1,10,200\n0,0,,200\n"), 2, "--latency-column 'latency_ms': data row 2 has an empty cell"),
    Case("record-nan-latency", request_log("1,1,NaN,200\n0,0,12,200\n"), 2, "--latency-column 'latency_ms': data row 1 has an empty cell"),
    Case("record-infinite-latency", request_log("1,1,10,200\n0,0,inf,200\n"), 2, "--latency-column 'latency_ms': data row 2 has inf"),
    Case("record-text-latency", request_log("1,1,slow,200\n0,0,12,200\n"), 2, "--latency-column 'latency_ms': data row 1 has 'slow'"),
    Case("record-status-zero", request_log("1,1,10,0\n0,0,12,200\n"), 2, "--status-column 'status_code': data row 1 has 0"),
    Case("record-missing-status", request_log("1,1,10,200\n0,0,12,\n"), 2, "--status-column 'status_code': data row 2 has an empty cell"),
    Case("record-header-only", request_log(""), 2, "--requests: requests.csv has no request rows (only a header, or nothing); nothing was logged"),
    Case("record-nul-latency", request_log("1,1,\x00,200\n"), 2, "--latency-column 'latency_ms': data row 1 has"),
    # Tracking URIs.
    Case("nul-in-stack-uri-evaluate", with_tracking_uri_in_stack('"sqlite:///ml\\0runs.db"', lambda env: without_tracking_uri(evaluate(env))), 2, ("\\x00", "trackingUri")),
    Case("nul-in-stack-uri-status", with_tracking_uri_in_stack('"sqlite:///ml\\0runs.db"', lambda env: ["release", "status", "prod", "--project-dir", str(env.project)]), 2, ("\\x00", "trackingUri")),
    Case("nul-in-stack-uri-record", with_tracking_uri_in_stack('"sqlite:///ml\\0runs.db"', lambda env: without_tracking_uri(record(env))), 2, ("\\x00", "trackingUri")),
    Case("sqlite-missing-dir-evaluate", lambda env: evaluate(env, uri=f"sqlite:///{env.root / 'nowhere' / 'deeper' / 'mlruns.db'}"), 2, "/nowhere/deeper does not exist (azml does not create it)"),
    Case("sqlite-missing-dir-record", lambda env: record(env, uri=f"sqlite:///{env.root / 'nowhere' / 'mlruns.db'}"), 2, "/nowhere does not exist (azml does not create it)"),
    Case("sqlite-missing-dir-drift", lambda env: drift(env, "--tracking-uri", f"sqlite:///{env.root / 'nowhere' / 'mlruns.db'}"), 2, "/nowhere does not exist (azml does not create it)"),
    Case("sqlite-missing-dir-in-stack", with_tracking_uri_in_stack("sqlite:///nowhere/mlruns.db", lambda env: without_tracking_uri(evaluate(env))), 2, "project/nowhere does not exist"),
    Case("invalid-url-drift", lambda env: drift(env, "--tracking-uri", "http://[::1"), 2, "tracking URI http://[::1: not a valid URL; set --tracking-uri"),
    Case("refused-port-evaluate", lambda env: evaluate(env, uri=env.closed_url), 1, "is unreachable: Connection refused; no verdict was logged"),
    Case("refused-port-record", lambda env: record(env, uri=env.closed_url), 1, "is unreachable: Connection refused; nothing was logged"),
    Case("refused-port-drift", lambda env: drift(env, "--tracking-uri", env.closed_url), 1, "is unreachable: Connection refused; nothing was written"),
    Case("refused-port-advance", lambda env: ["release", "advance", "prod", "--project-dir", str(env.project), "-e", ENDPOINT, "--tracking-uri", env.closed_url], 1, "is unreachable: Connection refused"),
    Case("silent-server-evaluate", lambda env: evaluate(env, uri=env.silent_url), 1, "is unreachable: no answer within"),
    Case("silent-server-drift", lambda env: drift(env, "--tracking-uri", env.silent_url), 1, "is unreachable: no answer within"),
    # `azml drift` options.
    Case("drift-bins-1", lambda env: drift(env, "--bins", "1", "--no-log"), 2, "--bins: 1 is not in 2..1000"),
    Case("drift-bins-1e9", lambda env: drift(env, "--bins", "1000000000", "--no-log"), 2, "--bins: 1000000000 is not in 2..1000"),
    Case("drift-bins-1e23", lambda env: drift(env, "--bins", str(10**23), "--no-log"), 2, f"--bins: {10**23} is not in 2..1000"),
    Case("drift-chunk-rows-1e23", lambda env: drift(env, "--chunk-rows", str(10**23), "--no-log"), 2, f"--chunk-rows: {10**23} is not in 1..100000000"),
    Case("drift-threshold-nan", lambda env: drift(env, "--threshold", "nan", "--no-log"), 2, "--threshold: nan is not a PSI limit (finite, > 0, <= 1)"),
    Case("drift-threshold-inf", lambda env: drift(env, "--threshold", "inf", "--no-log"), 2, "--threshold: inf is not a PSI limit (finite, > 0, <= 1)"),
    Case("drift-threshold-0", lambda env: drift(env, "--threshold", "0", "--no-log"), 2, "--threshold: 0 is not a PSI limit (finite, > 0, <= 1)"),
    Case("drift-out-is-a-file", lambda env: drift(env, "--no-log", "--out", str(env.write("report.txt", "mine"))), 2, "report.txt: is a file, not a directory; nothing was written"),
    Case("drift-out-under-a-file", lambda env: drift(env, "--no-log", "--out", str(env.write("report.txt", "mine") / "sub")), 2, "report.txt is a file, not a directory; nothing was written"),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a digest of its content."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def env(tmp_path: Path, closed_url: str, silent_url: str) -> Env:
    project = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    (tmp_path / "store").mkdir()
    return Env(tmp_path, project, closed_url, silent_url)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AZML), *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_evidence_is_refused_in_one_line_and_nothing_is_written(env: Env, case: Case) -> None:
    args = case.args(env)
    before = snapshot(env.root)
    result = run(args, cwd=env.root)
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    expected = case.message if isinstance(case.message, tuple) else (case.message,)
    assert any(text in errors[0] for text in expected), errors[0]
    assert snapshot(env.root) == before


def test_status_of_an_unreachable_server_ends_fast_naming_it(env: Env) -> None:
    # `release status` read the store once per endpoint and once for the error budget:
    # 494 s under MLflow's default retries. The server is asked once per command.
    result = run(["release", "status", "prod", "--project-dir", str(env.project), "--tracking-uri", env.silent_url], env.root)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors and all(line.startswith("error: ") and env.silent_url in line for line in errors), result.stderr
    assert "blue 90%, green 10%" in result.stdout  # the split is still shown


def test_the_users_own_http_bounds_are_kept(env: Env) -> None:
    import os

    result = subprocess.run(
        [str(AZML), *evaluate(env, uri=env.silent_url)], cwd=env.root, capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "1"},
    )
    assert result.returncode == 1
    assert "no answer within 1 s" in result.stderr, result.stderr


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    """A web server at the tracking URI that is not an MLflow server: 404 for all."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_answers_but_is_not_mlflow_fails_in_one_line(env: Env) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run(evaluate(env, uri=url), env.root)
    finally:
        server.shutdown()
        thread.join()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: the MLflow tracking store {url} failed:"), result.stderr


def test_credentials_in_a_tracking_uri_stay_out_of_messages() -> None:
    assert t.display_uri("https://ci:s3cret@mlflow.example.com/") == "https://***@mlflow.example.com/"
    assert t.display_uri("sqlite:///a\x00b.db") == "sqlite:///a\\x00b.db"


@pytest.mark.parametrize(
    ("metric", "value", "n", "message"),
    [
        (t.METRIC_LATENCY_P95, -5.0, 100, "latency_p95_ms: must be >= 0"),
        (t.METRIC_LATENCY_P95, float("nan"), 100, "latency_p95_ms: must be a finite number"),
        (t.METRIC_LATENCY_P95, float("inf"), 100, "latency_p95_ms: must be a finite number"),
        (t.METRIC_ACCURACY, 0.9, -1, "accuracy_n: must be a finite whole number >= 0"),
        (t.METRIC_ERROR_RATE, 1.5, 100, "error_rate: must lie in 0..1"),
    ],
)
def test_a_bad_observation_is_refused_before_a_run_is_created(
    mlflow_uri: str, metric: str, value: float, n: int, message: str
) -> None:
    with pytest.raises(ObservationError, match=message):
        log_observation(
            mlflow_uri, EXPERIMENT, stack="prod", endpoint=ENDPOINT, deployment="green",
            measures={t.METRIC_ACCURACY: Measure(0.9, 100), metric: Measure(value, n)},
        )
    client = t.client(mlflow_uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    assert found is None or client.search_runs([found.experiment_id]) == []


def test_a_bad_run_logged_by_another_tool_names_the_run_to_delete(env: Env, mlflow_uri: str) -> None:
    client = t.client(mlflow_uri)
    run_id = client.create_run(
        t.experiment_id(client, EXPERIMENT),
        tags={t.TAG_KIND: t.KIND_OBSERVATION, t.TAG_STACK: "prod", t.TAG_ENDPOINT: ENDPOINT, t.TAG_DEPLOYMENT: "green"},
    ).info.run_id
    client.log_metric(run_id, t.METRIC_LATENCY_P95, -5.0)
    client.log_metric(run_id, t.METRIC_REQUESTS, 100.0)
    client.set_terminated(run_id)
    result = run(evaluate(env, uri=mlflow_uri), env.root)
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and f"run {run_id}.latency_p95_ms: must be >= 0" in errors[0], result.stderr
    assert "delete that run or move the window with --at" in errors[0]


def test_record_counts_a_labelled_request_without_a_prediction_as_wrong(env: Env, mlflow_uri: str) -> None:
    # Dropping the row would raise accuracy; and the missing cell makes pandas read the
    # predictions as floats, which must still match integer labels (1.0 == 1).
    log = env.write("requests.csv", "prediction,label,latency_ms,status_code\n1,1,10,200\n,1,11,200\n0,0,12,200\n1,0,13,200\n")
    result = run(record(env, log, uri=mlflow_uri), env.root)
    assert result.returncode == 0, result.stderr
    assert "note: accuracy: 1 labelled request(s) without a prediction counted as wrong" in result.stdout
    client = t.client(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 1
    assert runs[0].data.metrics[t.METRIC_ACCURACY] == 0.5 and runs[0].data.metrics[t.METRIC_ACCURACY_N] == 4


def test_csv_rows_sharing_a_sample_size_keep_the_larger(env: Env, mlflow_uri: str) -> None:
    rows = "".join(
        f"{name},latency_p95_ms,100,{n}\n{name},error_rate,0.001,{n * 2}\n{name},accuracy,0.9,{n}\n" for name, n in (("blue", 5000), ("green", 3000))
    )
    path = env.write("m.csv", CSV + rows)
    result = run(evaluate(env, "--metrics-file", str(path), "--format", "json", uri=mlflow_uri), env.root)
    assert result.returncode == 0, result.stderr
    metrics = {m["name"]: m for m in json.loads(result.stdout)["metrics"]}
    assert metrics["latencyP95Ms"]["n"] == 6000 and metrics["errorRate"]["n"] == 6000
