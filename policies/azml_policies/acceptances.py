"""Risk acceptances: the resources a policy skips, each with a reason and an expiry date.

Every policy (of this pack and of the platform-rules pack, which declares its
rules with the same :class:`~azml_policies.checks.PolicyInfo`) takes
``exemptResources``, a list of objects::

    {"resource": "st-fn", "reason": "why the risk is accepted", "expires": "2027-06-30"}

``resource`` is the Pulumi or the Azure name of the resource (case-insensitive);
``expires`` is the last day the acceptance holds (ISO date, UTC). From the day
after, the policy checks the resource again, and each violation says that its
acceptance expired: under ``pulumi preview --policy-pack`` as under
``azml plan`` (which also lists every acceptance, fails on an expired one and
warns 30 days ahead: ``azml/policy/acceptances.py``).

A bare name (the earlier shape) is refused by the schema and exempts nothing:
an exception without a reason and a date is not an accepted risk.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

EXEMPT_KEY = "exemptResources"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MIN_REASON = 20  # characters: a reason, not a label

#: JSON schema of ``exemptResources``: valid for the Pulumi CLI's validator
#: (draft-07 keywords only) and for ``azml``'s (jsonschema Draft7Validator).
EXEMPT_SCHEMA: dict[str, Any] = {
    "type": "array",
    "default": [],
    "description": (
        "Risk acceptances: resources this policy skips, each with the reason and the last day the "
        "acceptance holds (YYYY-MM-DD, UTC)."
    ),
    "items": {
        "type": "object",
        "properties": {
            "resource": {"type": "string", "minLength": 1, "description": "Pulumi or Azure name of the resource."},
            "reason": {
                "type": "string",
                "minLength": MIN_REASON,
                "description": "Why the risk is accepted and what covers it meanwhile.",
            },
            "expires": {
                "type": "string",
                "pattern": DATE_PATTERN,
                "description": "Last day the acceptance holds (YYYY-MM-DD, UTC); the policy checks the resource again after it.",
            },
        },
        "required": ["resource", "reason", "expires"],
        "additionalProperties": False,
    },
}


def utc_today() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


#: The clock the policies read expiry dates against; tests replace it
#: (``monkeypatch.setattr(acceptances, "clock", lambda: date(...))``).
clock: Callable[[], _dt.date] = utc_today


def parse_date(text: Any) -> _dt.date | None:
    """An ISO ``YYYY-MM-DD`` date, or None when ``text`` is not one (2027-02-30 is not)."""
    if not isinstance(text, str):
        return None
    try:
        return _dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Acceptance:
    """One ``exemptResources`` entry."""

    resource: str
    reason: str
    expires: _dt.date | None  # None: not a valid date, so never in force
    expires_text: str

    def in_force(self, today: _dt.date) -> bool:
        return self.expires is not None and today <= self.expires

    def lapse_note(self) -> str:
        """What a violation of a resource whose acceptance lapsed adds."""
        when = f"expired on {self.expires_text}" if self.expires else f"has no valid expiry date ({self.expires_text!r})"
        return (
            f" [its risk acceptance in exemptResources {when}: fix the resource, or renew the acceptance "
            "with a reason and a new date]"
        )


def entries(config: Mapping[str, Any]) -> Iterator[Acceptance]:
    """The well-formed entries of ``config[exemptResources]`` (objects naming a resource)."""
    for entry in config.get(EXEMPT_KEY) or []:
        if not isinstance(entry, Mapping):
            continue
        resource, reason, expires = entry.get("resource"), entry.get("reason"), entry.get("expires")
        if not isinstance(resource, str) or not resource:
            continue
        text = expires if isinstance(expires, str) else repr(expires)
        yield Acceptance(resource, reason if isinstance(reason, str) else "", parse_date(expires), text)


def acceptance_for(config: Mapping[str, Any], *names: str | None) -> Acceptance | None:
    """The entry naming one of ``names`` (Pulumi or Azure name), in force or not."""
    wanted = {n.lower() for n in names if n}
    matching = [a for a in entries(config) if a.resource.lower() in wanted]
    # Two entries for one resource: the one that holds longest decides.
    return max(matching, key=lambda a: a.expires or _dt.date.min, default=None)


def exempt(config: Mapping[str, Any], *names: str | None) -> bool:
    """Whether the policy skips the resource: an acceptance names it and has not expired."""
    acceptance = acceptance_for(config, *names)
    return acceptance is not None and acceptance.in_force(clock())


def lapsed(config: Mapping[str, Any], *names: str | None) -> Acceptance | None:
    """The acceptance naming the resource when it is no longer in force (expired or undated)."""
    acceptance = acceptance_for(config, *names)
    return acceptance if acceptance is not None and not acceptance.in_force(clock()) else None
