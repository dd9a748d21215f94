"""Event Grid deliveries → validated :class:`Event` objects.

Exists so that every entry point (queue trigger, HTTP webhook) shares one
parser, and so that payload validation can be read and tested without the
settings, the submission or the handler's decisions. Nothing here knows what
the trigger is configured for; it only checks that what the handler will read
is present and well-typed.

Delivery formats accepted:

* Event Grid schema: a JSON array of events or one event object with
  ``id, topic, subject, eventType, eventTime, data, dataVersion,
  metadataVersion``.
  https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage
* CloudEvents 1.0, structured JSON mode (``specversion, id, source, type,
  subject, time, data``); a batch is a JSON array. Over HTTP also binary
  mode, where the attributes arrive as ``ce-*`` headers and the body is
  ``data``. https://learn.microsoft.com/azure/event-grid/cloud-event-schema
* Queue messages: Event Grid writes one event per message as JSON; depending
  on the service version and the writer the text is base64-encoded or not
  (MicrosoftDocs/azure-docs#69702, #102923), so both are accepted.

Validation of a delivery is all-or-nothing: every event of a batch is checked
before any is returned, and one malformed event rejects the whole delivery
(:class:`MalformedDelivery`, one reason per problem).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# /blobServices/default/containers/<container>/blobs/<path>. Event Grid's
# storage docs show it with a leading slash, the CloudEvents sample without.
_SUBJECT = re.compile(r"^/?blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<path>.+)$")

Schema = Literal["eventgrid", "cloudevents"]


class MalformedDelivery(ValueError):
    """The delivery cannot be processed; ``reasons`` has one line per problem."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True)
class Event:
    """One event, whichever schema it arrived in."""

    id: str
    type: str
    subject: str
    source: str  # Event Grid ``topic`` / CloudEvents ``source``
    time: str | None
    data: Any
    schema: Schema


def _one_line(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _string(obj: Mapping[str, Any], key: str, problems: list[str], *, allow_empty: bool = False) -> str:
    if key not in obj:
        problems.append(f"missing {key!r}")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        problems.append(f"{key!r} must be a string, got {_type_name(value)}")
        return ""
    if not value and not allow_empty:
        problems.append(f"{key!r} is empty")
    return value


def _optional_string(obj: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        problems.append(f"{key!r} must be a string, got {_type_name(value)}")
        return None
    return value


def parse_event(obj: Any) -> Event:
    """One event object (Event Grid or CloudEvents schema) → :class:`Event`.
    Raises :class:`ValueError` with every problem found, on one line."""
    if not isinstance(obj, dict):
        raise ValueError(f"an event must be a JSON object, got {_type_name(obj)}")
    problems: list[str] = []
    if "specversion" in obj:
        if obj["specversion"] != "1.0":
            problems.append(f"unsupported CloudEvents specversion {_one_line(obj['specversion'])} (expected '1.0')")
        event = Event(
            id=_string(obj, "id", problems),
            type=_string(obj, "type", problems),
            source=_string(obj, "source", problems),
            # Optional in CloudEvents; Event Grid always sets it for storage events.
            subject=_optional_string(obj, "subject", problems) or "",
            time=_optional_string(obj, "time", problems),
            data=obj.get("data"),
            schema="cloudevents",
        )
    elif "eventType" in obj:
        for key in ("topic", "dataVersion", "metadataVersion"):
            _optional_string(obj, key, problems)
        if "data" not in obj:
            problems.append("missing 'data'")
        event = Event(
            id=_string(obj, "id", problems),
            type=_string(obj, "eventType", problems),
            # The validation event's subject is "" (documented sample).
            subject=_string(obj, "subject", problems, allow_empty=True),
            source=obj.get("topic") or "",
            time=_string(obj, "eventTime", problems),
            data=obj.get("data"),
            schema="eventgrid",
        )
    else:
        raise ValueError("neither an Event Grid event ('eventType') nor a CloudEvent ('specversion')")
    problems.extend(_data_problems(event))
    if problems:
        raise ValueError(", ".join(problems))
    return event


def _data_problems(event: Event) -> list[str]:
    """Type-specific checks: what the handler will read must be there."""
    if event.type == SUBSCRIPTION_VALIDATION:
        if not isinstance(event.data, dict) or not isinstance(event.data.get("validationCode"), str):
            return ["'data.validationCode' must be a string"]
        return []
    if event.type != BLOB_CREATED:
        return []
    if not isinstance(event.data, dict):
        return [f"'data' must be an object, got {_type_name(event.data)}"]
    problems: list[str] = []
    url = event.data.get("url")
    if url is None:
        problems.append("missing 'data.url'")
    elif not isinstance(url, str):
        problems.append(f"'data.url' must be a string, got {_type_name(url)}")
    else:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc or len(parts.path) < 2:
            problems.append(f"'data.url' is not an https blob URL: {_one_line(url)}")
    for key in ("api", "blobType", "contentType"):
        _optional_string(event.data, key, problems)
    length = event.data.get("contentLength")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
        problems.append(f"'data.contentLength' must be an integer, got {_type_name(length)}")
    if event.subject and not _SUBJECT.match(event.subject):
        problems.append(f"'subject' is not a blob subject: {_one_line(event.subject)}")
    elif not event.subject:
        problems.append("missing 'subject' (/blobServices/default/containers/<c>/blobs/<path>)")
    return problems


def _decode_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"{what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        raise MalformedDelivery([reason]) from None


def _as_text(body: bytes | str | None, what: str) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedDelivery([f"{what} is not UTF-8 text"]) from None


def parse_events(document: Any) -> list[Event]:
    """A decoded JSON document (array or single object) → events; every event
    is checked before any is returned."""
    items = document if isinstance(document, list) else [document]
    if not items:
        raise MalformedDelivery(["the delivery holds no events (empty array)"])
    events: list[Event] = []
    reasons: list[str] = []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(item))
        except ValueError as error:
            label = f"event[{index}]"
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                label += f" (id={_one_line(item['id'], 60)})"
            reasons.append(f"{label}: {error}")
    if reasons:
        raise MalformedDelivery(reasons)
    return events


def parse_queue_message(body: bytes | str) -> list[Event]:
    """A Storage queue message: one event as JSON, plain or base64-encoded."""
    text = _as_text(body, "queue message").strip()
    if not text:
        raise MalformedDelivery(["queue message is empty"])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        plain_error = error
        document = None
    if not isinstance(document, (dict, list)):
        try:
            decoded = base64.b64decode(text, validate=True).decode("utf-8-sig")
            document = json.loads(decoded)
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            if document is None:
                raise MalformedDelivery(
                    [
                        "queue message is neither JSON nor base64-encoded JSON: "
                        f"{plain_error.msg} at line {plain_error.lineno} column {plain_error.colno}"
                    ]
                ) from None
    return parse_events(document)


def parse_http_delivery(headers: Mapping[str, str], body: bytes | str | None) -> list[Event]:
    """An HTTP POST from Event Grid: structured JSON (either schema, single or
    batch) or CloudEvents binary mode (``ce-*`` headers, body = data)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    text = _as_text(body, "request body")
    if "ce-specversion" in lowered:
        attributes: dict[str, Any] = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
        content_type = lowered.get("content-type", "application/json")
        if text.strip():
            if "json" in content_type:
                attributes["data"] = _decode_json(text, "request body")
            else:
                attributes["data"] = text
        return parse_events(attributes)
    if not text.strip():
        raise MalformedDelivery(["request body is empty"])
    return parse_events(_decode_json(text, "request body"))
