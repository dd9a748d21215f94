"""The traffic ladder: where a verdict moves an endpoint's split.

Pure functions over plain dicts, no I/O. The rules:

- **PROMOTE** moves the canary one step up the stack's ladder (e.g.
  ``[10, 25, 50, 100]``). From the mirror phase (or with no canary traffic at
  all) it goes live at the first step and the mirror is removed. From a live
  share it goes to the next step *above* that share, so a hand-set 15 % goes
  to 25 %. The champion keeps the rest. At 100 the canary is the sole live
  deployment and becomes the new champion: the walk is *complete*, and a
  further PROMOTE changes nothing.
- **HOLD** changes nothing.
- **ROLLBACK** gives the champion 100 %, the canary 0 % and removes the
  mirror, from any position.

The ladder moves traffic between two deployments, champion and canary. A
third deployment may stay declared, and may stay named in the split with 0 %,
but a third deployment that holds live or mirror traffic is refused: where
its share should go is a human decision, not the ladder's.

Keys are kept where they are: a zero share stays written (``blue: 0``) as
Azure accepts it and the file then shows who left; a new key (the canary's
first live share, the champion after a complete walk is rolled back) is
appended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ...errors import ProblemsError
from ...serving.rules import traffic_problems
from ..evidence.verdict import Decision


class LadderError(ProblemsError, ValueError):
    """The split cannot be moved by the ladder (one line per problem)."""

    separator = "; "


@dataclass(frozen=True)
class Split:
    """An endpoint's live split and mirror split, in file order."""

    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, traffic: Mapping[str, int] | None, mirror_traffic: Mapping[str, int] | None) -> "Split":
        return cls(dict(traffic or {}), dict(mirror_traffic or {}))

    def live(self, name: str) -> int:
        return int(self.traffic.get(name, 0))

    def mirrored(self, name: str) -> int:
        return int(self.mirror_traffic.get(name, 0))

    def as_config(self) -> dict[str, dict[str, int]]:
        """The two stack-config keys this split is written as."""
        return {"traffic": dict(self.traffic), "mirrorTraffic": dict(self.mirror_traffic)}

    def text(self) -> str:
        live = ", ".join(f"{k}: {v}" for k, v in self.traffic.items()) or "none"
        mirror = ", ".join(f"{k}: {v}" for k, v in self.mirror_traffic.items() if v)
        return f"live {{{live}}}" + (f", mirror {{{mirror}}}" if mirror else "")


@dataclass(frozen=True)
class Position:
    """Where a canary stands on the ladder.

    ``phase`` is ``none`` (no canary traffic of any kind), ``mirror``
    (shadow traffic only), ``live`` or ``complete`` (sole live deployment).
    ``step`` is the 1-based ladder step the live share sits exactly on;
    ``below`` the step the share is under when it sits between steps.
    """

    canary: str | None
    # The phase "mirror" is a ladder phase (shadow before step 1), not the mirrored percentages (mirror_traffic).
    phase: str
    percent: int  # live share; the mirror share in the mirror phase
    steps: int
    step: int | None = None
    below: int | None = None

    @property
    def label(self) -> str:
        if self.canary is None:
            return "no canary"
        if self.phase == "mirror":
            return f"mirror {self.percent}% (before step 1/{self.steps})"
        if self.phase == "none":
            return f"0% (before step 1/{self.steps})"
        if self.step is not None:
            done = ", complete" if self.phase == "complete" else ""
            return f"{self.percent}% (step {self.step}/{self.steps}{done})"
        assert self.below is not None
        if self.below == 1:
            return f"{self.percent}% (below step 1/{self.steps})"
        return f"{self.percent}% (between step {self.below - 1}/{self.steps} and step {self.below}/{self.steps})"

    def to_json(self) -> dict[str, object]:
        return {
            "canary": self.canary,
            "phase": self.phase,
            "percent": self.percent,
            "step": self.step,
            "steps": self.steps,
            "label": self.label,
        }


@dataclass(frozen=True)
class Move:
    """What one decision does to a split."""

    decision: Decision
    champion: str
    canary: str
    before: Split
    after: Split
    position_before: Position
    position_after: Position

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def complete(self) -> bool:
        """The canary is the sole live deployment: it is the champion now."""
        return self.position_after.phase == "complete"

    @property
    def summary(self) -> str:
        if self.decision is Decision.HOLD:
            return f"HOLD: {self.canary} stays at {self.position_before.label}"
        if self.decision is Decision.ROLLBACK:
            if not self.changed:
                return f"ROLLBACK: {self.champion} already serves 100% and nothing is mirrored to {self.canary}"
            return f"ROLLBACK: {self.champion} back to 100%, {self.canary} to 0%, mirror removed"
        if not self.changed:
            return f"PROMOTE: {self.canary} already serves 100% (ladder complete)"
        text = f"PROMOTE: {self.canary} {self.position_before.label} -> {self.position_after.label}"
        if self.complete:
            text += f"; {self.canary} is the sole live deployment and becomes champion"
        return text


