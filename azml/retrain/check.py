"""``azml retrain check``: from a stack, an endpoint and the evidence (drift
report or monitor results, lineage, MLflow observations) to the retraining
decision, its optional pipeline submission, its kind=retrain MLflow run and
the document the command prints. :mod:`azml.cli.retrain` only parses options,
calls :func:`run_check`, prints and exits."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, CommandErrors
from ..lineage import LineageError, iso, parse_time
from ..naming import label
from . import sources
from .triggers import Decision, Inputs, Status, Thresholds, decide


class CheckError(CommandErrors):
    """The check cannot be made: its lines (``error: <line>`` each) and exit code."""


@dataclass
class CheckResult:
    """What the command prints (the document as JSON, or :meth:`text`), then
    the problems (exit 1) or the decision's exit code."""

    document: dict[str, Any]
    decision: Decision
    problems: list[str] = field(default_factory=list)

    def text(self) -> list[str]:
        return _text(self.document, self.decision)


def run_check(
    stack_file: Any,
    config: Any,
    *,
    endpoint: str,
    deployment: str | None = None,
    drift_report: Path | None = None,
    monitor_results: Path | None = None,
    lineage: Path | None = None,
    accuracy: float | None = None,
    accuracy_n: int | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    now: str | None = None,
    submit: bool = False,
    training_data: str | None = None,
    log: bool = True,
    validate: Callable[[str], None] | None = None,
) -> CheckResult:
    """The retraining check of ``endpoint`` in the loaded stack. ``validate``,
    when given, is called with the model name before any evidence is read (it
    ends the command itself when the batch fails). Raises :class:`CheckError`
    (bad input: exit 2; MLflow unreadable: exit 1)."""
    from ..release.target import tracking_uri_of

    # ---- inputs that need nothing but the command line and the stack file
    endpoints = {e.name: e for e in config.batch_endpoints} | {e.name: e for e in config.online_endpoints}
    if endpoint not in endpoints:
        raise CheckError(EXIT_INVALID_INPUT, [
            f"--endpoint: {endpoint!r} is not an endpoint of stack {stack_file.stack} (declared: {', '.join(endpoints) or 'none'})"
        ])
    chosen = _pick_deployment(endpoints[endpoint], deployment, stack_file.stack)
    model = _model_of(chosen)
    model_label = label(*model)
    try:
        check_time = parse_time(now, "--now") if now is not None else dt.datetime.now(dt.timezone.utc)
    except LineageError as error:
        raise CheckError(EXIT_INVALID_INPUT, [str(error)])
    if (accuracy is None) != (accuracy_n is None):
        raise CheckError(EXIT_INVALID_INPUT, ["--accuracy and --accuracy-n go together (the value and its number of labelled predictions)"])
    if accuracy is not None and not (math.isfinite(accuracy) and 0 <= accuracy <= 1):
        raise CheckError(EXIT_INVALID_INPUT, [f"--accuracy: expected a number in 0..1, got {accuracy}"])
    if accuracy_n is not None and accuracy_n < 1:
        raise CheckError(EXIT_INVALID_INPUT, [f"--accuracy-n: expected a whole number >= 1, got {accuracy_n}"])
    project = stack_file.project_dir
    if validate is not None:
        validate(model[0])
    triggers = config.retraining.triggers
    thresholds = Thresholds(
        triggers.max_psi, triggers.max_accuracy_drop, triggers.max_model_age_days, config.release.min_samples.accuracy
    )

    submission = None
    if submit:
        from . import submission as submission_module
        from .submission import SubmissionError

        if not training_data or not training_data.strip():
            raise CheckError(EXIT_INVALID_INPUT, ["--submit needs --training-data URI (azureml://datastores/<ds>/paths/<file> or an https blob URL)"])
        try:
            settings_module, submit_module = submission_module.retraining_modules(project)
            workspace = submission_module.workspace_for(stack_file.config, config)
            settings = submission_module.settings_for(settings_module, workspace, config, project)
        except SubmissionError as error:
            raise CheckError(EXIT_INVALID_INPUT, [str(error)])
        submission = (submission_module, submit_module, settings, workspace)

    # ---- evidence from files
    if drift_report is not None and monitor_results is not None:
        raise CheckError(EXIT_INVALID_INPUT, ["--drift-report and --monitor-results: give one drift source"])
    try:
        drift = (
            sources.read_drift_report(drift_report, stack_file.stack, endpoint, chosen.name) if drift_report is not None else None
        )
        if monitor_results is not None:
            drift = sources.read_monitor_results(monitor_results)
        training = None
        if lineage is not None:
            training = sources.training_from_lineage(lineage, model, "--lineage")
        elif chosen.lineage is not None:
            configured = project / chosen.lineage
            training = sources.training_from_lineage(configured, model, f"{chosen.name}.lineage")
    except sources.SourceError as error:
        raise CheckError(EXIT_INVALID_INPUT, [str(error)])
    live = sources.AccuracyReading(accuracy, accuracy_n or 0, "--accuracy") if accuracy is not None else None

    # ---- evidence from MLflow
    uri = tracking_uri_of(config, project, tracking_uri)
    client = None
    if drift is None or live is None or training is None or log:
        from .. import tracking

        try:
            client = tracking.client(uri)
            ids = sources.experiment_ids(client, experiment)
            if drift is None:
                drift = sources.latest_drift_run(client, ids, stack_file.stack, endpoint, chosen.name, check_time)
            if live is None:
                live = sources.live_accuracy(
                    client, ids, stack_file.stack, endpoint, chosen.name, check_time, config.release.window_minutes
                )
            if training is None:
                training = sources.training_from_mlflow(client, ids, model)
        except sources.SourceError as error:
            raise CheckError(EXIT_INVALID_INPUT, [str(error)])
        except Exception as error:  # noqa: BLE001 - MLflow raises many kinds
            raise CheckError(EXIT_PROGRAM_ERROR, [f"MLflow at {uri}: {_first_line(error)}"])

    inputs = Inputs(
        now=check_time,
        psi=drift.psi if drift else None,
        max_psi=drift.max_psi if drift else None,
        drift_source=drift.source if drift else (
            f"looked for a kind=drift MLflow run of {stack_file.stack}/{endpoint} (or one without --stack/--endpoint) "
            f"in {_display(uri)}{f' experiment {experiment}' if experiment else ''} started by {iso(check_time)}: none; "
            f"run `azml drift --stack {stack_file.stack} --endpoint {endpoint}` or pass --drift-report"
        ),
        drift_inconclusive=drift.inconclusive if drift else None,
        drift_breaches=drift.breaches if drift else (),
        drift_judged=drift.judged if drift else False,
        accuracy=live.accuracy if live else None,
        accuracy_n=live.n if live else 0,
        accuracy_source=live.source if live else "",
        training_accuracy=training.accuracy if training else None,
        trained_at=training.trained_at if training else None,
        training_source=training.source if training else "no lineage record, lineage run or registered model version",
    )
    decision = decide(inputs, thresholds)

    # ---- act, record, report
    job: dict[str, Any] | None = None
    problems: list[str] = []
    if submission is not None and decision.reasons:
        submission_module, submit_module, settings, workspace = submission
        request = submission_module.build_request(
            submit_module,
            stack=stack_file.stack,
            endpoint=endpoint,
            deployment=chosen.name,
            model=model_label,
            reasons=decision.reasons,
            now=check_time,
            training_data=training_data.strip(),
        )
        job = {"name": request.job_name, "status": "failed", "workspace": workspace.workspace_name,
               "resourceGroup": workspace.resource_group, "tags": dict(request.tags)}
        try:
            outcome = submission_module.submit(request, settings, submit_module)
            job.update(name=outcome.job_name, status=outcome.status)
        except Exception as error:  # noqa: BLE001 - azure-ai-ml / azure-core raise many kinds
            problems.append(f"submitting job {request.job_name} failed: {_first_line(error)}")

    document = _document(stack_file.stack, endpoint, chosen.name, model_label, check_time, decision, thresholds, job)
    if log and client is not None:
        try:
            document["mlflowRunId"] = _log(client, experiment or config.release.metrics.experiment, document, decision)
        except Exception as error:  # noqa: BLE001
            problems.append(f"could not log the check to MLflow at {uri}: {_first_line(error)}")

    return CheckResult(document, decision, problems)


