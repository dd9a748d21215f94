"""Where observations come from: MLflow observation runs (the default), a
metrics file (CI), and Azure Monitor for p95 latency and error rate.

The metrics file is JSON or CSV:

* JSON: ``{"deployments": {"blue": {"accuracy": 0.91, "accuracy_n": 2500, ...}}}``
  — one record per deployment, or a list of records to be combined;
* CSV: a header ``deployment,metric,value,n`` and one row per metric.

Metric names are those of ``tracking.py`` (``accuracy``, ``latency_p95_ms``,
``error_rate``, ``psi``, ``parity_difference``); in CSV ``n`` is the sample size.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ... import tracking as t
from .observations import (
    SAMPLE_SIZE_OF, Measure, Observation, ObservationError, SourceUnavailable, check_measure, combine, parse_record,
)


def from_mlflow(
    tracking_uri: str,
    experiment: str,
    *,
    stack: str,
    endpoint: str,
    deployments: Iterable[str],
    start: dt.datetime,
    end: dt.datetime,
    require_experiment: bool = False,
) -> dict[str, Observation]:
    """Finished observation runs of each deployment that started inside [start, end].

    With ``require_experiment`` a store where the experiment does not exist
    (nothing was ever recorded there: a fresh file, the wrong workspace)
    raises SourceUnavailable instead of reading as "no observations yet",
    which would hold every canary forever without saying why."""
    client = t.client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None and require_experiment:
        raise SourceUnavailable(
            f"no evidence store: experiment {experiment!r} does not exist in {t.display_uri(tracking_uri)}, so nothing "
            "has ever recorded observations there (azml:release.metrics.trackingUri; `workspace` is the MLflow store "
            "of the stack's workspace)"
        )
    result: dict[str, Observation] = {}
    for deployment in deployments:
        records: list[dict[str, Measure]] = []
        if found is not None:
            runs = client.search_runs(
                [found.experiment_id],
                filter_string=(
                    t.run_filter(t.KIND_OBSERVATION, finished=True, stack=stack, endpoint=endpoint, deployment=deployment)
                    + f" and attributes.start_time >= {t.millis(start)} and attributes.start_time <= {t.millis(end)}"
                ),
                order_by=["attributes.start_time ASC"],
                max_results=10_000,
            )
            for run in runs:
                try:
                    records.append(parse_record(deployment, run.data.metrics, f"run {run.info.run_id}"))
                except ObservationError as error:  # logged by another tool: say which run to fix
                    raise ObservationError(
                        f"{error} (an observation run of experiment {experiment!r} in {t.display_uri(tracking_uri)}; "
                        "delete that run or move the window with --at)"
                    ) from None
        result[deployment] = combine(deployment, records)
    return result


def log_observation(
    tracking_uri: str,
    experiment: str,
    *,
    stack: str,
    endpoint: str,
    deployment: str,
    measures: Mapping[str, Measure],
    model: str | None = None,
    params: Mapping[str, str] | None = None,
) -> str:
    """Record one window of a deployment's metrics; returns the run id.
    Raises ObservationError, before anything is logged, for a value that
    :func:`~.observations.check_measure` refuses (evaluate would refuse the run)."""
    for metric, measure in measures.items():
        if metric not in SAMPLE_SIZE_OF:
            raise ObservationError(f"observation of {deployment}: unknown metric {metric!r}")
        check_measure(metric, measure.value, measure.n, f"observation of {deployment}")
    client = t.client(tracking_uri)
    tags = {t.TAG_KIND: t.KIND_OBSERVATION, t.TAG_STACK: stack, t.TAG_ENDPOINT: endpoint, t.TAG_DEPLOYMENT: deployment}
    if model:
        tags[t.TAG_MODEL] = model
    run = client.create_run(t.experiment_id(client, experiment), run_name=f"observe-{endpoint}-{deployment}", tags=tags)
    run_id = run.info.run_id
    for metric, measure in measures.items():
        client.log_metric(run_id, metric, measure.value)
        client.log_metric(run_id, SAMPLE_SIZE_OF[metric], float(measure.n))
    for key, value in (params or {}).items():
        client.log_param(run_id, key, value)
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def from_file(path: Path, deployments: Iterable[str]) -> dict[str, Observation]:
    """Observations of ``deployments`` from a JSON or CSV metrics file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ObservationError(f"metrics file {path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ObservationError(
            f"metrics file {path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})"
        ) from None
    if path.suffix.lower() == ".json":
        records = _json_records(path, text)
    elif path.suffix.lower() == ".csv":
        records = _csv_records(path, text)
    else:
        raise ObservationError(f"metrics file {path}: must end in .json or .csv")
    return {name: combine(name, records.get(name, [])) for name in deployments}


