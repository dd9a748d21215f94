"""Retraining trigger core: Event Grid deliveries in, Azure ML pipeline jobs out.

Exists to orchestrate one delivery end to end, on top of ``events.py``
(parsing and validation), ``settings.py`` (what the trigger reacts to) and
``submit.py`` (how jobs are created), and to report what happened as a
:class:`HandlerResult` (including the HTTP answer for webhook calls).
Framework-free (no azure-functions import) so it is testable on its own; the
Azure Functions app in ``function_app.py`` only adapts its two triggers to
:meth:`RetrainingHandler.handle_queue_message` and
:meth:`RetrainingHandler.handle_http`.

Flow: Event Grid system topic on the training-data storage account →
subscription filtered to ``Microsoft.Storage.BlobCreated`` under
``<container>/<prefix>`` → Storage queue (Event Grid cannot push to the
private Function App) → queue trigger → this module → Azure ML job.

Idempotency: a redelivered event submits nothing new (its job, named after the
event id, already exists in Azure ML), and duplicate ids inside one batch
submit once.

Validation of a delivery is all-or-nothing: every event of a batch is checked
(parsed, then matched against the settings) before anything is submitted, and
one malformed event rejects the whole delivery (HTTP 400: Event Grid
dead-letters it at once instead of retrying).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

try:  # imported as retraining.handler (tests, tooling)
    from .events import (
        _SUBJECT,
        BLOB_CREATED,
        SUBSCRIPTION_VALIDATION,
        Event,
        MalformedDelivery,
        _one_line,
        parse_http_delivery,
        parse_queue_message,
    )
    from .settings import RetrainingSettings
    from .submit import JobSubmitter, RetrainRequest, job_name_for, submit_once
except ImportError:  # the Functions host: the app root is on sys.path
    from events import (  # type: ignore[no-redef]
        _SUBJECT,
        BLOB_CREATED,
        SUBSCRIPTION_VALIDATION,
        Event,
        MalformedDelivery,
        _one_line,
        parse_http_delivery,
        parse_queue_message,
    )
    from settings import RetrainingSettings  # type: ignore[no-redef]
    from submit import JobSubmitter, RetrainRequest, job_name_for, submit_once  # type: ignore[no-redef]

TRIGGER_REASON = "blob_created"
_JOB_NAME_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")


@dataclass(frozen=True)
class Submission:
    event_id: str
    job_name: str
    blob_url: str


@dataclass(frozen=True)
class Skip:
    event_id: str
    reason: str


@dataclass(frozen=True)
class Failure:
    event_id: str
    job_name: str
    reason: str


@dataclass
class HandlerResult:
    """What happened to one delivery, plus the HTTP answer for webhook calls."""

    submitted: list[Submission] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def submitted_jobs(self) -> list[str]:
        return [s.job_name for s in self.submitted]

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed

    def summary(self) -> str:
        parts = [
            f"submitted {len(self.submitted)}" + (f" ({', '.join(self.submitted_jobs)})" if self.submitted else ""),
            f"skipped {len(self.skipped)}",
            f"rejected {len(self.rejected)}",
            f"failed {len(self.failed)}",
        ]
        details = [f"skip {s.event_id}: {s.reason}" for s in self.skipped]
        details += [f"reject: {r}" for r in self.rejected]
        details += [f"fail {f.event_id}: {f.reason}" for f in self.failed]
        return ", ".join(parts) + ("" if not details else " | " + " | ".join(details))


class RetrainingHandler:
    def __init__(self, settings: RetrainingSettings, submitter: JobSubmitter) -> None:
        self.settings = settings
        self.submitter = submitter

    # ---- entry points

    def handle_queue_message(self, body: bytes | str) -> HandlerResult:
        """One Storage queue message (Event Grid writes one event per message)."""
        try:
            events = parse_queue_message(body)
        except MalformedDelivery as error:
            return _rejected(error.reasons)
        # Queue destinations need no handshake and Event Grid sends none there.
        result = HandlerResult(
            skipped=[
                Skip(e.id, "subscription validation only applies to webhook delivery")
                for e in events
                if e.type == SUBSCRIPTION_VALIDATION
            ]
        )
        return self._process([e for e in events if e.type != SUBSCRIPTION_VALIDATION], result)

    def handle_http(self, method: str, headers: Mapping[str, str], body: bytes | str | None) -> HandlerResult:
        """An Event Grid webhook call: OPTIONS handshake (CloudEvents), the
        subscription validation event (Event Grid schema) or a delivery."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        if method == "OPTIONS":
            return self._abuse_protection(lowered)
        if method != "POST":
            return HandlerResult(
                status=405, body={"error": f"method {method} not allowed"}, headers={"Allow": "POST, OPTIONS"}
            )
        try:
            events = parse_http_delivery(lowered, body)
        except MalformedDelivery as error:
            return _rejected(error.reasons)
        validation = [e for e in events if e.type == SUBSCRIPTION_VALIDATION]
        if validation:
            if len(events) != 1:
                # Documented: "The array contains only the validation event."
                return _rejected(["a subscription validation delivery must hold only the validation event"])
            return self._validation_response(validation[0])
        return self._process(events, HandlerResult())

    # ---- handshakes

    def _validation_response(self, event: Event) -> HandlerResult:
        # Event Grid schema handshake: answer 200 with the code echoed back as
        # {"validationResponse": code} within 30 s (202 is not accepted).
        # https://learn.microsoft.com/azure/event-grid/webhook-event-delivery
        code = event.data["validationCode"]
        return HandlerResult(
            skipped=[Skip(event.id, "subscription validation handshake answered")],
            status=200,
            body={"validationResponse": code},
        )

    def _abuse_protection(self, headers: Mapping[str, str]) -> HandlerResult:
        # CloudEvents 1.0 webhook abuse protection, used by Event Grid instead of
        # the validation event when delivering CloudEvents: an OPTIONS request with
        # WebHook-Request-Origin; consent = WebHook-Allowed-Origin (the origin or
        # "*") and WebHook-Allowed-Rate (MUST if WebHook-Request-Rate was sent);
        # the response SHOULD carry Allow with POST.
        # https://learn.microsoft.com/azure/event-grid/end-point-validation-cloud-events-schema
        # https://github.com/cloudevents/spec/blob/v1.0/http-webhook.md#4-abuse-protection
        origin = headers.get("webhook-request-origin", "").strip()
        allow = {"Allow": "POST, OPTIONS"}
        if not origin:
            return HandlerResult(
                rejected=["OPTIONS without WebHook-Request-Origin is not a CloudEvents validation request"],
                status=400,
                body={"error": "missing WebHook-Request-Origin header"},
                headers=allow,
            )
        allowed = self.settings.allowed_origins
        if allowed and origin.lower() not in {o.lower() for o in allowed}:
            # No WebHook-Allowed-* headers: no consent, whatever the status.
            return HandlerResult(
                rejected=[f"webhook origin {_one_line(origin)} is not allowed"],
                status=403,
                body={"error": f"origin {origin} not allowed"},
                headers=allow,
            )
        return HandlerResult(
            status=200,
            headers={**allow, "WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"},
        )

    # ---- deliveries

    def _process(self, events: Iterable[Event], result: HandlerResult) -> HandlerResult:
        planned: list[tuple[Event, RetrainRequest]] = []
        reasons: list[str] = []
        seen: set[str] = set()
        for index, event in enumerate(events):
            try:
                decision = self._decide(event)
            except ValueError as error:  # in scope but inconsistent: malformed
                reasons.append(f"event[{index}] (id={_one_line(event.id, 60)}): {error}")
                continue
            if isinstance(decision, str):
                result.skipped.append(Skip(event.id, decision))
            elif event.id in seen:
                result.skipped.append(Skip(event.id, "duplicate event id in this delivery"))
            else:
                seen.add(event.id)
                planned.append((event, decision))
        if reasons:  # validate everything before submitting anything
            return _rejected(reasons)

        for event, request in planned:
            try:
                outcome = submit_once(self.submitter, request)
            except Exception as error:  # noqa: BLE001 - reported per event, delivery retried
                result.failed.append(
                    Failure(event.id, request.job_name, f"{type(error).__name__}: {_one_line(str(error), 200)}")
                )
                continue
            if outcome.status == "exists":
                result.skipped.append(Skip(event.id, f"already submitted as job {request.job_name} (redelivery)"))
            elif outcome.status == "concurrent":
                # Lost a race with a concurrent delivery of the same event.
                result.skipped.append(Skip(event.id, f"job {request.job_name} was created concurrently"))
            else:
                result.submitted.append(Submission(event.id, outcome.job_name, request.blob_url))

        result.status = 500 if result.failed else 200
        result.body = {
            "submitted": [{"eventId": s.event_id, "jobName": s.job_name} for s in result.submitted],
            "skipped": [{"eventId": s.event_id, "reason": s.reason} for s in result.skipped],
        }
        if result.failed:
            result.body["failed"] = [
                {"eventId": f.event_id, "jobName": f.job_name, "reason": f.reason} for f in result.failed
            ]
        return result

    def _decide(self, event: Event) -> RetrainRequest | str:
        """A request to submit, or the reason to ignore the event. Raises
        ValueError for an in-scope event whose fields contradict each other."""
        s = self.settings
        if event.type != BLOB_CREATED:
            return f"event type {event.type} is not handled (only {BLOB_CREATED})"
        if s.storage_account and not event.source.lower().rstrip("/").endswith(
            f"/storageaccounts/{s.storage_account.lower()}"
        ):
            return f"source {_one_line(event.source)} is not storage account {s.storage_account}"
        match = _SUBJECT.match(event.subject)
        assert match is not None  # checked by parse_event
        container, path = match["container"], match["path"]
        if container != s.container:
            return f"container {container} is not the configured {s.container}"
        if not path.startswith(s.prefix):
            return f"blob {path} is not under prefix {s.prefix!r}"
        data = event.data
        if data.get("api") == "CreateFile":
            return "ADLS CreateFile (file not flushed yet; FlushWithClose raises its own BlobCreated)"
        if data.get("contentLength") == 0:
            return "blob is empty (contentLength 0)"

        url: str = data["url"]
        parts = urlsplit(url)
        if not unquote(parts.path).startswith(f"/{container}/"):
            raise ValueError(f"'data.url' {_one_line(url)} is not in container {container} of the subject")
        if s.storage_account and parts.hostname and parts.hostname.split(".")[0].lower() != s.storage_account.lower():
            raise ValueError(f"'data.url' {_one_line(url)} is not on storage account {s.storage_account}")

        input_path = url
        if s.input_datastore:
            input_path = f"azureml://datastores/{s.input_datastore}/paths/{path}"
        name = job_name_for(event.id)
        assert _JOB_NAME_OK.match(name)
        return RetrainRequest(
            job_name=name,
            event_id=event.id,
            blob_url=url,
            input_path=input_path,
            tags={"trigger_reason": TRIGGER_REASON, "blob_url": url, "event_id": event.id},
        )


def _rejected(reasons: Sequence[str]) -> HandlerResult:
    return HandlerResult(
        rejected=list(reasons),
        status=400,
        body={"error": reasons[0] if len(reasons) == 1 else f"{len(reasons)} problems", "rejected": list(reasons)},
    )