def _display(uri: str) -> str:
    from ..tracking import display_uri

    return display_uri(uri)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def _model_of(deployment: Any) -> tuple[str, str]:
    from ..naming import model_name_version

    return model_name_version(deployment.model)


def _pick_deployment(endpoint: Any, requested: str | None, stack: str) -> Any:
    deployments = {d.name: d for d in endpoint.deployments}
    if requested is not None:
        if requested not in deployments:
            raise CheckError(EXIT_INVALID_INPUT, [
                f"--deployment: {requested!r} is not a deployment of endpoint {endpoint.name} in stack {stack} "
                f"(declared: {', '.join(deployments)})"
            ])
        return deployments[requested]
    default = getattr(endpoint, "default_deployment", None)
    if default is not None:  # batch endpoint
        return deployments[default]
    traffic = {name: share for name, share in (endpoint.traffic or {}).items() if share > 0}
    if traffic:
        best = max(traffic.values())
        return next(d for d in endpoint.deployments if traffic.get(d.name) == best)
    if len(endpoint.deployments) == 1:
        return endpoint.deployments[0]
    raise CheckError(EXIT_INVALID_INPUT, [
        f"--deployment: endpoint {endpoint.name} has no live traffic in stack {stack}; name one of {', '.join(deployments)}"
    ])


