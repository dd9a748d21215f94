"""Data validation of a batch before promotion and before retraining.

The schema declared under ``azml:dataValidation.<model>`` becomes a pandera
``DataFrameSchema`` (dtype, nullability, allowed values, ranges, row count,
strictness), run lazily so the report lists every failure, not just the
first; the distribution limits compare the batch with the reference sample
through the drift engine (PSI, two-sample KS). :func:`gate_rows` turns the
newest validation run of a canary into a row of the promotion gate.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...naming import label, model_name_version
from ...config.releases.data_validation import DATA_SUFFIXES, ColumnRule, ModelValidation, data_suffix
from ...drift.defaults import psi_breaches
from ...errors import ProblemsError
from ... import tracking as t
from .verdict import MetricResult, Outcome

if TYPE_CHECKING:
    from ...config import StackConfig
    from .evaluate import Release

#: Every kind of check, in report order; each has a ``failures.<kind>`` metric.
CHECK_KINDS = ("missing_column", "extra_column", "row_count", "dtype", "nullable", "allowed_values", "range", "psi", "ks")
#: How many failing values and row numbers a report shows per failure.
EXAMPLES = 5
GATE_METRIC = "dataValidation"

# pandas dtypes per declared dtype. Every one but str is coerced, so that a
# CSV's 3.0 is an int and an unparseable value is reported, not the column.
_PANDAS_DTYPE = {"int": "Int64", "float": "float64", "str": "str", "bool": "boolean", "category": "category"}
_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


class ValidationInputError(ProblemsError):
    """Validation cannot run (bad input); ``problems`` holds one line each."""


@dataclass(frozen=True)
class Failure:
    """One failed check of one column (``column`` None: the whole batch)."""

    column: str | None
    check: str  # one of CHECK_KINDS
    detail: str  # what was expected, e.g. pandera's "in_range(300, 850)" or "PSI 0.41 > 0.2"
    failing: int  # failing values (rows); 1 for a table-level or distribution check
    examples: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()  # 0-based row numbers of the batch


@dataclass(frozen=True)
class Shift:
    """One feature's distribution against the reference."""

    column: str
    psi: float | None
    max_psi: float | None
    ks_pvalue: float | None
    min_ks_pvalue: float | None
    passed: bool


@dataclass(frozen=True)
class ValidationReport:
    model: str
    batch: str
    rows: int
    failures: tuple[Failure, ...]
    distribution: tuple[Shift, ...] = ()
    reference: str | None = None
    context: dict[str, str] = field(default_factory=dict)  # stack, endpoint, deployment, model version, time

    @property
    def passed(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        """Failed checks per kind (every kind, zeros included)."""
        return {kind: sum(1 for f in self.failures if f.check == kind) for kind in CHECK_KINDS}

    def with_context(self, **context: str) -> "ValidationReport":
        return replace(self, context={**self.context, **context})

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "batch": self.batch, "rows": self.rows, "passed": self.passed,
            "reference": self.reference, "failureCounts": self.counts(),
            "failures": [asdict(f) for f in self.failures],
            "distribution": [asdict(s) for s in self.distribution], **self.context,
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} failed check{'s' if len(self.failures) != 1 else ''})"
        return f"data validation of {self.batch} ({self.rows} rows) for model {self.model}: {verdict}"

    def to_text(self) -> str:
        lines = [self.summary()]
        lines += [f"  {_failure_line(f)}" for f in self.failures]
        lines += [f"  distribution {s.column}: {_shift_text(s)}" for s in self.distribution]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        lines = [f"**{'PASSED' if self.passed else 'FAILED'}** — {self.summary()}", ""]
        if self.failures:
            lines += ["| column | check | expected | failing | examples | rows |", "|---|---|---|---|---|---|"]
            for f in self.failures:
                cells = [f.column or "(batch)", f.check, f.detail, str(f.failing), ", ".join(f.examples),
                         ", ".join(map(str, f.rows))]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
        if self.distribution:
            lines += [f"Distribution vs `{self.reference}`:", "", "| column | PSI | KS p-value | result |", "|---|---|---|---|"]
            lines += [f"| {s.column} | {_limit(s.psi, '<=', s.max_psi)} | {_limit(s.ks_pvalue, '>=', s.min_ks_pvalue)} | "
                      f"{'ok' if s.passed else 'FAIL'} |" for s in self.distribution]
        return "\n".join(lines).rstrip() + "\n"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _limit(value: float | None, comparison: str, limit: float | None) -> str:
    return _number(value) + ("" if limit is None else f" ({comparison} {limit:g})")


