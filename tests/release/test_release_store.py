"""Which MLflow store the release controller reads, and what it does when
that store holds no evidence: ``workspace`` is the stack's own workspace
store (the URI form Azure ML documents), and ``--require-evidence`` turns
"nothing was ever recorded here" into a failure instead of a quiet HOLD."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from azml.config import load_stack
from azml.tracking import TrackingUriError, resolve_tracking_uri, workspace_tracking_uri

from ..conftest import ROOT
from ..release_support import canary_project

AZML = Path(sys.executable).parent / "azml"
SUBSCRIPTION = "00000000-0000-4000-8000-00000000abcd"


def test_workspace_names_the_stacks_own_workspace_store() -> None:
    _, config = load_stack("prod", ROOT)
    assert workspace_tracking_uri(config, {"ARM_SUBSCRIPTION_ID": SUBSCRIPTION}) == (
        f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/{SUBSCRIPTION}"
        "/resourceGroups/rg-azml-prd-westeurope/providers/Microsoft.MachineLearningServices/workspaces/mlw-azml-prd"
    )
    # The Azure SDKs' variable is the fallback; the provider's wins.
    assert SUBSCRIPTION in workspace_tracking_uri(config, {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION})
    other = SUBSCRIPTION.replace("abcd", "ffff")
    assert SUBSCRIPTION in workspace_tracking_uri(config, {"ARM_SUBSCRIPTION_ID": SUBSCRIPTION, "AZURE_SUBSCRIPTION_ID": other})


@pytest.mark.parametrize("environ", [{}, {"ARM_SUBSCRIPTION_ID": "  "}, {"ARM_SUBSCRIPTION_ID": "my-sub"}])
def test_workspace_without_a_subscription_guid_is_refused_naming_the_variables(environ: dict[str, str]) -> None:
    _, config = load_stack("prod", ROOT)
    with pytest.raises(TrackingUriError, match="ARM_SUBSCRIPTION_ID or AZURE_SUBSCRIPTION_ID"):
        workspace_tracking_uri(config, environ)


def test_workspace_needs_a_stack() -> None:
    with pytest.raises(TrackingUriError, match="names a stack's workspace"):
        resolve_tracking_uri("workspace", ROOT)


def _azml(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID", "AZML_TRACKING_URI")}
    return subprocess.run([str(AZML), *args], cwd=project, env={**clean, **env}, capture_output=True, text=True, timeout=300)


EVALUATE = ("release", "evaluate", "prod", "-e", "credit-risk-endpoint", "--canary", "green")


def test_the_workflows_store_setting_without_a_subscription_fails_in_one_line(tmp_path: Path) -> None:
    project = canary_project(tmp_path / "p", {"blue": 90, "green": 10})
    result = _azml(project, *EVALUATE, "--require-evidence", AZML_TRACKING_URI="workspace")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "ARM_SUBSCRIPTION_ID" in lines[0], result.stderr


def test_a_store_that_never_recorded_evidence_fails_instead_of_holding(tmp_path: Path) -> None:
    project = canary_project(tmp_path / "p", {"blue": 90, "green": 10})
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    required = _azml(project, *EVALUATE, "--require-evidence", "--tracking-uri", store)
    assert required.returncode == 1 and required.stdout == "", required.stderr
    (line,) = required.stderr.strip().splitlines()
    assert line.startswith("error: no evidence store: experiment 'credit-risk-release' does not exist in") and "no verdict was logged" in line

    # Without the option the same store reads as "no observations yet": HOLD, exit 0.
    held = _azml(project, *EVALUATE, "--tracking-uri", store, "--format", "json")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["decision"] == "HOLD"
    # Once something recorded there, --require-evidence evaluates normally (HOLD: too few samples).
    again = _azml(project, *EVALUATE, "--require-evidence", "--tracking-uri", store, "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["decision"] == "HOLD", again.stderr
