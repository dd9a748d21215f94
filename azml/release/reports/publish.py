"""Publish an observation's metrics to Application Insights as custom metrics,
so the workbook's drift and fairness view (``components/dashboards.py``,
``drift_query``) has data.

The workbook reads the ``AppMetrics`` table of the workspace-based App
Insights: ``Name`` is the metric name, ``Properties["endpoint"]`` and
``Properties["deployment"]`` the series, and the value is
``sum(Sum) / sum(ItemCount)``. Each measured metric is recorded once on an
OpenTelemetry *gauge* with the attributes ``endpoint``, ``deployment``,
``model``, ``stack`` (plus ``n``, the sample size, and ``mlflow_run_id``).
``azure-monitor-opentelemetry-exporter`` turns every gauge data point into
one ``MetricData`` envelope with ``value`` = the gauge's value, ``count`` = 1
and the attributes as ``properties`` (``export/metrics/_exporter.py``,
``_convert_point_to_envelope``): one customMetric per value, whose
``Sum / ItemCount`` is the measured value. A histogram would carry the same
number as ``sum`` with ``min``/``max``; a gauge says what the number is.

The reader is an ``InMemoryMetricReader`` that this module collects once and
hands to the exporter itself, so the export's result (which a periodic
reader only logs) decides the outcome; the provider and the exporter are
shut down afterwards. Offline storage is off (a failed export is reported,
never written to disk to be retried by a later process), and the exporter's
own telemetry about itself (statsbeat, SDK stats, remote configuration) is
off for the duration of the call: a command that sends five numbers should
open no other connections.

Authentication: the connection string's instrumentation key, or, when a
``credential`` is given, an Entra ID token for ``https://monitor.azure.com//.default``
(the scope the exporter asks for; needed when the App Insights resource has
local authentication disabled, and then the identity needs the
*Monitoring Metrics Publisher* role on it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..evidence.observations import Measure

#: The workbook's series dimensions (components/dashboards.py, drift_query) first.
DIMENSIONS = ("endpoint", "deployment", "model", "stack")
SERVICE_NAME = "azml-release"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The exporter's telemetry about itself, switched off while publishing.
_QUIET = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


class ConnectionStringError(ValueError):
    """The connection string (or the variable meant to hold it) is unusable."""


class PublishError(RuntimeError):
    """Application Insights did not accept every metric."""


@dataclass(frozen=True)
class AppInsightsTarget:
    """The parts of a connection string the exporter uses (never printed whole)."""

    connection_string: str
    instrumentation_key: str
    ingestion_endpoint: str | None


def parse_connection_string(text: str) -> AppInsightsTarget:
    """Check an App Insights connection string the way the exporter reads it:
    ``Key=Value`` pairs separated by ``;``, an ``InstrumentationKey`` GUID, an
    https ``IngestionEndpoint`` when one is given, and no ``Authorization``
    other than ``ikey``. Messages never repeat the string (it holds the key)."""
    pairs: dict[str, str] = {}
    for part in (p.strip() for p in text.strip().split(";")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConnectionStringError("is not a connection string (Key=Value pairs separated by ';')")
        pairs[key.strip().lower()] = value.strip()
    key = pairs.get("instrumentationkey", "")
    if not _GUID.match(key):
        raise ConnectionStringError("has no InstrumentationKey GUID")
    endpoint = pairs.get("ingestionendpoint") or None
    if endpoint is not None and not endpoint.lower().startswith("https://"):
        raise ConnectionStringError("has an IngestionEndpoint that is not an https:// URL")
    if pairs.get("authorization", "ikey").lower() != "ikey":
        raise ConnectionStringError("names an Authorization other than ikey (use --app-insights-auth entra instead)")
    return AppInsightsTarget(";".join(p.strip() for p in text.strip().split(";") if p.strip()), key.lower(), endpoint)


def connection_string_from_env(variable: str, environ: Mapping[str, str] | None = None) -> AppInsightsTarget:
    """The connection string held by environment variable ``variable``."""
    environ = os.environ if environ is None else environ
    if not _ENV_NAME.match(variable):
        # Most likely the connection string itself: do not echo it.
        raise ConnectionStringError("must name an environment variable (letters, digits, _), not hold the connection string")
    value = environ.get(variable, "")
    if not value.strip():
        raise ConnectionStringError(f"environment variable {variable} is not set")
    try:
        return parse_connection_string(value)
    except ConnectionStringError as error:
        raise ConnectionStringError(f"environment variable {variable} {error}") from None


def default_credential() -> Any:
    """Entra ID for ingestion: DefaultAzureCredential (managed identity in
    Azure, workload identity in CI, ``az login`` on a workstation)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