def _shift_text(shift: Shift) -> str:
    text = f"PSI {_limit(shift.psi, '<=', shift.max_psi)}"
    if shift.ks_pvalue is not None or shift.min_ks_pvalue is not None:  # categorical features have no KS
        text += f", KS p-value {_limit(shift.ks_pvalue, '>=', shift.min_ks_pvalue)}"
    return f"{text} — {'ok' if shift.passed else 'FAIL'}"


def _failure_line(f: Failure) -> str:
    where = f.column or "(batch)"
    examples = f"; e.g. {', '.join(f.examples)}" if f.examples else ""
    rows = f" (rows {', '.join(map(str, f.rows))})" if f.rows else ""
    return f"{where}: {f.check} failed for {f.failing} — expected {f.detail}{examples}{rows}"


# --------------------------------------------------------------------------- reading


def read_table(path: Path, option: str) -> Any:
    """A CSV/TSV/Parquet file as a pandas DataFrame; ValidationInputError naming ``option``."""
    import pandas as pd

    suffix = data_suffix(str(path))
    if suffix is None:
        raise ValidationInputError([f"{option}: {path.name} must end in {', '.join(DATA_SUFFIXES)}"])
    if not path.is_file():
        raise ValidationInputError([f"{option}: no file {path}"])
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (OSError, ValueError, ImportError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValidationInputError([f"{option}: cannot read {path}: {message}"]) from None


def _booleans(column: Any) -> Any:
    """Text true/false/1/0 (any case) as booleans; other text stays for pandera to report."""
    if column.dtype == bool or str(column.dtype) == "boolean":
        return column

    def parse(value: Any) -> Any:
        text = str(value).strip().lower() if isinstance(value, str) else None
        return True if text in _TRUE else False if text in _FALSE else value

    return column.astype(object).map(parse)


# --------------------------------------------------------------------------- the schema


def build_schema(rules: ModelValidation) -> tuple[Any, dict[tuple[str, int], tuple[str, str]]]:
    """The pandera schema of ``rules`` and, per (column, check number), the
    check's kind and the expectation a report shows."""
    import pandas as pd
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    kinds: dict[tuple[str, int], tuple[str, str]] = {}
    for name, rule in rules.columns.items():
        checks: list[Any] = []
        if rule.allowed_values is not None:
            checks.append(pa.Check.isin(rule.allowed_values))
            kinds[(name, len(checks) - 1)] = ("allowed_values", f"one of {', '.join(map(str, rule.allowed_values))}")
        low, high = rule.bounds()
        if rule.dtype == "datetime":
            low, high = (None if v is None else pd.Timestamp(v) for v in (low, high))
        if low is not None or high is not None:
            if low is not None and high is not None:
                checks.append(pa.Check.in_range(low, high))
            else:
                checks.append(pa.Check.ge(low) if low is not None else pa.Check.le(high))
            kinds[(name, len(checks) - 1)] = ("range", _range_text(rule))
        columns[name] = pa.Column(
            _datetime_dtype() if rule.dtype == "datetime" else _PANDAS_DTYPE[rule.dtype], checks=checks, nullable=rule.nullable, required=rule.required,
            coerce=rule.dtype != "str",
        )
    minimum = rules.min_rows
    frame_checks = [pa.Check(lambda frame: len(frame) >= minimum, element_wise=False, name="min_rows")] if minimum else []
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=rules.strict), kinds


def _datetime_dtype() -> Any:
    """datetime64[ns] parsed as ISO 8601 whatever the precision of each value:
    pandas otherwise infers one format from the first value and refuses the rest."""
    from pandera.engines import pandas_engine

    return pandas_engine.DateTime(unit="ns", to_datetime_kwargs={"format": "ISO8601"})


def _range_text(rule: ColumnRule) -> str:
    low, high = (v if isinstance(v, str) or v is None else f"{v:g}" for v in (rule.min, rule.max))
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"