def position(split: Split, canary: str | None, ladder: Sequence[int]) -> Position:
    """The canary's place on ``ladder`` given the current split."""
    steps = len(ladder)
    if canary is None:
        return Position(None, "none", 0, steps)
    live = split.live(canary)
    if live <= 0:
        mirrored = split.mirrored(canary)
        return Position(canary, "mirror" if mirrored > 0 else "none", mirrored, steps)
    sole = live >= 100 and all(v <= 0 for k, v in split.traffic.items() if k != canary)
    phase = "complete" if sole else "live"
    if live in ladder:
        return Position(canary, phase, live, steps, step=list(ladder).index(live) + 1)
    above = next((i for i, s in enumerate(ladder) if s > live), steps - 1)
    return Position(canary, phase, live, steps, below=above + 1)


def infer_roles(split: Split, deployments: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """(champion, canary) read from a split alone, for display when no verdict
    names them: the champion holds the largest live share; the canary is the
    other deployment with live or mirror traffic (None when there is none)."""
    live = [(v, -i, k) for i, (k, v) in enumerate(split.traffic.items()) if v > 0]
    champion = max(live)[2] if live else None
    others = [k for k, v in split.traffic.items() if v > 0 and k != champion]
    others += [k for k, v in split.mirror_traffic.items() if v > 0 and k != champion and k not in others]
    if champion is None and not others:
        names = list(deployments)
        champion = names[0] if names else None
    return champion, (others[0] if others else None)


def _check(split: Split, champion: str, canary: str, ladder: Sequence[int], deployments: Sequence[str]) -> None:
    problems: list[str] = []
    if champion == canary:
        problems.append(f"champion and canary are the same deployment ({canary})")
    for role, name in (("champion", champion), ("canary", canary)):
        if name not in deployments:
            problems.append(f"{role} {name} is not a declared deployment (declared: {', '.join(deployments) or 'none'})")
    if not ladder or list(ladder) != sorted(set(ladder)) or ladder[-1] != 100 or ladder[0] < 1:
        problems.append(f"ladder must strictly increase from 1 or more to 100 (got {list(ladder)})")
    for key, message in traffic_problems(split.traffic, split.mirror_traffic, deployments):
        problems.append(f"current split: {key}: {message}")
    if problems:
        raise LadderError(problems)
    for name in deployments:
        if name in (champion, canary):
            continue
        if split.live(name) > 0 or split.mirrored(name) > 0:
            problems.append(
                f"{name} holds {split.live(name)}% live and {split.mirrored(name)}% mirror traffic; the ladder moves "
                f"traffic between champion {champion} and canary {canary} only: set {name} to 0 first"
            )
    if problems:
        raise LadderError(problems)


def _with(mapping: Mapping[str, int], **values: int) -> dict[str, int]:
    """``mapping`` with ``values`` set: existing keys keep their place, new ones are appended."""
    result = dict(mapping)
    result.update(values)
    return result


def next_split(
    split: Split,
    *,
    champion: str,
    canary: str,
    ladder: Sequence[int],
    decision: Decision,
    deployments: Sequence[str] | None = None,
) -> Move:
    """Apply ``decision`` to ``split``. ``deployments`` are the endpoint's
    declared deployments (default: every name in the split plus champion and
    canary). Raises :class:`LadderError` when the split cannot be moved."""
    declared = list(deployments) if deployments is not None else list(
        dict.fromkeys([*split.traffic, *split.mirror_traffic, champion, canary])
    )
    _check(split, champion, canary, ladder, declared)
    before_pos = position(split, canary, ladder)

    if decision is Decision.HOLD:
        after = split
    elif decision is Decision.ROLLBACK:
        traffic = _with(split.traffic, **{champion: 100})
        if canary in traffic:
            traffic[canary] = 0
        after = Split(traffic, {})
    elif decision is Decision.PROMOTE:
        live = split.live(canary)
        if live >= 100:
            after = split
        else:
            if live <= 0 and sum(split.traffic.values()) == 0:
                raise LadderError(
                    [f"the endpoint routes no live traffic; give champion {champion} 100% before promoting {canary}"]
                )
            step = next(s for s in ladder if s > live)
            traffic = _with(split.traffic, **{champion: 100 - step, canary: step})
            mirror_traffic = {} if live <= 0 else dict(split.mirror_traffic)
            after = Split(traffic, mirror_traffic)
    else:  # pragma: no cover - Decision has three members
        raise LadderError([f"unknown decision {decision!r}"])

    problems = traffic_problems(after.traffic, after.mirror_traffic, declared)
    if problems:  # pragma: no cover - the rules above only produce valid splits
        raise LadderError([f"next split: {key}: {message}" for key, message in problems])
    return Move(decision, champion, canary, split, after, before_pos, position(after, canary, ladder))
