"""Stack config ``azml:dataValidation``: per registered model name, the schema
a batch must satisfy (columns, types, nullability, allowed values, ranges) and
distribution limits against a reference sample, checked by
``azml release validate`` before promotion and by ``azml retrain check
--validate`` before retraining (docs/data-validation.md).

Example (``Pulumi.<stack>.yaml``)::

    azml:dataValidation:
      credit-risk:
        reference: data/credit-risk/reference.parquet
        minRows: 100
        columns:
          income: {dtype: float, min: 0}
          employment: {dtype: category, allowedValues: [employed, retired], nullable: true}
        distribution:
          income: {maxPsi: 0.2, minKsPvalue: 0.01}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal

from pydantic import Field, field_validator, model_validator

from ...drift.defaults import PsiLimit
from ..base import Model

if TYPE_CHECKING:
    from ..schema import StackConfig

Dtype = Literal["int", "float", "str", "bool", "category", "datetime"]
DTYPES: tuple[str, ...] = ("int", "float", "str", "bool", "category", "datetime")
#: Reference and batch files the readers accept (by suffix).
DATA_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".parquet", ".pq")

_NUMERIC = ("int", "float")
_WITH_ALLOWED_VALUES = ("int", "str", "category")
_WITH_RANGE = ("int", "float", "datetime")


class _Keys(Model):
    """Names an unknown key and lists the allowed ones itself: the generic
    message cannot find the owning model below a ``dict`` of models."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = [f.alias or n for n, f in cls.model_fields.items()]
            unknown = [k for k in data if k not in allowed and k not in cls.model_fields]
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
        return data


def data_suffix(path: str) -> str | None:
    lower = path.lower()
    return next((s for s in DATA_SUFFIXES if lower.endswith(s)), None)


class ColumnRule(_Keys):
    """One column of the batch."""

    dtype: Dtype = Field(description="int, float, str, bool, category or datetime.")
    nullable: bool = Field(default=False, description="Missing values allowed.")
    required: bool = Field(default=True, description="The column must be present.")
    allowed_values: list[str | int] | None = Field(default=None, description="int, str, category: the only values allowed.")
    min: float | str | None = Field(default=None, description="Inclusive lower bound (number; datetime: ISO 8601).")
    max: float | str | None = Field(default=None, description="Inclusive upper bound (number; datetime: ISO 8601).")

    @model_validator(mode="after")
    def _consistent(self) -> "ColumnRule":
        if self.allowed_values is not None:
            if self.dtype not in _WITH_ALLOWED_VALUES:
                raise ValueError(f"allowedValues applies to dtype {', '.join(_WITH_ALLOWED_VALUES)}, not {self.dtype}")
            if not self.allowed_values:
                raise ValueError("allowedValues: list at least one value")
            if self.dtype == "int" and not all(isinstance(v, int) and not isinstance(v, bool) for v in self.allowed_values):
                raise ValueError("allowedValues: dtype int allows whole numbers only")
        bounds = {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}
        if bounds and self.dtype not in _WITH_RANGE:
            raise ValueError(f"min/max apply to dtype {', '.join(_WITH_RANGE)}, not {self.dtype}")
        for key, value in bounds.items():
            if self.dtype in _NUMERIC and not isinstance(value, (int, float)):
                raise ValueError(f"{key}: dtype {self.dtype} needs a number (got {value!r})")
            if self.dtype == "datetime":
                if not isinstance(value, str) or _parse_time(value) is None:
                    raise ValueError(f"{key}: dtype datetime needs an ISO 8601 time like 2026-01-31T00:00:00Z (got {value!r})")
        low, high = self.bounds()
        if low is not None and high is not None and low > high:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self

    def bounds(self) -> tuple[Any, Any]:
        """(min, max) as comparable values: floats, or UTC-naive datetimes."""
        if self.dtype == "datetime":
            return tuple(None if v is None else _parse_time(str(v)) for v in (self.min, self.max))  # type: ignore[return-value]
        return tuple(None if v is None else float(v) for v in (self.min, self.max))  # type: ignore[return-value]


def _parse_time(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    # Batches hold naive or UTC times; compare in UTC without an offset.
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


class DistributionCheck(_Keys):
    """Limits of one feature's shift against the reference (azml drift engine)."""

    max_psi: PsiLimit | None = Field(default=None, description="Fail when PSI > maxPsi.")
    min_ks_pvalue: float | None = Field(
        default=None, ge=0, le=1, description="Numeric features: fail when the two-sample KS p-value < minKsPvalue."
    )

    @model_validator(mode="after")
    def _some_limit(self) -> "DistributionCheck":
        if self.max_psi is None and self.min_ks_pvalue is None:
            raise ValueError("give maxPsi and/or minKsPvalue")
        return self


class ModelValidation(_Keys):
    """What a batch scored or trained by one registered model must satisfy."""

    columns: dict[str, ColumnRule] = Field(description="Column name -> rule.")
    strict: bool = Field(default=False, description="Columns not listed under columns fail the check.")
    min_rows: int = Field(default=1, ge=0, description="Fewest rows a batch may have.")
    reference: str | None = Field(default=None, description="CSV/Parquet sample under the project the distribution is compared with.")
    distribution: dict[str, DistributionCheck] = Field(default_factory=dict, description="Column -> limits.")
    bins: int = Field(default=10, ge=2, le=1000, description="PSI bins (reference quantiles).")

    @field_validator("columns")
    @classmethod
    def _columns(cls, columns: dict[str, ColumnRule]) -> dict[str, ColumnRule]:
        if not columns:
            raise ValueError("declare at least one column")
        return columns

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and data_suffix(value) is None:
            raise ValueError(f"must be a CSV or Parquet file ({', '.join(DATA_SUFFIXES)}), got {value!r}")
        return value

    @model_validator(mode="after")
    def _distribution(self) -> "ModelValidation":
        if self.distribution and self.reference is None:
            raise ValueError("distribution checks need reference: a CSV/Parquet sample to compare with")
        for name, check in self.distribution.items():
            if name not in self.columns:
                raise ValueError(f"distribution.{name}: not a declared column (declared: {', '.join(self.columns)})")
            kind = self.columns[name].dtype
            if check.min_ks_pvalue is not None and kind not in _NUMERIC:
                raise ValueError(f"distribution.{name}.minKsPvalue: KS applies to int and float columns, not {kind}")
        return self


def data_validation_problems(config: "StackConfig", project_dir: Path | None) -> Iterator[tuple[str, str]]:
    """Cross-field checks: each model is served by a declared deployment; each
    reference file exists under the project (when it is known)."""
    from ...naming import model_name_version

    served = sorted(
        {
            model_name_version(deployment.model)[0]
            for endpoint in [*config.online_endpoints, *config.batch_endpoints]
            for deployment in endpoint.deployments
        }
    )
    for name, rules in config.data_validation.items():
        key = f"dataValidation.{name}"
        if name not in served:
            yield key, f"no declared deployment serves model {name!r} (served: {', '.join(served) or 'none'})"
        if project_dir is not None and rules.reference is not None and not (project_dir / rules.reference).is_file():
            yield f"{key}.reference", f"no file {rules.reference} under {project_dir}"