def run_schema(rules: ModelValidation, frame: Any) -> list[Failure]:
    """Every schema failure of ``frame`` (pandera, lazy)."""
    from pandera.errors import SchemaErrors

    frame = frame.copy()
    for name, rule in rules.columns.items():
        if rule.dtype == "bool" and name in frame.columns:
            frame[name] = _booleans(frame[name])
    schema, kinds = build_schema(rules)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        return _failures(errors.failure_cases, kinds, rules, len(frame))
    return []


def _failures(cases: Any, kinds: dict[tuple[str, int], tuple[str, str]], rules: ModelValidation, rows: int) -> list[Failure]:
    groups: dict[tuple[str | None, str], dict[str, Any]] = {}
    for case in cases.to_dict("records"):
        check, column, number = str(case["check"]), case["column"], case["check_number"]
        column = column if isinstance(column, str) else None
        value, index = case["failure_case"], case["index"]
        if check == "column_in_dataframe":
            key, detail, column = (str(value), "missing_column"), "a required column", str(value)
        elif check == "column_in_schema":
            key, detail, column = (str(value), "extra_column"), "only the declared columns (strict)", str(value)
        elif check == "min_rows":
            key, detail = (None, "row_count"), f"at least {rules.min_rows} rows (got {rows})"
        elif check.startswith(("coerce_dtype(", "dtype(")):
            key, detail = (column, "dtype"), f"dtype {rules.columns[str(column)].dtype}"
        elif check == "not_nullable":
            key, detail = (column, "nullable"), "no missing values"
        elif column is not None and _is_number(number) and (column, int(number)) in kinds:
            kind, detail = kinds[(column, int(number))]
            key = (column, kind)
        else:  # a check pandera could not run; reported as itself rather than dropped
            key, detail = (column, "dtype"), check
        group = groups.setdefault(key, {"detail": detail, "rows": {}, "values": []})
        if _is_number(index):
            group["rows"].setdefault(int(index), _show(value))
        elif key[1] in ("missing_column", "extra_column", "row_count"):
            group["values"].append(_show(value))
        else:
            group["error"] = _show(value)  # the check raised (e.g. on values of the wrong type)
    failures = []
    dtype_failed = {column for column, kind in groups if kind == "dtype"}
    for (column, kind), group in groups.items():
        if "error" in group and not group["rows"] and column in dtype_failed and kind != "dtype":
            continue  # a range/isin check that could not run on mistyped values: the dtype failure says it
        found = group["rows"]
        ordered = sorted(found)
        examples = tuple(dict.fromkeys(found[i] for i in ordered))[:EXAMPLES] if found else ()
        if kind in ("missing_column", "extra_column", "row_count"):
            failing, examples = 1, ()
        else:
            failing = len(found) or 1
        failures.append(Failure(column, kind, group["detail"], failing, examples, tuple(ordered[:EXAMPLES])))
    order = {kind: i for i, kind in enumerate(CHECK_KINDS)}
    columns = list(rules.columns)
    return sorted(failures, key=lambda f: (order[f.check], columns.index(f.column) if f.column in columns else -1))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _show(value: Any) -> str:
    text = "null" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- distribution


def check_distribution(rules: ModelValidation, frame: Any, reference: Any) -> tuple[list[Shift], list[Failure]]:
    """PSI and KS of each listed feature against the reference (azml drift engine)."""
    from ...drift import DriftInputError, compute_drift

    shifts: list[Shift] = []
    failures: list[Failure] = []
    for name, limits in rules.distribution.items():
        if name not in frame.columns:
            continue  # reported as a missing column already
        try:
            feature = compute_drift(reference[[name]], frame[[name]], features=[name], bins=rules.bins).features[0]
        except DriftInputError as error:
            failures.append(Failure(name, "psi", f"comparable with the reference ({error})", 1))
            shifts.append(Shift(name, None, limits.max_psi, None, limits.min_ks_pvalue, False))
            continue
        passed = True
        if limits.max_psi is not None and psi_breaches(feature.psi, limits.max_psi):
            failures.append(Failure(name, "psi", f"PSI <= {limits.max_psi:g} (got {feature.psi:.4g})", 1))
            passed = False
        if limits.min_ks_pvalue is not None and (feature.ks_pvalue is None or feature.ks_pvalue < limits.min_ks_pvalue):
            failures.append(Failure(name, "ks", f"KS p-value >= {limits.min_ks_pvalue:g} (got {_number(feature.ks_pvalue)})", 1))
            passed = False
        shifts.append(Shift(name, feature.psi, limits.max_psi, feature.ks_pvalue, limits.min_ks_pvalue, passed))
    return shifts, failures