@contextlib.contextmanager
def _exporter_quiet() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _QUIET}
    os.environ.update(_QUIET)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Capture(logging.Handler):
    """Holds the Azure SDK's warnings during one export instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text:
            self.messages.append(text.splitlines()[0])


@contextlib.contextmanager
def _captured_logs() -> Iterator[_Capture]:
    capture = _Capture()
    logger = logging.getLogger("azure")
    propagate = logger.propagate
    logger.addHandler(capture)
    logger.propagate = False
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.propagate = propagate


@dataclass
class _Responses:
    """What the ingestion endpoint answered (the last attempt wins)."""

    status: int | None = None
    accepted: int | None = None
    errors: list[str] | None = None

    def hook(self, response: Any) -> None:
        http = response.http_response
        self.status = http.status_code
        self.accepted, self.errors = None, None
        try:
            body = json.loads(http.text() or "null")
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(body, dict):
            accepted = body.get("itemsAccepted")
            self.accepted = accepted if isinstance(accepted, int) else None
            errors = body.get("errors")
            if isinstance(errors, list):
                self.errors = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]


def publish_measures(
    measures: Mapping[str, Measure],
    tags: Mapping[str, str],
    target: AppInsightsTarget | str,
    credential: Any = None,
    *,
    timeout: float = 10.0,
    retries: int = 2,
) -> int:
    """Send each measure as one App Insights custom metric named after it,
    with ``tags`` (``endpoint``, ``deployment``, ``model``, ``stack``, ...) and
    ``n`` as custom dimensions. ``credential``: a TokenCredential for Entra ID
    ingestion, or None for the instrumentation key. Returns the number of
    metrics accepted; raises PublishError (one line) unless all were."""
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.resources import Resource

    if isinstance(target, str):
        target = parse_connection_string(target)
    if not measures:
        return 0
    responses = _Responses()
    with _exporter_quiet(), _captured_logs() as logs:
        try:
            exporter = AzureMonitorMetricExporter(
                connection_string=target.connection_string,
                credential=credential,
                disable_offline_storage=True,
                timeout=timeout,
                read_timeout=timeout,
                retry_total=retries,
                raw_response_hook=responses.hook,
            )
        except ValueError as error:  # the exporter's own connection string and credential checks
            raise PublishError(f"the exporter refused its settings: {str(error).splitlines()[0]}") from None
        reader = InMemoryMetricReader()
        provider = MeterProvider(
            metric_readers=[reader], resource=Resource.create({"service.name": SERVICE_NAME}), shutdown_on_exit=False
        )
        try:
            meter = provider.get_meter("azml.release")
            for name, measure in measures.items():
                attributes = {**tags, "n": int(measure.n)}
                meter.create_gauge(name, description=f"{name} of one observation window").set(float(measure.value), attributes)
            data = reader.get_metrics_data()
            result = exporter.export(data, timeout_millis=timeout * 1000)
        finally:
            provider.shutdown()
            exporter.shutdown()
    sent = len(measures)
    if result is MetricExportResult.SUCCESS and (responses.accepted is None or responses.accepted >= sent):
        return sent
    raise PublishError(_reason(responses, logs.messages, sent, entra=credential is not None))


def _reason(responses: _Responses, messages: list[str], sent: int, *, entra: bool) -> str:
    if responses.status is None:
        detail = messages[-1] if messages else "no answer from the ingestion endpoint"
        return f"the metrics were not delivered: {detail}"
    if responses.status in (200, 206):
        accepted = responses.accepted if responses.accepted is not None else "some"
        errors = f": {responses.errors[0]}" if responses.errors else ""
        return f"Application Insights accepted {accepted} of {sent} metrics (HTTP {responses.status}){errors}"
    hint = {
        401: " (the Entra ID token was not accepted)" if entra
        else " (the resource may have local authentication disabled: use --app-insights-auth entra)",
        403: " (the identity needs the Monitoring Metrics Publisher role on the Application Insights resource)",
    }.get(responses.status, "")
    return f"Application Insights refused the metrics: HTTP {responses.status}{hint}"


def metric_tags(*, stack: str, endpoint: str, deployment: str, model: str | None, run_id: str) -> dict[str, str]:
    """The custom dimensions of every published metric."""
    tags = {"endpoint": endpoint, "deployment": deployment, "stack": stack, "mlflow_run_id": run_id}
    if model:
        tags["model"] = model
    return tags

