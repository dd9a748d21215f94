"""``azml lineage``: write a lineage record and, optionally, log it to MLflow.

The record itself (hashes, tags, reading and checking) is :mod:`azml.lineage`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, OutputFormat, TextOrJson, fail
from ..files import write_atomically
from ..naming import label
from ..lineage import (
    DEFAULT_ENV_LOCK,
    DEFAULT_OUT,
    LineageError,
    _display_path,
    build_record,
    data_entry,
    git_state,
    iso,
    parse_model,
    parse_time,
    sha256_file,
)


# --------------------------------------------------------------------------- MLflow


def _training_run_facts(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """Training accuracy (metric ``accuracy``) and end (or start) time of an MLflow run."""
    from .. import tracking

    run = tracking.client(tracking_uri).get_run(run_id)
    facts: dict[str, Any] = {}
    if "accuracy" in run.data.metrics:
        facts["accuracy"] = float(run.data.metrics["accuracy"])
    millis = run.info.end_time or run.info.start_time
    if millis:
        facts["trainedAt"] = iso(dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc))
    return facts


def log_record(tracking_uri: str, experiment: str, record: dict[str, Any], stack: str | None) -> str:
    """One kind=lineage run holding the record (params, tags, lineage.json artifact)."""
    from .. import tracking

    client = tracking.client(tracking_uri)
    model = label(record["model"]["name"], record["model"]["version"])
    tags = {tracking.TAG_KIND: tracking.KIND_LINEAGE, tracking.TAG_MODEL: model}
    if stack:
        tags[tracking.TAG_STACK] = stack
    run = client.create_run(tracking.experiment_id(client, experiment), tags=tags, run_name=f"lineage {model}")
    run_id = run.info.run_id
    training = record.get("training") or {}
    params = {
        "lineage_sha256": record["lineageSha256"],
        "data_sha256": record["dataSha256"],
        "env_lock_sha256": record["environment"]["sha256"],
        "git_commit": record["git"].get("commit") or "",
        "git_dirty": str(record["git"].get("dirty")),
        "training_run": training.get("run") or "",
        "trained_at": training.get("trainedAt") or "",
    }
    if training.get("accuracy") is not None:
        params["training_accuracy"] = repr(float(training["accuracy"]))
    for key, value in params.items():
        client.log_param(run_id, key, value)
    client.log_text(run_id, json.dumps(record, indent=2) + "\n", "lineage.json")
    client.set_terminated(run_id)
    return run_id


# --------------------------------------------------------------------------- the command



def lineage(
    model: Annotated[str, typer.Option("--model", help="The registered model version: NAME:VERSION.")],
    data: Annotated[
        list[Path],
        typer.Option("--data", help="Training data: a file, a directory, or DVC-tracked data (PATH.dvc beside it, or the .dvc file). Repeatable."),
    ],
    env_lock: Annotated[Path, typer.Option("--env-lock", help="Environment lock file whose sha256 is recorded.")] = Path(
        DEFAULT_ENV_LOCK
    ),
    training_run: Annotated[Optional[str], typer.Option("--training-run", help="Id of the run that trained the model.")] = None,
    training_accuracy: Annotated[
        Optional[float], typer.Option("--training-accuracy", help="Accuracy at training time, 0..1 (retrain check's baseline).")
    ] = None,
    trained_at: Annotated[
        Optional[str], typer.Option("--trained-at", help="When training finished, ISO 8601 (UTC if no offset).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the record.")] = Path(DEFAULT_OUT),
    tracking_uri: Annotated[
        Optional[str],
        typer.Option("--tracking-uri", help="Log a kind=lineage MLflow run there (and read --training-run's accuracy and time)."),
    ] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment of the lineage run.")] = "azml-lineage",
    stack: Annotated[Optional[str], typer.Option("--stack", help="Stack name tagged on the MLflow run.")] = None,
    output_format: TextOrJson = OutputFormat.text,
) -> None:
    """Write a model version's lineage record and its deployment tags.

    Write the lineage record of a model version (lineage.json) and print the
    deployment tags it yields. Paths in the record are relative to the
    current directory when inside it. Exit 2 on bad input (nothing written)."""
    base = Path.cwd()
    try:
        name_version = parse_model(model)
        if not data:
            raise LineageError("--data: give at least one training-data path")
        if training_accuracy is not None and not (math.isfinite(training_accuracy) and 0 <= training_accuracy <= 1):
            raise LineageError(f"--training-accuracy: expected a number in 0..1, got {training_accuracy}")
        trained = parse_time(trained_at, "--trained-at") if trained_at is not None else None
        if not env_lock.is_file():
            raise LineageError(f"--env-lock: no file {env_lock} (the environment lock, e.g. requirements.lock)")
        if out.exists() and out.is_dir():
            raise LineageError(f"--out: {out} is a directory")
        entries = [data_entry(path, base) for path in data]
        paths = [e["path"] for e in entries]
        if len(set(paths)) != len(paths):
            raise LineageError("--data: the same path is given twice")
    except LineageError as error:
        fail(EXIT_INVALID_INPUT, [str(error)])

    training: dict[str, Any] = {"run": training_run, "accuracy": training_accuracy, "trainedAt": iso(trained) if trained else None}
    resolved_uri = None
    if tracking_uri:
        from ..tracking import resolve_tracking_uri

        resolved_uri = resolve_tracking_uri(tracking_uri, base)
        if training_run and (training_accuracy is None or trained is None):
            try:
                facts = _training_run_facts(resolved_uri, training_run)
            except Exception as error:  # noqa: BLE001 - MLflow raises many kinds
                fail(EXIT_INVALID_INPUT, [f"--training-run {training_run}: not readable from {tracking_uri} ({_first_line(error)})"])
            for key, value in facts.items():
                if training.get(key) is None:
                    training[key] = value

    try:
        record = build_record(
            name_version,
            entries,
            git_state(base),
            (_display_path(env_lock, base), sha256_file(env_lock)),
            training,
            dt.datetime.now(dt.timezone.utc),
        )
    except LineageError as error:
        fail(EXIT_INVALID_INPUT, [str(error) if not str(error).startswith("tag training-run") else f"--training-run: {error}"])
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(out, text)
    run_id = None
    if resolved_uri:
        try:
            run_id = log_record(resolved_uri, experiment, record, stack)
        except Exception as error:  # noqa: BLE001
            fail(EXIT_PROGRAM_ERROR, [f"wrote {out} but could not log it to MLflow at {tracking_uri}: {_first_line(error)}"])

    if output_format is OutputFormat.json:
        typer.echo(text, nl=False)
        return
    typer.echo(f"Wrote {out}: lineage of {label(*name_version)} (lineage-sha256 {record['lineageSha256']})")
    if record["git"]["commit"] is None:
        typer.echo("note: not in a git work tree: no git-commit recorded")
    elif record["git"]["dirty"]:
        typer.echo("note: the work tree has uncommitted changes to tracked files (git-dirty: true)")
    if run_id:
        typer.echo(f"Logged MLflow run {run_id} (kind=lineage)")
    typer.echo("Deployment tags:")
    for key, value in record["tags"].items():
        typer.echo(f"  {key}: {value}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]
