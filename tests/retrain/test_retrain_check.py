"""`azml retrain check`: drift, performance and staleness triggers, where
their inputs come from, the kind=retrain MLflow record, and `--submit`
through the retraining handler's submitter (Azure ML stood in for by the
handler tests' fake `MLClient.jobs`)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from azml.retrain import submission
from azml.cli.retrain import EXIT_INCONCLUSIVE, EXIT_RETRAIN, retrain_app
from azml.retrain.triggers import Inputs, Outcome, Status, Thresholds, decide

from ..conftest import AZML, ROOT, load_stack, write_stack

# azure-ai-ml 1.35 still passes marshmallow's deprecated `context` (as in the handler tests).
pytestmark = pytest.mark.filterwarnings("ignore:The `context` parameter is deprecated")

app = typer.Typer()
app.add_typer(retrain_app, name="retrain")
runner = CliRunner()

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
NOW_TEXT = "2026-11-26T12:00:00Z"
ENDPOINT = "credit-risk-endpoint"
T = Thresholds(max_psi=0.2, max_accuracy_drop=0.03, max_model_age_days=30, min_accuracy_samples=200)


# --------------------------------------------------------------------------- the decision (pure)


def inputs(**changes: Any) -> Inputs:
    base = dict(
        now=NOW, psi={"income": 0.05, "debt_ratio": 0.1}, accuracy=0.90, accuracy_n=1000,
        training_accuracy=0.91, trained_at=NOW - dt.timedelta(days=10),
    )
    return Inputs(**{**base, **changes})


def test_no_reason_when_everything_is_measured_and_within_thresholds() -> None:
    decision = decide(inputs(), T)
    assert decision.status is Status.NONE and decision.reasons == () and decision.reason_text() == "none"
    assert [(c.name, c.outcome) for c in decision.checks] == [
        ("drift", Outcome.OK), ("performance", Outcome.OK), ("staleness", Outcome.OK)
    ]


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"psi": {"income": 0.2}}, ()),  # "any PSI > 0.2": equal is not above
        ({"psi": {"income": 0.2001, "debt_ratio": 0.35}}, ("drift",)),
        ({"psi": {}, "max_psi": 0.4}, ("drift",)),  # only the maximum is known
        ({"accuracy": 0.88}, ()),  # drop 0.03 exactly
        ({"accuracy": 0.8799}, ("performance",)),
        ({"trained_at": NOW - dt.timedelta(days=30)}, ()),
        ({"trained_at": NOW - dt.timedelta(days=30, seconds=1)}, ("staleness",)),
        ({"psi": {"a": 0.5}, "accuracy": 0.5, "trained_at": NOW - dt.timedelta(days=90)}, ("drift", "performance", "staleness")),
    ],
)
def test_thresholds_are_strict(changes: dict[str, Any], reasons: tuple[str, ...]) -> None:
    assert decide(inputs(**changes), T).reasons == reasons


def test_drift_names_the_features_over_the_threshold() -> None:
    (drift, _, _) = decide(inputs(psi={"income": 0.31, "debt_ratio": 0.25, "age": 0.01}), T).checks
    assert drift.value == 0.31 and drift.threshold == 0.2
    assert drift.detail == "max PSI 0.31 > 0.2 (income 0.31, debt_ratio 0.25)"


@pytest.mark.parametrize(
    ("changes", "inconclusive"),
    [
        ({"psi": None}, ("drift",)),
        ({"accuracy": None, "accuracy_n": 0}, ("performance",)),
        ({"accuracy_n": 199}, ("performance",)),  # below minSamples.accuracy
        ({"training_accuracy": None}, ("performance",)),
        ({"trained_at": None}, ("staleness",)),
        ({"trained_at": NOW + dt.timedelta(days=1)}, ("staleness",)),
    ],
)
def test_missing_inputs_are_inconclusive_never_a_pass(changes: dict[str, Any], inconclusive: tuple[str, ...]) -> None:
    decision = decide(inputs(**changes), T)
    assert decision.status is Status.INCONCLUSIVE and decision.inconclusive == inconclusive


def test_a_reason_wins_over_an_inconclusive_trigger() -> None:
    decision = decide(inputs(psi=None, trained_at=NOW - dt.timedelta(days=45)), T)
    assert decision.status is Status.RETRAIN and decision.reasons == ("staleness",)
    assert decision.inconclusive == ("drift",)


# --------------------------------------------------------------------------- MLflow fixtures


class Store:
    def __init__(self, path: Path) -> None:
        from mlflow import MlflowClient

        self.uri = f"sqlite:///{path}"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.experiment = self.client.create_experiment("credit-risk-release")

    def run(self, kind: str, when: dt.datetime, metrics: dict[str, float], **tags: str) -> str:
        names = {"stack": "azml.stack", "endpoint": "azml.endpoint", "deployment": "azml.deployment", "model": "azml.model"}
        run = self.client.create_run(
            self.experiment, start_time=int(when.timestamp() * 1000),
            tags={"azml.kind": kind, **{names[k]: v for k, v in tags.items()}},
        )
        for key, value in metrics.items():
            self.client.log_metric(run.info.run_id, key, value)
        self.client.set_terminated(run.info.run_id, end_time=int(when.timestamp() * 1000))
        return run.info.run_id

    def observation(self, accuracy: float, n: int, minutes_ago: float, deployment: str = "blue", stack: str = "dev") -> str:
        return self.run(
            "observation", NOW - dt.timedelta(minutes=minutes_ago), {"accuracy": accuracy, "accuracy_n": n},
            stack=stack, endpoint=ENDPOINT, deployment=deployment,
        )

    def drift(self, psi: dict[str, float], minutes_ago: float, **tags: str) -> str:
        metrics = {f"psi.{k}": v for k, v in psi.items()} | {"max_psi": max(psi.values())}
        return self.run("drift", NOW - dt.timedelta(minutes=minutes_ago), metrics, **({"stack": "dev", "endpoint": ENDPOINT} | tags))

    def retrain_runs(self) -> list[Any]:
        ids = [e.experiment_id for e in self.client.search_experiments()]
        return list(self.client.search_runs(ids, "tags.`azml.kind` = 'retrain'"))


@pytest.fixture
def store(tmp_path: Path, mlflow_template: Path) -> Store:
    db = tmp_path / "mlruns.db"
    shutil.copy(mlflow_template, db)
    return Store(db)


def lineage_file(directory: Path, model: str = "credit-risk:1", accuracy: float | None = 0.91, days_ago: float = 10) -> Path:
    """A lineage record written by `azml lineage` itself."""
    from azml.cli.lineage import lineage

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.csv").write_text("x\n")
    (directory / "env.lock").write_text("a==1\n")
    lineage_app = typer.Typer()
    lineage_app.command("lineage")(lineage)

    @lineage_app.callback()
    def _root() -> None:
        """Test app."""

    trained = (NOW - dt.timedelta(days=days_ago)).isoformat()
    args = ["lineage", "--model", model, "--data", str(directory / "train.csv"), "--env-lock", str(directory / "env.lock"),
            "--trained-at", trained, "--out", str(directory / "lineage.json")]
    if accuracy is not None:
        args += ["--training-accuracy", str(accuracy)]
    result = runner.invoke(lineage_app, args)
    assert result.exit_code == 0, result.output
    return directory / "lineage.json"


def drift_report(directory: Path, psi: dict[str, float], **metadata: str) -> Path:
    """A report in the layout `azml drift` writes (drift.json)."""
    path = directory / "drift.json"
    document = {
        "reference": "ref.parquet", "current": "cur.parquet", "bins": 10, "drifted": [],
        "max_psi": max(psi.values()),
        "features": [{"name": k, "kind": "numeric", "psi": v, "threshold": 0.2, "drifted": v > 0.2} for k, v in psi.items()],
        "generatedAt": "2026-11-26T06:00:00+00:00",
        **({"stack": "dev", "endpoint": ENDPOINT} | metadata),
    }
    path.write_text(json.dumps(document))
    return path


def check(store: Store, *args: str, stack: str = "dev", project: Path = ROOT) -> Any:
    return runner.invoke(
        app,
        ["retrain", "check", stack, "--endpoint", ENDPOINT, "--now", NOW_TEXT, "--tracking-uri", store.uri,
         "--project-dir", str(project), *args],
    )


def errors(result: Any) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error: ")]


# --------------------------------------------------------------------------- the command


def test_no_reason_exits_0_and_logs_a_retrain_run(store: Store, tmp_path: Path) -> None:
    store.observation(0.90, 150, minutes_ago=30)
    store.observation(0.91, 150, minutes_ago=90)
    result = check(store, "--drift-report", str(drift_report(tmp_path, {"income": 0.05})), "--lineage", str(lineage_file(tmp_path / "l")))
    assert result.exit_code == 0, result.output
    assert "No reason to retrain (none)" in result.output
    assert "accuracy drop 0.005 <= 0.03 (0.905 on 300 labels vs 0.91 at training)" in result.output

    (run,) = store.retrain_runs()
    assert run.data.tags["azml.stack"] == "dev" and run.data.tags["azml.endpoint"] == ENDPOINT
    assert run.data.tags["azml.deployment"] == "blue" and run.data.tags["azml.model"] == "credit-risk:1"
    assert run.data.params["reasons"] == "none" and run.data.params["status"] == "none"
    assert run.data.params["max_psi_threshold"] == "0.2"
    assert run.data.params["max_accuracy_drop_threshold"] == "0.03"
    assert run.data.params["max_model_age_days_threshold"] == "30"
    assert run.data.metrics["model_age_days"] == 10
    assert run.info.start_time == int(NOW.timestamp() * 1000)


def test_every_reason_with_value_and_threshold_exits_4(store: Store, tmp_path: Path) -> None:
    store.observation(0.85, 500, minutes_ago=10)
    report = drift_report(tmp_path, {"income": 0.31, "debt_ratio": 0.05})
    result = check(store, "--drift-report", str(report), "--lineage", str(lineage_file(tmp_path / "l", days_ago=45)), "--format", "json")
    assert result.exit_code == EXIT_RETRAIN, result.output
    document = json.loads(result.output)
    assert document["status"] == "retrain" and document["reasons"] == ["drift", "performance", "staleness"]
    checks = {c["name"]: c for c in document["checks"]}
    assert (checks["drift"]["value"], checks["drift"]["threshold"]) == (0.31, 0.2)
    assert checks["performance"]["value"] == pytest.approx(0.06) and checks["performance"]["threshold"] == 0.03
    assert (checks["staleness"]["value"], checks["staleness"]["threshold"]) == (45, 30)
    assert checks["drift"]["source"].startswith(f"drift report {report}")
    assert document["job"] is None
    (run,) = store.retrain_runs()
    assert run.data.params["reasons"] == "drift,performance,staleness"
    assert run.data.metrics["max_psi"] == 0.31


def test_nothing_measured_is_inconclusive_exit_5(store: Store) -> None:
    result = check(store)
    assert result.exit_code == EXIT_INCONCLUSIVE, result.output
    assert "INCONCLUSIVE: drift, performance, staleness could not be measured" in result.output
    (run,) = store.retrain_runs()
    assert run.data.params["status"] == "inconclusive"


def test_latest_drift_run_of_the_endpoint_is_read_from_mlflow(store: Store, tmp_path: Path) -> None:
    store.drift({"income": 0.5}, minutes_ago=600)  # older: superseded
    store.drift({"income": 0.9}, minutes_ago=60, deployment="green")  # another deployment
    store.drift({"income": 0.9}, minutes_ago=60, stack="prod")  # another stack
    store.drift({"income": 0.9}, minutes_ago=-60)  # after the check time
    latest = store.drift({"income": 0.12, "debt_ratio": 0.07}, minutes_ago=120)
    result = check(store, "--lineage", str(lineage_file(tmp_path)), "--format", "json")
    drift = json.loads(result.output)["checks"][0]
    assert drift["outcome"] == "OK" and drift["value"] == 0.12
    assert drift["source"].startswith(f"MLflow drift run {latest}")


def test_accuracy_is_weighted_over_the_release_window(store: Store, tmp_path: Path) -> None:
    store.observation(0.80, 100, minutes_ago=10)
    store.observation(0.90, 300, minutes_ago=200)
    store.observation(0.10, 5000, minutes_ago=300)  # outside dev's 240 min window
    store.observation(0.10, 5000, minutes_ago=10, deployment="green")
    result = check(store, "--lineage", str(lineage_file(tmp_path, accuracy=0.9)), "--format", "json")
    performance = json.loads(result.output)["checks"][1]
    assert performance["value"] == pytest.approx(0.9 - (0.8 * 100 + 0.9 * 300) / 400)
    assert "on 400 labels" in performance["detail"]


def test_too_few_labels_are_inconclusive(store: Store, tmp_path: Path) -> None:
    store.observation(0.5, 199, minutes_ago=10)  # dev: minSamples.accuracy 200
    result = check(store, "--drift-report", str(drift_report(tmp_path, {"a": 0.01})), "--lineage", str(lineage_file(tmp_path / "l")))
    assert result.exit_code == EXIT_INCONCLUSIVE
    assert "fewer than the 200 required" in result.output


def test_accuracy_given_on_the_command_line(store: Store, tmp_path: Path) -> None:
    result = check(store, "--accuracy", "0.7", "--accuracy-n", "5000", "--lineage", str(lineage_file(tmp_path)), "--no-log", "-f", "json")
    document = json.loads(result.output)
    assert document["reasons"] == ["performance"] and document["checks"][1]["source"].startswith("--accuracy")
    assert store.retrain_runs() == []


def test_training_facts_from_the_registered_model_version(store: Store, tmp_path: Path) -> None:
    trained = NOW - dt.timedelta(days=40)
    training = store.run("training", trained, {"accuracy": 0.93})
    store.client.create_registered_model("credit-risk")
    store.client.create_model_version("credit-risk", "runs:/x/model", run_id=training)
    result = check(store, "--accuracy", "0.92", "--accuracy-n", "1000", "-f", "json")
    document = json.loads(result.output)
    assert document["reasons"] == ["staleness"]
    staleness = document["checks"][2]
    assert staleness["value"] == 40 and staleness["source"] == f"registered model credit-risk:1, training run {training}"


def test_training_facts_from_a_lineage_run_come_first(store: Store, tmp_path: Path) -> None:
    from azml.lineage import read_record
    from azml.cli.lineage import log_record

    record = read_record(lineage_file(tmp_path, days_ago=3))
    log_record(store.uri, "azml-lineage", record, "dev")
    result = check(store, "--accuracy", "0.92", "--accuracy-n", "1000", "-f", "json")
    staleness = json.loads(result.output)["checks"][2]
    assert staleness["outcome"] == "OK" and staleness["value"] == 3
    assert staleness["source"].startswith("MLflow lineage run")


def project_with(tmp_path: Path, document: dict[str, Any], name: str = "variant") -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    for item in ("Pulumi.yaml", "__main__.py", "components", "retraining"):
        if not (project / item).exists():
            (project / item).symlink_to(ROOT / item)
    if not (project / "serving").exists():
        # Files the config names must lie inside the project, not behind a link out of it.
        shutil.copytree(ROOT / "serving", project / "serving")
    write_stack(project, name, document)
    return project


def test_thresholds_come_from_the_stack_and_the_configured_lineage_is_read(store: Store, tmp_path: Path) -> None:
    document = load_stack("dev")
    document["config"]["azml:retraining"]["triggers"] = {"maxPsi": 0.5, "maxAccuracyDrop": 0.1, "maxModelAgeDays": 7}
    document["config"]["azml:onlineEndpoints"][0]["deployments"][0]["lineage"] = "lineage/blue.json"
    project = project_with(tmp_path, document)
    lineage_file(project / "lineage", days_ago=8)
    (project / "lineage" / "lineage.json").rename(project / "lineage" / "blue.json")
    report = drift_report(tmp_path, {"income": 0.31}, stack="variant")
    result = check(store, "--drift-report", str(report), "--accuracy", "0.85", "--accuracy-n", "1000", "-f", "json",
                   stack="variant", project=project)
    document = json.loads(result.output)
    assert document["thresholds"]["maxPsi"] == 0.5 and document["thresholds"]["maxModelAgeDays"] == 7
    assert [c["outcome"] for c in document["checks"]] == ["OK", "OK", "TRIGGERED"]
    assert document["checks"][2]["source"] == f"lineage {project / 'lineage' / 'blue.json'}"


def test_default_deployment_is_the_one_with_most_live_traffic(store: Store, tmp_path: Path) -> None:
    document = load_stack("dev")
    (endpoint,) = document["config"]["azml:onlineEndpoints"]
    green = copy.deepcopy(endpoint["deployments"][0])
    green["name"], green["model"]["version"] = "green", "2"
    endpoint["deployments"].append(green)
    endpoint["traffic"] = {"blue": 20, "green": 80}
    project = project_with(tmp_path, document)
    result = check(store, "--no-log", "-f", "json", stack="variant", project=project)
    assert json.loads(result.output)["deployment"] == "green"
    assert json.loads(result.output)["model"] == "credit-risk:2"
    explicit = check(store, "--no-log", "-f", "json", "--deployment", "blue", stack="variant", project=project)
    assert json.loads(explicit.output)["deployment"] == "blue"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "nope"), "--endpoint: 'nope' is not an endpoint of stack dev (declared: credit-risk-endpoint)"),
        (("--deployment", "green"), "--deployment: 'green' is not a deployment of endpoint credit-risk-endpoint"),
        (("--now", "tomorrow"), "--now: expected an ISO 8601 time"),
        (("--accuracy", "0.9"), "--accuracy and --accuracy-n go together"),
        (("--accuracy", "1.2", "--accuracy-n", "10"), "--accuracy: expected a number in 0..1"),
        (("--drift-report", "{other}"), "the report is for endpoint 'other-endpoint', not 'credit-risk-endpoint'"),
        (("--drift-report", "{bad}"), "features[0].psi: PSI must be a number >= 0"),
        (("--drift-report", "{missing}"), "cannot read"),
        (("--lineage", "{wrong_model}"), "records model credit-risk:7 but the deployment serves credit-risk:1"),
        (("--submit",), "--submit needs --training-data URI"),
        (("--submit", "--training-data", "azureml://datastores/x/paths/y.csv"), "--submit: no Azure subscription"),
    ],
    ids=["endpoint", "deployment", "now", "accuracy-alone", "accuracy-range", "report-other-endpoint",
         "report-bad-psi", "report-missing", "lineage-other-model", "submit-no-data", "submit-no-subscription"],
)
def test_bad_input_exits_2_with_one_line_and_records_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    other = drift_report(tmp_path / "o", {"a": 0.1}, endpoint="other-endpoint") if (tmp_path / "o").mkdir() is None else None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"features": [{"name": "a", "psi": -1}]}))
    paths = {"other": str(other), "bad": str(bad), "missing": str(tmp_path / "none.json"),
             "wrong_model": str(lineage_file(tmp_path / "w", model="credit-risk:7"))}
    args = tuple(a.format(**paths) for a in args)
    if args[0] == "--endpoint":
        result = runner.invoke(app, ["retrain", "check", "dev", *args, "--tracking-uri", store.uri, "--project-dir", str(ROOT)])
    else:
        result = check(store, *args)
    assert result.exit_code == 2, result.output
    assert len(errors(result)) == 1 and message in errors(result)[0], result.output
    assert store.retrain_runs() == []


# --------------------------------------------------------------------------- --submit


@pytest.fixture
def azure_ml(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The handler tests' stand-in for the service behind MLClient.jobs, kept
    across invocations; the real AzureMLJobSubmitter builds the job."""
    pytest.importorskip("azure.ai.ml")
    from .test_retraining_handler import FakeMLClient

    client = FakeMLClient()
    seen: list[Any] = []

    def make(settings: Any, submit_module: Any) -> Any:
        seen.append(settings)
        return submit_module.AzureMLJobSubmitter(settings, ml_client=client)

    monkeypatch.setattr(submission, "make_submitter", make)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "11111111-1111-1111-1111-111111111111")
    client.settings = seen
    return client


