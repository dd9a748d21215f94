"""Stack config of the attribution stability gate: ``azml:release.attribution``.

Off when absent. When set, the verdict gains an ``attributionOverlap`` row:
the share of the champion model's top-N features (by mean absolute SHAP
value) that are also in the canary model's top N, from the newest
``azml release attribution`` run of the canary.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ..base import Model


class AttributionConfig(Model):
    """How alike champion and canary must explain their predictions."""

    top_n: int = Field(default=5, ge=1, le=100, description="Features compared: each model's N largest by mean |SHAP|.")
    min_overlap: float = Field(
        default=0.6, ge=0, le=1, description="Share of the champion's top N also in the canary's top N (at least)."
    )
    sample_rows: int = Field(
        default=200, ge=1, le=10_000,
        description="Rows of the sample explained (and used as the SHAP background): bounds the cost.",
    )
    min_rows: int = Field(
        default=50, ge=1, description="Fewer explained rows than this make the gate row INCONCLUSIVE."
    )
    max_age_minutes: int = Field(
        default=1440, ge=1, description="An attribution run older than this at evaluation time is not used."
    )

    @model_validator(mode="after")
    def _rows(self) -> "AttributionConfig":
        if self.min_rows > self.sample_rows:
            raise ValueError(f"minRows ({self.min_rows}) must not exceed sampleRows ({self.sample_rows})")
        return self
