"""Data validation before promotion and retraining: the pandera schema built
from azml:dataValidation on generated batches, distribution limits through the
drift engine, `azml release validate` with a real MLflow store, the gate's
dataValidation row, and `azml retrain check --validate`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import typer
from ruamel.yaml import YAML
from typer.testing import CliRunner

from azml.config import ConfigError, load_stack, validate_config
from azml import tracking as t
from azml.release.evidence.evaluate import resolve_release
from azml.release.evidence.gate import evaluate
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.validation import ValidationInputError, gate_rows, validate_batch
from azml.cli.release.validation import log_validation, register
from azml.release.evidence.verdict import Decision, Outcome

from ...conftest import ROOT
from ...conftest import load_stack as load_stack_document
from ...release_support import ENDPOINT, canary_project
from ...retrain.test_retrain_check import azure_ml  # noqa: F401 - the stand-in for Azure ML's jobs service

RUNNER = CliRunner()
MODEL = "credit-risk"
EMPLOYMENT = ["employed", "self-employed", "unemployed", "retired"]

VALIDATION = {
    MODEL: {
        "reference": "data/credit-risk/reference.csv",
        "minRows": 100,
        "columns": {
            "income": {"dtype": "float", "min": 0},
            "credit_score": {"dtype": "int", "min": 300, "max": 850},
            "employment": {"dtype": "category", "allowedValues": EMPLOYMENT},
            "prior_default": {"dtype": "bool"},
            "applied_at": {"dtype": "datetime", "min": "2026-01-01T00:00:00Z"},
            "region": {"dtype": "str", "nullable": True},
        },
        "distribution": {"income": {"maxPsi": 0.2, "minKsPvalue": 0.01}, "employment": {"maxPsi": 0.2}},
    }
}


def reference_frame(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "income": rng.lognormal(10.5, 0.4, rows).round(2),
        "credit_score": rng.integers(300, 851, rows),
        "employment": rng.choice(EMPLOYMENT, rows, p=[0.6, 0.2, 0.1, 0.1]),
        "prior_default": rng.random(rows) < 0.1,
        "applied_at": pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 200 * 24, rows), unit="h"),
        "region": rng.choice(["north", "south", None], rows),
    })


def clean_batch() -> pd.DataFrame:
    # Every other reference row: the reference's own distribution, so no shift by chance.
    return reference_frame().iloc[::2].reset_index(drop=True)


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def with_validation(project: Path, validation: dict[str, Any] = VALIDATION) -> Path:
    yaml = YAML()
    document = yaml.load((project / "Pulumi.prod.yaml").read_text())
    document["config"]["azml:dataValidation"] = validation
    with (project / "Pulumi.prod.yaml").open("w") as handle:
        yaml.dump(document, handle)
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The prod stack with a green canary (credit-risk v4), azml:dataValidation
    for credit-risk and its reference sample."""
    target = canary_project(tmp_path / "project", {"blue": 90, "green": 10})
    write(reference_frame(), target / "data" / "credit-risk" / "reference.csv")
    return with_validation(target)


def config_of(project: Path) -> Any:
    return load_stack("prod", project)[1]


# --------------------------------------------------------------------------- schema checks (real pandera)


def set_value(column: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("change", "expected", "examples", "rows"),
    [
        (set_value("credit_score", 3, "abc"), ("credit_score", "dtype"), ("abc",), (3,)),
        (set_value("prior_default", 6, "maybe"), ("prior_default", "dtype"), ("maybe",), (6,)),
        (set_value("applied_at", 8, "not a date"), ("applied_at", "dtype"), ("not a date",), (8,)),
        (set_value("income", 5, None), ("income", "nullable"), ("null",), (5,)),
        (set_value("employment", 7, "astronaut"), ("employment", "allowed_values"), ("astronaut",), (7,)),
        (set_value("credit_score", 2, 900), ("credit_score", "range"), ("900",), (2,)),
        (set_value("income", 4, -1.0), ("income", "range"), ("-1.0",), (4,)),
        (set_value("applied_at", 1, "2025-06-01"), ("applied_at", "range"), ("2025-06-01 00:00:00",), (1,)),
        (lambda f: f.drop(columns=["region"]), ("region", "missing_column"), (), ()),
    ],
    ids=["dtype-int", "dtype-bool", "dtype-datetime", "nullable", "allowed-values", "range-int", "range-float",
         "range-datetime", "missing-column"],
)
def test_each_check_fails_on_its_crafted_batch_and_passes_on_the_clean_one(
    project: Path, change: Callable[[pd.DataFrame], pd.DataFrame], expected: tuple[str, str],
    examples: tuple[str, ...], rows: tuple[int, ...],
) -> None:
    config = config_of(project)
    clean = validate_batch(config, MODEL, write(clean_batch(), project / "clean.csv"), project)
    assert clean.passed and clean.failures == () and clean.rows == 1000
    assert [s.column for s in clean.distribution] == ["income", "employment"]

    report = validate_batch(config, MODEL, write(change(clean_batch()), project / "bad.csv"), project)
    assert not report.passed
    assert [(f.column, f.check) for f in report.failures] == [expected]
    (failure,) = report.failures
    assert failure.examples == examples and failure.rows == rows
    assert failure.failing == 1