def validate_batch(
    config: "StackConfig", model_name: str, batch_path: Path, project_dir: Path, *, option: str = "--batch"
) -> ValidationReport:
    """Validate ``batch_path`` against ``azml:dataValidation.<model_name>``.
    Raises ValidationInputError (bad input) naming ``option`` or the config key."""
    rules = config.data_validation.get(model_name)
    if rules is None:
        declared = ", ".join(config.data_validation) or "none"
        raise ValidationInputError([f"azml:dataValidation: model {model_name!r} declares no validation (declared: {declared})"])
    frame = read_table(batch_path, option)
    failures = run_schema(rules, frame)
    shifts: list[Shift] = []
    reference_label = None
    if rules.distribution and rules.reference is not None:
        key = f"azml:dataValidation.{model_name}.reference"
        reference = read_table(project_dir / rules.reference, key)
        lacking = [name for name in rules.distribution if name not in reference.columns]
        if lacking:
            raise ValidationInputError([f"{key}: {rules.reference} has no column {', '.join(lacking)} "
                                        f"(columns: {', '.join(map(str, reference.columns))})"])
        shifts, shifted = check_distribution(rules, frame, reference)
        failures += shifted
        reference_label = rules.reference
    return ValidationReport(model_name, batch_path.name, len(frame), tuple(failures), tuple(shifts), reference_label)


# --------------------------------------------------------------------------- the gate row


def gate_rows(release: "Release", *, at: dt.datetime, tracking_uri: str) -> tuple[tuple[MetricResult, ...], tuple[str, ...]]:
    """The ``dataValidation`` gate row of the canary, and a note saying which
    run it rests on. No row when the canary's model declares no validation;
    INCONCLUSIVE when no finished validation run of the canary (its model
    version) started within the release window ending at ``at``."""
    deployment = next(d for d in release.endpoint.deployments if d.name == release.canary)
    name, version = model_name_version(deployment.model)
    if name not in release.config.data_validation:
        return (), ()
    settings = release.config.release
    start = at - dt.timedelta(minutes=settings.window_minutes)
    query = t.run_filter(
        t.KIND_VALIDATION, finished=True, stack=release.stack_file.stack, endpoint=release.endpoint.name,
        deployment=release.canary, model=label(name, version),
    ) + f" and attributes.start_time >= {t.millis(start)} and attributes.start_time <= {t.millis(at)}"
    run = t.newest_run(t.client(tracking_uri), settings.metrics.experiment, query)
    min_rows = release.config.data_validation[name].min_rows
    if run is None:
        row = MetricResult(GATE_METRIC, None, 0, "<=", Outcome.INCONCLUSIVE, 0, min_rows)
        note = (f"{GATE_METRIC}: no validation run of {release.canary} ({label(name, version)}) in the last "
                f"{settings.window_minutes} min; run `azml release validate`")
        return (row,), (note,)
    failed = float(run.data.metrics.get("failures_total", 0.0))
    rows = int(run.data.metrics.get("rows", 0))
    passed = run.data.params.get("passed") == "true"
    row = MetricResult(GATE_METRIC, failed, 0, "<=", Outcome.PASS if passed else Outcome.FAIL, rows, min_rows)
    batch = run.data.params.get("batch", "?")
    note = f"{GATE_METRIC}: {'passed' if passed else 'FAILED'} on {batch} (MLflow run {run.info.run_id})"
    if not passed:
        kinds = [f"{k} {int(v)}" for k, v in sorted(run.data.metrics.items()) if k.startswith("failures.") and v]
        note += f": {', '.join(k.removeprefix('failures.') for k in kinds)}"
    return (row,), (note,)


def dumps(report: ValidationReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n"
