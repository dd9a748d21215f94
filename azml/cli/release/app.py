"""``azml release``: evaluate a canary, record observations, advance traffic, status."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..common import (
    EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, CommandError, ErrorGroup, OutputFormat, ProjectDir, TextJsonOrMarkdown, TrackingUri, fail,
)
from .traffic import register as register_traffic_commands
from .bandit import register as register_bandit
from .attribution import register as register_attribution
from .validation import register as register_validation
from .loadtest import register as register_loadtest
from .kpis import register as register_kpis
from .scoreboard import register as register_scoreboard

release_app = typer.Typer(
    # A tracking store that is refused or unreachable ends any release command with one line.
    cls=ErrorGroup,
    no_args_is_help=True,
    help="Release models: canary analysis, gate, ladder and rollback.\n\n"
    "The release controller: canary analysis, promotion gate, traffic ladder, rollback.",
)



def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(EXIT_INVALID_INPUT, [f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-11-26T09:00:00Z)"])
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def verdict_markdown(verdict: object) -> str:
    from ...release.evidence.verdict import Verdict

    assert isinstance(verdict, Verdict)
    lines = [
        f"**{verdict.decision.value}** — canary `{verdict.canary}` vs champion `{verdict.champion}` "
        f"on `{verdict.endpoint}` ({verdict.stack}, {verdict.phase} phase, window {verdict.window_minutes} min)",
        "",
        "| metric | value | threshold | result | n |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in verdict.table()]
    if verdict.rollback_triggers:
        lines += ["", "Rollback triggers:"] + [f"- {trigger}" for trigger in verdict.rollback_triggers]
    lines += ["", f"promotion_gate = `{verdict.gate_param()}` · MLflow run `{verdict.run_id}` · {verdict.computed_at}"]
    return "\n".join(lines) + "\n"


def _print_verdict(verdict: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from ...release.evidence.verdict import Decision, Verdict

    assert isinstance(verdict, Verdict)
    console = Console(width=120)
    colour = {Decision.PROMOTE: "green", Decision.HOLD: "yellow", Decision.ROLLBACK: "red"}[verdict.decision]
    console.print(
        f"[bold {colour}]{verdict.decision.value}[/] canary {verdict.canary} vs champion {verdict.champion} "
        f"on {verdict.endpoint} ({verdict.stack}, {verdict.phase} phase, window {verdict.window_minutes} min)"
    )
    table = Table("metric", "value", "threshold", "result", "n")
    for row in verdict.table():
        table.add_row(*row)
    console.print(table)
    for trigger in verdict.rollback_triggers:
        console.print(f"[red]rollback trigger[/]: {trigger}")
    for note in verdict.notes:
        console.print(f"note: {note}")
    console.print(f"promotion_gate={verdict.gate_param()} logged to MLflow run {verdict.run_id}")


@release_app.command()
def evaluate(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml) or path to a stack config file.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint (short name, as in the stack config).")],
    canary: Annotated[str, typer.Option("--canary", help="The deployment under evaluation.")],
    champion: Annotated[
        Optional[str], typer.Option("--champion", help="The deployment to beat (default: the other one with most live traffic).")
    ] = None,
    metrics_file: Annotated[
        Optional[Path], typer.Option("--metrics-file", help="JSON/CSV metrics file instead of the configured source.")
    ] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="End of the window, ISO 8601 (default: now).")] = None,
    output_format: TextJsonOrMarkdown = OutputFormat.text,
    require_evidence: Annotated[
        bool,
        typer.Option(
            "--require-evidence",
            help="Fail (exit 1) when the tracking store has never recorded an observation (no experiment), "
            "instead of holding for lack of data. For scheduled runs.",
        ),
    ] = False,
    monitor_results: Annotated[
        Optional[Path],
        typer.Option(
            "--monitor-results",
            help="The canary's Azure ML model monitor run: its data drift signal_metrics table (CSV, Parquet or "
            "JSON Lines). Adds the gate row monitorDataDrift; any breach holds the release.",
            dir_okay=False,
        ),
    ] = None,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run the promotion gate on the canary and log its verdict.

    Run the promotion gate on the canary and log the verdict to MLflow:
    PROMOTE, HOLD or ROLLBACK with a table of metric, value, threshold,
    result and sample size. Exit 0 whatever the verdict; 2 on bad input;
    1 when a source is unavailable (with --require-evidence: a store that
    never recorded an observation)."""
    from ...config import ConfigError
    from ...release.evidence.evaluate import EvaluationError, evaluate_release
    from ...release.evidence.observations import SourceUnavailable

    try:
        verdict = evaluate_release(
            stack, endpoint=endpoint, canary=canary, champion=champion, project_dir=project_dir,
            tracking_uri=tracking_uri, metrics_file=metrics_file, at=_parse_time(at, "--at"),
            require_evidence=require_evidence, monitor_results=monitor_results,
        )
    except (ConfigError, EvaluationError) as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    except SourceUnavailable as error:
        fail(EXIT_PROGRAM_ERROR, [f"{error}; no verdict was logged"])
    except CommandError as error:  # the tracking store refused or unreachable
        fail(error.exit_code, [f"{error}; no verdict was logged"])
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(verdict.to_json(), indent=2, sort_keys=True))
    elif output_format is OutputFormat.markdown:
        typer.echo(verdict_markdown(verdict), nl=False)
    else:
        _print_verdict(verdict)


