"""`azml plan` as a user runs it: outputs, files and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ..conftest import ROOT, CliPlan, fixture_project, load_stack, run_cli, write_stack
from ..policies.checklist.test_policy_pack import POLICY_INFO


def test_plan_dev_prints_the_tree_and_writes_plan_and_graph(cli_plan_dev: CliPlan) -> None:
    result, tmp_path = cli_plan_dev.result, cli_plan_dev.out
    assert result.returncode == 0, result.stderr
    assert "pulumi:pulumi:Stack" in result.stdout
    assert "├─ azml:components:MlWorkspace" in result.stdout
    assert "│  ├─ azure-native:keyvault:Vault" in result.stdout or "│  └─ azure-native:keyvault:Vault" in result.stdout
    assert "Resources: " in result.stdout
    plan = json.loads((tmp_path / "dev" / "plan.json").read_text())
    assert plan["stack"] == "dev"
    assert f"Resources: {plan['summary']['total']} to create" in result.stdout
    graph = (tmp_path / "dev" / "graph.mmd").read_text()
    assert graph.startswith("flowchart LR\n")
    assert "MlWorkspace" in graph and "-->" in graph


def test_plan_prod_json_meets_the_done_criteria(cli_plan_prod_json: CliPlan) -> None:
    result, tmp_path = cli_plan_prod_json.result, cli_plan_prod_json.out
    assert result.returncode == 0, result.stderr
    on_stdout = json.loads(result.stdout)
    on_disk = json.loads((tmp_path / "prod" / "plan.json").read_text())
    assert on_stdout == on_disk
    by_type = on_disk["summary"]["byType"]
    assert by_type["azure-native:network:PrivateEndpoint"] >= 5
    assert by_type["azure-native:privatedns:PrivateZone"] >= 6
    assert by_type["azure-native:monitor:DiagnosticSetting"] >= 4


def test_graph_edges_point_from_dependency_to_dependent(cli_plan_dev: CliPlan) -> None:
    tmp_path = cli_plan_dev.out
    assert cli_plan_dev.result.returncode == 0
    lines = (tmp_path / "dev" / "graph.mmd").read_text().splitlines()
    label = {line.split("(")[0].split("[")[0].strip(): line for line in lines if "<b>" in line}
    ids = {name: node for node, line in label.items() for name in ("network", "workspace", "compute", "rg") if f"<b>{name}</b>" in line}
    edges = {tuple(line.strip().split(" --> ")) for line in lines if "-->" in line}
    assert (ids["network"], ids["workspace"]) in edges
    assert (ids["workspace"], ids["compute"]) in edges
    assert (ids["workspace"], ids["network"]) not in edges


def test_location_42_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    document = load_stack("dev")
    document["config"]["azml:location"] = 42
    path = write_stack(tmp_path, "broken", document)
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "azml:location" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_config_problem_gets_its_own_line(tmp_path: Path) -> None:
    document = load_stack("dev")
    document["config"]["azml:compute"]["clusters"][0]["maxNodes"] = 0
    document["config"]["azml:storage"]["sku"] = "Premium_LRS"
    path = write_stack(tmp_path, "broken", document)
    result = run_cli("plan", str(path), "--out", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any(line.startswith("error: azml:compute.clusters[0].maxNodes:") for line in lines)
    assert any(line.startswith("error: azml:storage.sku:") for line in lines)


def test_unknown_stack_exits_2_listing_available_stacks() -> None:
    result = run_cli("plan", "staging")
    assert result.returncode == 2
    assert "no stack file" in result.stderr and "dev, prod" in result.stderr


def test_invalid_yaml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text("config:\n  azml:location: [unclosed\n")
    result = run_cli("plan", str(path))
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr and "Traceback" not in result.stderr


def test_bad_format_option_exits_2() -> None:
    result = run_cli("plan", "dev", "--format", "xml")
    assert result.returncode == 2
    assert "text" in result.stderr and "json" in result.stderr


def test_program_error_exits_1_without_traceback(tmp_path: Path) -> None:
    project = fixture_project(tmp_path, "failing_program")
    write_stack(project, "dev", load_stack("dev"))
    result = run_cli("plan", "dev", "--project-dir", str(project), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "the program broke on purpose" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_plan_runs_from_any_directory_inside_the_project(tmp_path: Path) -> None:
    result = run_cli("plan", "dev", "--out", str(tmp_path), cwd=ROOT / "components")
    assert result.returncode == 0, result.stderr


def test_plan_runs_the_policy_pack_and_records_its_verdicts(cli_plan_prod_json: CliPlan) -> None:
    result = cli_plan_prod_json.result
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)["policy"]
    assert policy["pack"] == "azml-security-checklist"
    assert policy["config"].endswith("policies/config.prod.json")
    # Each policy at its declared level (low-severity ones advisory; prod's config changes none).
    declared = {name: info.enforcement.value if info.enforcement else "mandatory" for name, info in POLICY_INFO.items()}
    assert policy["policies"] == declared
    assert "advisory" in declared.values()
    assert policy["summary"] == {"mandatory": 0, "advisory": 0}


def test_purge_protection_off_in_prod_fails_the_plan_naming_policy_and_vault(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv*", "build", ".git", "__pycache__", "tests"))
    vault = project / "components" / "dependencies.py"
    source = vault.read_text()
    assert '"enable_purge_protection": True,' in source
    vault.write_text(source.replace('"enable_purge_protection": True,', '"enable_purge_protection": False,'))
    result = run_cli("plan", "prod", "--project-dir", str(project), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "[mandatory] azml-keyvault-purge-protection on azure-native:keyvault:Vault::kv" in result.stdout
    assert "error: 1 mandatory policy violation(s)" in result.stderr
    # The plan is still written, with the verdict, for the pull-request report.
    violations = json.loads((tmp_path / "out" / "prod" / "plan.json").read_text())["policy"]["violations"]
    assert [v["policy"] for v in violations] == ["azml-keyvault-purge-protection"]
