"""A promotion verdict: what `azml release evaluate` decided and on what
evidence. It is the record `azml release advance` applies, so it carries the
stack file's fingerprint at evaluation time (advance refuses a file that
changed since) and the traffic it saw."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

#: Version of the JSON layout (``verdict.json`` artifacts in MLflow).
SCHEMA_VERSION = 1


class Decision(str, enum.Enum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    ROLLBACK = "ROLLBACK"


class Outcome(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


# "mirror" is a release phase (shadow before any live traffic), not the mirrored percentages (mirror_traffic).
Phase = Literal["live", "mirror"]


@dataclass(frozen=True)
class MetricResult:
    """One row of the verdict table."""

    name: str  # accuracyDelta, latencyP95Ms, errorRate, psi, parityDifference
    value: float | None  # None: no observation at all
    threshold: float
    comparison: Literal[">=", "<", "<="]  # value <comparison> threshold passes
    outcome: Outcome
    n: int  # sample size behind value (the smaller side for a delta)
    min_n: int
    champion: float | None = None  # the champion's value, where it matters


@dataclass(frozen=True)
class Verdict:
    stack: str
    endpoint: str
    champion: str
    canary: str
    phase: Phase  # live: canary takes live traffic; mirror: shadow before any live traffic
    decision: Decision
    metrics: tuple[MetricResult, ...]
    rollback_triggers: tuple[str, ...]  # human-readable, empty unless ROLLBACK
    traffic: dict[str, int]  # live split at evaluation time
    mirror_traffic: dict[str, int]
    stack_file_sha256: str
    computed_at: str  # ISO 8601, UTC
    window_minutes: int
    run_id: str | None = None  # the MLflow run holding this verdict, once logged
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> list[str]:
        return [m.name for m in self.metrics if m.outcome is Outcome.FAIL]

    @property
    def inconclusive(self) -> list[str]:
        return [m.name for m in self.metrics if m.outcome is Outcome.INCONCLUSIVE]

    def gate_param(self) -> str:
        """``PASSED``, or ``FAILED:<names>`` listing failed then inconclusive metrics."""
        if self.decision is Decision.PROMOTE:
            return "PASSED"
        names = self.failed + [f"{n}(inconclusive)" for n in self.inconclusive]
        names += [f"rollback:{t.split(' ', 1)[0]}" for t in self.rollback_triggers]
        return "FAILED:" + ",".join(names or ["none"])

    def computed(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.computed_at)

    def with_run_id(self, run_id: str) -> "Verdict":
        return replace(self, run_id=run_id)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["schemaVersion"] = SCHEMA_VERSION
        document["decision"] = self.decision.value
        document["gate"] = self.gate_param()
        document["metrics"] = [{**asdict(m), "outcome": m.outcome.value} for m in self.metrics]
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Verdict":
        if document.get("schemaVersion") != SCHEMA_VERSION:
            raise ValueError(f"verdict schemaVersion {document.get('schemaVersion')!r} is not {SCHEMA_VERSION}")
        fields = {k: v for k, v in document.items() if k not in ("schemaVersion", "gate")}
        fields["decision"] = Decision(fields["decision"])
        fields["metrics"] = tuple(
            MetricResult(**{**m, "outcome": Outcome(m["outcome"])}) for m in fields["metrics"]
        )
        fields["rollback_triggers"] = tuple(fields["rollback_triggers"])
        fields["notes"] = tuple(fields.get("notes", ()))
        return cls(**fields)

    def table(self) -> list[tuple[str, str, str, str, str]]:
        """Rows of (metric, value, threshold, result, n) for display."""
        rows = []
        for m in self.metrics:
            value = "—" if m.value is None else f"{m.value:.4g}"
            if m.champion is not None:
                value += f" (champion {m.champion:.4g})"
            rows.append((m.name, value, f"{m.comparison} {m.threshold:g}", m.outcome.value, f"{m.n} (min {m.min_n})"))
        return rows


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def dumps(verdict: Verdict) -> str:
    return json.dumps(verdict.to_json(), indent=2, sort_keys=True) + "\n"
