"""The load generator of ``azml release loadtest``, run as a child process:
``python -m azml.release.evidence.loadtest_worker`` with its spec as JSON on stdin.

Locust runs on gevent, which monkey-patches sockets, threads and ssl of the
whole interpreter; that is why it lives in its own process and the CLI (and
the test process) never import it. The spec arrives on stdin rather than in
arguments or a file because it carries the Authorization header: stdin is
neither visible in the process list nor left on disk.

Spec: ``url``, ``headers`` (Authorization, azureml-model-deployment),
``bodies`` (JSON texts, sent in turn), ``users``, ``spawn_rate``,
``duration_seconds``, ``request_timeout_seconds``. Result: one JSON line on
stdout (see :func:`measure`).
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket or ssl

import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
from locust import HttpUser, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402

#: Distinct failure messages kept in the result (the rest are only counted).
MAX_ERROR_KINDS = 10


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the target for ``duration_seconds`` and summarise what came back."""
    parts = urlsplit(spec["url"])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # One cycle shared by all users: the sample file is replayed in order, not per user.
    bodies = itertools.cycle([body.encode("utf-8") for body in spec["bodies"]])
    headers = {**spec["headers"], "Content-Type": "application/json"}
    timeout = float(spec["request_timeout_seconds"])
    statuses: Counter[str] = Counter()

    class Scorer(HttpUser):
        host = f"{parts.scheme}://{parts.netloc}"
        wait_time = constant(0)  # closed loop: each user sends its next request when one returns

        @task
        def score(self) -> None:
            with self.client.post(
                path, data=next(bodies), headers=headers, timeout=timeout, name="score", catch_response=True
            ) as response:
                # status 0: no HTTP response at all (refused, reset, timed out)
                statuses[str(response.status_code)] += 1
                if 200 <= response.status_code < 300:
                    response.success()
                elif response.status_code == 0:
                    response.failure(f"no response: {type(response.error).__name__}")
                else:
                    response.failure(f"HTTP {response.status_code}")

    environment = Environment(user_classes=[Scorer])
    runner = environment.create_local_runner()
    started = time.monotonic()
    runner.start(int(spec["users"]), spawn_rate=float(spec["spawn_rate"]))
    gevent.spawn_later(float(spec["duration_seconds"]), runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started

    total = environment.stats.total
    errors = sorted(environment.stats.errors.values(), key=lambda e: -e.occurrences)[:MAX_ERROR_KINDS]
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        # Locust keeps response times in buckets (exact below 100 ms, then 2 significant digits).
        "p50_ms": float(total.get_response_time_percentile(0.5)),
        "p95_ms": float(total.get_response_time_percentile(0.95)),
        "p99_ms": float(total.get_response_time_percentile(0.99)),
        "rps": total.num_requests / elapsed if elapsed > 0 else 0.0,
        "elapsed_seconds": elapsed,
        "statuses": dict(statuses),
        "errors": [{"error": str(e.error), "occurrences": e.occurrences} for e in errors],
    }


def main() -> int:
    spec = json.loads(sys.stdin.read())
    result = measure(spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
