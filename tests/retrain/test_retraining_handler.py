"""The retraining trigger (retraining/): Event Grid deliveries → Azure ML jobs.

Payloads in tests/data/eventgrid/ follow Azure's documented samples for
Microsoft.Storage.BlobCreated (Event Grid schema and CloudEvents 1.0), the
SubscriptionValidationEvent, plus malformed variants; they use this project's
account (stazmldevdata), container (training-data) and prefix (incoming/).

Most tests drive the handler with a recording JobSubmitter that behaves like
Azure ML as far as the handler can tell (a job name, once created, exists).
The AzureMLJobSubmitter tests build the real job from retraining/pipeline.yml
with azure-ai-ml's own loader and entity classes; only the service behind
``MLClient.jobs`` is a stand-in. Those, and the function_app tests, skip when
azure-ai-ml / azure-functions are not installed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from retraining.handler import RetrainingHandler
from retraining.settings import ConfigError, RetrainingSettings
from retraining.submit import AzureMLJobSubmitter, RetrainRequest, job_name_for

from ..conftest import ROOT

DATA = ROOT / "tests" / "data" / "eventgrid"
PIPELINE = ROOT / "retraining" / "pipeline.yml"

SETTINGS = RetrainingSettings(
    container="training-data",
    prefix="incoming/",
    subscription_id="00000000-0000-0000-0000-000000000000",
    resource_group="rg-azml-dev",
    workspace_name="mlw-azml-dev",
    pipeline_path=PIPELINE,
    experiment_name="retraining",
)

EG_ID = "831e1650-001e-001b-66ab-eeb76e069631"
EG_URL = "https://stazmldevdata.blob.core.windows.net/training-data/incoming/2026-11-26/applications.csv"
CE_ID = "9aeb0fdf-c01e-0131-0922-9eb54906e209"
CE_URL = "https://stazmldevdata.blob.core.windows.net/training-data/incoming/2026-11-26/loans.csv"
EG_HEADERS = {"Content-Type": "application/json; charset=utf-8", "aeg-event-type": "Notification"}
CE_HEADERS = {"Content-Type": "application/cloudevents+json; charset=utf-8", "aeg-event-type": "Notification"}


def text(name: str) -> str:
    return (DATA / name).read_text()


def doc(name: str) -> Any:
    return json.loads(text(name))


def b64(payload: str) -> str:
    return base64.b64encode(payload.encode()).decode()


class RecordingSubmitter:
    """A JobSubmitter standing in for Azure ML: jobs are keyed by name, and a
    name that was submitted exists from then on (like ``jobs.get``)."""

    def __init__(self) -> None:
        self.jobs: dict[str, RetrainRequest] = {}
        self.requests: list[RetrainRequest] = []
        self.fail_with: Exception | None = None
        self.create_despite_failure = False  # emulate losing a race

    def job_exists(self, name: str) -> bool:
        return name in self.jobs

    def submit(self, request: RetrainRequest) -> str:
        self.requests.append(request)
        if self.fail_with is not None:
            if self.create_despite_failure:
                self.jobs[request.job_name] = request
            raise self.fail_with
        self.jobs[request.job_name] = request
        return request.job_name


@pytest.fixture
def service() -> RecordingSubmitter:
    return RecordingSubmitter()


@pytest.fixture
def handler(service: RecordingSubmitter) -> RetrainingHandler:
    return RetrainingHandler(SETTINGS, service)


def expected_tags(event_id: str, url: str) -> dict[str, str]:
    return {"trigger_reason": "blob_created", "blob_url": url, "event_id": event_id}


# --------------------------------------------------------------------------- submitting


def test_job_name_is_deterministic_from_the_event_id() -> None:
    name = job_name_for(EG_ID)
    assert name == "retrain-" + hashlib.sha256(EG_ID.encode()).hexdigest()[:20]
    assert name == job_name_for(EG_ID) != job_name_for(CE_ID)


def test_event_grid_schema_webhook_submits_once(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    result = handler.handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json").encode())

    assert result.status == 200 and result.ok
    assert result.submitted_jobs == [job_name_for(EG_ID)]
    [request] = service.requests
    assert request.job_name == job_name_for(EG_ID)
    assert request.event_id == EG_ID
    assert request.blob_url == request.input_path == EG_URL
    assert dict(request.tags) == expected_tags(EG_ID, EG_URL)
    assert result.body == {"submitted": [{"eventId": EG_ID, "jobName": job_name_for(EG_ID)}], "skipped": []}


def test_cloudevents_structured_webhook_submits_once(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    result = handler.handle_http("POST", CE_HEADERS, text("blob_created.cloudevents.json"))

    assert result.status == 200
    assert result.submitted_jobs == [job_name_for(CE_ID)]
    [request] = service.requests
    assert request.input_path == CE_URL
    assert dict(request.tags) == expected_tags(CE_ID, CE_URL)


def test_cloudevents_binary_mode_webhook(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    event = doc("blob_created.cloudevents.json")
    headers = {f"ce-{key}": event[key] for key in ("specversion", "id", "source", "type", "subject", "time")}
    headers["Content-Type"] = "application/json"
    result = handler.handle_http("POST", headers, json.dumps(event["data"]).encode())

    assert result.status == 200
    assert [r.tags["event_id"] for r in service.requests] == [CE_ID]
    assert service.requests[0].input_path == CE_URL


@pytest.mark.parametrize("fixture", ["blob_created.eventgrid.json", "blob_created.cloudevents.json"])
@pytest.mark.parametrize("encoding", ["plain", "base64"])
def test_queue_message_plain_or_base64(
    handler: RetrainingHandler, service: RecordingSubmitter, fixture: str, encoding: str
) -> None:
    # Event Grid writes one event per queue message.
    payload = doc(fixture)
    event = payload[0] if isinstance(payload, list) else payload
    body = json.dumps(event)
    message = (b64(body) if encoding == "base64" else body).encode()

    result = handler.handle_queue_message(message)

    assert result.ok, result.summary()
    event_id, url = (EG_ID, EG_URL) if "eventgrid" in fixture else (CE_ID, CE_URL)
    assert result.submitted_jobs == [job_name_for(event_id)]
    assert dict(service.requests[0].tags) == expected_tags(event_id, url)


def test_redelivery_submits_nothing_new(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    message = b64(text("blob_created.cloudevents.json"))
    first = handler.handle_queue_message(message)
    again = handler.handle_queue_message(message)
    # A new process (cold start) has no memory: Azure ML's job list is the store.
    after_restart = RetrainingHandler(SETTINGS, service).handle_queue_message(message)
    # The same event over the webhook too.
    via_webhook = handler.handle_http("POST", CE_HEADERS, text("blob_created.cloudevents.json"))

    assert first.submitted_jobs == [job_name_for(CE_ID)]
    for result in (again, after_restart, via_webhook):
        assert result.ok and result.status == 200
        assert result.submitted == []
        [skip] = result.skipped
        assert skip.event_id == CE_ID and "already submitted" in skip.reason
    assert len(service.requests) == 1


def test_duplicate_ids_in_one_batch_submit_once(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    result = handler.handle_http("POST", CE_HEADERS, text("blob_created_batch.cloudevents.json"))

    assert result.status == 200
    assert [r.event_id for r in service.requests] == [
        "0b1c2d3e-101e-0042-7f00-aaaaaaaa0001",
        "0b1c2d3e-101e-0042-7f00-aaaaaaaa0002",
    ]
    assert [(s.event_id, s.reason) for s in result.skipped] == [
        ("0b1c2d3e-101e-0042-7f00-aaaaaaaa0001", "duplicate event id in this delivery")
    ]


def test_subject_without_leading_slash_is_accepted(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    # The CloudEvents schema article's sample writes the subject without it.
    event = doc("blob_created.cloudevents.json")
    event["subject"] = event["subject"].lstrip("/")
    assert handler.handle_queue_message(json.dumps(event)).submitted_jobs == [job_name_for(CE_ID)]


def test_input_datastore_maps_the_blob_to_an_azureml_uri(service: RecordingSubmitter) -> None:
    settings = replace(SETTINGS, input_datastore="trainingdata")
    RetrainingHandler(settings, service).handle_queue_message(text("blob_created.cloudevents.json"))
    [request] = service.requests
    assert request.input_path == "azureml://datastores/trainingdata/paths/incoming/2026-11-26/loans.csv"
    assert request.tags["blob_url"] == CE_URL


# --------------------------------------------------------------------------- ignoring


def _event_grid_event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(doc("blob_created.eventgrid.json")[0])
    data_changes = changes.pop("data", {})
    event.update(changes)
    event["data"].update(data_changes)
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (doc("blob_deleted.eventgrid.json")[0], "event type Microsoft.Storage.BlobDeleted is not handled"),
        (
            _event_grid_event(
                subject="/blobServices/default/containers/scratch/blobs/incoming/a.csv",
                data={"url": "https://stazmldevdata.blob.core.windows.net/scratch/incoming/a.csv"},
            ),
            "container scratch is not the configured training-data",
        ),
        (
            _event_grid_event(
                subject="/blobServices/default/containers/training-data/blobs/archive/a.csv",
                data={"url": "https://stazmldevdata.blob.core.windows.net/training-data/archive/a.csv"},
            ),
            "blob archive/a.csv is not under prefix 'incoming/'",
        ),
        (_event_grid_event(data={"api": "CreateFile", "contentLength": 0}), "ADLS CreateFile"),
        (_event_grid_event(data={"contentLength": 0}), "blob is empty"),
    ],
    ids=["other-type", "other-container", "other-prefix", "adls-createfile", "empty-blob"],
)
def test_out_of_scope_events_are_acknowledged_and_ignored(
    handler: RetrainingHandler, service: RecordingSubmitter, event: dict[str, Any], reason: str
) -> None:
    for result in (
        handler.handle_http("POST", EG_HEADERS, json.dumps([event])),
        handler.handle_queue_message(json.dumps(event)),
    ):
        assert result.status == 200 and result.ok
        [skip] = result.skipped
        assert skip.event_id == event["id"] and skip.reason.startswith(reason)
    assert service.requests == []


def test_events_from_another_storage_account_are_ignored_when_configured(service: RecordingSubmitter) -> None:
    settings = replace(SETTINGS, storage_account="stazmlproddata")
    result = RetrainingHandler(settings, service).handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json"))
    assert result.status == 200 and service.requests == []
    assert "is not storage account stazmlproddata" in result.skipped[0].reason


# --------------------------------------------------------------------------- handshakes


def test_event_grid_subscription_validation_handshake(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    headers = {"Content-Type": "application/json", "aeg-event-type": "SubscriptionValidation"}
    result = handler.handle_http("POST", headers, text("subscription_validation.eventgrid.json"))

    assert result.status == 200  # 202 is not accepted by Event Grid
    assert result.body == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert service.requests == []


def test_validation_event_must_come_alone(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    mixed = doc("subscription_validation.eventgrid.json") + doc("blob_created.eventgrid.json")
    result = handler.handle_http("POST", EG_HEADERS, json.dumps(mixed))
    assert result.status == 400 and service.requests == []


def test_validation_event_on_the_queue_is_ignored(handler: RetrainingHandler, service: RecordingSubmitter) -> None:
    result = handler.handle_queue_message(text("subscription_validation.eventgrid.json"))
    assert result.ok and service.requests == []
    assert "only applies to webhook delivery" in result.skipped[0].reason


def test_cloudevents_options_handshake(handler: RetrainingHandler) -> None:
    result = handler.handle_http(
        "OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"}, b""
    )
    assert result.status == 200
    assert result.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert result.headers["WebHook-Allowed-Rate"] == "*"
    assert "POST" in result.headers["Allow"]


def test_options_without_origin_or_from_a_refused_origin_grants_nothing(service: RecordingSubmitter) -> None:
    open_handler = RetrainingHandler(SETTINGS, service)
    missing = open_handler.handle_http("OPTIONS", {}, None)
    assert missing.status == 400 and "WebHook-Allowed-Origin" not in missing.headers

    settings = replace(SETTINGS, allowed_origins=("eventgrid.azure.net",))
    strict = RetrainingHandler(settings, service)
    refused = strict.handle_http("OPTIONS", {"webhook-request-origin": "evil.example.com"}, None)
    assert refused.status == 403 and "WebHook-Allowed-Origin" not in refused.headers
    granted = strict.handle_http("OPTIONS", {"webhook-request-origin": "EventGrid.azure.net"}, None)
    assert granted.headers["WebHook-Allowed-Origin"] == "EventGrid.azure.net"


def test_other_http_methods_are_refused(handler: RetrainingHandler) -> None:
    result = handler.handle_http("GET", {}, None)
    assert result.status == 405 and result.headers["Allow"] == "POST, OPTIONS"


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (text("malformed_truncated.json"), "request body is not valid JSON"),
        (text("malformed_missing_url.eventgrid.json"), f"event[0] (id={EG_ID}): missing 'data.url'"),
        (
            text("malformed_wrong_types.cloudevents.json"),
            "event[0]: 'id' must be a string, got number, 'subject' must be a string, got array, "
            "'data.contentLength' must be an integer, got string",
        ),
        (
            text("malformed_batch_one_bad.eventgrid.json"),
            "event[1] (id=831e1650-001e-001b-66ab-eeb76e0696ff): missing 'subject'",
        ),
        ("[]", "the delivery holds no events (empty array)"),
        ('["x"]', "event[0]: an event must be a JSON object, got string"),
        ('{"hello": "world"}', "event[0]: neither an Event Grid event ('eventType') nor a CloudEvent ('specversion')"),
        (b"\xff\xfe\x00garbage", "request body is not UTF-8 text"),
        ("", "request body is empty"),
        (
            json.dumps(
                _event_grid_event(data={"url": "http://stazmldevdata.blob.core.windows.net/training-data/x.csv"})
            ),
            "'data.url' is not an https blob URL",
        ),
        (json.dumps(_event_grid_event(subject="/somewhere/else")), "'subject' is not a blob subject"),
        (
            json.dumps(
                _event_grid_event(data={"url": "https://stazmldevdata.blob.core.windows.net/other/incoming/x.csv"})
            ),
            "is not in container training-data of the subject",
        ),
        (
            json.dumps({**doc("blob_created.cloudevents.json"), "specversion": "0.3"}),
            "unsupported CloudEvents specversion",
        ),
    ],
    ids=[
        "truncated-json",
        "missing-url",
        "wrong-types",
        "batch-with-one-bad-event",
        "empty-batch",
        "not-an-object",
        "unknown-schema",
        "not-utf8",
        "empty-body",
        "http-url",
        "bad-subject",
        "url-outside-subject-container",
        "cloudevents-0.3",
    ],
)
def test_malformed_deliveries_are_rejected_and_nothing_is_submitted(
    handler: RetrainingHandler, service: RecordingSubmitter, payload: str | bytes, reason: str
) -> None:
    result = handler.handle_http("POST", EG_HEADERS, payload)

    assert result.status == 400 and not result.ok
    assert any(r.startswith(reason) or reason in r for r in result.rejected), result.rejected
    assert all("\n" not in r for r in result.rejected)
    assert result.body is not None and result.body["rejected"] == result.rejected
    assert result.submitted == [] and service.requests == []


def test_a_batch_with_one_bad_event_submits_none_of_the_good_ones(
    handler: RetrainingHandler, service: RecordingSubmitter
) -> None:
    good_first = text("malformed_batch_one_bad.eventgrid.json")
    assert doc("malformed_batch_one_bad.eventgrid.json")[0]["data"]["url"] == EG_URL
    result = handler.handle_http("POST", EG_HEADERS, good_first)
    assert result.status == 400 and len(result.rejected) == 1
    assert service.requests == [] and service.jobs == {}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json, not base64!", "queue message is neither JSON nor base64-encoded JSON"),
        (b64("{truncated"), "queue message is neither JSON nor base64-encoded JSON"),
        ("   ", "queue message is empty"),
        (b64(text("malformed_missing_url.eventgrid.json")), "missing 'data.url'"),
    ],
    ids=["garbage", "base64-of-garbage", "blank", "base64-missing-url"],
)
def test_malformed_queue_messages_are_rejected(
    handler: RetrainingHandler, service: RecordingSubmitter, message: str, reason: str
) -> None:
    result = handler.handle_queue_message(message)
    assert result.status == 400 and not result.ok
    assert reason in result.rejected[0] and "\n" not in result.rejected[0]
    assert service.requests == []


# --------------------------------------------------------------------------- service failures


def test_failed_submission_is_reported_for_retry_and_a_retry_submits(
    handler: RetrainingHandler, service: RecordingSubmitter
) -> None:
    service.fail_with = ConnectionError("workspace unreachable")
    failed = handler.handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json"))
    assert failed.status == 500 and not failed.ok  # Event Grid retries 5xx
    assert failed.failed[0].reason == "ConnectionError: workspace unreachable"
    assert service.jobs == {}

    service.fail_with = None
    retried = handler.handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json"))
    assert retried.status == 200 and retried.submitted_jobs == [job_name_for(EG_ID)]


def test_losing_a_race_with_a_concurrent_delivery_is_not_a_failure(
    handler: RetrainingHandler, service: RecordingSubmitter
) -> None:
    service.fail_with = RuntimeError("Conflict: job already exists")
    service.create_despite_failure = True
    result = handler.handle_queue_message(text("blob_created.cloudevents.json"))
    assert result.ok and result.submitted == []
    assert "created concurrently" in result.skipped[0].reason


# --------------------------------------------------------------------------- settings


def test_settings_from_app_settings() -> None:
    env = {
        "AZML_SUBSCRIPTION_ID": "sub",
        "AZML_RESOURCE_GROUP": "rg",
        "AZML_WORKSPACE_NAME": "ws",
        "AZML_TRAINING_CONTAINER": "training-data",
        "AZML_TRAINING_PREFIX": "incoming/",
        "AZML_WEBHOOK_ALLOWED_ORIGINS": "eventgrid.azure.net, eventgrid.azure.cn",
    }
    settings = RetrainingSettings.from_env(env)
    assert (settings.subscription_id, settings.resource_group, settings.workspace_name) == ("sub", "rg", "ws")
    assert (settings.container, settings.prefix) == ("training-data", "incoming/")
    assert settings.pipeline_path == PIPELINE and settings.input_name == "training_data"
    assert settings.experiment_name == "retraining" and settings.storage_account is None
    assert settings.allowed_origins == ("eventgrid.azure.net", "eventgrid.azure.cn")


def test_missing_settings_are_all_named() -> None:
    with pytest.raises(ConfigError) as error:
        RetrainingSettings.from_env({"AZML_TRAINING_PREFIX": "/incoming", "AZML_PIPELINE_PATH": "/nope.yml"})
    message = str(error.value)
    for name in ("AZML_SUBSCRIPTION_ID", "AZML_RESOURCE_GROUP", "AZML_WORKSPACE_NAME", "AZML_TRAINING_CONTAINER"):
        assert f"{name} is not set" in message
    assert "AZML_TRAINING_PREFIX must not start with '/'" in message
    assert "'/nope.yml' is not a file" in message


# --------------------------------------------------------------------------- AzureMLJobSubmitter (real azure-ai-ml)


# azure-ai-ml 1.35 still passes marshmallow's deprecated `context`: not ours to fix.
azureml_warnings = pytest.mark.filterwarnings("ignore:The `context` parameter is deprecated")


class FakeJobsService:
    """Stands in for the Azure ML service behind ``MLClient.jobs``: ``get``
    raises ResourceNotFoundError until a job of that name was created."""

    def __init__(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        self._not_found = ResourceNotFoundError
        self.created: dict[str, Any] = {}
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def get(self, name: str) -> Any:
        if name not in self.created:
            raise self._not_found(f"Job {name} not found")
        return self.created[name]

    def create_or_update(self, job: Any, **kwargs: Any) -> Any:
        self.calls.append((job, kwargs))
        self.created[job.name] = job
        return job


class FakeMLClient:
    def __init__(self) -> None:
        self.jobs = FakeJobsService()


@azureml_warnings
def test_azureml_submitter_builds_the_pipeline_job_from_pipeline_yml() -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import Input
    from azure.ai.ml.entities import PipelineJob

    client = FakeMLClient()
    handler = RetrainingHandler(SETTINGS, AzureMLJobSubmitter(SETTINGS, ml_client=client))
    result = handler.handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json"))

    assert result.status == 200 and result.submitted_jobs == [job_name_for(EG_ID)]
    [(job, kwargs)] = client.jobs.calls
    assert kwargs == {"experiment_name": "retraining"}
    assert isinstance(job, PipelineJob)
    assert job.name == job_name_for(EG_ID)
    assert job.experiment_name == "retraining"
    assert job.tags == expected_tags(EG_ID, EG_URL)
    training_data = job.inputs["training_data"]._data
    assert isinstance(training_data, Input)
    assert (training_data.type, training_data.path, training_data.mode) == ("uri_file", EG_URL, "ro_mount")
    # What pipeline.yml fixes: the child step, its compute, environment and code.
    train = job.jobs["train"]
    assert train.compute == "cpu-train" and job.settings.default_compute == "cpu-train"
    component = train.component
    assert str(component.environment).removeprefix("azureml:") == "credit-risk-train:1"
    assert Path(component.base_path, component.code).resolve() == ROOT / "retraining" / "src"
    assert "train.py --training-data ${{inputs.training_data}}" in component.command
    assert str(train.inputs["training_data"]._data) == "${{parent.inputs.training_data}}"
    # azure-ai-ml's own client-side validation (schema, bindings) of the job it would send.
    validation = job._validate()
    assert validation.passed, validation.error_messages

    # Redelivery: jobs.get now finds the job, nothing new is created.
    again = handler.handle_http("POST", EG_HEADERS, text("blob_created.eventgrid.json"))
    assert again.submitted == [] and len(client.jobs.calls) == 1
    assert "already submitted" in again.skipped[0].reason


@azureml_warnings
def test_azureml_submitter_refuses_a_pipeline_without_the_input() -> None:
    pytest.importorskip("azure.ai.ml")
    settings = replace(SETTINGS, input_name="new_data")
    submitter = AzureMLJobSubmitter(settings, ml_client=FakeMLClient())
    request = RetrainRequest(job_name_for("x"), "x", EG_URL, EG_URL, {})
    with pytest.raises(ConfigError, match="declares no input 'new_data'"):
        submitter.build_job(request)


def test_azureml_submitter_builds_its_mlclient_from_the_workspace_coordinates() -> None:
    pytest.importorskip("azure.ai.ml")

    class NoTokenCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("no token is needed to construct the client")

    client = AzureMLJobSubmitter(SETTINGS, credential=NoTokenCredential()).ml_client
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        SETTINGS.subscription_id,
        SETTINGS.resource_group,
        SETTINGS.workspace_name,
    )


# --------------------------------------------------------------------------- function_app (azure-functions)


@pytest.fixture
def function_app(monkeypatch: pytest.MonkeyPatch, service: RecordingSubmitter) -> Any:
    pytest.importorskip("azure.functions")
    import retraining.function_app as module

    monkeypatch.setattr(module, "_handler", RetrainingHandler(SETTINGS, service))
    return module


_INDEXED: dict[int, dict[str, Any]] = {}


def _functions(module: Any) -> dict[str, Any]:
    # FunctionApp.get_functions() indexes once: a second call reports every
    # function as a duplicate (as the host would for a real duplicate).
    if id(module.app) not in _INDEXED:
        _INDEXED[id(module.app)] = {f.get_function_name(): f for f in module.app.get_functions()}
    return _INDEXED[id(module.app)]


def test_function_app_declares_the_queue_and_http_triggers(function_app: Any) -> None:
    functions = _functions(function_app)
    queue = json.loads(functions["retrain_from_queue"].get_function_json())["bindings"]
    assert queue == [
        {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "msg",
            "queueName": "%EVENTS_QUEUE_NAME%",
            "connection": "EventsQueue",
        }
    ]
    http = json.loads(functions["retrain_webhook"].get_function_json())["bindings"]
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["authLevel"] == "FUNCTION"
    assert sorted(trigger["methods"]) == ["OPTIONS", "POST"]


def test_function_app_queue_trigger_delegates_to_the_handler(function_app: Any, service: RecordingSubmitter) -> None:
    import azure.functions as func

    run = _functions(function_app)["retrain_from_queue"].get_user_function()
    run(func.QueueMessage(id="m1", body=b64(text("blob_created.cloudevents.json")).encode()))
    assert [r.event_id for r in service.requests] == [CE_ID]

    with pytest.raises(function_app.DeliveryNotProcessed, match="missing 'data.url'"):
        run(func.QueueMessage(id="m2", body=text("malformed_missing_url.eventgrid.json").encode()))
    service.fail_with = ConnectionError("boom")
    with pytest.raises(function_app.DeliveryNotProcessed, match="job submission failed"):
        run(func.QueueMessage(id="m3", body=text("blob_created.eventgrid.json").encode()))


def test_function_app_webhook_answers_both_handshakes_and_deliveries(
    function_app: Any, service: RecordingSubmitter
) -> None:
    import azure.functions as func

    run = _functions(function_app)["retrain_webhook"].get_user_function()
    url = "https://func-azml-dev.azurewebsites.net/api/retraining/events"

    options = run(func.HttpRequest("OPTIONS", url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, body=b""))
    assert options.status_code == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

    validation = run(
        func.HttpRequest("POST", url, headers=EG_HEADERS, body=text("subscription_validation.eventgrid.json").encode())
    )
    assert validation.status_code == 200
    assert json.loads(validation.get_body()) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}

    delivered = run(
        func.HttpRequest("POST", url, headers=CE_HEADERS, body=text("blob_created.cloudevents.json").encode())
    )
    assert delivered.status_code == 200 and [r.event_id for r in service.requests] == [CE_ID]

    bad = run(func.HttpRequest("POST", url, headers=EG_HEADERS, body=text("malformed_truncated.json").encode()))
    assert bad.status_code == 400 and "not valid JSON" in json.loads(bad.get_body())["error"]


def test_function_app_reports_missing_settings(function_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.functions as func

    monkeypatch.setattr(function_app, "_handler", None)
    for name in RetrainingSettings.ENV.values():
        monkeypatch.delenv(name, raising=False)
    run = _functions(function_app)["retrain_webhook"].get_user_function()
    response = run(func.HttpRequest("POST", "https://x/api/retraining/events", body=b"[]"))
    assert response.status_code == 500
    assert "AZML_WORKSPACE_NAME is not set" in json.loads(response.get_body())["error"]


# --------------------------------------------------------------------------- the training step


def test_train_script_reads_the_input_and_writes_a_model(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("retraining_train", ROOT / "retraining" / "src" / "train.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)

    data = tmp_path / "applications.csv"
    data.write_text(
        "income,debt_ratio,region,default\n"
        "52000,0.20,north,0\n61000,0.15,south,0\n58000,0.25,north,0\n"
        "21000,0.70,south,1\n18000,0.85,north,1\n25000,0.65,south,1\n"
    )
    assert train.main(["--training-data", str(data), "--model-dir", str(tmp_path / "model")]) == 0

    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics == {"rows": 6, "features": 2, "classes": ["0", "1"], "train_accuracy": 1.0}
    model = json.loads((tmp_path / "model" / "model.json").read_text())
    assert model["features"] == ["income", "debt_ratio"] and model["label"] == "default"