DATA_URI = "azureml://datastores/trainingdata/paths/credit-risk/2026-11-26/applications.csv"


def test_submit_sends_the_pipeline_once_per_reason_set_and_day(store: Store, tmp_path: Path, azure_ml: Any) -> None:
    from azure.ai.ml.entities import PipelineJob

    lineage = str(lineage_file(tmp_path, days_ago=45))
    args = ("--lineage", lineage, "--accuracy", "0.9", "--accuracy-n", "1000", "--submit", "--training-data", DATA_URI, "-f", "json")
    first = check(store, *args)
    assert first.exit_code == EXIT_RETRAIN, first.output
    job = json.loads(first.output)["job"]
    assert job["status"] == "submitted"
    assert job["workspace"] == "mlw-azml-dev" and job["resourceGroup"] == "rg-azml-dev-westeurope"

    [(pipeline, kwargs)] = azure_ml.jobs.calls
    assert isinstance(pipeline, PipelineJob) and pipeline.name == job["name"]
    assert kwargs == {"experiment_name": "retraining"}
    assert pipeline.tags == {
        "trigger_reason": "retrain_check", "retrain-reason": "staleness", "stack": "dev",
        "endpoint": ENDPOINT, "deployment": "blue", "model": "credit-risk:1",
    }
    assert pipeline.inputs["training_data"]._data.path == DATA_URI
    assert pipeline._validate().passed
    settings = azure_ml.settings[0]
    assert (settings.subscription_id, settings.container) == ("11111111-1111-1111-1111-111111111111", "training-data")

    # The same reasons the same day (a rerun, a second scheduler): nothing new.
    again = check(store, *args)
    assert json.loads(again.output)["job"] == {**job, "status": "exists"}
    assert len(azure_ml.jobs.calls) == 1
    # Another day, or another set of reasons: another job.
    next_day = check(store, *args[:-2], "--now", "2026-11-27T09:00:00Z", "-f", "json")
    assert json.loads(next_day.output)["job"]["name"] != job["name"]
    assert len(azure_ml.jobs.calls) == 2
    runs = store.retrain_runs()
    assert {r.data.tags["azml.retrain.job"] for r in runs} == {job["name"], json.loads(next_day.output)["job"]["name"]}