def test_strict_schema_and_min_rows_are_checked(project: Path) -> None:
    config = config_of(project)
    rules = config.data_validation[MODEL].model_copy(update={"strict": True, "min_rows": 5000})
    strict = config.model_copy(update={"data_validation": {MODEL: rules}})
    batch = clean_batch().assign(ssn="123-45-6789")
    report = validate_batch(strict, MODEL, write(batch, project / "batch.parquet"), project)
    assert [(f.column, f.check) for f in report.failures] == [("ssn", "extra_column"), (None, "row_count")]
    assert "at least 5000 rows (got 1000)" in report.failures[1].detail
    # The same batch under the shipped (non-strict, minRows 100) rules passes.
    assert validate_batch(config, MODEL, project / "batch.parquet", project).passed


def test_the_report_lists_every_failure_not_just_the_first(project: Path) -> None:
    batch = clean_batch()
    for column, row, value in [("credit_score", 10, 1000), ("credit_score", 20, 10), ("credit_score", 30, 700),
                               ("income", 11, None), ("income", 12, None), ("employment", 13, "pirate")]:
        set_value(column, row, value)(batch)
    report = validate_batch(config_of(project), MODEL, write(batch, project / "bad.csv"), project)
    found = {(f.column, f.check): f for f in report.failures}
    assert set(found) == {("credit_score", "range"), ("income", "nullable"), ("employment", "allowed_values")}
    assert found[("credit_score", "range")].failing == 2
    assert found[("credit_score", "range")].examples == ("1000", "10") and found[("credit_score", "range")].rows == (10, 20)
    assert found[("income", "nullable")].rows == (11, 12)
    assert report.counts() == {"missing_column": 0, "extra_column": 0, "row_count": 0, "dtype": 0, "nullable": 1,
                               "allowed_values": 1, "range": 1, "psi": 0, "ks": 0}
    text = report.to_text()
    assert "FAILED (3 failed checks)" in text and "between 300 and 850" in text and "pirate" in text
    markdown_rows = [line for line in report.to_markdown().splitlines() if line.startswith("| ") and "---" not in line]
    assert len(markdown_rows) == 1 + 3 + 1 + 2  # failure header + failures + distribution header + features


# --------------------------------------------------------------------------- distribution


def test_a_shifted_batch_fails_the_distribution_checks(project: Path) -> None:
    batch = clean_batch()
    batch["income"] = batch["income"] * 1.6
    batch["employment"] = np.where(np.arange(len(batch)) % 2 == 0, "unemployed", batch["employment"])
    report = validate_batch(config_of(project), MODEL, write(batch, project / "shifted.csv"), project)
    assert [(f.column, f.check) for f in report.failures] == [("income", "psi"), ("income", "ks"), ("employment", "psi")]
    shifts = {s.column: s for s in report.distribution}
    assert shifts["income"].psi > 0.2 and shifts["income"].ks_pvalue < 0.01 and not shifts["employment"].passed
    assert report.failures[0].detail.startswith("PSI <= 0.2 (got ")


def test_a_reference_without_the_feature_is_bad_input(project: Path) -> None:
    write(reference_frame().drop(columns=["income"]), project / "data" / "credit-risk" / "reference.csv")
    with pytest.raises(ValidationInputError) as caught:
        validate_batch(config_of(project), MODEL, write(clean_batch(), project / "b.csv"), project)
    assert caught.value.problems == [
        f"azml:dataValidation.{MODEL}.reference: data/credit-risk/reference.csv has no column income "
        "(columns: credit_score, employment, prior_default, applied_at, region)"
    ]


# --------------------------------------------------------------------------- the command and MLflow


def app() -> typer.Typer:
    release = typer.Typer()
    register(release)
    root = typer.Typer()
    root.add_typer(release, name="release")
    return root


