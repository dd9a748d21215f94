"""`azml lineage`: the lineage record (lineage.json), its hashes and tags, the
deployment's `lineage` config key, and the tags it puts on deployments."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from azml.config import ConfigError, read_stack_file, validate_config
from azml.config.stackfile import as_config_values
from azml.lineage import ALWAYS_TAGS, LineageError, hash_directory, read_record, sha256_json
from azml.cli.lineage import lineage

from ..conftest import AZML, ROOT, load_stack, write_stack

app = typer.Typer()
app.command("lineage")(lineage)


@app.callback()
def _root() -> None:
    """Test app."""


runner = CliRunner()

DVC_FILE = """outs:
- md5: a304afb96060aad90176268345e10355
  size: 14445097
  hash: md5
  path: applications.parquet
"""
DVC_DIR = """outs:
- md5: 0c6e0dba3e2fd0e4b3d4ee6b45f2c1e4.dir
  size: 1024
  nfiles: 3
  hash: md5
  path: images
"""


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git work tree with training data (a file, a directory, DVC-tracked
    data) and a lock file, committed; the current directory."""
    root = tmp_path / "repo"
    (root / "data" / "features").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("income,debt_ratio\n1,0.5\n")
    (root / "data" / "features" / "b.csv").write_text("b\n")
    (root / "data" / "features" / "a.csv").write_text("a\n")
    (root / "data" / "applications.parquet.dvc").write_text(DVC_FILE)
    (root / "data" / "images.dvc").write_text(DVC_DIR)
    (root / "requirements.lock").write_text("numpy==2.3.4\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "data")
    monkeypatch.chdir(root)
    return root


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["lineage", *args])


BASIC = ("--model", "credit-risk:3", "--data", "data/train.csv")


# --------------------------------------------------------------------------- the record


def test_record_hashes_files_directories_and_dvc_outputs(workdir: Path) -> None:
    result = invoke(
        "--model", "credit-risk:3", "--data", "data/train.csv", "--data", "data/features",
        "--data", "data/applications.parquet", "--data", "data/images.dvc",
        "--training-run", "run-42", "--training-accuracy", "0.91", "--trained-at", "2026-11-01T10:00:00",
    )
    assert result.exit_code == 0, result.output
    record = json.loads((workdir / "lineage.json").read_text())

    data = {e["path"]: e for e in record["data"]}
    assert list(data) == sorted(data)
    assert data["data/train.csv"]["sha256"] == sha("income,debt_ratio\n1,0.5\n")
    # Directories: sorted relative paths with each file's sha256.
    a, b = sha("a\n"), sha("b\n")
    expected_dir = sha(f"a.csv\0{a}\nb.csv\0{b}\n")
    assert data["data/features"]["sha256"] == expected_dir
    assert data["data/features"]["files"] == 2
    # DVC: the recorded hash (the data is never read — it is not even there).
    parquet = data["data/applications.parquet"]
    assert not (workdir / "data" / "applications.parquet").exists()
    assert parquet["kind"] == "dvc" and parquet["digest"] == "md5:a304afb96060aad90176268345e10355"
    assert parquet["dvcFile"] == "data/applications.parquet.dvc"
    assert parquet["dvcFileSha256"] == sha(DVC_FILE)
    assert parquet["outs"] == [{"path": "applications.parquet", "hash": "a304afb96060aad90176268345e10355", "hashType": "md5", "size": 14445097}]
    images = data["data/images"]  # given as the .dvc file itself
    assert images["digest"] == "md5:0c6e0dba3e2fd0e4b3d4ee6b45f2c1e4.dir" and images["outs"][0]["nfiles"] == 3

    assert record["git"] == {"commit": git(workdir, "rev-parse", "HEAD"), "dirty": False}
    assert record["environment"] == {"lock": "requirements.lock", "sha256": sha("numpy==2.3.4\n")}
    assert record["training"] == {"run": "run-42", "accuracy": 0.91, "trainedAt": "2026-11-01T10:00:00Z"}
    assert record["dataSha256"] == sha256_json(sorted([e["path"], e["digest"]] for e in record["data"]))
    hashed = {k: record[k] for k in ("schemaVersion", "model", "training", "data", "dataSha256", "git", "environment")}
    assert record["lineageSha256"] == sha256_json(hashed)

    tags = record["tags"]
    assert tags == {
        "model-name": "credit-risk",
        "model-version": "3",
        "lineage-sha256": record["lineageSha256"],
        "data-sha256": record["dataSha256"],
        "env-lock-sha256": record["environment"]["sha256"],
        "training-run": "run-42",
        "trained-at": "2026-11-01T10:00:00Z",
        "git-commit": record["git"]["commit"],
        "git-dirty": "false",
    }
    assert all(len(v) <= 256 for v in tags.values())
    assert not any(set(k) & set("<>%&\\?/") for k in tags)
    for key, value in tags.items():
        assert f"  {key}: {value}" in result.output
    assert read_record(workdir / "lineage.json") == record


