"""Stack config of the release controller's operating policy, under
``azml:release``: the error-budget freeze and the canary time limit.

Both are fields of :class:`azml.config.releases.release.ReleaseConfig`
(``errorBudget``, ``maxCanaryMinutes``); how they act is in
``azml/release/evidence/budget.py`` and ``azml/release/evidence/timelimit.py``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..base import Model


class ErrorBudgetConfig(Model):
    """Freeze promotions while the month's availability error budget is spent.

    Unset values follow the stack's availability alert, so the freeze and the
    burn-rate page agree on one objective: ``enabled`` defaults to whether
    ``azml:alerts.availability`` is on (alerts enabled and the rule enabled),
    ``objectivePercent`` to ``azml:alerts.availability.objectivePercent``.
    """

    enabled: bool | None = Field(
        default=None,
        description="Refuse to advance a PROMOTE while the budget is exhausted "
        "(default: on exactly when the availability alert is on).",
    )
    objective_percent: float | None = Field(
        default=None,
        gt=50,
        lt=100,
        description="Availability objective in percent of requests without a 5xx, per calendar month (UTC) "
        "(default: azml:alerts.availability.objectivePercent).",
    )


#: ``azml:release.maxCanaryMinutes``: unset means no limit.
MaxCanaryMinutes = Annotated[
    int | None,
    Field(
        ge=1,
        le=525_600,
        description="A canary evaluated HOLD after this many minutes since it first took traffic is rolled back "
        "instead (unset: no limit).",
    ),
]
