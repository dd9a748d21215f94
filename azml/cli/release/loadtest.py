"""``azml release loadtest``: :func:`register` adds it to the ``release`` sub-app.

Exit codes: 0 measured and logged (whatever the numbers: the promotion gate
judges them); 1 no measurement (generator failed, credentials refused,
target unreachable, no token) or MLflow unreachable; 2 bad input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, ProjectDir, TextOrJson, TrackingUri, fail


_DEPLOYMENT_HELP = "The deployment to load (reached with the azureml-model-deployment header, whatever its share)."
_SCORING_URI_HELP = (
    "The endpoint's scoring URI (default: https://<endpoint>.<region>.inference.ml.azure.com/score from the stack; "
    "check with az ml online-endpoint show -n <name> --query scoring_uri)."
)
_KEY_ENV_HELP = (
    "Environment variable holding the endpoint key or token (required for authMode key and aml_token; "
    "aad_token default: a DefaultAzureCredential token)."
)
_REQUESTS_HELP = "JSONL of request bodies (default: azml:release.loadTest.requestsFile)."


def loadtest_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint (short name, as in the stack).")],
    deployment: Annotated[str, typer.Option("--deployment", "-d", help=_DEPLOYMENT_HELP)],
    scoring_uri: Annotated[Optional[str], typer.Option("--scoring-uri", help=_SCORING_URI_HELP)] = None,
    key_env: Annotated[Optional[str], typer.Option("--key-env", help=_KEY_ENV_HELP)] = None,
    requests_file: Annotated[Optional[Path], typer.Option("--requests-file", help=_REQUESTS_HELP)] = None,
    users: Annotated[
        Optional[int], typer.Option("--users", min=1, max=1000, help="Concurrent users (default: loadTest.users, 10).")
    ] = None,
    spawn_rate: Annotated[
        Optional[float],
        typer.Option("--spawn-rate", min=0.01, max=1000, help="Users started per second (default: loadTest.spawnRate, 10)."),
    ] = None,
    duration: Annotated[
        Optional[int],
        typer.Option("--duration", min=1, max=3600, help="Seconds, ramp-up included (default: loadTest.durationSeconds, 60)."),
    ] = None,
    output_format: TextOrJson = OutputFormat.text,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Load-test one deployment and log its latency to MLflow.

    Drive one deployment with locust for a bounded time and log p50/p95/p99
    latency, throughput and error rate to MLflow (a run of kind loadtest) for
    the promotion gate."""
    from ...config import ConfigError
    from ..common import tracking_store
    from ...release.evidence.loadtest import LoadTestError, LoadTestFailed, authorization, read_bodies, requests_path, resolve_target
    from ...release.evidence.verdict import utc_now

    overrides = {"users": users, "spawn_rate": spawn_rate, "duration_seconds": duration}
    try:
        target = resolve_target(
            stack, endpoint, deployment, scoring_uri=scoring_uri, project_dir=project_dir, overrides=overrides
        )
        path = requests_path(target, requests_file)
        bodies = read_bodies(path)
        header, auth = authorization(target.endpoint, key_env, os.environ)
    except (ConfigError, LoadTestError) as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    except LoadTestFailed as error:
        fail(EXIT_PROGRAM_ERROR, [str(error)])
    settings = target.settings
    typer.echo(
        f"load test: {settings.users} users (+{settings.spawn_rate:g}/s) for {settings.duration_seconds} s "
        f"on {target.endpoint.name}/{deployment} at {target.url}" + (" (derived from the stack)" if target.url_derived else ""),
        err=True,
    )
    from ...release.evidence.loadtest import drive, log_load_test

    started = utc_now()
    try:
        result = drive(target, bodies, header)
    except LoadTestFailed as error:
        fail(EXIT_PROGRAM_ERROR, [str(error)])
    del header  # the credential is not needed past the child process
    uri = tracking_store(target.config, target.stack_file.project_dir, tracking_uri)[0]
    params = {
        "users": str(settings.users), "spawn_rate": f"{settings.spawn_rate:g}",
        "duration_seconds": str(settings.duration_seconds), "request_timeout_seconds": f"{settings.request_timeout_seconds:g}",
        "requests_file": path.name, "request_bodies": str(len(bodies)), "scoring_uri": target.url, "auth": auth,
    }
    document = _document(target, result)
    try:
        document["runId"] = log_load_test(
            uri, target.config.release.metrics.experiment, target, result, started=started, params=params
        )
    except Exception as error:  # MLflow's failures have no common type beyond this
        _print(output_format, document)
        fail(EXIT_PROGRAM_ERROR, [f"MLflow {uri}: {type(error).__name__}: {error}; the load test was not logged"])
    _print(output_format, document)


def _document(target: Any, result: Any) -> dict[str, Any]:
    from ...release.evidence.loadtest import judge

    settings = target.settings
    n = result.requests
    gate = judge(target.config.release, p95_ms=result.p95_ms, error_rate=result.error_rate, rps=result.rps, requests=n)
    return {
        "stack": target.stack_file.stack, "endpoint": target.endpoint.name, "deployment": target.deployment,
        "model": target.model, "scoringUri": target.url, "users": settings.users, "spawnRate": settings.spawn_rate,
        "durationSeconds": settings.duration_seconds, "requests": n, "failures": result.failures,
        "errorRate": result.error_rate, "p50Ms": result.p50_ms, "p95Ms": result.p95_ms, "p99Ms": result.p99_ms,
        "rps": result.rps, "statuses": result.statuses, "errors": result.errors,
        "gate": [{"metric": r.name, "value": r.value, "threshold": r.threshold, "comparison": r.comparison,
                  "outcome": r.outcome.value, "n": r.n, "minN": r.min_n} for r in gate],
        "loadTestConfigured": target.config.release.load_test is not None,
        "runId": None,
    }


def _print(output_format: OutputFormat, document: dict[str, Any]) -> None:
    import json

    if output_format is OutputFormat.json:
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    table = Table("metric", "value")
    table.add_row("requests", f"{document['requests']} ({document['failures']} failed)")
    table.add_row("errorRate", f"{document['errorRate']:.4g}")
    for key in ("p50Ms", "p95Ms", "p99Ms"):
        table.add_row(key, f"{document[key]:.4g}")
    table.add_row("throughput (req/s)", f"{document['rps']:.4g}")
    console.print(table)
    statuses = sorted(document["statuses"].items())
    console.print("status codes: " + ", ".join(f"{'no response' if code == '0' else code}: {n}" for code, n in statuses))
    for error in document["errors"][:3]:
        console.print(f"error ({error['occurrences']}x): {error['error']}")
    gate = Table("gate row", "value", "threshold", "result", "n")
    for row in document["gate"]:
        gate.add_row(
            row["metric"], f"{row['value']:.4g}", f"{row['comparison']} {row['threshold']:g}", row["outcome"],
            f"{row['n']} (min {row['minN']})",
        )
    console.print(gate)
    if not document["loadTestConfigured"]:
        console.print("note: azml:release.loadTest is not set, so `azml release evaluate` does not use these rows")
    if document["runId"]:
        console.print(f"logged to MLflow run {document['runId']}")


def register(app: typer.Typer) -> None:
    """Add ``loadtest`` to the ``release`` sub-app."""
    app.command("loadtest")(loadtest_command)