def _document(
    stack: str, endpoint: str, deployment: str, model: str, now: dt.datetime, decision: Decision,
    thresholds: Thresholds, job: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "stack": stack,
        "endpoint": endpoint,
        "deployment": deployment,
        "model": model,
        "checkedAt": iso(now),
        "status": decision.status.value,
        "reasons": list(decision.reasons),
        "inconclusive": list(decision.inconclusive),
        "thresholds": {
            "maxPsi": thresholds.max_psi,
            "maxAccuracyDrop": thresholds.max_accuracy_drop,
            "maxModelAgeDays": thresholds.max_model_age_days,
            "minAccuracySamples": thresholds.min_accuracy_samples,
        },
        "checks": [c.to_json() for c in decision.checks],
        "job": job,
    }


def _text(document: dict[str, Any], decision: Decision) -> list[str]:
    lines = [
        f"Retraining check of {document['stack']}/{document['endpoint']}/{document['deployment']} "
        f"(model {document['model']}) at {document['checkedAt']}"
    ]
    for check in decision.checks:
        source = f"  [{check.source}]" if check.source else ""
        lines.append(f"  {check.name:<12} {check.outcome.value:<13} {check.detail}{source}")
    if decision.status is Status.RETRAIN:
        lines.append(f"Retrain: {', '.join(decision.reasons)}")
    elif decision.status is Status.INCONCLUSIVE:
        lines.append(f"No reason found, but INCONCLUSIVE: {', '.join(decision.inconclusive)} could not be measured")
    else:
        lines.append("No reason to retrain (none)")
    job = document.get("job")
    if job:
        verb = {"submitted": "Submitted", "exists": "Already submitted today:", "concurrent": "Submitted concurrently:"}
        lines.append(f"{verb.get(job['status'], 'Failed to submit')} job {job['name']} in workspace {job['workspace']}")
    if document.get("mlflowRunId"):
        lines.append(f"Logged MLflow run {document['mlflowRunId']} (kind=retrain)")
    return lines


def _log(client: Any, experiment: str, document: dict[str, Any], decision: Decision) -> str:
    from .. import tracking

    tags = {
        tracking.TAG_KIND: tracking.KIND_RETRAIN,
        tracking.TAG_STACK: document["stack"],
        tracking.TAG_ENDPOINT: document["endpoint"],
        tracking.TAG_DEPLOYMENT: document["deployment"],
        tracking.TAG_MODEL: document["model"],
    }
    if document.get("job"):
        tags["azml.retrain.job"] = document["job"]["name"]
    checked = dt.datetime.fromisoformat(document["checkedAt"].replace("Z", "+00:00"))
    run = client.create_run(
        tracking.experiment_id(client, experiment),
        start_time=int(checked.timestamp() * 1000),
        tags=tags,
        run_name=f"retrain check {document['endpoint']}/{document['deployment']}",
    )
    run_id = run.info.run_id
    params = {
        "reasons": decision.reason_text(),
        "status": document["status"],
        "inconclusive": ",".join(decision.inconclusive) or "none",
        "max_psi_threshold": document["thresholds"]["maxPsi"],
        "max_accuracy_drop_threshold": document["thresholds"]["maxAccuracyDrop"],
        "max_model_age_days_threshold": document["thresholds"]["maxModelAgeDays"],
        "min_accuracy_samples": document["thresholds"]["minAccuracySamples"],
    }
    for key, value in params.items():
        client.log_param(run_id, key, str(value))
    metric_names = {"drift": "max_psi", "performance": "accuracy_drop", "staleness": "model_age_days"}
    for check in decision.checks:
        if check.value is not None:
            client.log_metric(run_id, metric_names[check.name], float(check.value))
        client.set_tag(run_id, f"azml.retrain.{check.name}", check.outcome.value)
    client.log_text(run_id, json.dumps(document, indent=2) + "\n", "retrain.json")
    client.set_terminated(run_id, end_time=int(checked.timestamp() * 1000))
    return run_id
