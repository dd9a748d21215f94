"""Shared fixtures: the recorded offline plans of the real dev and prod stacks,
and helpers to write stack files for invalid-config cases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from azml.config import read_stack_file
from azml.config.stackfile import as_config_values
from azml.plan.engine import run_plan
from azml.plan.model import Plan

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
AZML = Path(sys.executable).parent / "azml"
MUTATION_REPORT = ROOT / "build" / "mutation-matrix.txt"  # written by tests/mutation_matrix.py
_SESSION_START = time.time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The mutation matrix's caught/total per category, when this session ran it
    (it runs in a worker under xdist; the file is how the summary reaches here)."""
    if MUTATION_REPORT.is_file() and MUTATION_REPORT.stat().st_mtime >= _SESSION_START:
        terminalreporter.write_sep("-", "mutation matrix")
        terminalreporter.write_line(MUTATION_REPORT.read_text().rstrip())


@pytest.fixture(scope="session")
def dev_plan() -> Plan:
    return run_plan(read_stack_file("dev", ROOT))


@pytest.fixture(scope="session")
def prod_plan() -> Plan:
    return run_plan(read_stack_file("prod", ROOT))


@pytest.fixture(params=["dev", "prod"])
def any_plan(request: pytest.FixtureRequest) -> Plan:
    return request.getfixturevalue(f"{request.param}_plan")


class CliPlan:
    """One ``azml plan`` run as a user runs it: its exit code, output and --out folder."""

    def __init__(self, stack: str, out: Path, *options: str) -> None:
        self.out = out
        self.result = run_cli("plan", stack, *options, "--out", str(out))


@pytest.fixture(scope="session")
def cli_plan_dev(tmp_path_factory: pytest.TempPathFactory) -> CliPlan:
    """``azml plan dev`` (text), run once for the tests that only read what it
    printed and wrote; they are in one file, which ``--dist loadfile`` gives to one
    worker."""
    return CliPlan("dev", tmp_path_factory.mktemp("cli-plan-dev"))


@pytest.fixture(scope="session")
def cli_plan_prod_json(tmp_path_factory: pytest.TempPathFactory) -> CliPlan:
    """``azml plan prod --format json``, run once for the tests that only read it."""
    return CliPlan("prod", tmp_path_factory.mktemp("cli-plan-prod"), "--format", "json")


def load_stack(stack: str) -> dict[str, Any]:
    """A shipped stack file as the Pulumi CLI reads it (timestamps stay text)."""
    return as_config_values(YAML(typ="safe").load((ROOT / f"Pulumi.{stack}.yaml").read_text()))


def write_stack(directory: Path, name: str, document: dict[str, Any]) -> Path:
    path = directory / f"Pulumi.{name}.yaml"
    yaml = YAML()
    with path.open("w") as handle:
        yaml.dump(document, handle)
    return path


def fixture_project(tmp_path: Path, name: str) -> Path:
    """Copy tests/fixtures/<name> (a tiny Pulumi project) to tmp_path, with the
    files the dev config points at (conda specs)."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    shutil.copytree(ROOT / "serving", target / "serving")
    return target


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AZML), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow sqlite store; tests copy it (creating a store runs
    ~3 s of schema migrations)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlruns.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path: Path, mlflow_template: Path) -> str:
    """A fresh, real MLflow tracking store (sqlite) for one test."""
    path = tmp_path / "mlruns.db"
    shutil.copy(mlflow_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(autouse=True)
def _environment_kept() -> Any:
    """Each test ends with the environment it began with. Commands run in-process
    set process-wide variables (azml.tracking bounds MLflow's HTTP requests through
    os.environ), which every later test's subprocesses inherited: a command then
    took MLFLOW_HTTP_REQUEST_TIMEOUT (20 s) as the user's own wait for a silent
    server instead of its 5-second probe."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything the tests imported is here to stay: move it out of the cyclic
    collector's reach, so its full collections scan only what tests allocate
    (the azure-native, MLflow and pandas modules made each one costly)."""
    import gc

    gc.freeze()