@release_app.command()
def record(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml) or path to a stack config file.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online endpoint (short name).")],
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="The deployment that served these requests.")],
    requests: Annotated[Path, typer.Option("--requests", help="Request log, CSV or Parquet (one row per request).")],
    reference: Annotated[
        Optional[Path], typer.Option("--reference", help="Reference data (CSV/Parquet) for the inputs' PSI.")
    ] = None,
    features: Annotated[
        Optional[str], typer.Option("--features", help="Comma-separated input features (default: modelMonitoring.features).")
    ] = None,
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    prediction_column: Annotated[str, typer.Option("--prediction-column")] = "prediction",
    latency_column: Annotated[str, typer.Option("--latency-column")] = "latency_ms",
    status_column: Annotated[str, typer.Option("--status-column")] = "status_code",
    sensitive_column: Annotated[
        Optional[str], typer.Option("--sensitive-column", help="Group column for the demographic parity difference.")
    ] = None,
    positive_label: Annotated[str, typer.Option("--positive-label", help="Prediction value counted as selected.")] = "1",
    publish: Annotated[
        bool,
        typer.Option(
            "--publish-to-app-insights",
            help="After logging to MLflow, send the metrics as Application Insights custom metrics (the workbook's drift view).",
        ),
    ] = False,
    connection_string_env: Annotated[
        Optional[str],
        typer.Option(
            "--app-insights-connection-string-env", metavar="VAR",
            help="Environment variable holding the connection string (default: APPLICATIONINSIGHTS_CONNECTION_STRING).",
        ),
    ] = None,
    app_insights_auth: Annotated[
        Optional[str],
        typer.Option(
            "--app-insights-auth", metavar="key|entra",
            help="key: the connection string's instrumentation key (default); entra: DefaultAzureCredential token.",
        ),
    ] = None,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Measure one window of a deployment's requests into MLflow.

    Measure one window of a deployment's requests (accuracy, p95 latency,
    error rate, parity difference, input PSI) and log it as an observation
    run that `azml release evaluate` reads; with --publish-to-app-insights,
    also send the metrics to Application Insights."""
    from ..common import resolve_endpoint
    from ...release.reports.record import Columns, record_observation

    try:
        record_observation(
            lambda: resolve_endpoint(stack, endpoint, project_dir),
            endpoint=endpoint, deployment=deployment, requests=requests, reference=reference, features=features,
            columns=Columns(prediction_column, label_column, latency_column, status_column, sensitive_column, positive_label),
            publish=publish, connection_string_env=connection_string_env, app_insights_auth=app_insights_auth,
            tracking_uri=tracking_uri, echo=typer.echo,
        )
    except CommandError as error:  # RecordError's lines, or e.g. the tracking store of `--tracking-uri workspace`
        fail(error.exit_code, error.lines)


register_traffic_commands(release_app)
register_scoreboard(release_app)
register_kpis(release_app)
register_loadtest(release_app)
register_validation(release_app)
register_bandit(release_app)
register_attribution(release_app)