def validate(project: Path, uri: str, batch: Path, *args: str, deployment: str = "green") -> Any:
    return RUNNER.invoke(app(), ["release", "validate", "prod", "--endpoint", ENDPOINT, "--deployment", deployment,
                                 "--batch", str(batch), "--project-dir", str(project), "--tracking-uri", uri, *args])


def validation_runs(uri: str) -> list[Any]:
    client = t.client(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, t.run_filter(t.KIND_VALIDATION))) if ids else []


def test_validate_command_writes_the_report_and_logs_a_run(project: Path, mlflow_uri: str) -> None:
    passed = validate(project, mlflow_uri, write(clean_batch(), project / "clean.csv"), "--format", "json")
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.output)["passed"] is True

    batch = clean_batch()
    set_value("credit_score", 2, 900)(batch)
    failed = validate(project, mlflow_uri, write(batch, project / "bad.csv"))
    assert failed.exit_code == 1, failed.output
    assert "credit_score: range failed for 1 — expected between 300 and 850; e.g. 900 (rows 2)" in failed.output

    written = json.loads((project / "build" / "validation" / ENDPOINT / "green.json").read_text())
    assert written["batch"] == "bad.csv" and written["passed"] is False and written["modelVersion"] == "credit-risk:4"
    assert "| credit_score | range |" in (project / "build" / "validation" / ENDPOINT / "green.md").read_text()

    runs = {r.data.params["batch"]: r for r in validation_runs(mlflow_uri)}
    assert set(runs) == {"clean.csv", "bad.csv"}
    bad = runs["bad.csv"]
    assert bad.info.status == "FINISHED" and bad.data.params["passed"] == "false"
    assert bad.data.tags[t.TAG_STACK] == "prod" and bad.data.tags[t.TAG_ENDPOINT] == ENDPOINT
    assert bad.data.tags[t.TAG_DEPLOYMENT] == "green" and bad.data.tags[t.TAG_MODEL] == "credit-risk:4"
    assert bad.data.metrics["failures.range"] == 1 and bad.data.metrics["failures_total"] == 1
    assert runs["clean.csv"].data.params["passed"] == "true" and runs["clean.csv"].data.metrics["failures_total"] == 0
    artifact = t.client(mlflow_uri).download_artifacts(bad.info.run_id, "validation.json", str(project))
    assert json.loads(Path(artifact).read_text())["failureCounts"]["range"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--deployment", "red"), "--deployment: 'red' is not a deployment of credit-risk-endpoint (declared: blue, green)"),
        (("--batch", "{missing}"), "--batch: no file"),
        (("--batch", "{text}"), "--batch: notes.txt must end in .csv, .tsv, .csv.gz, .parquet, .pq"),
    ],
    ids=["deployment", "missing-batch", "suffix"],
)
def test_bad_input_exits_2_and_writes_nothing(project: Path, mlflow_uri: str, args: tuple[str, ...], message: str) -> None:
    (project / "notes.txt").write_text("x\n")
    paths = {"missing": str(project / "none.csv"), "text": str(project / "notes.txt")}
    batch = write(clean_batch(), project / "clean.csv")
    values = {args[0]: args[1].format(**paths)}
    result = RUNNER.invoke(app(), [
        "release", "validate", "prod", "--endpoint", ENDPOINT, "--deployment", values.get("--deployment", "green"),
        "--batch", values.get("--batch", str(batch)), "--project-dir", str(project), "--tracking-uri", mlflow_uri,
    ])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (project / "build" / "validation").exists() and validation_runs(mlflow_uri) == []


def test_a_model_without_declared_validation_is_bad_input(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "plain", {"blue": 90, "green": 10})
    result = validate(project, mlflow_uri, write(clean_batch(), tmp_path / "b.csv"))
    assert result.exit_code == 2
    assert "error: azml:dataValidation: model 'credit-risk' declares no validation (declared: none)" in result.output


# --------------------------------------------------------------------------- the gate row


def healthy(name: str) -> Observation:
    """Every built-in gate metric well within the platform defaults, on plenty of samples."""
    values = {t.METRIC_ACCURACY: 0.9, t.METRIC_LATENCY_P95: 120.0, t.METRIC_ERROR_RATE: 0.004, t.METRIC_PSI: 0.03,
              t.METRIC_PARITY: 0.02}
    return Observation(name, {metric: Measure(value, 5000) for metric, value in values.items()}, 1)