def _json_records(path: Path, text: str) -> dict[str, list[dict[str, Measure]]]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ObservationError(f"metrics file {path}: not JSON ({error})") from None
    except RecursionError:  # json nests by recursion; the layout above is three levels deep
        raise ObservationError(f"metrics file {path}: nested too deeply to be a metrics file") from None
    table = document.get("deployments") if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise ObservationError(f"metrics file {path}: needs a 'deployments' object of deployment name -> metrics")
    records: dict[str, list[dict[str, Measure]]] = {}
    for name, entry in table.items():
        entries = entry if isinstance(entry, list) else [entry]
        for index, values in enumerate(entries):
            where = f"{path.name}: deployments.{name}" + (f"[{index}]" if isinstance(entry, list) else "")
            if not isinstance(values, dict):
                raise ObservationError(f"{where}: must be an object of metric -> number")
            records.setdefault(name, []).append(parse_record(name, values, where))
    return records


def _csv_records(path: Path, text: str) -> dict[str, list[dict[str, Measure]]]:
    reader = csv.DictReader(text.splitlines())
    expected = ["deployment", "metric", "value", "n"]
    try:
        header, rows = reader.fieldnames, list(reader)
    except csv.Error as error:
        raise ObservationError(f"metrics file {path}: not CSV ({error})") from None
    if header is None or [f.strip() for f in header] != expected:
        raise ObservationError(f"metrics file {path}: header must be {','.join(expected)} (got {header})")
    values: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(rows, start=2):
        name, metric = (row["deployment"] or "").strip(), (row["metric"] or "").strip()
        if metric not in SAMPLE_SIZE_OF:
            raise ObservationError(
                f"{path.name}:{line}: metric {metric!r} is not one of {', '.join(SAMPLE_SIZE_OF)}"
            )
        try:
            value, size = float(row["value"]), float(row["n"])
        except (TypeError, ValueError):
            raise ObservationError(f"{path.name}:{line}: value and n must be numbers") from None
        record = values.setdefault(name, {})
        if metric in record:
            raise ObservationError(f"{path.name}:{line}: {name}/{metric} appears twice")
        # Each row is checked as it stands (a negative, NaN or infinite n is refused
        # here, with its line) before rows sharing a sample size are merged.
        check_measure(metric, value, size, f"{path.name}:{line}: {name}")
        record[metric] = value
        size_key = SAMPLE_SIZE_OF[metric]  # latency_p95_ms and error_rate share `requests`: the larger
        record[size_key] = max(size, record[size_key]) if size_key in record else size
    return {name: [parse_record(name, record, f"{path.name}: {name}")] for name, record in values.items()}


#: KQL over the endpoint's traffic log (diagnostic category of the same name;
#: the alert rules read the same table): requests, failures and p95 per deployment.
TRAFFIC_QUERY = """AmlOnlineEndpointTrafficLog
| where EndpointName == '{endpoint}'
| summarize Requests = count(), Errors = countif(toint(ResponseCode) >= 500), P95 = percentile(TotalDurationMs, 95) by DeploymentName"""


def from_azure_monitor(
    workspace_id: str,
    endpoint_name: str,
    window: dt.timedelta,
    *,
    credential: Any = None,
    logs_endpoint: str | None = None,
) -> dict[str, dict[str, Measure]]:
    """p95 latency and error rate per deployment from Log Analytics. The
    endpoint name is the deployed (full) name. Raises ObservationError when
    the query fails or returns an unexpected shape."""
    from azure.core.exceptions import AzureError
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs = {"endpoint": logs_endpoint} if logs_endpoint else {}
    client = LogsQueryClient(credential, **kwargs)
    query = TRAFFIC_QUERY.format(endpoint=endpoint_name.replace("'", ""))
    try:
        response = client.query_workspace(workspace_id, query, timespan=window)
    except AzureError as error:
        raise SourceUnavailable(f"Azure Monitor query failed: {str(error).splitlines()[0]}") from None
    if response.status != LogsQueryStatus.SUCCESS:
        raise SourceUnavailable(f"Azure Monitor query returned {response.status}: partial results are not evaluated")
    measures: dict[str, dict[str, Measure]] = {}
    for table in response.tables:
        columns = list(table.columns)
        missing = {"DeploymentName", "Requests", "Errors", "P95"} - set(columns)
        if missing:
            raise ObservationError(f"Azure Monitor result lacks column(s) {', '.join(sorted(missing))}")
        for row in table.rows:
            values = dict(zip(columns, row))
            requests = int(values["Requests"])
            if requests <= 0:
                continue
            measures[str(values["DeploymentName"])] = {
                t.METRIC_LATENCY_P95: Measure(float(values["P95"]), requests),
                t.METRIC_ERROR_RATE: Measure(int(values["Errors"]) / requests, requests),
            }
    return measures
