"""``azml retrain check``: the command (registered as ``azml retrain``).

Exit codes: 0 no reason to retrain (every trigger measured), 4 at least one
reason (drift, performance, staleness; with ``--submit`` the job was
submitted or already existed), 5 inconclusive (no reason, but some trigger
could not be measured), 2 bad input (nothing submitted or logged), 1 the
tracking store or the submission failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import EXIT_PROGRAM_ERROR, CommandError, OutputFormat, TextOrJson, fail
from ..retrain.triggers import Status

#: A retraining reason was found.
from ..errors import EXIT_RETRAIN  # noqa: E402,F401
#: No reason found, but at least one trigger could not be measured.
from ..errors import EXIT_INCONCLUSIVE  # noqa: E402,F401

retrain_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Retraining triggers: drift, performance, staleness.",
)


@retrain_app.callback()
def _retrain() -> None:
    """Subcommands: check."""


@retrain_app.command("check")
def check(
    stack: Annotated[str, typer.Argument(help="Stack name (reads Pulumi.STACK.yaml) or path to a stack config file.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Online or batch endpoint (short name from the stack config).")],
    deployment: Annotated[
        Optional[str], typer.Option("--deployment", "-d", help="Deployment (default: the one with most live traffic; batch: the default).")
    ] = None,
    drift_report: Annotated[
        Optional[Path], typer.Option("--drift-report", help="Report written by `azml drift` (default: latest kind=drift MLflow run).", dir_okay=False)
    ] = None,
    monitor_results: Annotated[
        Optional[Path],
        typer.Option(
            "--monitor-results",
            help="The Azure ML model monitor run's data drift signal_metrics table (CSV, Parquet or JSON Lines); "
            "used instead of an azml drift report.",
            dir_okay=False,
        ),
    ] = None,
    lineage: Annotated[
        Optional[Path],
        typer.Option("--lineage", help="lineage.json: training time and accuracy (default: the deployment's configured lineage, else MLflow).", dir_okay=False),
    ] = None,
    accuracy: Annotated[
        Optional[float], typer.Option("--accuracy", help="Live accuracy measured elsewhere, 0..1 (instead of MLflow observations); needs --accuracy-n.")
    ] = None,
    accuracy_n: Annotated[Optional[int], typer.Option("--accuracy-n", help="Labelled predictions behind --accuracy.")] = None,
    tracking_uri: Annotated[
        Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default: azml:release.metrics.trackingUri).")
    ] = None,
    experiment: Annotated[
        Optional[str],
        typer.Option("--experiment", help="Read and log in this experiment only (default: read all, log in azml:release.metrics.experiment)."),
    ] = None,
    now: Annotated[Optional[str], typer.Option("--now", help="Check time, ISO 8601 (default: now; UTC if no offset).")] = None,
    submit: Annotated[bool, typer.Option("--submit", help="On a reason, submit the retraining pipeline (once per reason set and day).")] = False,
    training_data: Annotated[
        Optional[str], typer.Option("--training-data", help="With --submit: the pipeline's training_data input (azureml:// or https URI).")
    ] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Record the check as a kind=retrain MLflow run.")] = True,
    validate: Annotated[
        Optional[Path], typer.Option("--validate", help="First validate this batch (azml:dataValidation); a failure exits 1 before anything is submitted.", dir_okay=False)
    ] = None,
    project_dir: Annotated[
        Optional[Path], typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found from cwd).")
    ] = None,
    output_format: TextOrJson = OutputFormat.text,
) -> None:
    """Decide whether the deployed model needs retraining.

    Decide whether the deployed model needs retraining: drift (any PSI >
    maxPsi), performance (accuracy drop > maxAccuracyDrop), staleness (trained
    more than maxModelAgeDays ago); thresholds from azml:retraining.triggers.
    Exit 0 none, 4 reason found, 5 inconclusive, 2 bad input, 1 failure."""
    from .common import load_stack_or_fail

    from ..retrain.check import run_check

    stack_file, config = load_stack_or_fail(stack, project_dir)

    def validate_batch(model_name: str) -> None:
        from .release.validation import validate_before_retraining

        assert validate is not None
        validate_before_retraining(config, model_name, validate, stack_file.project_dir, as_json=output_format is OutputFormat.json)

    try:
        result = run_check(
            stack_file, config, endpoint=endpoint, deployment=deployment, drift_report=drift_report,
            monitor_results=monitor_results, lineage=lineage, accuracy=accuracy, accuracy_n=accuracy_n,
            tracking_uri=tracking_uri, experiment=experiment, now=now, submit=submit, training_data=training_data,
            log=log, validate=validate_batch if validate is not None else None,
        )
    except CommandError as error:  # CheckError's lines, or one line
        fail(error.exit_code, error.lines)
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(result.document, indent=2))
    else:
        for line in result.text():
            typer.echo(line)
    if result.problems:
        fail(EXIT_PROGRAM_ERROR, result.problems)
    if result.decision.status is Status.RETRAIN:
        raise typer.Exit(EXIT_RETRAIN)
    if result.decision.status is Status.INCONCLUSIVE:
        raise typer.Exit(EXIT_INCONCLUSIVE)
