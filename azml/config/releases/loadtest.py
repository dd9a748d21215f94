"""Stack config of the pre-promotion load test: ``azml:release.loadTest``.

Absent (the default), ``azml release loadtest`` still runs with these
defaults, but the promotion gate gets no load-test rows: a stack that never
asked for a load test is not held waiting for one. Present, the canary must
have a recent, large enough load test that meets the thresholds to PROMOTE.
"""

from __future__ import annotations

from pydantic import Field

from ..base import Model


class LoadTestConfig(Model):
    """Bounded synthetic load on one deployment, and the gate's reading of it."""

    users: int = Field(
        default=10, ge=1, le=1000, description="Concurrent simulated clients (each sends its next request as soon as one returns)."
    )
    spawn_rate: float = Field(default=10, gt=0, le=1000, description="Clients started per second until `users` run.")
    duration_seconds: int = Field(default=60, ge=1, le=3600, description="Wall time of the test, ramp-up included.")
    requests_file: str | None = Field(
        default=None,
        description="JSONL of request bodies, one JSON document a line, sent in turn (path relative to the project); "
        "unset: --requests-file is required.",
    )
    request_timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="A request without a response after this long counts as a failure."
    )
    max_p95_ms: float | None = Field(
        default=None, gt=0, description="Gate: load-test p95 latency strictly below this (unset: gate.maxLatencyP95Ms)."
    )
    max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="Gate: load-test error rate strictly below this (unset: gate.maxErrorRate)."
    )
    min_rps: float | None = Field(
        default=None, gt=0, description="Gate: throughput at least this many requests/s (unset: no throughput row)."
    )
    min_requests: int = Field(default=500, ge=1, description="Gate: fewer completed requests make the rows INCONCLUSIVE.")
    max_age_minutes: int = Field(
        default=1440, ge=1, le=43_200, description="Gate: only a load test started at most this long ago counts."
    )
