"""The drift engine's pinned defaults, importable without numpy or pyarrow
(the ``azml`` command declares its options with them at start-up), and the
one home of the PSI limit.

The PSI limit has one type (:data:`PsiLimit`), one default
(:data:`DEFAULT_PSI_LIMIT`) and one sense (:func:`psi_breaches`): a PSI
*above* the limit is drift; a PSI equal to the limit passes. The promotion
gate (``azml:release.gate.maxPsi``), the retraining trigger
(``azml:retraining.triggers.maxPsi``), data validation
(``azml:dataValidation.<model>.distribution.<column>.maxPsi``), the model
monitors' ``PopulationStabilityIndex`` thresholds and ``azml drift
--threshold`` all take it from here.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

#: Rows per chunk; inputs with at most this many rows each take the in-memory path.
#: Streamed, it is also the keys per sorted run and per merged key range (8 bytes each).
DEFAULT_CHUNK_ROWS = 1 << 21
#: Reference-quantile bins of numeric features.
DEFAULT_BINS = 10
#: Share used in place of an empty bin's 0 (in either sample) before the log.
EPSILON = 1e-4

#: Bounds of a PSI limit: above 0 (a limit of 0 flags any difference at all) and
#: at most 1 (a PSI above 0.25 is already a large shift; a higher limit only
#: turns the check off).
PSI_LIMIT_MAX = 1
#: A PSI limit: finite, 0 < limit <= PSI_LIMIT_MAX.
PsiLimit = Annotated[float, Field(gt=0, le=PSI_LIMIT_MAX, allow_inf_nan=False)]
#: The PSI limit wherever none is configured.
DEFAULT_PSI_LIMIT = 0.2
#: What a PSI limit may be, in words (option help and error messages).
PSI_LIMIT_RULE = f"finite, > 0, <= {PSI_LIMIT_MAX:g}"

def psi_breaches(value: float, limit: float) -> bool:
    """True when ``value`` is drift against ``limit``: PSI strictly above the
    limit. A PSI equal to the limit passes, everywhere."""
    return value > limit


def psi_limit_problem(value: float) -> str | None:
    """Why ``value`` is not a :data:`PsiLimit`, or None."""
    if not math.isfinite(value):
        return f"{value} is not a PSI limit ({PSI_LIMIT_RULE})"
    try:
        TypeAdapter(PsiLimit).validate_python(value)
    except ValidationError:
        return f"{value:g} is not a PSI limit ({PSI_LIMIT_RULE})"
    return None