def test_submit_without_a_reason_submits_nothing(store: Store, tmp_path: Path, azure_ml: Any) -> None:
    result = check(store, "--lineage", str(lineage_file(tmp_path)), "--accuracy", "0.9", "--accuracy-n", "1000",
                   "--drift-report", str(drift_report(tmp_path, {"a": 0.01})), "--submit", "--training-data", DATA_URI)
    assert result.exit_code == 0, result.output
    assert azure_ml.jobs.calls == []


def test_subscription_from_the_stack_config_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azml.config import load_stack as load

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "env-subscription")
    stack_file, config = load("dev", ROOT)
    workspace = submission.workspace_for({**stack_file.config, "azure-native:subscriptionId": "stack-sub"}, config)
    assert workspace.subscription_id == "stack-sub"
    assert submission.workspace_for(stack_file.config, config).subscription_id == "env-subscription"


def test_submission_failure_exits_1_and_still_records_the_check(store: Store, tmp_path: Path, azure_ml: Any) -> None:
    def broken(job: Any, **kwargs: Any) -> Any:
        raise RuntimeError("service unavailable")

    azure_ml.jobs.create_or_update = broken
    result = check(store, "--lineage", str(lineage_file(tmp_path, days_ago=45)), "--accuracy", "0.9", "--accuracy-n", "1000",
                   "--submit", "--training-data", DATA_URI)
    assert result.exit_code == 1
    assert "submitting job retrain-" in errors(result)[0] and "service unavailable" in errors(result)[0]
    (run,) = store.retrain_runs()
    assert run.data.params["reasons"] == "staleness"


