"""Azure Functions app (Python v2 programming model) for the retraining trigger.

Two entry points, both thin adapters over ``handler.py`` (which builds on
``events.py``, ``settings.py`` and ``submit.py``):

* ``retrain_from_queue`` — the production path. Event Grid delivers
  ``Microsoft.Storage.BlobCreated`` events to a Storage queue (the Function App
  is private and Event Grid cannot push to a private endpoint); this queue
  trigger reads it through the VNet with an identity-based connection:
  ``connection="EventsQueue"`` means the app setting
  ``EventsQueue__queueServiceUri`` (plus the app's managed identity), and the
  queue name comes from the ``EVENTS_QUEUE_NAME`` app setting. A message whose
  events are malformed, or whose submission failed, raises: the host retries it
  (``maxDequeueCount`` in host.json) and then moves it to ``<queue>-poison``.
* ``retrain_webhook`` — Event Grid webhook delivery (only usable where Event
  Grid can reach the app), auth level FUNCTION, with both validation handshakes
  (Event Grid schema validation event; CloudEvents OPTIONS).

Settings are read on first invocation, not at import, so the host can index the
functions even when a setting is missing; the invocation then fails with a
message naming every missing setting.
"""

from __future__ import annotations

import json
import logging
import threading

import azure.functions as func

try:  # imported as retraining.function_app (tests, tooling)
    from .handler import RetrainingHandler
    from .settings import ConfigError, RetrainingSettings
    from .submit import AzureMLJobSubmitter
except ImportError:  # the Functions host: the app root is on sys.path
    from handler import RetrainingHandler  # type: ignore[no-redef]
    from settings import ConfigError, RetrainingSettings  # type: ignore[no-redef]
    from submit import AzureMLJobSubmitter  # type: ignore[no-redef]

log = logging.getLogger("retraining")

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_handler: RetrainingHandler | None = None
_handler_lock = threading.Lock()  # sync functions run on the worker's thread pool


def get_handler() -> RetrainingHandler:
    """The process-wide handler, built from app settings on first use."""
    global _handler
    with _handler_lock:
        if _handler is None:
            settings = RetrainingSettings.from_env()
            _handler = RetrainingHandler(settings, AzureMLJobSubmitter(settings))
        return _handler


class DeliveryNotProcessed(RuntimeError):
    """Raised so the queue message is retried and finally poisoned."""


@app.function_name("retrain_from_queue")
@app.queue_trigger(arg_name="msg", queue_name="%EVENTS_QUEUE_NAME%", connection="EventsQueue")
def retrain_from_queue(msg: func.QueueMessage) -> None:
    result = get_handler().handle_queue_message(msg.get_body())
    summary = f"queue message {msg.id} (dequeue {msg.dequeue_count}): {result.summary()}"
    if result.rejected:
        log.error(summary)
        raise DeliveryNotProcessed(f"malformed event delivery: {'; '.join(result.rejected)}")
    if result.failed:
        log.error(summary)
        raise DeliveryNotProcessed(
            "job submission failed: " + "; ".join(f"{f.event_id}: {f.reason}" for f in result.failed)
        )
    log.info(summary)


@app.function_name("retrain_webhook")
@app.route(route="retraining/events", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def retrain_webhook(req: func.HttpRequest) -> func.HttpResponse:
    try:
        handler = get_handler()
    except ConfigError as error:
        log.error(str(error))
        return _json_response(500, {"error": str(error)}, {})
    result = handler.handle_http(req.method, dict(req.headers), req.get_body())
    (log.info if result.ok else log.error)(f"webhook {req.method}: {result.summary()}")
    return _json_response(result.status, result.body, result.headers)


def _json_response(status: int, body: dict | None, headers: dict[str, str]) -> func.HttpResponse:
    if body is None:
        return func.HttpResponse(status_code=status, headers=headers)
    return func.HttpResponse(json.dumps(body), status_code=status, headers=headers, mimetype="application/json")
