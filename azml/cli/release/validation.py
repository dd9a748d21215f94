"""``azml release validate``: validate a batch against the deployment's model's
``azml:dataValidation`` before promotion; write the report under
``build/validation/`` and record it in MLflow (kind ``validation``), where the
promotion gate's ``dataValidation`` row reads it.

Exit codes: 0 passed, 1 failed (the report says why) or the MLflow store
could not be written, 2 bad input (nothing written or logged).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, ProjectDir, TextJsonOrMarkdown, TrackingUri, fail

if TYPE_CHECKING:
    from ...config import StackConfig
    from ...release.evidence.validation import ValidationReport

#: Where reports go, relative to the project: <endpoint>/<deployment>.json and .md.
REPORT_DIR = Path("build") / "validation"
from ...errors import EXIT_FAILED  # noqa: E402,F401



def write_report(report: "ValidationReport", directory: Path, stem: str) -> tuple[Path, Path]:
    """``<stem>.json`` and ``<stem>.md`` in ``directory``, each replaced atomically."""
    from ...files import write_atomically
    from ...release.evidence.validation import dumps

    json_path, markdown_path = directory / f"{stem}.json", directory / f"{stem}.md"
    write_atomically(json_path, dumps(report))
    write_atomically(markdown_path, report.to_markdown())
    return json_path, markdown_path


def log_validation(
    tracking_uri: str, experiment: str, report: "ValidationReport", *, stack: str, endpoint: str, deployment: str,
    model: str, at: dt.datetime | None = None,
) -> str:
    """Record ``report`` as a finished MLflow run; return its id. The report
    files are stored before the run is marked FINISHED (the gate only reads
    finished runs), so nobody acts on half a record."""
    from mlflow.entities import Metric, Param

    from ...drift.output.mlflow_log import metric_key
    from ... import tracking as t
    from ...release.evidence.validation import dumps

    client = t.client(tracking_uri)
    tags = {t.TAG_KIND: t.KIND_VALIDATION, t.TAG_STACK: stack, t.TAG_ENDPOINT: endpoint, t.TAG_DEPLOYMENT: deployment,
            t.TAG_MODEL: model}
    start = t.millis(at) if at is not None else None
    run = client.create_run(t.experiment_id(client, experiment), start_time=start, tags=tags,
                            run_name=f"validate {endpoint}/{deployment}")
    run_id = run.info.run_id
    try:
        counts = report.counts()
        metrics = [Metric(f"failures.{kind}", float(n), 0, 0) for kind, n in counts.items()]
        metrics += [Metric("failures_total", float(len(report.failures)), 0, 0), Metric("rows", float(report.rows), 0, 0)]
        for shift in report.distribution:
            if shift.psi is not None:
                metrics.append(Metric(metric_key("psi", shift.column), shift.psi, 0, 0))
            if shift.ks_pvalue is not None:
                metrics.append(Metric(metric_key("ks_pvalue", shift.column), shift.ks_pvalue, 0, 0))
        params = [Param("passed", "true" if report.passed else "false"), Param("batch", report.batch),
                  Param("reference", report.reference or "none"), Param("model_validation", report.model)]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_text(run_id, dumps(report), "validation.json")
        client.log_text(run_id, report.to_markdown(), "validation.md")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED", end_time=start)
    return run_id


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def _deployment(config: "StackConfig", endpoint: str, deployment: str, stack_name: str) -> Any:
    endpoints = {e.name: e for e in [*config.online_endpoints, *config.batch_endpoints]}
    if endpoint not in endpoints:
        fail(EXIT_INVALID_INPUT, [f"--endpoint: {endpoint!r} is not an endpoint of stack {stack_name} "
                                  f"(declared: {', '.join(endpoints) or 'none'})"])
    by_name = {d.name: d for d in endpoints[endpoint].deployments}
    if deployment not in by_name:
        fail(EXIT_INVALID_INPUT, [f"--deployment: {deployment!r} is not a deployment of {endpoint} "
                                  f"(declared: {', '.join(by_name)})"])
    return by_name[deployment]


def _show(report: "ValidationReport", output_format: OutputFormat) -> None:
    from ...release.evidence.validation import dumps

    if output_format is OutputFormat.json:
        typer.echo(dumps(report), nl=False)
    elif output_format is OutputFormat.markdown:
        typer.echo(report.to_markdown(), nl=False)
    else:
        typer.echo(report.to_text(), nl=False)


def validate_command(
    stack: Annotated[str, typer.Argument(help="Stack name (Pulumi.STACK.yaml beside Pulumi.yaml) or stack file path.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Endpoint (short name, as in the stack config).")],
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment whose model's checks apply.")],
    batch: Annotated[Path, typer.Option("--batch", help="The batch: CSV, TSV or Parquet.", dir_okay=False)],
    output_format: TextJsonOrMarkdown = (
        OutputFormat.text
    ),
    log: Annotated[bool, typer.Option("--log/--no-log", help="Record the report as a kind=validation MLflow run.")] = True,
    project_dir: ProjectDir = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Validate a batch against the model's data contract.

    Validate a batch against the schema and distribution limits the
    deployment's model declares under azml:dataValidation. Writes
    build/validation/<endpoint>/<deployment>.json and .md and logs an MLflow
    run the promotion gate reads. Exit 0 passed, 1 failed, 2 bad input."""
    from ...naming import model_label, model_name_version
    from ...release.evidence.validation import ValidationInputError, validate_batch
    from ..common import load_stack_or_fail, tracking_store

    stack_file, config = load_stack_or_fail(stack, project_dir)
    chosen = _deployment(config, endpoint, deployment, stack_file.stack)
    name, version = model_name_version(chosen.model)
    project = stack_file.project_dir
    try:
        report = validate_batch(config, name, batch, project)
    except ValidationInputError as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    moment = dt.datetime.now(dt.timezone.utc)
    report = report.with_context(stack=stack_file.stack, endpoint=endpoint, deployment=deployment,
                                 modelVersion=model_label(chosen.model), validatedAt=moment.isoformat())
    json_path, markdown_path = write_report(report, project / REPORT_DIR / endpoint, deployment)
    problems: list[str] = []
    run_id = None
    if log:
        uri, experiment = tracking_store(config, project, tracking_uri)
        try:
            run_id = log_validation(uri, experiment, report, stack=stack_file.stack,
                                    endpoint=endpoint, deployment=deployment, model=model_label(chosen.model), at=moment)
        except Exception as error:  # noqa: BLE001 - MLflow raises many kinds
            problems.append(f"could not log the validation to MLflow at {uri}: {_first_line(error)}")
    _show(report, output_format)
    if output_format is OutputFormat.text:
        typer.echo(f"report: {json_path} and {markdown_path.name}" + (f"; MLflow run {run_id}" if run_id else ""))
    if problems:
        fail(EXIT_PROGRAM_ERROR, problems)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def validate_before_retraining(config: "StackConfig", model_name: str, batch: Path, project_dir: Path, *, as_json: bool) -> None:
    """``azml retrain check --validate``: return when the batch passes; else
    show the report and exit 1 (2 on bad input) before anything is submitted."""
    from ...release.evidence.validation import ValidationInputError, dumps, validate_batch

    try:
        report = validate_batch(config, model_name, batch, project_dir, option="--validate")
    except ValidationInputError as error:
        fail(EXIT_INVALID_INPUT, error.problems)
    if report.passed:
        typer.echo(report.summary(), err=True)
        return
    typer.echo(dumps(report) if as_json else report.to_text(), nl=False)
    fail(EXIT_FAILED, [f"--validate: {batch.name} failed data validation; nothing submitted and no check recorded"])


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the ``release`` sub-app."""
    app.command("validate")(validate_command)
