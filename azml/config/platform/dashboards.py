"""Stack config for dashboards as code: ``azml:dashboards``.

The section is on when absent: a workbook costs nothing, and the activity log
it reads is ingested into Log Analytics free of charge. ``enabled: false``
removes the workbook and the activity-log export together.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from ..base import Model

#: Default time range choices of the workbook, as workbooks store them (milliseconds).
TIME_RANGES_MS: dict[str, int] = {
    "PT1H": 3_600_000,
    "PT4H": 14_400_000,
    "PT12H": 43_200_000,
    "P1D": 86_400_000,
    "P3D": 259_200_000,
    "P7D": 604_800_000,
    "P30D": 2_592_000_000,
}

TimeRange = Literal["PT1H", "PT4H", "PT12H", "P1D", "P3D", "P7D", "P30D"]

# App Insights metric names: keep them plain so they can be quoted in KQL without escaping.
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,149}$")]


class DashboardsConfig(Model):
    enabled: bool = Field(default=True, description="The workbook and the activity-log export exist.")
    display_name: str | None = Field(
        default=None, max_length=128, description="Workbook title; default '<prefix>-<env> ML operations'."
    )
    time_range: TimeRange = Field(default="P1D", description="Time range the workbook opens with.")
    activity_log: bool = Field(
        default=True,
        description=(
            "Send the subscription's activity log (Administrative, Policy, Security) to the stack's Log Analytics "
            "workspace; the deployment-changes view reads it. Subscription-wide."
        ),
    )
    drift_metrics: list[MetricName] = Field(
        default_factory=lambda: ["psi", "parity_difference"],
        min_length=1,
        max_length=20,
        description="App Insights custom metric names charted in the drift and fairness view.",
    )

    @field_validator("drift_metrics")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("metric names must be distinct")
        return names

    @property
    def time_range_ms(self) -> int:
        return TIME_RANGES_MS[self.time_range]
