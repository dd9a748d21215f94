"""The offline plan engine: faithful recording, Azure-shaped outputs, secrets
masked, duplicate URNs and unknown invokes refused."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from azml.config import read_stack_file
from azml.plan import arm
from azml.plan.engine import ProgramError, run_plan
from azml.plan.model import Plan

from ..conftest import ROOT, fixture_project, load_stack, write_stack

SCHEMA = json.loads((ROOT / "azml/plan/plan.schema.json").read_text())


def plan_fixture(tmp_path: Path, name: str, extra_config: dict | None = None) -> Plan:
    """Run tests/fixtures/<name> with the dev stack's (valid) azml config."""
    project = fixture_project(tmp_path, name)
    document = load_stack("dev")
    document["config"].update(extra_config or {})
    write_stack(project, "test", document)
    return run_plan(read_stack_file("test", project))


def test_plan_json_matches_the_documented_schema(any_plan: Plan) -> None:
    document = json.loads(json.dumps(any_plan.to_json()))
    jsonschema.validate(document, SCHEMA)
    assert document["project"] == "azml" and document["stack"] == any_plan.stack
    assert document["summary"]["total"] == len(document["resources"]) - 1  # the stack itself is not counted


def test_every_parent_and_dependency_is_a_recorded_urn(any_plan: Plan) -> None:
    urns = {r.urn for r in any_plan.resources}
    for resource in any_plan.resources:
        assert resource.parent is None or resource.parent in urns
        assert set(resource.dependencies) <= urns
        for deps in resource.property_dependencies.values():
            assert set(deps) <= urns
    roots = [r for r in any_plan.resources if r.parent is None]
    assert [r.type for r in roots] == ["pulumi:pulumi:Stack"]


def test_components_parent_their_children(any_plan: Plan) -> None:
    components = {r.name: r for r in any_plan.resources if r.type.startswith("azml:components:")}
    assert {"network", "workspace", "compute", "serving", "online-credit-risk-endpoint"} <= set(components)
    parent_of = {r.type: r.parent for r in any_plan.resources}
    assert parent_of["azure-native:keyvault:Vault"] == components["workspace"].urn
    assert parent_of["azure-native:network:VirtualNetwork"] == components["network"].urn
    assert parent_of["azure-native:machinelearningservices:Compute"] == components["compute"].urn


def test_property_dependencies_follow_outputs(dev_plan: Plan) -> None:
    (workspace,) = dev_plan.of_type("azure-native:machinelearningservices:Workspace")
    (vault,) = dev_plan.of_type("azure-native:keyvault:Vault")
    assert workspace.property_dependencies["keyVault"] == [vault.urn]
    assert vault.urn in workspace.dependencies


def test_prod_plan_meets_the_platform_floor(prod_plan: Plan) -> None:
    counts = prod_plan.counts_by_type()
    assert counts["azure-native:machinelearningservices:Workspace"] == 1
    assert counts["azure-native:keyvault:Vault"] == 1
    assert counts["azure-native:storage:StorageAccount"] >= 1
    assert counts["azure-native:containerregistry:Registry"] == 1
    assert counts["azure-native:network:PrivateEndpoint"] >= 5
    assert counts["azure-native:network:PrivateDnsZoneGroup"] == counts["azure-native:network:PrivateEndpoint"]
    assert counts["azure-native:privatedns:PrivateZone"] >= 6
    assert counts["azure-native:machinelearningservices:Compute"] >= 1
    assert counts["azure-native:monitor:DiagnosticSetting"] >= 4


def test_outputs_are_azure_shaped(dev_plan: Plan) -> None:
    outputs = dev_plan.outputs
    assert outputs["workspaceId"] == (
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-azml-dev-westeurope"
        "/providers/Microsoft.MachineLearningServices/workspaces/mlw-azml-dev"
    )
    assert outputs["computeClusters"] == ["cpu-build", "cpu-train"]
    # System identity principal ids flow into role assignments: one per identity
    # (the function app's; Azure ML grants the workspace identity's roles itself).
    (function,) = dev_plan.of_type("azure-native:web:WebApp")
    principals = {
        r.inputs["principalId"]
        for r in dev_plan.of_type("azure-native:authorization:RoleAssignment")
        if function.urn in r.property_dependencies["principalId"]
    }
    assert len(principals) == 1 and len(principals.pop()) == 36


def test_two_runs_give_identical_plans(dev_plan: Plan) -> None:
    again = run_plan(read_stack_file("dev", ROOT))
    assert again.to_json() == dev_plan.to_json()


def test_arm_ids_for_child_and_extension_resources() -> None:
    sub = "s"
    assert arm.arm_id("azure-native:network:Subnet", "a", {"resourceGroupName": "g", "virtualNetworkName": "v"}, sub) == (
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
    )
    assert arm.arm_id("azure-native:monitor:DiagnosticSetting", "d", {"resourceUri": "/x/y"}, sub) == (
        "/x/y/providers/Microsoft.Insights/diagnosticSettings/d"
    )
    with pytest.raises(arm.UnknownResourceType, match="no row"):
        arm.arm_id("azure-native:cdn:Profile", "p", {}, sub)


def test_arm_api_versions_in_table_match_sdk_types() -> None:
    # Every token in the table exists in the installed azure-native SDK.
    import importlib

    for token in arm.ARM_TYPES:
        _, module, cls = token.split(":")
        assert hasattr(importlib.import_module(f"pulumi_azure_native.{module}"), cls), token


def test_secrets_never_appear_in_clear(tmp_path: Path) -> None:
    plan = plan_fixture(tmp_path, "secret_program", {"fixture:apiKey": {"secure": "v1:abcdef"}})
    text = json.dumps(plan.to_json())
    assert "s3cr3t-input-value" not in text and "s3cr3t-output-value" not in text
    assert "v1:abcdef" not in text
    (group,) = plan.of_type("azure-native:resources:ResourceGroup")
    assert group.inputs["tags"] == "[secret]" or group.inputs["tags"]["token"] == "[secret]"
    assert plan.outputs["token"] == "[secret]"


def test_duplicate_urns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="duplicate resource URN .*ResourceGroup::rg"):
        plan_fixture(tmp_path, "duplicate_program")


def test_unknown_invokes_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="no answer for invoke azure-native:resources:getResourceGroup"):
        plan_fixture(tmp_path, "unknown_invoke_program")


def test_program_errors_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="ValueError: the program broke on purpose"):
        plan_fixture(tmp_path, "failing_program")


def _snake_case_keys(value: object, path: str = "") -> list[str]:
    # Map-valued inputs hold data keys (tag names, variables, collection names).
    data_maps = {"tags", "environmentVariables", "collections", "traffic", "mirrorTraffic"}
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "_" in key and path.rsplit(".", 1)[-1] not in data_maps and key != "__provider":
                found.append(f"{path}.{key}")
            found += _snake_case_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            found += _snake_case_keys(item, path)
    return found


def test_every_input_reaches_the_provider_in_camel_case(any_plan: Plan) -> None:
    # Union-typed inputs given as plain dicts keep snake_case keys, which the
    # provider silently ignores; the typed Args classes translate them.
    offenders = {r.name: _snake_case_keys(r.inputs) for r in any_plan.resources}
    assert {name: keys for name, keys in offenders.items() if keys} == {}
