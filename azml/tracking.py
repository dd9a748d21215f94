"""MLflow conventions of the release controller, the drift engine and the
retraining check: which tags mark which run, which metric names carry what.

MLflow is both the metric store (observation runs of each deployment) and the
audit store (verdicts, drift reports, retraining decisions, lineage).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import EXIT_INVALID_INPUT, EXIT_PROGRAM_ERROR, CommandError

if TYPE_CHECKING:  # mlflow takes ~2 s to import: only commands that log pay for it
    from collections.abc import Mapping

    from mlflow import MlflowClient

    from .config.schema import StackConfig

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"

# Run tags.
TAG_KIND = "azml.kind"  # one of the KIND_* values below
TAG_STACK = "azml.stack"
TAG_ENDPOINT = "azml.endpoint"
TAG_DEPLOYMENT = "azml.deployment"
TAG_MODEL = "azml.model"  # "<name>:<version>" of the deployment's model

KIND_OBSERVATION = "observation"  # one window of a deployment's live metrics
KIND_VERDICT = "verdict"  # one `azml release evaluate`
KIND_TRAFFIC = "traffic"  # one applied `azml release advance`
KIND_DRIFT = "drift"  # one `azml drift` report
KIND_RETRAIN = "retrain"  # one `azml retrain check`
KIND_LINEAGE = "lineage"  # one `azml lineage` record
KIND_VALIDATION = "validation"  # one `azml release validate` of a batch
KIND_LOADTEST = "loadtest"  # one `azml release loadtest` of a deployment
KIND_BANDIT = "bandit"  # one `azml release bandit` allocation of an endpoint
KIND_ATTRIBUTION = "attribution"  # one `azml release attribution` comparison

# Observation metrics: each value has its sample size beside it.
METRIC_ACCURACY = "accuracy"
METRIC_ACCURACY_N = "accuracy_n"
METRIC_LATENCY_P95 = "latency_p95_ms"
METRIC_REQUESTS = "requests"  # sample size of latency and error rate
METRIC_ERROR_RATE = "error_rate"
METRIC_PSI = "psi"  # worst feature's PSI of the window's inputs vs the reference
METRIC_PSI_N = "psi_n"
METRIC_PARITY = "parity_difference"  # fairlearn demographic_parity_difference
METRIC_PARITY_N = "parity_n"
# Load-test runs (kind loadtest): synthetic traffic, kept apart from the live observation metrics.
METRIC_LOADTEST_P50 = "loadtest_p50_ms"
METRIC_LOADTEST_P95 = "loadtest_p95_ms"
METRIC_LOADTEST_P99 = "loadtest_p99_ms"
METRIC_LOADTEST_RPS = "loadtest_rps"  # completed requests per second
METRIC_LOADTEST_ERROR_RATE = "loadtest_error_rate"  # failed / sent (any non-2xx, timeout or connection error)
METRIC_LOADTEST_REQUESTS = "loadtest_requests"  # sample size of the four above


class TrackingUriError(CommandError, ValueError):
    """A tracking URI azml refuses to open (message names the URI)."""

    exit_code = EXIT_INVALID_INPUT


class TrackingUnavailable(CommandError):
    """The tracking store does not answer or fails (message names the URI)."""

    exit_code = EXIT_PROGRAM_ERROR


#: Where a tracking URI comes from, for the messages that refuse one.
URI_SOURCES = "--tracking-uri or azml:release.metrics.trackingUri"


def display_uri(uri: str) -> str:
    """``uri`` for messages: control characters escaped, any ``user:password@``
    of a URL replaced by ``***@`` (a credential must not reach a CI log)."""
    shown = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1***@", uri)
    return shown.encode("unicode_escape").decode("ascii") if _CONTROL.search(shown) else shown


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_tracking_uri(uri: str) -> None:
    """Refuse a URI no store should be opened with: control characters (a NUL
    byte crashes path handling; a newline is never part of a URI) and a sqlite
    database in a directory that does not exist (MLflow would create every
    missing directory on the way, silently, wherever a typo points)."""
    bad = _CONTROL.search(uri)
    if bad:
        raise TrackingUriError(
            f"tracking URI {display_uri(uri)}: contains the control character {bad.group()!r}; set {URI_SOURCES} to a valid MLflow URI"
        )
    database = sqlite_path(uri)
    if database is not None and not database.parent.is_dir():
        raise TrackingUriError(
            f"tracking URI {display_uri(uri)}: directory {database.parent} does not exist (azml does not create it); "
            f"create it or set {URI_SOURCES} to a database in an existing directory"
        )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs and in-memory databases)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


#: ``trackingUri: workspace``: the MLflow store of the workspace the stack deploys.
WORKSPACE_STORE = "workspace"
#: Where the subscription of that workspace comes from, in order (the
#: azure-native provider's variable, then the Azure SDKs').
SUBSCRIPTION_VARIABLES = ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def workspace_tracking_uri(config: "StackConfig", environ: "Mapping[str, str] | None" = None) -> str:
    """The MLflow tracking URI of the workspace ``config`` deploys, in the
    form Azure ML documents for building it by hand ("Configure MLflow for
    Azure Machine Learning", how-to-use-mlflow-configure-tracking):
    ``azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>``.
    Region, resource group and workspace come from the stack's own naming;
    the subscription from ``ARM_SUBSCRIPTION_ID`` / ``AZURE_SUBSCRIPTION_ID``
    (what the deploy and the release jobs log in to)."""
    from .naming import names_for

    environ = os.environ if environ is None else environ
    subscription = next((environ[v].strip() for v in SUBSCRIPTION_VARIABLES if environ.get(v, "").strip()), "")
    if not _GUID.fullmatch(subscription):
        shown = f" (got {subscription!r})" if subscription else ""
        raise TrackingUriError(
            f"azml:release.metrics.trackingUri is {WORKSPACE_STORE!r}: set {' or '.join(SUBSCRIPTION_VARIABLES)} "
            f"to the subscription GUID of the stack's workspace{shown}"
        )
    names = names_for(config)
    return (
        f"azureml://{config.location}.api.azureml.ms/mlflow/v1.0/subscriptions/{subscription}"
        f"/resourceGroups/{names.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{names.workspace}"
    )


def resolve_tracking_uri(uri: str, project_dir: Path, config: "StackConfig | None" = None) -> str:
    """A relative ``sqlite:///file.db`` is relative to the project directory
    (not to wherever the command runs); ``workspace`` is the MLflow store of
    the stack's workspace (needs ``config``); every other URI is kept as
    given. Raises TrackingUriError for a URI with control characters, or
    ``workspace`` without a stack or a subscription."""
    if _CONTROL.search(uri):
        check_tracking_uri(uri)
    if uri == WORKSPACE_STORE:
        if config is None:
            raise TrackingUriError(
                f"tracking URI {WORKSPACE_STORE!r} names a stack's workspace: use it in azml:release.metrics.trackingUri, "
                "or give the workspace's azureml:// URI"
            )
        return workspace_tracking_uri(config)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((project_dir / uri[len(prefix):]).resolve())
    return uri


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database file
    (``<db>.artifacts/``), not into ``./mlruns`` of whatever directory the
    command runs in; other stores choose their own location."""
    prefix = "sqlite:///"
    if uri.startswith(prefix + "/"):
        return Path(uri[len(prefix):] + ".artifacts").as_uri()
    return None


#: Bounds on MLflow's HTTP requests, used unless the environment sets them.
#: MLflow's own defaults (7 retries with a backoff factor of 2, 120 s per
#: request) let one unreachable server stall every command for minutes; with
#: these a failing request gives up after about a minute at worst.
HTTP_REQUEST_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
#: Seconds an HTTP tracking server has to answer the first request of a
#: command (no retry), unless MLFLOW_HTTP_REQUEST_TIMEOUT is set.
PROBE_TIMEOUT_SECONDS = 5

_probed: dict[str, TrackingUnavailable | None] = {}
_bounds_set: set[str] = set()  # the HTTP_REQUEST_BOUNDS this process set (not the user's)


def client(uri: str) -> "MlflowClient":
    """An MLflow client of ``uri``. Raises TrackingUriError for a URI that is
    refused (see :func:`check_tracking_uri`) and TrackingUnavailable when an
    HTTP tracking server does not answer (see :func:`check_reachable`)."""
    import logging

    check_tracking_uri(uri)
    check_reachable(uri)
    # Artifact transfers are small here; MLflow's progress bars and its
    # "creating tables" notices only add noise to a command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable(uri: str) -> None:
    """Bound MLflow's HTTP requests (:data:`HTTP_REQUEST_BOUNDS`, unless the
    environment sets them) and, for an HTTP tracking server, ask it once
    (see :func:`_probe`). Opens no store: a command can call it before it
    writes anything. Raises TrackingUnavailable, or TrackingUriError for a
    URL that cannot be requested or an MLFLOW_HTTP_REQUEST_TIMEOUT that is no number."""
    for name, value in HTTP_REQUEST_BOUNDS.items():
        if name not in os.environ:
            os.environ[name] = value
            _bounds_set.add(name)
    if not uri.lower().startswith(("http://", "https://")):
        return
    probe_timeout = float(PROBE_TIMEOUT_SECONDS)
    if "MLFLOW_HTTP_REQUEST_TIMEOUT" not in _bounds_set:  # the user's own wait applies to the probe too
        try:
            probe_timeout = float(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"])
        except ValueError:
            raise TrackingUriError(
                f"MLFLOW_HTTP_REQUEST_TIMEOUT: {os.environ['MLFLOW_HTTP_REQUEST_TIMEOUT']!r} is not a number of seconds"
            ) from None
    _probe(uri, probe_timeout)


def _probe(uri: str, timeout: float) -> None:
    """One request, without retries, to an HTTP tracking server before the
    first real one: a server that refuses connections or never answers is
    reported at once instead of after each request's retries. Any HTTP answer
    (even 404 or 401) counts as reachable; the outcome is kept per process,
    so a command that reads the store several times asks once."""
    if uri not in _probed:
        from mlflow.exceptions import InvalidUrlException, MlflowException
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            http_request(
                get_default_host_creds(uri), "/health", "GET",
                max_retries=0, backoff_factor=0, timeout=timeout, raise_on_status=False,
            )
            _probed[uri] = None
        except InvalidUrlException:
            raise TrackingUriError(f"tracking URI {display_uri(uri)}: not a valid URL; set {URI_SOURCES} to a valid MLflow URI") from None
        except MlflowException as error:
            _probed[uri] = TrackingUnavailable(
                f"the MLflow tracking server {display_uri(uri)} is unreachable: {_transport_reason(error, timeout)}"
            )
    problem = _probed[uri]
    if problem is not None:
        raise TrackingUnavailable(str(problem))


def _transport_reason(error: BaseException, timeout: float) -> str:
    import requests

    cause = error.__cause__ or error.__context__
    if isinstance(cause, requests.exceptions.Timeout) or "timed out" in str(cause):
        return f"no answer within {timeout:g} s (MLFLOW_HTTP_REQUEST_TIMEOUT sets the wait)"
    text = str(cause or error)
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno_text:
        return errno_text.group(1).strip()
    return first_line(cause or error)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, else its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """MLflow failures inside as TrackingUnavailable, one line naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        raise TrackingUnavailable(f"the MLflow tracking store {display_uri(uri)} failed: {first_line(error)}") from None


def experiment_id(mlflow_client: "MlflowClient", name: str) -> str:
    """The id of experiment ``name``, created on first use."""
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.create_experiment(name, artifact_location=artifact_location(mlflow_client.tracking_uri))
    except MlflowException:  # created meanwhile by a concurrent run
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_TAG_OF = {"stack": TAG_STACK, "endpoint": TAG_ENDPOINT, "deployment": TAG_DEPLOYMENT, "model": TAG_MODEL}


def run_filter(kind: str, *, finished: bool = False, **tags: str) -> str:
    """An MLflow search filter for runs of ``kind`` with the given tags
    (``stack``, ``endpoint``, ``deployment``, ``model``), values quoted."""
    parts = [f"tags.`{TAG_KIND}` = {_quote(kind)}"]
    parts += [f"tags.`{_TAG_OF[k]}` = {_quote(v)}" for k, v in tags.items()]
    if finished:
        parts.append("attributes.status = 'FINISHED'")
    return " and ".join(parts)


def millis(moment: dt.datetime) -> int:
    """A time as MLflow's run timestamps count it (milliseconds since the epoch)."""
    return int(moment.timestamp() * 1000)


def newest_run(mlflow_client: "MlflowClient", experiment: str, query: str) -> Any | None:
    """The most recently started run of ``experiment`` matching ``query``, or None
    (also when the experiment does not exist)."""
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = mlflow_client.search_runs(
        [found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


# Release audit trail: tags the KPIs and the canary time limit read back.
TAG_DECISION = "azml.decision"  # verdict runs: PROMOTE / HOLD / ROLLBACK
TAG_VERDICT_RUN = "azml.verdict_run"  # traffic runs: the verdict run they applied
TAG_APPLIED = "azml.applied"  # traffic runs: "true" once the stack file was replaced
TAG_GIT_COMMIT = "azml.git_commit"  # verdict and traffic runs: the project's HEAD commit
TAG_GIT_COMMIT_TIME = "azml.git_commit_time"  # its committer time, ISO 8601


def mark_applied(uri: str, run_id: str, applied: bool) -> None:
    """Tag a run that changes the stack file ``azml.applied`` once the file is
    replaced (or the replace failed, which also marks the run FAILED). A run
    without the tag was logged by a process that died before replacing."""
    try:
        mlflow_client = client(uri)
        mlflow_client.set_tag(run_id, TAG_APPLIED, "true" if applied else "false")
        if not applied:
            mlflow_client.set_terminated(run_id, status="FAILED")
    except Exception:  # the file is what it is; the tag is a convenience
        pass