# --------------------------------------------------------------------------- the real console script


def test_azml_retrain_check_console_script(store: Store, tmp_path: Path) -> None:
    report = drift_report(tmp_path, {"income": 0.4})
    result = subprocess.run(
        [str(AZML), "retrain", "check", "dev", "--endpoint", ENDPOINT, "--drift-report", str(report),
         "--now", NOW_TEXT, "--tracking-uri", store.uri, "--no-log"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    if "No such command 'retrain'" in result.stderr:
        pytest.skip("`azml retrain` is not registered in azml/cli/root.py yet")
    assert result.returncode == EXIT_RETRAIN, result.stderr
    assert "Retrain: drift" in result.stdout


# --------------------------------------------------------------------------- with the drift engine's own output


def test_reads_what_azml_drift_writes(store: Store, tmp_path: Path) -> None:
    """The report file and the MLflow run of the real drift engine."""
    drift = pytest.importorskip("azml.drift.engine")
    from azml.drift.output.mlflow_log import log_report
    from azml.drift.output.report import to_json_text

    pa = pytest.importorskip("pyarrow")
    reference = pa.table({"income": [float(i) for i in range(1000)], "score": [float(i % 50) for i in range(1000)]})
    current = pa.table({"income": [float(i) + 600 for i in range(1000)], "score": [float(i % 50) for i in range(1000)]})
    report = drift.compute_drift(reference, current)
    worst = max(f.psi for f in report.features)
    path = tmp_path / "drift.json"
    path.write_text(to_json_text(report, {"stack": "dev", "endpoint": ENDPOINT, "generatedAt": "2026-11-26T06:00:00+00:00"}))

    from_file = check(store, "--drift-report", str(path), "--no-log", "-f", "json")
    first = json.loads(from_file.output)["checks"][0]
    assert first["outcome"] == "TRIGGERED" and first["value"] == pytest.approx(worst)
    assert first["detail"].startswith("max PSI") and "income" in first["detail"]

    log_report(report, store.uri, "credit-risk-drift", stack="dev", endpoint=ENDPOINT, deployment="blue")
    from_mlflow = check(store, "--no-log", "-f", "json", "--now", dt.datetime.now(dt.timezone.utc).isoformat())
    second = json.loads(from_mlflow.output)["checks"][0]
    assert second["outcome"] == "TRIGGERED" and second["value"] == pytest.approx(worst)
    assert second["source"].startswith("MLflow drift run")