def verdict_with(release: Any, rows: tuple[Any, ...]) -> Any:
    """The verdict on a canary as healthy as its champion, plus ``rows``."""
    return evaluate(
        release.config.release, stack="prod", endpoint=ENDPOINT, champion=healthy("blue"), canary=healthy("green"),
        phase="live", traffic={"blue": 90, "green": 10}, mirror_traffic={}, stack_file_sha256="0" * 64,
        computed_at="2026-11-26T10:00:00+00:00", extra_metrics=rows,
    )


def test_a_failed_validation_of_the_canary_holds_the_promotion(project: Path, mlflow_uri: str) -> None:
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)

    rows, notes = gate_rows(release, at=later, tracking_uri=mlflow_uri)
    assert [(r.name, r.outcome) for r in rows] == [("dataValidation", Outcome.INCONCLUSIVE)]
    assert "no validation run of green (credit-risk:4)" in notes[0]
    assert verdict_with(release, rows).decision is Decision.HOLD

    assert validate(project, mlflow_uri, write(clean_batch(), project / "clean.csv")).exit_code == 0
    rows, _ = gate_rows(release, at=later, tracking_uri=mlflow_uri)
    assert rows[0].outcome is Outcome.PASS and rows[0].n == 1000
    assert verdict_with(release, rows).decision is Decision.PROMOTE

    batch = clean_batch()
    set_value("employment", 0, "pirate")(batch)
    assert validate(project, mlflow_uri, write(batch, project / "bad.csv")).exit_code == 1
    rows, notes = gate_rows(release, at=later + dt.timedelta(seconds=1), tracking_uri=mlflow_uri)
    assert rows[0].outcome is Outcome.FAIL and rows[0].value == 1
    assert "FAILED on bad.csv" in notes[0] and "allowed_values 1" in notes[0]
    verdict = verdict_with(release, rows)
    assert verdict.decision is Decision.HOLD and verdict.failed == ["dataValidation"]

    # A validation of the champion (blue, v3) says nothing about the canary.
    assert validate(project, mlflow_uri, project / "clean.csv", deployment="blue").exit_code == 0
    assert gate_rows(release, at=later + dt.timedelta(seconds=2), tracking_uri=mlflow_uri)[0][0].outcome is Outcome.FAIL


def test_a_validation_older_than_the_window_does_not_count(project: Path, mlflow_uri: str) -> None:
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    report = validate_batch(release.config, MODEL, write(clean_batch(), project / "clean.csv"), project)
    now = dt.datetime.now(dt.timezone.utc)
    window = release.config.release.window_minutes
    log_validation(mlflow_uri, release.config.release.metrics.experiment, report, stack="prod", endpoint=ENDPOINT,
                   deployment="green", model="credit-risk:4", at=now - dt.timedelta(minutes=window + 5))
    (row,), _ = gate_rows(release, at=now, tracking_uri=mlflow_uri)
    assert row.outcome is Outcome.INCONCLUSIVE
    (row,), _ = gate_rows(release, at=now - dt.timedelta(minutes=window), tracking_uri=mlflow_uri)
    assert row.outcome is Outcome.PASS


def test_no_row_when_the_model_declares_no_validation(tmp_path: Path, mlflow_uri: str) -> None:
    project = canary_project(tmp_path / "plain", {"blue": 90, "green": 10}, metrics={"trackingUri": mlflow_uri})
    release = resolve_release("prod", ENDPOINT, "green", None, project)
    assert gate_rows(release, at=dt.datetime.now(dt.timezone.utc), tracking_uri=mlflow_uri) == ((), ())


# --------------------------------------------------------------------------- config errors


def raw_prod(validation: dict[str, Any]) -> dict[str, Any]:
    document = load_stack_document("prod")["config"]
    raw = {k.removeprefix("azml:"): v for k, v in document.items() if k.startswith("azml:")}
    return {**raw, "dataValidation": validation}


