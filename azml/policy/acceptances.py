"""Every risk a stack accepts, with its reason and expiry date, as ``azml plan`` reports them.

Two places accept a risk, in one shape (what, on which resource, why, until when):

- a policy's ``exemptResources`` entry in a pack's config file
  (``{"resource", "reason", "expires"}``, ``policies/azml_policies/acceptances.py``),
  for both packs;
- a checkov skip (:class:`azml.arm.skips.Skip`: check, resource patterns, reason, expires).

``azml plan`` lists them all in plan.json (``riskAcceptances``), warns in its
text output about those that expire within :data:`WARN_DAYS` days, and fails
(exit 1) on any that has expired, naming it and its date. The date is the
last day the acceptance holds; the clock is UTC and injectable (``today``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..arm.skips import Skip

WARN_DAYS = 30
EXEMPT_KEY = "exemptResources"


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _date(text: Any) -> dt.date | None:
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class RiskAcceptance:
    source: str  # "policy" | "platform" (the pack's key in plan.json) | "checkov"
    check: str  # policy name or checkov check id
    resources: tuple[str, ...]  # resource names (packs) or checkov resource patterns
    reason: str
    expires: str  # as written: YYYY-MM-DD

    @property
    def expiry(self) -> dt.date | None:
        return _date(self.expires)

    def days_left(self, today: dt.date) -> int | None:
        return (self.expiry - today).days if self.expiry else None

    def status(self, today: dt.date) -> str:
        """``expired`` (also: no valid date), ``expiring`` (within WARN_DAYS) or ``active``."""
        left = self.days_left(today)
        if left is None or left < 0:
            return "expired"
        return "expiring" if left <= WARN_DAYS else "active"

    @property
    def label(self) -> str:
        return f"{self.check} on {', '.join(self.resources)} ({self.source})"

    def line(self, today: dt.date) -> str:
        status, left = self.status(today), self.days_left(today)
        if status == "expired":
            when = f"expired on {self.expires}" if left is not None else f"has no valid expiry date ({self.expires!r})"
            return f"risk acceptance {self.label} {when}: fix it, or renew it with a reason and a new date"
        return f"risk acceptance {self.label} expires on {self.expires} (in {left} day{'s' if left != 1 else ''})"

    def to_json(self, today: dt.date) -> dict[str, Any]:
        return {
            "source": self.source,
            "check": self.check,
            "resources": list(self.resources),
            "reason": self.reason,
            "expires": self.expires,
            "status": self.status(today),
            "daysLeft": self.days_left(today),
        }


def from_pack_properties(source: str, properties: Mapping[str, Mapping[str, Any]]) -> list[RiskAcceptance]:
    """The acceptances of one pack, from each policy's effective properties."""
    found = []
    for policy, props in sorted(properties.items()):
        for entry in props.get(EXEMPT_KEY) or []:
            if isinstance(entry, Mapping):
                found.append(
                    RiskAcceptance(
                        source=source,
                        check=policy,
                        resources=(str(entry.get("resource", "")),),
                        reason=str(entry.get("reason", "")),
                        expires=str(entry.get("expires", "")),
                    )
                )
    return found


def from_skips(skips: Iterable[Skip], environment: str | None) -> list[RiskAcceptance]:
    """The checkov skips that apply to a stack of ``environment``."""
    return [
        RiskAcceptance("checkov", s.check_id, s.resources, s.reason, s.expires)
        for s in skips
        if not s.stacks or environment in s.stacks
    ]


@dataclass
class Ledger:
    acceptances: list[RiskAcceptance] = field(default_factory=list)
    today: dt.date = field(default_factory=lambda: utc_today())  # looked up at call time: tests replace it

    def with_status(self, status: str) -> list[RiskAcceptance]:
        return [a for a in self.acceptances if a.status(self.today) == status]

    @property
    def expired(self) -> list[RiskAcceptance]:
        return self.with_status("expired")

    def lines(self) -> list[str]:
        """The text output: a count, then one line per acceptance, warnings and errors marked."""
        expiring = self.with_status("expiring")
        lines = [
            f"Risk acceptances: {len(self.acceptances)} ({len(self.expired)} expired, {len(expiring)} expiring "
            f"within {WARN_DAYS} days; as of {self.today.isoformat()} UTC)"
        ]
        marks = {"expired": "ERROR", "expiring": "WARNING", "active": "ok"}
        order = {"expired": 0, "expiring": 1, "active": 2}
        for acceptance in sorted(self.acceptances, key=lambda a: (order[a.status(self.today)], a.expires, a.check)):
            lines.append(f"    [{marks[acceptance.status(self.today)]}] {acceptance.line(self.today)}")
        return lines

    def failure_lines(self) -> list[str]:
        return [a.line(self.today) for a in self.expired]

    def to_json(self) -> dict[str, Any]:
        return {
            "asOf": self.today.isoformat(),
            "warnDays": WARN_DAYS,
            "acceptances": [a.to_json(self.today) for a in self.acceptances],
            "summary": {
                status: len(self.with_status(status)) for status in ("active", "expiring", "expired")
            },
        }
