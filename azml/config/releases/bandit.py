"""Stack config of the bandit strategy: ``azml:release.bandits.<endpoint>``.

An endpoint listed here has its live split set by ``azml release bandit``
(Thompson sampling on a reward metric) instead of the traffic ladder. Its
arms are the deployments named in the endpoint's ``traffic`` that are not
mirror targets: a deployment the bandit gave 0 % stays named (``green: 0``)
and so stays an arm that can earn traffic back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Literal, Mapping

from pydantic import Field, model_validator

from ..base import Model

if TYPE_CHECKING:  # schema imports release, which imports this module
    from ..schema import StackConfig

#: Reward metrics: both are Bernoulli counts, so a Beta posterior is exact.
#: accuracy: successes = accuracy x accuracy_n (labelled predictions);
#: successRate: successes = (1 - error_rate) x requests.
REWARD_METRICS = ("accuracy", "successRate")


class BanditConfig(Model):
    """Thompson sampling over one endpoint's live deployments."""

    reward_metric: Literal["accuracy", "successRate"] = Field(
        default="accuracy",
        description="accuracy: correct labelled predictions; successRate: requests without a server error.",
    )
    floor_percent: int = Field(
        default=5, ge=1, le=100,
        description="Least live share of every eligible deployment: it keeps collecting the samples its posterior needs.",
    )
    ceiling_percent: int = Field(default=90, ge=1, le=100, description="Most live share of any one deployment.")
    draws: int = Field(
        default=10_000, ge=100, le=1_000_000,
        description="Joint posterior samples behind each deployment's probability of being best.",
    )
    min_samples: int = Field(
        default=200, ge=1,
        description="Reward samples (labelled predictions or requests) below which a deployment only gets the floor.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> "BanditConfig":
        if self.floor_percent > self.ceiling_percent:
            raise ValueError(
                f"floorPercent ({self.floor_percent}) must not exceed ceilingPercent ({self.ceiling_percent})"
            )
        return self


def bandit_arms(traffic: Mapping[str, int], mirror_traffic: Mapping[str, int]) -> list[str]:
    """The deployments a bandit allocates among, in file order."""
    return [name for name in traffic if not mirror_traffic.get(name, 0)]


def bandit_problems(config: "StackConfig") -> Iterator[tuple[str, str]]:
    """Each bandit names a declared online endpoint whose arms can satisfy
    the floor and the ceiling: floor x arms <= 100 <= ceiling x arms."""
    endpoints = {e.name: e for e in config.online_endpoints}
    for name, bandit in config.release.bandits.items():
        key = f"release.bandits.{name}"
        endpoint = endpoints.get(name)
        if endpoint is None:
            yield key, f"{name!r} is not a declared online endpoint (declared: {', '.join(endpoints) or 'none'})"
            continue
        arms = bandit_arms(endpoint.traffic, endpoint.mirror_traffic)
        if len(arms) < 2:
            yield key, (
                f"a bandit needs at least 2 live deployments named in {name}'s traffic, not mirrored "
                f"(has {len(arms)}: {', '.join(arms) or 'none'})"
            )
            continue
        if bandit.floor_percent * len(arms) > 100:
            yield f"{key}.floorPercent", (
                f"{bandit.floor_percent} x {len(arms)} deployments ({', '.join(arms)}) exceeds 100; "
                f"at most {100 // len(arms)}"
            )
        if bandit.ceiling_percent * len(arms) < 100:
            yield f"{key}.ceilingPercent", (
                f"{bandit.ceiling_percent} x {len(arms)} deployments ({', '.join(arms)}) is below 100; "
                f"at least {-(-100 // len(arms))}"
            )
