"""``azml release bandit``: set an endpoint's live split by Thompson sampling.

For an endpoint listed in ``azml:release.bandits``, each arm (a deployment
named in ``traffic`` and not mirrored) is scored on the window's observation
runs in MLflow:

1. **Excluded** (share 0): a deployment failing the fairness gate (parity
   difference > ``gate.maxParityDifference``) or the error-rate gate (error
   rate >= ``gate.maxErrorRate``), each only with at least the gate's
   ``minSamples`` behind it — the bandit never routes traffic to a
   deployment the promotion gate would refuse.
2. **Warming up**: fewer than the bandit's ``minSamples`` reward samples. It
   gets the floor, no more: a posterior on a handful of samples would swing
   traffic on noise, yet it needs traffic to collect samples.
3. **Scored**: Beta(1 + successes, 1 + failures) on the reward; its weight is
   the probability of being the best arm, estimated from ``draws`` joint
   posterior samples of a seeded numpy Generator.

Weights become whole percentages within [floor, ceiling] that sum to exactly
100 (largest remainder). With no scored arm the run is refused. The new split
is written by :func:`azml.release.traffic.stackedit.rewrite_traffic` (locked,
validated, atomic, refused if the file changed since it was read), and each
allocation is logged as an MLflow run of kind ``bandit`` before the file is
replaced.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ...config.releases.bandit import BanditConfig, bandit_arms
from ...config.releases.release import ReleaseConfig
from ... import tracking as t
from .advance import (
    EXIT_INVALID_INPUT, EXIT_REFUSED, TAG_APPLIED, AdvanceError, edit_error_code, load_target, missing_sqlite_store,
    pulumi_up_command, settle,
)
from ..evidence.observations import Observation

ALLOCATION_ARTIFACT = "allocation.json"


class BanditError(AdvanceError):
    """``bandit`` stopped without changing the file; ``code`` 1 refused, 2 bad input."""


@dataclass(frozen=True)
class Arm:
    """One deployment's evidence and share."""

    deployment: str
    before: int  # live share in the file when the run started
    after: int
    status: str  # scored | warming | excluded | mirrored
    reason: str = ""  # why excluded (or mirrored)
    n: int = 0  # reward samples
    successes: int = 0
    p_best: float | None = None  # scored arms only

    @property
    def alpha(self) -> int:
        return 1 + self.successes

    @property
    def beta(self) -> int:
        return 1 + self.n - self.successes

    @property
    def posterior_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass
class Allocation:
    stack: str
    endpoint: str
    reward_metric: str
    seed: int
    draws: int
    computed_at: str
    window_minutes: int
    arms: list[Arm]
    mirror_traffic: dict[str, int]
    dry_run: bool = False
    applied: bool = False
    run_id: str | None = None
    diff: list[str] = field(default_factory=list)
    pulumi_command: list[str] = field(default_factory=list)

    @property
    def before(self) -> dict[str, int]:
        return {a.deployment: a.before for a in self.arms}

    @property
    def after(self) -> dict[str, int]:
        return {a.deployment: a.after for a in self.arms}

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_json(self) -> dict[str, object]:
        return {
            "stack": self.stack, "endpoint": self.endpoint, "rewardMetric": self.reward_metric, "seed": self.seed,
            "draws": self.draws, "computedAt": self.computed_at, "windowMinutes": self.window_minutes,
            "before": self.before, "after": self.after, "mirrorTraffic": self.mirror_traffic, "changed": self.changed,
            "dryRun": self.dry_run, "applied": self.applied, "runId": self.run_id,
            "arms": [
                {**asdict(a), "alpha": a.alpha, "beta": a.beta, "posteriorMean": a.posterior_mean} for a in self.arms
            ],
        }


# --- pure parts ---------------------------------------------------------------


def reward_counts(observation: Observation, reward_metric: str) -> tuple[int, int]:
    """(successes, samples) of the reward; (0, 0) when never observed."""
    metric = t.METRIC_ACCURACY if reward_metric == "accuracy" else t.METRIC_ERROR_RATE
    measure = observation.get(metric)
    if measure is None or measure.n <= 0:
        return 0, 0
    rate = measure.value if reward_metric == "accuracy" else 1 - measure.value
    # Pooled rates are exact ratios of counts, so rounding recovers the count.
    return int(round(rate * measure.n)), measure.n


def exclusion(observation: Observation, release: ReleaseConfig) -> str:
    """Why the promotion gate would refuse this deployment ('' when it would not)."""
    gate, minimum = release.gate, release.min_samples
    reasons = []
    parity = observation.get(t.METRIC_PARITY)
    if parity is not None and parity.n >= minimum.parity_difference and parity.value > gate.max_parity_difference:
        reasons.append(
            f"parityDifference {parity.value:.4g} > maxParityDifference {gate.max_parity_difference:g} (n={parity.n})"
        )
    errors = observation.get(t.METRIC_ERROR_RATE)
    if errors is not None and errors.n >= minimum.error_rate and errors.value >= gate.max_error_rate:
        reasons.append(f"errorRate {errors.value:.4g} >= maxErrorRate {gate.max_error_rate:g} (n={errors.n})")
    return "; ".join(reasons)


