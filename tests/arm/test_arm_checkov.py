"""ARM export of the plan and the checkov bridge.

checkov runs for real, from .venv-checkov (``make test`` builds it): a missing
checkov fails these tests instead of skipping them. checkov takes a few
seconds per run, so each template is scanned once per session (per xdist
worker) by a fixture, and the mutations share one scan.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from azml.arm.api_versions import ApiVersionError, api_version
from azml.arm.bridge import export_and_scan
from azml.arm.checkov import (
    CUSTOM_CHECKS_DIR,
    ENV_CHECKOV,
    CheckovError,
    CheckovNotInstalled,
    CheckovReport,
    checkov_executable,
    run_checkov,
)
from azml.arm.export import (
    CONTENT_VERSION,
    SCHEMA,
    arm_name,
    export_resources,
    export_template,
    is_exported,
    render_template,
    resource_line_ranges,
)
from azml.arm.mapping import SHAPES
from azml.arm.preview import UNKNOWN_SENTINEL, PlanDocumentError, plan_from_plan_json, plan_from_preview
from azml.arm.skips import SKIPS
from azml.plan.arm import ARM_TYPES
from azml.plan.model import SECRET_MARK, UNKNOWN_MARK, Plan, PlannedResource

from ..conftest import AZML, ROOT

PREVIEW_FIXTURE = ROOT / "tests" / "data" / "preview" / "dev-preview.json"
CUSTOM_CHECK_IDS = {f"CKV_AZML_{n}" for n in range(1, 9)}


# --------------------------------------------------------------------------- helpers


def resources_of(template: dict[str, Any], arm_type: str) -> list[dict[str, Any]]:
    return [r for r in template["resources"] if r["type"] == arm_type]


def only(template: dict[str, Any], arm_type: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in resources_of(template, arm_type) if name is None or r["name"] == name]
    assert len(found) == 1, (arm_type, name, [r["name"] for r in resources_of(template, arm_type)])
    return found[0]


def failures(report: CheckovReport) -> set[tuple[str, str]]:
    return {(r.check_id, r.resource) for r in report.failed}


def copy_plan(plan: Plan) -> Plan:
    return Plan(plan.project, plan.stack, copy.deepcopy(plan.resources), dict(plan.outputs))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AZML), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env, check=False
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    try:
        return checkov_executable()
    except CheckovNotInstalled as error:
        pytest.fail(f"{error} (make test builds it; these tests never skip)")


@pytest.fixture(scope="session")
def dev_scan(tmp_path_factory: pytest.TempPathFactory, dev_plan: Plan, checkov_bin: Path) -> CheckovReport:
    return export_and_scan(dev_plan, tmp_path_factory.mktemp("scan-dev"))


@pytest.fixture(scope="session")
def prod_scan(tmp_path_factory: pytest.TempPathFactory, prod_plan: Plan, checkov_bin: Path) -> CheckovReport:
    return export_and_scan(prod_plan, tmp_path_factory.mktemp("scan-prod"))


@pytest.fixture(params=["dev", "prod"])
def any_scan(request: pytest.FixtureRequest) -> CheckovReport:
    return request.getfixturevalue(f"{request.param}_scan")


@pytest.fixture(scope="session")
def prod_template(prod_plan: Plan) -> dict[str, Any]:
    return export_template(prod_plan)


@pytest.fixture(scope="session")
def dev_template(dev_plan: Plan) -> dict[str, Any]:
    return export_template(dev_plan)


@pytest.fixture(scope="session")
def mutated_scan(
    tmp_path_factory: pytest.TempPathFactory, prod_plan: Plan, checkov_bin: Path
) -> tuple[CheckovReport, dict[str, str]]:
    """One checkov run over the prod stack with a security setting flipped on each of several resources.

    The function host storage is made insecure in the *plan*, under azure-native's input names: the export must
    rename them to what checkov reads (supportsHttpsTrafficOnly, networkAcls), or the checks would pass by reading
    nothing. Everything else is flipped in a copy of the exported template, as ARM spells it.
    """
    plan = copy_plan(prod_plan)
    (host,) = [a for a in plan.of_type("azure-native:storage:StorageAccount") if a.name == "st-fn"]
    host.inputs["enableHttpsTrafficOnly"] = False
    host.inputs["networkRuleSet"] = {"defaultAction": "Allow", "bypass": "None"}
    template, index = export_resources(plan)
    names: dict[str, str] = {"host": host.inputs["accountName"]}

    storage = only(
        template,
        "Microsoft.Storage/storageAccounts",
        prod_plan.of_type("azure-native:storage:StorageAccount")[0].inputs["accountName"],
    )
    storage["properties"]["supportsHttpsTrafficOnly"] = False
    storage["properties"]["minimumTlsVersion"] = "TLS1_0"
    storage["properties"]["allowBlobPublicAccess"] = True
    names["storage"] = storage["name"]
    container = resources_of(template, "Microsoft.Storage/storageAccounts/blobServices/containers")[0]
    container["properties"]["publicAccess"] = "Blob"
    names["container"] = container["name"]
    vault = only(template, "Microsoft.KeyVault/vaults")
    vault["properties"]["enablePurgeProtection"] = False
    names["vault"] = vault["name"]
    compute = resources_of(template, "Microsoft.MachineLearningServices/workspaces/computes")[0]
    compute["properties"]["disableLocalAuth"] = False
    compute["properties"]["properties"]["enableNodePublicIp"] = True
    compute["properties"]["properties"]["remoteLoginPortPublicAccess"] = "Enabled"
    names["compute"] = compute["name"]
    workspace = only(template, "Microsoft.MachineLearningServices/workspaces")
    workspace["properties"]["managedNetwork"]["isolationMode"] = "Disabled"
    names["workspace"] = workspace["name"]
    endpoint = resources_of(template, "Microsoft.MachineLearningServices/workspaces/onlineEndpoints")[0]
    endpoint["properties"]["publicNetworkAccess"] = "Enabled"
    names["endpoint"] = endpoint["name"]
    deployment = resources_of(template, "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments")[0]
    deployment["properties"]["egressPublicNetworkAccess"] = "Enabled"
    names["deployment"] = deployment["name"]

    directory = tmp_path_factory.mktemp("scan-mutated")
    path = directory / "arm" / "template.json"
    path.parent.mkdir()
    path.write_text(render_template(template))
    return run_checkov(path, directory, index=index), names


# --------------------------------------------------------------------------- API versions


def test_every_arm_type_row_resolves_an_api_version() -> None:
    for token in ARM_TYPES:
        version = api_version(token)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version), (token, version)


def test_api_version_is_read_from_the_sdk_class() -> None:
    import typing

    from pulumi_azure_native import storage

    docs = " ".join(f.__doc__ or "" for f in typing.get_overloads(storage.StorageAccount.__init__))
    assert f"Uses Azure REST API version {api_version('azure-native:storage:StorageAccount')}." in docs
    with pytest.raises(ApiVersionError):
        api_version("azure-native:storage:NoSuchThing")
    with pytest.raises(ApiVersionError):
        api_version("pulumi:pulumi:Stack")


# --------------------------------------------------------------------------- template structure


def test_template_header_and_one_resource_per_custom_azure_native_resource(any_plan: Plan) -> None:
    template, index = export_resources(any_plan)
    assert template["$schema"] == SCHEMA
    assert template["$schema"] == "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    assert template["contentVersion"] == CONTENT_VERSION == "1.0.0.0"
    assert template["metadata"]["stack"] == any_plan.stack

    expected = [r for r in any_plan.resources if r.custom and r.type.startswith("azure-native:")]
    assert [e.urn for e in index] == [r.urn for r in expected]
    assert len(template["resources"]) == len(expected) > 50
    for resource, arm in zip(expected, template["resources"]):
        row = ARM_TYPES[resource.type]
        assert arm["type"] == row.arm_type
        assert arm["apiVersion"] == api_version(resource.type)
        assert arm["name"] == arm_name(resource)
        assert isinstance(arm["properties"], dict)
        assert set(arm) <= {
            "type",
            "apiVersion",
            "name",
            "scope",
            "location",
            "tags",
            "sku",
            "identity",
            "kind",
            "zones",
            "extendedLocation",
            "properties",
            "dependsOn",
        }
        # names, parents and the resource group are the resource's address, not its properties
        for key in ("resourceGroupName", row.name_key, *row.parent_keys, row.scope_key):
            assert key is None or key not in arm["properties"], (resource.name, key)


def test_components_stack_and_dynamic_resources_are_not_exported(any_plan: Plan) -> None:
    template = export_template(any_plan)
    skipped = [r for r in any_plan.resources if not is_exported(r)]
    assert any(r.type.startswith("pulumi-python:dynamic") for r in skipped)
    assert any(r.type == "pulumi:pulumi:Stack" for r in skipped)
    assert any(r.type.startswith("azml:components:") for r in skipped)
    assert all(r["type"].startswith("Microsoft.") for r in template["resources"])
    assert "EndpointRouting" not in json.dumps(template)


def test_child_resources_carry_their_parents_names(prod_template: dict[str, Any], prod_plan: Plan) -> None:
    vnet = prod_plan.of_type("azure-native:network:VirtualNetwork")[0].inputs["virtualNetworkName"]
    subnets = resources_of(prod_template, "Microsoft.Network/virtualNetworks/subnets")
    assert subnets and all(s["name"].startswith(f"{vnet}/snet-") and s["name"].count("/") == 1 for s in subnets)

    account = prod_plan.of_type("azure-native:storage:StorageAccount")[0].inputs["accountName"]
    assert only(
        prod_template, "Microsoft.Storage/storageAccounts/blobServices/containers", f"{account}/default/training-data"
    )
    assert only(prod_template, "Microsoft.Storage/storageAccounts/blobServices", f"{account}/default")
    assert only(prod_template, "Microsoft.Storage/storageAccounts/fileServices", f"{account}/default")
    assert only(prod_template, "Microsoft.Storage/storageAccounts/managementPolicies", f"{account}/default")
    queue = only(prod_template, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert re.fullmatch(r"stfn[a-z0-9]+/default/retraining-events", queue["name"])

    workspace = prod_plan.of_type("azure-native:machinelearningservices:Workspace")[0].inputs["workspaceName"]
    deployment = only(prod_template, "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments")
    assert deployment["name"] == f"{workspace}/azml-prd-credit-risk-endpoint/blue"
    environment = only(prod_template, "Microsoft.MachineLearningServices/workspaces/environments/versions")
    assert environment["name"] == f"{workspace}/credit-risk-scoring/1"
    computes = {c["name"] for c in resources_of(prod_template, "Microsoft.MachineLearningServices/workspaces/computes")}
    assert f"{workspace}/cpu-train" in computes
    zone_group = resources_of(prod_template, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")[0]
    assert re.fullmatch(r"pe-[a-z-]+/default", zone_group["name"])


def test_extension_resources_carry_scope(any_plan: Plan) -> None:
    template, index = export_resources(any_plan)
    extension_types = {row.arm_type for row in ARM_TYPES.values() if row.scope_key}
    seen = set()
    for entry, arm in zip(index, template["resources"]):
        row = ARM_TYPES[entry.token]
        if row.scope_key is None:
            assert "scope" not in arm, arm["name"]
            continue
        seen.add(arm["type"])
        resource = any_plan.by_urn(entry.urn)
        assert arm["scope"] == resource.inputs[row.scope_key]
        assert row.scope_key not in arm["properties"]
        assert "/" not in arm["name"]
    # diagnostic settings, role assignments, policy assignments, budget at least (locks only in prod)
    assert (
        {
            "Microsoft.Insights/diagnosticSettings",
            "Microsoft.Authorization/roleAssignments",
            "Microsoft.Authorization/policyAssignments",
            "Microsoft.Consumption/budgets",
        }
        <= seen
        <= extension_types
    )
    diagnostics = resources_of(template, "Microsoft.Insights/diagnosticSettings")
    assert len({d["scope"] for d in diagnostics}) == len(diagnostics)


def test_prod_locks_are_scoped_to_what_they_protect(prod_template: dict[str, Any]) -> None:
    # Data and secrets only: a lock on the workspace would block releases (docs/platform-rules.md).
    locks = resources_of(prod_template, "Microsoft.Authorization/locks")
    assert len(locks) == 2
    assert {lock["scope"].split("/providers/")[1].split("/")[0] for lock in locks} == {
        "Microsoft.KeyVault",
        "Microsoft.Storage",
    }
    assert all(lock["properties"]["level"] == "CanNotDelete" for lock in locks)


def test_azure_native_names_become_rest_names(prod_template: dict[str, Any], prod_plan: Plan) -> None:
    for account in resources_of(prod_template, "Microsoft.Storage/storageAccounts"):
        properties = account["properties"]
        assert properties["supportsHttpsTrafficOnly"] is True
        acls = properties["networkAcls"]
        assert acls["defaultAction"] == "Deny" and acls["bypass"] == "AzureServices"
        assert not acls.get("ipRules") and not acls.get("virtualNetworkRules")
        assert "enableHttpsTrafficOnly" not in properties and "networkRuleSet" not in properties
        assert properties["minimumTlsVersion"] == "TLS1_2"
        assert account["sku"]["name"].startswith("Standard_") and account["kind"] == "StorageV2"
    insights = only(prod_template, "Microsoft.Insights/components")
    assert insights["properties"]["Application_Type"] == "web"
    assert "WorkspaceResourceId" in insights["properties"] and "applicationType" not in insights["properties"]
    logs = only(prod_template, "Microsoft.OperationalInsights/workspaces")
    assert "sku" not in logs and logs["properties"]["sku"] == {"name": "PerGB2018"}
    alert = resources_of(prod_template, "Microsoft.Insights/metricAlerts")[0]
    assert "odata.type" in alert["properties"]["criteria"] and "odataType" not in alert["properties"]["criteria"]
    endpoint = resources_of(prod_template, "Microsoft.Network/privateEndpoints")[0]
    connection = endpoint["properties"]["privateLinkServiceConnections"][0]
    assert set(connection) == {"name", "properties"} and "groupIds" in connection["properties"]
    zone_group = resources_of(prod_template, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")[0]
    assert "privateDnsZoneId" in zone_group["properties"]["privateDnsZoneConfigs"][0]["properties"]
    integration = [
        s
        for s in resources_of(prod_template, "Microsoft.Network/virtualNetworks/subnets")
        if s["properties"].get("delegations")
    ]
    assert integration[0]["properties"]["delegations"][0]["properties"]["serviceName"] == "Microsoft.App/environments"


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def test_properties_inputs_are_the_arm_properties(prod_template: dict[str, Any], prod_plan: Plan) -> None:
    checked = 0
    for token, shape in SHAPES.items():
        if not shape.properties_input:
            continue
        for resource in prod_plan.of_type(token):
            arm = only(prod_template, ARM_TYPES[token].arm_type, arm_name(resource))
            assert arm["properties"] == drop_nulls(resource.inputs["properties"]), token
            checked += 1
    assert checked >= 9
    vault = only(prod_template, "Microsoft.KeyVault/vaults")["properties"]
    assert vault["enablePurgeProtection"] is True and vault["enableRbacAuthorization"] is True
    assert vault["sku"]["name"] == "premium" and vault["networkAcls"]["defaultAction"] == "Deny"
    compute = resources_of(prod_template, "Microsoft.MachineLearningServices/workspaces/computes")[0]
    # Clusters and the workspace carry the stack's user-assigned compute identity (key-less storage).
    compute_identity = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-azml-prd-compute"
    assert compute["properties"]["computeType"] == "AmlCompute" and compute["identity"]["type"] == "UserAssigned"
    assert [i for i in compute["identity"]["userAssignedIdentities"] if i.endswith(compute_identity)]
    assert compute["properties"]["properties"]["enableNodePublicIp"] is False
    workspace = only(prod_template, "Microsoft.MachineLearningServices/workspaces")
    assert workspace["properties"]["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert workspace["identity"]["type"] == "SystemAssigned,UserAssigned" and workspace["sku"]["name"] == "Basic"
    assert [i for i in workspace["identity"]["userAssignedIdentities"] if i.endswith(compute_identity)]


def test_depends_on_names_resources_of_the_template(any_plan: Plan) -> None:
    template = export_template(any_plan)
    known = {(r["type"], r["name"]) for r in template["resources"]}
    pattern = re.compile(r"\[(resourceId|extensionResourceId)\((.*)\)\]")
    some = 0
    for resource in template["resources"]:
        for dependency in resource.get("dependsOn", []):
            some += 1
            match = pattern.fullmatch(dependency)
            assert match, dependency
            arguments = re.findall(r"'((?:[^']|'')*)'", match.group(2))
            if match.group(1) == "resourceId":
                arm_type, names = arguments[0], arguments[1:]
            else:
                arm_type, names = arguments[1], arguments[2:]
            assert (arm_type, "/".join(names)) in known, dependency
            assert not dependency.startswith("[subscriptionResourceId('Microsoft.Resources/resourceGroups'")
    assert some > 50
    subnet = resources_of(template, "Microsoft.Network/virtualNetworks/subnets")[0]
    vnet = subnet["name"].split("/")[0]
    assert f"[resourceId('Microsoft.Network/virtualNetworks', '{vnet}')]" in subnet["dependsOn"]


def test_secret_and_unknown_marks_stay_as_they_are() -> None:
    plan = Plan(
        "azml",
        "unit",
        [
            PlannedResource(
                urn="urn:pulumi:unit::azml::azure-native:web:WebApp::app",
                type="azure-native:web:WebApp",
                name="app",
                custom=True,
                parent=None,
                dependencies=[],
                property_dependencies={},
                inputs={
                    "name": "app-unit",
                    "resourceGroupName": "rg",
                    "location": "westeurope",
                    "serverFarmId": UNKNOWN_MARK,
                    "siteConfig": {"appSettings": [{"name": "TOKEN", "value": SECRET_MARK}]},
                    "description": None,
                },
                options={},
            )
        ],
    )
    (resource,) = export_template(plan)["resources"]
    assert resource["name"] == "app-unit" and resource["location"] == "westeurope"
    assert resource["properties"] == {
        "serverFarmId": "[unknown]",
        "siteConfig": {"appSettings": [{"name": "TOKEN", "value": "[secret]"}]},
    }


def test_line_ranges_cover_each_resource_object(prod_template: dict[str, Any]) -> None:
    text = render_template(prod_template)
    ranges = resource_line_ranges(text)
    lines = text.splitlines()
    assert len(ranges) == len(prod_template["resources"])
    for (first, last), resource in zip(ranges, prod_template["resources"]):
        assert json.loads("\n".join(lines[first - 1 : last]).rstrip(",")) == resource


def test_export_is_deterministic(prod_plan: Plan) -> None:
    assert render_template(export_template(prod_plan)) == render_template(export_template(copy_plan(prod_plan)))


# --------------------------------------------------------------------------- checkov on the real stacks


def test_checkov_passes_on_the_stacks_outside_documented_skips(any_scan: CheckovReport) -> None:
    assert any_scan.checkov_version == "3.3.30"
    assert not any_scan.parsing_errors
    assert any_scan.ok, "\n".join(any_scan.failure_lines())
    assert any_scan.resource_count > 50
    assert len(any_scan.passed) > 50
    for record in any_scan.skipped:
        assert record.reason and len(record.reason) > 40, record


def test_checks_find_the_properties_they_read(any_scan: CheckovReport) -> None:
    # Each of these reads a property the export must place and name as ARM does.
    assert {
        "CKV_AZURE_3", "CKV_AZURE_35", "CKV_AZURE_36", "CKV_AZURE_44", "CKV_AZURE_59",   # storage
        "CKV_AZURE_34",                                                                # containers
        "CKV_AZURE_42", "CKV_AZURE_109", "CKV_AZURE_110", "CKV_AZURE_111", "CKV_AZURE_189",  # key vault
        "CKV_AZURE_137", "CKV_AZURE_138", "CKV_AZURE_139",                             # registry
        "CKV2_AZURE_49",                                                               # ML workspace
    } <= any_scan.check_ids("passed")  # fmt: skip


def test_custom_checks_load_and_pass(any_scan: CheckovReport) -> None:
    # CKV_AZML_6 (deployment egress) cannot see the workspace: with a managed network the flag is
    # left unset as Microsoft advises, and the check answers UNKNOWN (the policy pack decides).
    assert CUSTOM_CHECK_IDS - {"CKV_AZML_6"} <= any_scan.check_ids("passed")
    assert "CKV_AZML_6" not in any_scan.check_ids("failed")
    assert not CUSTOM_CHECK_IDS & any_scan.check_ids("skipped")
    guided = [r for r in any_scan.passed if r.check_id in CUSTOM_CHECK_IDS]
    assert all(r.guideline and r.guideline.startswith("https://learn.microsoft.com/") for r in guided)


def test_every_result_is_traced_to_its_plan_resource(request: pytest.FixtureRequest, any_scan: CheckovReport) -> None:
    stack = any_scan.passed[0].urn.split("::")[0].split(":")[-1]
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    urns = {r.urn for r in plan.resources}
    for record in [*any_scan.passed, *any_scan.skipped]:
        assert record.urn in urns, record
        resource = plan.by_urn(record.urn)
        assert record.resource == f"{ARM_TYPES[resource.type].arm_type}.{arm_name(resource)}"
        assert record.pulumi_name == resource.name


def test_every_skip_is_needed_by_a_shipped_stack(dev_scan: CheckovReport, prod_scan: CheckovReport) -> None:
    def idle(skip: Any, stack: str, report: CheckovReport) -> bool:
        return bool(skip.stacks) and stack not in skip.stacks or skip in report.unused_skips

    stale = [s for s in SKIPS if idle(s, "dev", dev_scan) and idle(s, "prod", prod_scan)]
    assert not stale, [(s.check_id, s.resources, s.stacks) for s in stale]


def test_skip_list_is_documented() -> None:
    for skip in SKIPS:
        assert re.fullmatch(r"CKV2?_AZURE_\d+", skip.check_id), skip
        assert len(skip.reason) > 60, skip
    assert not [s for s in SKIPS if s.check_id in CUSTOM_CHECK_IDS]
    # The checklist's own checks are never skipped, but for one account: the
    # function host storage keeps its public endpoint for Event Grid delivery.
    (public_storage,) = [s for s in SKIPS if s.check_id == "CKV_AZURE_59"]
    assert public_storage.resources == ("Microsoft.Storage/storageAccounts.stfnazml*",)
    assert not {s.check_id for s in SKIPS} & {
        "CKV_AZURE_3",
        "CKV_AZURE_44",
        "CKV_AZURE_110",
        "CKV_AZURE_139",
        "CKV_AZURE_189",
        "CKV2_AZURE_49",
    }


def test_every_skip_covers_only_the_resources_it_is_about(
    dev_plan: Plan, prod_plan: Plan, dev_scan: CheckovReport, prod_scan: CheckovReport
) -> None:
    """A skip's resource patterns match, in each shipped stack it applies to,
    exactly the resources its check fails on there: none where the check
    passes (or does not apply), so a new resource of the same type is checked,
    not silently skipped."""
    for stack, plan, scan in (("dev", dev_plan, dev_scan), ("prod", prod_plan, prod_scan)):
        ids = {f"{ARM_TYPES[r.type].arm_type}.{arm_name(r)}" for r in plan.resources if r.type in ARM_TYPES}
        for skip in SKIPS:
            if skip.stacks and stack not in skip.stacks:
                continue
            matched = {i for i in ids if any(fnmatchcase(i, pattern) for pattern in skip.resources)}
            skipped = {r.resource for r in scan.skipped if r.check_id == skip.check_id}
            assert matched == skipped, (stack, skip.check_id, sorted(matched ^ skipped))


def test_report_json_section(prod_scan: CheckovReport) -> None:
    document = json.loads(json.dumps(prod_scan.to_json()))
    assert document["ok"] is True
    assert document["summary"] == {
        "passed": len(prod_scan.passed),
        "failed": 0,
        "skipped": len(prod_scan.skipped),
        "resources": prod_scan.resource_count,
        "parsingErrors": 0,
    }
    assert document["failed"] == []
    assert {s["checkId"] for s in document["skipped"]} == prod_scan.check_ids("skipped")
    assert all(s["reason"] and s["urn"] and s["lines"] for s in document["skipped"])
    written = json.loads((prod_scan.sarif.parent / "checkov.json").read_text())
    assert written == document
    assert (document["template"], document["sarif"]) == ("arm/template.json", "checkov.sarif")


def test_sarif_is_written_with_skips_suppressed(any_scan: CheckovReport) -> None:
    assert any_scan.sarif.name == "checkov.sarif"
    sarif = json.loads(any_scan.sarif.read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert isinstance(results, list) and len(results) == len(any_scan.skipped)
    for result in results:
        (suppression,) = result["suppressions"]
        assert suppression["kind"] == "external" and suppression["justification"].startswith("azml.arm.skips: ")
    rules = {rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rules


# --------------------------------------------------------------------------- mutations


def test_flipped_settings_fail_the_matching_checks(mutated_scan: tuple[CheckovReport, dict[str, str]]) -> None:
    report, names = mutated_scan
    storage = f"Microsoft.Storage/storageAccounts.{names['storage']}"
    host = f"Microsoft.Storage/storageAccounts.{names['host']}"
    vault = f"Microsoft.KeyVault/vaults.{names['vault']}"
    compute = f"Microsoft.MachineLearningServices/workspaces/computes.{names['compute']}"
    expected = {
        ("CKV_AZURE_3", storage),  # https only
        ("CKV_AZURE_44", storage),  # TLS 1.2
        ("CKV_AZML_7", storage),  # public blob access
        ("CKV_AZURE_34", f"Microsoft.Storage/storageAccounts/blobServices/containers.{names['container']}"),
        ("CKV_AZURE_3", host),  # from the plan's enableHttpsTrafficOnly
        ("CKV_AZURE_35", host),  # from the plan's networkRuleSet
        ("CKV_AZURE_110", vault),  # purge protection
        ("CKV_AZURE_42", vault),  # recoverable
        ("CKV_AZML_1", compute),
        ("CKV_AZML_2", compute),
        ("CKV_AZML_3", compute),
        ("CKV_AZML_4", f"Microsoft.MachineLearningServices/workspaces.{names['workspace']}"),
        ("CKV_AZML_5", f"Microsoft.MachineLearningServices/workspaces/onlineEndpoints.{names['endpoint']}"),
        (
            "CKV_AZML_6",
            f"Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments.{names['deployment']}",
        ),
    }
    assert failures(report) == expected
    assert not report.ok
    assert {r.pulumi_name for r in report.failed if r.resource == host} == {"st-fn"}
    sarif = json.loads(report.sarif.read_text())
    unsuppressed = {r["ruleId"] for r in sarif["runs"][0]["results"] if not r.get("suppressions")}
    assert unsuppressed == {check for check, _ in expected}


# --------------------------------------------------------------------------- pulumi preview --json


def test_preview_digest_becomes_a_plan() -> None:
    document = json.loads(PREVIEW_FIXTURE.read_text())
    assert {s["op"] for s in document["steps"]} == {"same", "update", "create", "delete"}
    plan = plan_from_preview(document)
    assert (plan.project, plan.stack) == ("azml", "dev")
    names = {r.name for r in plan.resources}
    assert "credit-risk-endpoint-red" not in names  # deleted
    assert {"azml-dev", "st", "kv", "mlw", "credit-risk-endpoint-blue"} <= names
    assignment = plan.of_type("azure-native:authorization:RoleAssignment")[0]
    assert assignment.inputs["principalId"] == UNKNOWN_MARK
    assert UNKNOWN_SENTINEL not in json.dumps([r.inputs for r in plan.resources])
    routing = next(r for r in plan.resources if r.type.startswith("pulumi-python:dynamic"))
    assert "__provider" not in routing.inputs
    storage = plan.of_type("azure-native:storage:StorageAccount")[0]
    assert storage.inputs["minimumTlsVersion"] == "TLS1_2"  # the newState, not the oldState


def test_preview_documents_are_validated() -> None:
    with pytest.raises(PlanDocumentError):
        plan_from_preview({"changeSummary": {}})
    with pytest.raises(PlanDocumentError):
        plan_from_preview({"steps": [{"op": "delete", "urn": "urn:pulumi:dev::azml::x::y", "oldState": {}}]})
    with pytest.raises(PlanDocumentError):
        plan_from_plan_json({"steps": []})


def test_plan_json_round_trip(prod_plan: Plan) -> None:
    again = plan_from_plan_json(json.loads(json.dumps(prod_plan.to_json())))
    assert render_template(export_template(again)) == render_template(export_template(prod_plan))


def test_cli_scans_a_preview_end_to_end(tmp_path: Path, checkov_bin: Path) -> None:
    completed = run_cli("checkov", "--preview-json", str(PREVIEW_FIXTURE), "--out", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert "0 failed" in completed.stdout
    template = json.loads((tmp_path / "arm" / "template.json").read_text())
    assert template["contentVersion"] == "1.0.0.0"
    plan = plan_from_preview(json.loads(PREVIEW_FIXTURE.read_text()))
    assert len(template["resources"]) == sum(1 for r in plan.resources if is_exported(r)) == 12
    assert "/red" not in json.dumps(template)
    assignment = only(template, "Microsoft.Authorization/roleAssignments")
    assert assignment["properties"]["principalId"] == "[unknown]"
    assert assignment["scope"].startswith("/subscriptions/5e1d2c3b-")
    sarif = json.loads((tmp_path / "checkov.sarif").read_text())
    assert isinstance(sarif["runs"][0]["results"], list)
    report = json.loads((tmp_path / "checkov.json").read_text())
    assert report["ok"] is True and "CKV_AZML_1" not in {s["checkId"] for s in report["skipped"]}


def test_cli_exits_1_on_a_failed_check(tmp_path: Path, checkov_bin: Path) -> None:
    document = json.loads(PREVIEW_FIXTURE.read_text())
    for step in document["steps"]:
        if step.get("newState", {}).get("type") == "azure-native:storage:StorageAccount":
            step["newState"]["inputs"]["minimumTlsVersion"] = "TLS1_0"
    preview = tmp_path / "preview.json"
    preview.write_text(json.dumps(document))
    completed = run_cli("checkov", "--preview-json", str(preview), "--out", str(tmp_path / "out"))
    assert completed.returncode == 1
    (line,) = [l for l in completed.stderr.splitlines() if l.startswith("error:")]
    assert line.startswith("error: CKV_AZURE_44 ") and "(st)" in line
    assert (tmp_path / "out" / "checkov.sarif").is_file()


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    completed = run_cli("checkov", "--preview-json", str(bad))
    assert completed.returncode == 2 and completed.stderr.startswith("error: --preview-json: ")
    completed = run_cli("checkov")
    assert completed.returncode == 2 and "exactly one of" in completed.stderr
    bad.write_text(json.dumps({"resources": []}))
    completed = run_cli("checkov", "--preview-json", str(bad))
    assert completed.returncode == 2 and "steps" in completed.stderr


def test_types_without_an_arm_row_are_one_clear_error(tmp_path: Path, checkov_bin: Path) -> None:
    urn = "urn:pulumi:dev::azml::azure-native:cache:Redis::cache"
    state = {"urn": urn, "custom": True, "type": "azure-native:cache:Redis", "inputs": {"name": "cache"}}
    preview = tmp_path / "preview.json"
    preview.write_text(json.dumps({"steps": [{"op": "create", "urn": urn, "newState": state}]}))
    completed = run_cli("checkov", "--preview-json", str(preview), "--out", str(tmp_path / "out"))
    assert completed.returncode == 1
    assert completed.stderr == (
        "error: azure-native:cache:Redis has no row in azml.plan.arm.ARM_TYPES; add its ARM type before using it\n"
    )


def test_missing_checkov_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-checkov"
    monkeypatch.setenv(ENV_CHECKOV, str(missing))
    with pytest.raises(CheckovNotInstalled, match="make plan"):
        checkov_executable()
    completed = run_cli(
        "checkov", "--preview-json", str(PREVIEW_FIXTURE), "--out", str(tmp_path / "out"),
        env={**os.environ, ENV_CHECKOV: str(missing)},
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("error: checkov is not installed")
    assert "Traceback" not in completed.stderr


# --------------------------------------------------------------------------- the checkov environment


def test_checkov_environment_is_pinned_and_built_by_make() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements-checkov.lock").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in lines), lines
    pins = dict(line.split("==") for line in lines)
    assert pins["checkov"] == "3.3.30" and len(pins) > 50
    makefile = (ROOT / "Makefile").read_text()
    assert "CHECKOV_VERSION := 3.3.30" in makefile
    for target in ("plan", "test"):
        (rule,) = [l for l in makefile.splitlines() if l.startswith(f"{target}:")]
        assert "$(STAMP)" in rule and "$(CHECKOV_STAMP)" in rule, rule
    assert "$(CHECKOV_STAMP): requirements-checkov.lock" in makefile
    assert "compileall" in makefile.split("$(CHECKOV_STAMP): requirements-checkov.lock")[1].split("\n\n")[0]
    assert CUSTOM_CHECKS_DIR == ROOT / "checkov_checks" and (CUSTOM_CHECKS_DIR / "__init__.py").is_file()


def test_installed_checkov_matches_the_lock(checkov_bin: Path) -> None:
    site = checkov_bin.parent.parent / "lib"
    assert list(site.glob("python3.*/site-packages/checkov-3.3.30.dist-info")), "rebuild: make checkov-env"


def test_a_custom_check_that_does_not_load_is_an_error(tmp_path: Path, checkov_bin: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "__init__.py").write_text("")
    (checks / "azml_broken_check.py").write_text("import module_that_does_not_exist\n")
    template = tmp_path / "template.json"
    template.write_text(render_template({"$schema": SCHEMA, "contentVersion": CONTENT_VERSION, "resources": []}))
    with pytest.raises(CheckovError, match="azml_broken_check"):
        run_checkov(template, tmp_path / "out", external_checks_dir=checks)