def test_same_inputs_give_the_same_composite_and_any_change_another(workdir: Path) -> None:
    assert invoke(*BASIC, "--out", "one.json").exit_code == 0
    assert invoke(*BASIC, "--out", "two.json").exit_code == 0
    one, two = (json.loads((workdir / n).read_text()) for n in ("one.json", "two.json"))
    assert one["lineageSha256"] == two["lineageSha256"]

    (workdir / "data" / "train.csv").write_text("income,debt_ratio\n2,0.5\n")  # tracked file changed: dirty
    assert invoke(*BASIC, "--out", "three.json").exit_code == 0
    three = json.loads((workdir / "three.json").read_text())
    assert three["git"]["dirty"] is True and three["tags"]["git-dirty"] == "true"
    assert three["dataSha256"] != one["dataSha256"] and three["lineageSha256"] != one["lineageSha256"]


def test_directory_hash_ignores_walk_order_and_names_paths(tmp_path: Path) -> None:
    for name in ("z/1.txt", "a/2.txt", "m.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    digest, files, size = hash_directory(tmp_path)
    lines = "".join(f"{p}\0{sha(p)}\n" for p in sorted(["z/1.txt", "a/2.txt", "m.txt"]))
    assert (digest, files, size) == (sha(lines), 3, len("z/1.txt") + len("a/2.txt") + len("m.txt"))
    (tmp_path / "z" / "1.txt").rename(tmp_path / "z" / "3.txt")  # a rename changes the hash
    assert hash_directory(tmp_path)[0] != digest


def test_outside_git_the_commit_is_not_invented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d.csv").write_text("x\n")
    (tmp_path / "requirements.lock").write_text("a==1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = invoke("--model", "m:1", "--data", "d.csv")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "lineage.json").read_text())
    assert record["git"] == {"commit": None, "dirty": None}
    assert "git-commit" not in record["tags"] and "not in a git work tree" in result.output
    assert set(ALWAYS_TAGS) <= set(record["tags"])


def test_json_format_prints_the_record(workdir: Path) -> None:
    result = invoke(*BASIC, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads((workdir / "lineage.json").read_text())


def test_a_hand_edited_record_is_refused(workdir: Path) -> None:
    assert invoke(*BASIC).exit_code == 0
    path = workdir / "lineage.json"
    record = json.loads(path.read_text())
    record["training"]["accuracy"] = 0.99
    path.write_text(json.dumps(record))
    with pytest.raises(LineageError, match="does not match the record's contents"):
        read_record(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "credit-risk", "--data", "data/train.csv"), "--model: expected NAME:VERSION"),
        (("--model", "credit risk:3", "--data", "data/train.csv"), "--model: expected NAME:VERSION"),
        (("--model", "m:1", "--data", "data/nope.csv"), "--data data/nope.csv: no such file or directory"),
        (("--model", "m:1", "--data", "data/train.csv", "--env-lock", "nope.lock"), "--env-lock: no file nope.lock"),
        (("--model", "m:1", "--data", "data/train.csv", "--training-accuracy", "1.5"), "--training-accuracy: expected a number in 0..1"),
        (("--model", "m:1", "--data", "data/train.csv", "--trained-at", "yesterday"), "--trained-at: expected an ISO 8601 time"),
        (("--model", "m:1", "--data", "data/train.csv", "--data", "data/train.csv"), "--data: the same path is given twice"),
        (("--model", "m:1", "--data", "data/bad.dvc"), "--data data/bad.dvc: not a DVC file"),
        (("--model", "m:1", "--data", "data/train.csv", "--training-run", "r" * 257), "--training-run: tag training-run: value longer than 256"),
    ],
    ids=["no-version", "bad-name", "missing-data", "missing-lock", "accuracy", "time", "twice", "bad-dvc", "long-run-id"],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(workdir: Path, args: tuple[str, ...], message: str) -> None:
    (workdir / "data" / "bad.dvc").write_text("stages: {}\n")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (workdir / "lineage.json").exists()


# --------------------------------------------------------------------------- MLflow


def test_logs_a_lineage_run_and_reads_the_training_run(workdir: Path, mlflow_template: Path) -> None:
    from mlflow import MlflowClient

    db = workdir.parent / "mlruns.db"
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    training = client.create_run(client.create_experiment("training"), start_time=1_700_000_000_000)
    client.log_metric(training.info.run_id, "accuracy", 0.88)
    client.set_terminated(training.info.run_id, end_time=1_700_000_600_000)

    result = invoke(*BASIC, "--training-run", training.info.run_id, "--tracking-uri", uri, "--stack", "prod")
    assert result.exit_code == 0, result.output
    record = json.loads((workdir / "lineage.json").read_text())
    assert record["training"] == {"run": training.info.run_id, "accuracy": 0.88, "trainedAt": "2023-11-14T22:23:20Z"}

    (run,) = client.search_runs(
        [client.get_experiment_by_name("azml-lineage").experiment_id], "tags.`azml.kind` = 'lineage'"
    )
    assert run.data.tags["azml.model"] == "credit-risk:3" and run.data.tags["azml.stack"] == "prod"
    assert run.data.params["lineage_sha256"] == record["lineageSha256"]
    assert run.data.params["training_accuracy"] == "0.88"
    assert f"Logged MLflow run {run.info.run_id}" in result.output

    missing = invoke(*BASIC, "--training-run", "0" * 32, "--tracking-uri", uri, "--out", "other.json")
    assert missing.exit_code == 2 and "--training-run 000" in missing.output
    assert not (workdir / "other.json").exists()


# --------------------------------------------------------------------------- config and deployment tags


def make_record(directory: Path, model: str = "credit-risk:3", name: str = "lineage.json") -> dict[str, Any]:
    (directory / "train.csv").write_text("x\n")
    (directory / "env.lock").write_text("a==1\n")
    if not (directory / ".git").exists():
        git(directory, "init", "-q")
        git(directory, "add", "train.csv", "env.lock")
        git(directory, "commit", "-q", "-m", "training inputs")
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        result = invoke("--model", model, "--data", "train.csv", "--env-lock", "env.lock", "--out", name,
                        "--training-run", "run-7")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return json.loads((directory / name).read_text())


def prod_config(lineage_path: str | None = None, batch_lineage: str | None = None) -> dict[str, Any]:
    document = load_stack("prod")
    config = document["config"]
    if lineage_path is not None:
        config["azml:onlineEndpoints"][0]["deployments"][0]["lineage"] = lineage_path
    if batch_lineage is not None:
        config["azml:batchEndpoints"][0]["deployments"][0]["lineage"] = batch_lineage
    return document


def namespace(document: dict[str, Any]) -> dict[str, Any]:
    return as_config_values({k[len("azml:"):]: v for k, v in document["config"].items() if k.startswith("azml:")})


def project_copy(tmp_path: Path) -> Path:
    """A project directory backed by this checkout (the program and its code), in which lineage files can be written."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "components", "retraining", "policies"):
        (project / name).symlink_to(ROOT / name)
    # Files the config names must lie inside the project, not behind a link out of it.
    shutil.copytree(ROOT / "serving", project / "serving")
    return project


def test_config_requires_the_lineage_file_to_exist_be_intact_and_name_the_model(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    key = "azml:onlineEndpoints[0].deployments[0].lineage"

    with pytest.raises(ConfigError) as missing:
        validate_config(namespace(prod_config("lineage/blue.json")), project)
    assert missing.value.problems == [f"{key}: no file lineage/blue.json under {project} (write it with `azml lineage`)"]
    # Without a project directory (the running program checks again) only the shape is checked.
    validate_config(namespace(prod_config("lineage/blue.json")))

    (project / "lineage").mkdir()
    make_record(project / "lineage", model="credit-risk:2", name="blue.json")
    with pytest.raises(ConfigError) as other_model:
        validate_config(namespace(prod_config("lineage/blue.json")), project)
    assert other_model.value.problems == [
        f"{key}: blue.json records model credit-risk:2 but the deployment serves credit-risk:3"
    ]

    record = make_record(project / "lineage", name="blue.json")
    record["git"]["commit"] = "0" * 40
    (project / "lineage" / "blue.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError) as edited:
        validate_config(namespace(prod_config("lineage/blue.json")), project)
    assert "does not match the record's contents" in edited.value.problems[0]

    for bad in ("/etc/lineage.json", "../lineage.json", "lineage.yaml"):
        with pytest.raises(ConfigError) as shape:
            validate_config(namespace(prod_config(bad)))
        assert shape.value.problems[0].startswith(f"{key}: ") and "relative to Pulumi.yaml" in shape.value.problems[0]


def test_deployments_carry_the_record_as_tags_and_the_policy_can_require_them(tmp_path: Path) -> None:
    from azml.plan.engine import run_plan
    from azml.policy.runner import evaluate

    project = project_copy(tmp_path)
    (project / "lineage").mkdir()
    record = make_record(project / "lineage", name="credit-risk-3.json")
    stack = write_stack(project, "lineage", prod_config("lineage/credit-risk-3.json", "lineage/credit-risk-3.json"))
    plan = run_plan(read_stack_file(str(stack), project))

    deployments = [r for r in plan.resources if r.type.endswith(("OnlineDeployment", "BatchDeployment"))]
    assert len(deployments) == 2
    for deployment in deployments:
        tags = deployment.inputs["tags"]
        assert {k: tags[k] for k in record["tags"]} == record["tags"]
        assert tags["owner"]  # the stack's own tags stay
        assert len(tags) <= 50  # Azure's limit per resource

    strict = {**json.loads((ROOT / "policies" / "config.prod.json").read_text())}
    strict["azml-deployment-lineage-tags"] = {
        "requiredTags": ["model-name", "model-version", "lineage-sha256", "git-commit", "data-sha256", "env-lock-sha256"]
    }
    config = tmp_path / "config.strict.json"
    config.write_text(json.dumps(strict))
    report = evaluate(plan, ROOT / "policies", config)
    assert [v for v in report.violations if v.policy == "azml-deployment-lineage-tags"] == []


def test_lineage_tags_without_a_record_are_the_model_reference() -> None:
    from azml.config.platform.serving import ModelRef
    from components.serving_assets import lineage_tags

    workspace = ModelRef(name="credit-risk", version="3", registered=True)
    assert lineage_tags(workspace) == {"model-name": "credit-risk", "model-version": "3"}
    registry = ModelRef(registry_uri="azureml://registries/shared/models/credit-risk/versions/5")
    assert lineage_tags(registry) == {"model-name": "credit-risk", "model-version": "5", "model-registry": "shared"}


# --------------------------------------------------------------------------- the real console script


def test_azml_lineage_console_script(workdir: Path) -> None:
    result = subprocess.run([str(AZML), "lineage", *BASIC], cwd=workdir, capture_output=True, text=True, timeout=120)
    if "No such command 'lineage'" in result.stderr:
        pytest.skip("`azml lineage` is not registered in azml/cli/root.py yet")
    assert result.returncode == 0, result.stderr
    assert read_record(workdir / "lineage.json")["model"] == {"name": "credit-risk", "version": "3"}


def test_one_model_label_for_every_form_of_a_model() -> None:
    from types import SimpleNamespace

    from azml.naming import label, model_label, model_ref

    assert label("credit-risk", 3) == "credit-risk:3"
    workspace = SimpleNamespace(name="credit-risk", version="3", registry_uri=None)
    registry = SimpleNamespace(name=None, version=None, registry_uri="azureml://registries/r/models/credit-risk/versions/3")
    assert model_label(workspace) == model_label(registry) == model_ref(workspace) == label("credit-risk", "3")
    assert model_ref(registry) == registry.registry_uri