def probability_best(successes: Sequence[int], samples: Sequence[int], draws: int, seed: int) -> list[float]:
    """P(arm i has the highest reward rate) under Beta(1 + s, 1 + n - s)
    posteriors, from ``draws`` joint samples (Thompson sampling's allocation)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = np.asarray(successes, dtype=float)
    f = np.asarray(samples, dtype=float) - s
    theta = rng.beta(1 + s, 1 + f, size=(draws, len(s)))
    wins = np.bincount(theta.argmax(axis=1), minlength=len(s))
    return [float(w) / draws for w in wins]


def bounded_shares(weights: Sequence[float], floor: int, ceiling: int, total: int = 100) -> list[int]:
    """Whole percentages proportional to ``weights`` as far as the bounds
    allow: each within [floor, ceiling], summing to exactly ``total``.

    The real-valued split is clip(c * w, floor, ceiling) with the one scale c
    that makes it sum to ``total`` (found by bisection: the sum grows with c).
    Where the arms are too few for the bounds (after exclusions), the floor is
    lowered and the ceiling raised to total / arms. Integer bounds survive the
    largest-remainder rounding: a value above the floor is floored to at
    least the floor, and one below the ceiling rounds up to at most it.
    """
    k = len(weights)
    if k == 0:
        return []
    lo, hi = min(float(floor), total / k), max(float(ceiling), total / k)
    # A tiny weight for every arm: once the favoured arms hit the ceiling the
    # rest of the mass still has somewhere to go.
    w = [max(float(x), 0.0) + 1e-12 for x in weights]

    def filled(scale: float) -> float:
        return sum(min(max(scale * x, lo), hi) for x in w)

    low, high = 0.0, 1.0
    while filled(high) < total:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if filled(middle) < total else (low, middle)
    exact = [min(max(high * x, lo), hi) for x in w]
    exact = [v * total / sum(exact) for v in exact]
    whole = [math.floor(round(v, 9)) for v in exact]
    order = sorted(range(k), key=lambda i: (-(exact[i] - whole[i]), i))
    for i in order[: total - sum(whole)]:
        whole[i] += 1
    for i in reversed(order[: max(sum(whole) - total, 0)]):  # float overshoot: take back from the smallest remainders
        whole[i] -= 1
    return whole


def allocate(
    release: ReleaseConfig,
    bandit: BanditConfig,
    split: Mapping[str, int],
    mirror_traffic: Mapping[str, int],
    observations: Mapping[str, Observation],
    *,
    seed: int,
) -> list[Arm]:
    """The new share of every deployment named in ``split`` (file order).
    Raises :class:`BanditError` (exit 1) when no arm has enough samples."""
    arms = bandit_arms(split, mirror_traffic)
    results: dict[str, Arm] = {}
    for name in split:
        if name not in arms:
            results[name] = Arm(name, split[name], split[name], "mirrored", "mirror target: not a live deployment")
            continue
        observation = observations.get(name, Observation(name))
        successes, n = reward_counts(observation, bandit.reward_metric)
        reason = exclusion(observation, release)
        status = "excluded" if reason else ("warming" if n < bandit.min_samples else "scored")
        results[name] = Arm(name, split[name], 0, status, reason, n, successes)
    scored = [a for a in results.values() if a.status == "scored"]
    if not scored:
        lines = [f"{a.deployment}: {a.reason or f'{a.n} {bandit.reward_metric} samples < minSamples {bandit.min_samples}'}"
                 for a in results.values() if a.status in ("excluded", "warming")]
        raise BanditError(
            EXIT_REFUSED,
            ["no deployment is eligible with enough samples; the split stays as it is"] + lines,
        )
    p_best = probability_best([a.successes for a in scored], [a.n for a in scored], bandit.draws, seed)
    best = dict(zip((a.deployment for a in scored), p_best))
    eligible = [a for a in results.values() if a.status in ("scored", "warming")]
    shares = bounded_shares(
        [best.get(a.deployment, 0.0) for a in eligible], bandit.floor_percent, bandit.ceiling_percent
    )
    for arm, share in zip(eligible, shares):
        results[arm.deployment] = Arm(
            arm.deployment, arm.before, share, arm.status, arm.reason, arm.n, arm.successes, best.get(arm.deployment)
        )
    return [results[name] for name in split]


# --- the run --------------------------------------------------------------------


def run_bandit(
    stack: str,
    endpoint: str,
    *,
    seed: int | None = None,
    dry_run: bool = False,
    project_dir: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    at: dt.datetime | None = None,
) -> Allocation:
    """Allocate, log and write ``endpoint``'s split (or only allocate, with
    ``dry_run``). Raises :class:`AdvanceError`: 1 refused, 2 bad input."""
    from ..evidence.sources import from_mlflow
    from .stackedit import StackEditError, rewrite_traffic
    from ..evidence.verdict import file_sha256, utc_now

    stack_file, config, uri, experiment_name = load_target(
        stack, endpoint, project_dir=project_dir, tracking_uri=tracking_uri, experiment=experiment
    )
    bandit = config.release.bandits.get(endpoint)
    if bandit is None:
        raise BanditError(
            EXIT_INVALID_INPUT,
            [
                f"--endpoint: {endpoint} is not in bandit mode in {stack_file.path.name} "
                f"(azml:release.bandits has: {', '.join(config.release.bandits) or 'none'})"
            ],
        )
    # The file's fingerprint before anything is read: an edit made meanwhile refuses the write.
    sha = file_sha256(stack_file.path)
    declared = next(e for e in config.online_endpoints if e.name == endpoint)
    split, mirror_traffic = dict(declared.traffic), dict(declared.mirror_traffic)
    moment = at or utc_now()
    seed = secrets.randbits(63) if seed is None else seed  # logged, so any allocation can be recomputed
    if missing_sqlite_store(uri) is not None:
        raise BanditError(EXIT_REFUSED, [f"no observations: there is no tracking store at {uri}"])
    if not dry_run:  # a change a killed run recorded but never marked: settled from the file first
        settle(uri, experiment_name, stack_file)
    window = dt.timedelta(minutes=config.release.window_minutes)
    try:
        observed = from_mlflow(
            uri, experiment_name, stack=stack_file.stack, endpoint=endpoint,
            deployments=bandit_arms(split, mirror_traffic), start=moment - window, end=moment,
        )
    except ValueError as error:  # a malformed observation run
        raise BanditError(EXIT_REFUSED, [str(error)]) from None
    except Exception as error:
        raise BanditError(EXIT_REFUSED, [f"cannot read observations from {uri}: {error}"]) from None
    arms = allocate(config.release, bandit, split, mirror_traffic, observed, seed=seed)
    allocation = Allocation(
        stack_file.stack, endpoint, bandit.reward_metric, seed, bandit.draws, moment.isoformat(),
        config.release.window_minutes, arms, mirror_traffic, dry_run=dry_run,
    )
    if dry_run:
        return allocation
    if not allocation.changed:  # still an allocation: logged, nothing to write
        allocation.run_id = _log(uri, experiment_name, allocation, sha, applied=False)
        return allocation

    recorded: dict[str, str] = {}

    def record(new_sha256: str) -> None:
        try:
            recorded["run_id"] = _log(uri, experiment_name, allocation, new_sha256, applied=None)
        except Exception as error:
            raise BanditError(
                EXIT_REFUSED, [f"cannot log the allocation to {uri}: {error}; {stack_file.path.name} was not changed"]
            ) from None

    try:
        edit = rewrite_traffic(
            stack_file.path, endpoint, allocation.after, mirror_traffic, expected_sha256=sha,
            computed_at=allocation.computed_at, project_dir=stack_file.project_dir, project=stack_file.project,
            before_replace=record,
        )
    except BaseException as error:
        if "run_id" in recorded:  # recorded, then the replace failed: say so in the audit trail
            t.mark_applied(uri, recorded["run_id"], False)
        if isinstance(error, StackEditError):
            raise BanditError(edit_error_code(error), error.problems) from None
        raise
    t.mark_applied(uri, recorded["run_id"], True)
    allocation.applied, allocation.run_id, allocation.diff = True, recorded["run_id"], edit.diff
    allocation.pulumi_command = pulumi_up_command(stack_file.stack, stack_file.project_dir)
    return allocation


def _log(uri: str, experiment: str, allocation: Allocation, stack_sha: str, *, applied: bool | None) -> str:
    """One finished run holding the allocation; ``applied`` None: tagged later."""
    client = t.client(uri)
    tags = {t.TAG_KIND: t.KIND_BANDIT, t.TAG_STACK: allocation.stack, t.TAG_ENDPOINT: allocation.endpoint}
    if applied is not None:
        tags[TAG_APPLIED] = "true" if applied else "false"
    run = client.create_run(t.experiment_id(client, experiment), run_name=f"bandit-{allocation.endpoint}", tags=tags)
    run_id = run.info.run_id
    try:
        params = {
            "reward_metric": allocation.reward_metric, "seed": str(allocation.seed), "draws": str(allocation.draws),
            "window_minutes": str(allocation.window_minutes), "stack_file_sha256": stack_sha,
            "before": json.dumps(allocation.before), "after": json.dumps(allocation.after),
            "excluded": json.dumps({a.deployment: a.reason for a in allocation.arms if a.status == "excluded"})[:6000],
        }
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for arm in allocation.arms:
            client.log_metric(run_id, f"share.{arm.deployment}", float(arm.after))
            client.log_metric(run_id, f"n.{arm.deployment}", float(arm.n))
            client.log_metric(run_id, f"posterior_mean.{arm.deployment}", arm.posterior_mean)
            if arm.p_best is not None:
                client.log_metric(run_id, f"p_best.{arm.deployment}", arm.p_best)
        record = {k: v for k, v in allocation.to_json().items() if k not in ("applied", "dryRun")}
        client.log_text(run_id, json.dumps({**record, "runId": run_id}, indent=2), ALLOCATION_ARTIFACT)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