def rules(**changes: Any) -> dict[str, Any]:
    base = json.loads(json.dumps(VALIDATION[MODEL]))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = base
        for part in parents:
            node = node[part]
        node[last] = value
    return {MODEL: base}


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        (rules(**{"columns.income.dtype": "double"}),
         "azml:dataValidation.credit-risk.columns.income.dtype: Input should be 'int', 'float', 'str', 'bool', 'category' or 'datetime'"),
        (rules(**{"columns.income.maximum": 5}),
         "azml:dataValidation.credit-risk.columns.income: unknown key 'maximum'; allowed keys: dtype, nullable, required, allowedValues, min, max"),
        (rules(**{"columns.income.allowedValues": [1, 2]}),
         "azml:dataValidation.credit-risk.columns.income: allowedValues applies to dtype int, str, category, not float"),
        (rules(**{"columns.credit_score.min": 900}),
         "azml:dataValidation.credit-risk.columns.credit_score: min (900.0) must not exceed max (850.0)"),
        (rules(**{"columns.applied_at.min": "yesterday"}),
         "azml:dataValidation.credit-risk.columns.applied_at: min: dtype datetime needs an ISO 8601 time"),
        (rules(**{"distribution.employment": {"minKsPvalue": 0.05}}),
         "azml:dataValidation.credit-risk: distribution.employment.minKsPvalue: KS applies to int and float columns, not category"),
        (rules(**{"distribution.age": {"maxPsi": 0.2}}),
         "azml:dataValidation.credit-risk: distribution.age: not a declared column"),
        (rules(**{"distribution.income": {}}),
         "azml:dataValidation.credit-risk.distribution.income: give maxPsi and/or minKsPvalue"),
        (rules(reference=None), "azml:dataValidation.credit-risk: distribution checks need reference"),
        (rules(reference="data/ref.xlsx"), "azml:dataValidation.credit-risk.reference: must be a CSV or Parquet file"),
        (rules(reference="data/none.csv"), "azml:dataValidation.credit-risk.reference: no file data/none.csv under"),
        ({"fraud": VALIDATION[MODEL]}, "azml:dataValidation.fraud: no declared deployment serves model 'fraud' (served: credit-risk)"),
    ],
    ids=["dtype", "unknown-key", "allowed-values-on-float", "min-over-max", "datetime-bound", "ks-on-category",
         "undeclared-feature", "no-limit", "no-reference", "reference-suffix", "reference-missing", "model-not-served"],
)
def test_config_errors_are_one_line_naming_the_key(tmp_path: Path, validation: dict[str, Any], message: str) -> None:
    write(reference_frame(50), tmp_path / "data" / "credit-risk" / "reference.csv")
    shutil.copytree(ROOT / "serving", tmp_path / "serving")  # config paths may not leave the project by a link
    with pytest.raises(ConfigError) as caught:
        validate_config(raw_prod(validation), tmp_path)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(message), caught.value.problems


def test_the_shipped_stacks_declare_no_validation_and_stay_valid() -> None:
    for stack in ("dev", "prod"):
        assert load_stack(stack, ROOT)[1].data_validation == {}


# --------------------------------------------------------------------------- before retraining


@pytest.fixture
def retrain_project(tmp_path: Path) -> Path:
    from ...retrain.test_retrain_check import project_with

    document = load_stack_document("dev")
    document["config"]["azml:dataValidation"] = VALIDATION
    project = project_with(tmp_path, document)
    write(reference_frame(), project / "data" / "credit-risk" / "reference.csv")
    return project


def test_retrain_validate_blocks_submission_of_a_failing_batch(
    retrain_project: Path, mlflow_uri: str, tmp_path: Path, azure_ml: Any
) -> None:
    from azml.cli.retrain import EXIT_RETRAIN, retrain_app

    from ...retrain.test_retrain_check import DATA_URI, NOW_TEXT, lineage_file

    root = typer.Typer()
    root.add_typer(retrain_app, name="retrain")
    lineage = str(lineage_file(tmp_path / "lineage", days_ago=45))  # stale: a reason to retrain

    def check(batch: Path) -> Any:
        return RUNNER.invoke(root, [
            "retrain", "check", "variant", "--endpoint", ENDPOINT, "--now", NOW_TEXT, "--tracking-uri", mlflow_uri,
            "--project-dir", str(retrain_project), "--lineage", lineage, "--accuracy", "0.9", "--accuracy-n", "1000",
            "--submit", "--training-data", DATA_URI, "--validate", str(batch),
        ])

    batch = clean_batch()
    set_value("credit_score", 4, 12)(batch)
    blocked = check(write(batch, tmp_path / "bad.csv"))
    assert blocked.exit_code == 1, blocked.output
    assert "credit_score: range failed for 1" in blocked.output
    assert "error: --validate: bad.csv failed data validation; nothing submitted" in blocked.output
    assert azure_ml.jobs.calls == []
    client = t.client(mlflow_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    assert list(client.search_runs(ids, t.run_filter(t.KIND_RETRAIN))) == []

    allowed = check(write(clean_batch(), tmp_path / "clean.csv"))
    assert allowed.exit_code == EXIT_RETRAIN, allowed.output
    assert len(azure_ml.jobs.calls) == 1
