"""checkov's secrets framework in the plan: it runs offline (in a network
namespace of its own when the machine allows one), scans the ARM export and
the stack file, names each secret by the ARM resource (and plan resource)
that holds it or by the stack file, and fails the scan unless skipped;
``secure:`` ciphertext in a stack file is not a finding."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from azml.arm.checkov import CheckovReport, checkov_executable, run_checkov
from azml.arm.export import export_resources, render_template
from azml.plan.model import Plan

from ..conftest import ROOT

WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
KEY_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"
    "+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQz"
)
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n"
STORAGE_KEY = "q7Z3vT0pXk2mN9bR4wYc8sLf1hJd6gKa5eUi0oPn3yMx7tBv2rQw9zAe4sDf6gHj8kLm1nBv5cXz3aSd7fGh0jK=="
# What `pulumi config set --secret` writes with the passphrase provider: ciphertext.
CIPHERTEXT = "v1:5Qm0yWbQ2nW1vJk7:dG9wU2VjcmV0Q2lwaGVydGV4dEJ5dGVzRm9yQXptbFN0YWNrRmlsZXNBcmVOb3RQbGFpbg=="


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``AZML_CHECKOV`` for a checkov that cannot reach any network: a network
    namespace with only a loopback (``unshare -n``) where the machine allows
    one (root, as here and in CI); else every proxy pointed at a closed port."""
    checkov = checkov_executable()
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        wrapper = tmp_path_factory.mktemp("offline") / "checkov"
        wrapper.write_text(f'#!/bin/sh\nexec unshare -n "{checkov}" "$@"\n')
        wrapper.chmod(0o755)
        return {"AZML_CHECKOV": str(wrapper)}
    closed = "http://127.0.0.1:9"
    return {"AZML_CHECKOV": str(checkov), "HTTPS_PROXY": closed, "HTTP_PROXY": closed, "NO_PROXY": ""}


def _scan(plan: Plan, directory: Path, stack_file: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CheckovReport:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    template, index = export_resources(plan)
    path = directory / "arm" / "template.json"
    path.parent.mkdir(parents=True)
    path.write_text(render_template(template))
    return run_checkov(path, directory, stack="prod", index=index, secrets_in=(stack_file,))


def secrets(report: CheckovReport) -> set[tuple[str, str, str | None]]:
    return {(r.check_id, r.resource, r.pulumi_name) for r in report.failed if r.framework == "secrets"}


def test_the_untouched_plan_and_stack_file_hold_no_secret(
    prod_plan: Plan, tmp_path: Path, offline: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_file = tmp_path / "Pulumi.prod.yaml"
    # The shipped stack file plus what `pulumi config set --secret` would add.
    stack_file.write_text((ROOT / "Pulumi.prod.yaml").read_text() + f"  azml:alertWebhookToken:\n    secure: {CIPHERTEXT}\n")
    report = _scan(prod_plan, tmp_path / "scan", stack_file, offline, monkeypatch)
    assert secrets(report) == set() and report.ok, report.failure_lines()


def test_secrets_in_the_export_and_the_stack_file_fail_the_scan_naming_where_they_are(
    prod_plan: Plan, tmp_path: Path, offline: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = Plan(prod_plan.project, prod_plan.stack, copy.deepcopy(prod_plan.resources), dict(prod_plan.outputs))
    (function,) = [r for r in plan.resources if r.type == WEB_APP]
    function.inputs["siteConfig"]["appSettings"].append({"name": "DEPLOY_KEY", "value": PRIVATE_KEY})
    (vault,) = [r for r in plan.resources if r.type == VAULT]
    vault.inputs["tags"]["export"] = f"DefaultEndpointsProtocol=https;AccountName=stazmlprd3d136e;AccountKey={STORAGE_KEY}"
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(
        (ROOT / "Pulumi.prod.yaml").read_text() + "  azml:deployKey: |\n" + "".join(f"    {line}\n" for line in PRIVATE_KEY.splitlines())
    )
    report = _scan(plan, tmp_path / "scan", stack_file, offline, monkeypatch)
    function_id = f"Microsoft.Web/sites.{function.inputs['name']}"
    vault_id = f"Microsoft.KeyVault/vaults.{vault.inputs['vaultName']}"
    assert secrets(report) == {
        ("CKV_SECRET_13", function_id, "func"),  # private key
        ("CKV_SECRET_3", vault_id, "kv"),  # Azure storage account key
        ("CKV_SECRET_13", "Pulumi.prod.yaml", None),
    }
    assert not report.ok
    lines = report.failure_lines()
    assert any(line.startswith("CKV_SECRET_13 ") and "Pulumi.prod.yaml" in line for line in lines)
    assert all(KEY_BODY[:16] not in line and STORAGE_KEY[:16] not in line for line in lines)
    document = (tmp_path / "scan" / "checkov.json").read_text()
    assert '"framework": "secrets"' in document and KEY_BODY[:16] not in document and STORAGE_KEY[:16] not in document
    # The ARM checks ran in the same scan.
    assert {r.framework for r in report.passed} == {"arm"} and len(report.passed) > 50


def test_the_plan_command_scans_the_stack_file(tmp_path: Path, offline: dict[str, str]) -> None:
    """``azml plan`` hands its stack file to the secrets framework: a private
    key pasted under an unknown namespace (which the program never reads)
    fails the plan naming the file."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "mlruns", "*.pyc", "__pycache__", ".pytest_cache", "venv"))
    stack = project / "Pulumi.prod.yaml"
    stack.write_text(stack.read_text() + "  ops:deployKey: |\n" + "".join(f"    {line}\n" for line in PRIVATE_KEY.splitlines()))
    azml = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "azml"
    azml = azml if azml.exists() else ROOT / ".venv" / "bin" / "azml"
    result = subprocess.run(
        [str(azml), "plan", "prod", "--no-policy", "--no-day-two", "--project-dir", str(project), "--out", str(tmp_path / "build")],
        capture_output=True, text=True, timeout=600, env={**os.environ, **offline}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "CKV_SECRET_13 Private Key: Pulumi.prod.yaml" in result.stdout + result.stderr
    assert KEY_BODY[:16] not in result.stdout + result.stderr
