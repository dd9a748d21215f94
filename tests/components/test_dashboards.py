"""Dashboards as code (the stack's workbook and the activity-log export) and
opt-in Defender for Containers, on the recorded plans of the real stacks."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from azml.arm.export import export_template
from azml.config import read_stack_file
from azml.plan.arm import arm_id
from azml.plan.engine import run_plan
from azml.plan.mocks import ClientConfig
from azml.plan.model import Plan, PlannedResource

from ..conftest import ROOT, load_stack, run_cli, write_stack

WORKBOOK = "azure-native:applicationinsights:Workbook"
PRICING = "azure-native:security:Pricing"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
SUBSCRIPTION = f"/subscriptions/{ClientConfig().subscription_id}"
VIEWS = ["latency-errors", "canary-vs-champion", "drift-fairness", "deployment-changes"]


def only(plan: Plan, token: str) -> PlannedResource:
    (resource,) = plan.of_type(token)
    return resource


def log_analytics_id(plan: Plan) -> str:
    log = only(plan, LOG_ANALYTICS)
    return arm_id(LOG_ANALYTICS, log.inputs["workspaceName"], log.inputs, ClientConfig().subscription_id)


def views(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """Workbook view name -> its items, from the serialized workbook."""
    document = json.loads(only(plan, WORKBOOK).inputs["serializedData"])
    return {item["name"]: item["content"]["items"] for item in document["items"] if item["type"] == 12}


def queries(items: list[dict[str, Any]]) -> list[str]:
    return [item["content"]["query"] for item in items if item["type"] == 3]


def activity_log_settings(plan: Plan) -> list[PlannedResource]:
    return [s for s in plan.of_type(DIAGNOSTIC_SETTING) if s.inputs["resourceUri"] == SUBSCRIPTION]


@pytest.fixture(scope="module")
def variant_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """dev with every dashboards key changed and Defender on; prod with dashboards off."""
    directory = tmp_path_factory.mktemp("dashboards")
    tuned = load_stack("dev")
    tuned["config"]["azml:dashboards"] = {
        "displayName": "credit risk ops",
        "timeRange": "P7D",
        "activityLog": False,
        "driftMetrics": ["accuracy", "demographic_parity"],
    }
    tuned["config"]["azml:governance"] = {**tuned["config"].get("azml:governance", {}), "defenderForContainers": True}
    off = load_stack("prod")
    off["config"]["azml:dashboards"] = {"enabled": False}
    return {
        name: run_plan(read_stack_file(str(write_stack(directory, name, document)), ROOT))
        for name, document in (("tuned", tuned), ("off", off))
    }


# --------------------------------------------------------------------------- the workbook


def test_prod_has_one_shared_workbook_over_its_log_analytics_workspace(prod_plan: Plan) -> None:
    workbook = only(prod_plan, WORKBOOK)
    log = only(prod_plan, LOG_ANALYTICS)
    inputs = workbook.inputs
    assert (inputs["kind"], inputs["category"], inputs["version"]) == ("shared", "workbook", "Notebook/1.0")
    assert inputs["sourceId"] == log_analytics_id(prod_plan)
    assert workbook.property_dependencies["sourceId"] == [log.urn]
    assert inputs["resourceGroupName"] == "rg-azml-prd-westeurope" and inputs["location"] == "westeurope"
    assert inputs["displayName"] == "azml-prd ML operations"
    assert inputs["tags"]["hidden-title"] == inputs["displayName"] and inputs["tags"]["environment"] == "prod"
    assert uuid.UUID(inputs["resourceName"]).version == 5
    assert prod_plan.outputs["workbookId"].endswith(f"/providers/Microsoft.Insights/workbooks/{inputs['resourceName']}")
    parent = prod_plan.by_urn(workbook.parent)
    assert (parent.type, parent.name) == ("azml:components:Dashboards", "dashboards")


def test_workbook_names_are_guids_of_their_own_stack(dev_plan: Plan, prod_plan: Plan) -> None:
    dev, prod = (only(plan, WORKBOOK).inputs["resourceName"] for plan in (dev_plan, prod_plan))
    assert dev != prod
    assert str(uuid.UUID(dev)) == dev and str(uuid.UUID(prod)) == prod


def test_serialized_workbook_has_the_four_views_on_the_right_tables(prod_plan: Plan) -> None:
    document = json.loads(only(prod_plan, WORKBOOK).inputs["serializedData"])
    assert document["version"] == "Notebook/1.0"
    assert document["fallbackResourceIds"] == [log_analytics_id(prod_plan)]
    (parameters,) = [item for item in document["items"] if item["type"] == 9]
    (time_range,) = parameters["content"]["parameters"]
    assert (time_range["name"], time_range["type"], time_range["value"]) == ("TimeRange", 4, {"durationMs": 86_400_000})

    found = views(prod_plan)
    assert list(found) == VIEWS
    for items in found.values():
        for item in items:
            if item["type"] == 3:
                # every query runs against Log Analytics over the picked time range
                assert item["content"]["timeContextFromParameter"] == "TimeRange"
                assert item["content"]["resourceType"] == "microsoft.operationalinsights/workspaces"

    latency, errors = queries(found["latency-errors"])
    for query in (latency, errors):
        assert query.startswith("AmlOnlineEndpointTrafficLog\n")
        assert 'EndpointName in ("azml-prd-credit-risk-endpoint")' in query
        assert "DeploymentName" in query and "{TimeRange:grain}" in query and "render timechart" in query
    assert "percentile(TotalDurationMs, 95)" in latency
    assert "toint(ResponseCode) >= 500" in errors

    (comparison,) = queries(found["canary-vs-champion"])
    assert "AmlOnlineEndpointTrafficLog" in comparison
    assert "by EndpointName, DeploymentName" in comparison
    for column in ("Requests", "SharePercent", "P95Ms", "ErrorRatePercent", "Role"):
        assert column in comparison.rsplit("| project", 1)[1]

    (drift,) = queries(found["drift-fairness"])
    assert drift.startswith("AppMetrics\n") and '| where Name in ("psi", "parity_difference")' in drift
    note = next(item for item in found["drift-fairness"] if item["type"] == 1)["content"]["json"]
    assert "do not reach Log Analytics" in note or "neither reaches Log Analytics" in note

    (changes,) = queries(found["deployment-changes"])
    assert changes.startswith("AzureActivity\n")
    assert "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/WRITE" in changes
    assert "ONLINEENDPOINTS/DEPLOYMENTS/WRITE" in changes
    assert '_ResourceId has "/workspaces/mlw-azml-prd/"' in changes
    assert re.search(r"\| project TimeGenerated, Caller, .*Endpoint, Deployment, Status", changes)


def test_activity_log_reaches_the_workspace_through_a_subscription_setting(prod_plan: Plan) -> None:
    (setting,) = activity_log_settings(prod_plan)
    assert setting.inputs["workspaceId"] == log_analytics_id(prod_plan)
    # the subscription is the one holding the stack's workspace
    assert setting.property_dependencies["resourceUri"] == [only(prod_plan, LOG_ANALYTICS).urn]
    assert setting.inputs["name"] == "azml-prd-activity-log"
    categories = {entry["category"] for entry in setting.inputs["logs"] if entry["enabled"]}
    assert "Administrative" in categories  # endpoint and deployment writes are Administrative events
    assert not setting.inputs.get("metrics")  # a subscription has no metrics to export


def test_config_changes_the_workbook(variant_plans: dict[str, Plan], dev_plan: Plan) -> None:
    tuned = variant_plans["tuned"]
    workbook = only(tuned, WORKBOOK)
    assert workbook.inputs["displayName"] == workbook.inputs["tags"]["hidden-title"] == "credit risk ops"
    document = json.loads(workbook.inputs["serializedData"])
    (parameters,) = [item for item in document["items"] if item["type"] == 9]
    assert parameters["content"]["parameters"][0]["value"] == {"durationMs": 7 * 86_400_000}
    (drift,) = queries(views(tuned)["drift-fairness"])
    assert '| where Name in ("accuracy", "demographic_parity")' in drift and '"psi"' not in drift
    # activityLog off: no subscription setting, and the view says why it may be empty
    assert activity_log_settings(tuned) == [] and len(activity_log_settings(dev_plan)) == 1
    note = next(item for item in views(tuned)["deployment-changes"] if item["type"] == 1)["content"]["json"]
    assert "activityLog is off" in note
    # the workbook name belongs to the stack, not to its display settings
    assert workbook.inputs["resourceName"] == only(dev_plan, WORKBOOK).inputs["resourceName"]


def test_dashboards_off_creates_neither_workbook_nor_activity_export(variant_plans: dict[str, Plan]) -> None:
    off = variant_plans["off"]
    assert off.of_type(WORKBOOK) == [] and activity_log_settings(off) == []
    assert off.outputs.get("workbookId") is None
    # the rest of the stack is untouched
    assert sorted(p.name for p in off.of_type(PRICING)) == [
        "defender-arm", "defender-containers", "defender-key-vaults", "defender-storage-accounts",
    ]


# --------------------------------------------------------------------------- Defender for Containers


def test_defender_for_containers_only_where_the_flag_is_on(
    dev_plan: Plan, prod_plan: Plan, variant_plans: dict[str, Plan]
) -> None:
    governance = load_stack("dev")["config"].get("azml:governance", {})
    assert governance.get("defenderForContainers") is None and governance.get("defenderPlans") is None
    assert dev_plan.of_type(PRICING) == []
    # the older key (defenderForContainers: true, as the tuned variant sets it) turns on Containers alone
    assert [p.name for p in variant_plans["tuned"].of_type(PRICING)] == ["defender-containers"]
    for plan in (prod_plan, variant_plans["tuned"]):
        (pricing,) = [p for p in plan.of_type(PRICING) if p.name == "defender-containers"]
        assert pricing.inputs["scopeId"] == SUBSCRIPTION
        assert (pricing.inputs["pricingName"], pricing.inputs["pricingTier"]) == ("Containers", "Standard")
        assert {"name": "ContainerRegistriesVulnerabilityAssessments", "isEnabled": "True"} in pricing.inputs["extensions"]
        assert plan.by_urn(pricing.parent).type == "azml:components:Governance"


def test_arm_export_carries_the_new_types(prod_plan: Plan) -> None:
    template = export_template(prod_plan)
    (workbook,) = [r for r in template["resources"] if r["type"] == "Microsoft.Insights/workbooks"]
    assert workbook["kind"] == "shared" and workbook["name"] == only(prod_plan, WORKBOOK).inputs["resourceName"]
    assert workbook["properties"]["sourceId"] == log_analytics_id(prod_plan)
    json.loads(workbook["properties"]["serializedData"])
    pricings = {r["name"]: r for r in template["resources"] if r["type"] == "Microsoft.Security/pricings"}
    assert sorted(pricings) == ["Arm", "Containers", "KeyVaults", "StorageAccounts"]
    for name, pricing in pricings.items():
        assert (pricing["scope"], pricing["properties"]["pricingTier"]) == (SUBSCRIPTION, "Standard"), name
    assert pricings["StorageAccounts"]["properties"]["subPlan"] == "DefenderForStorageV2"


# --------------------------------------------------------------------------- config errors and the CLI


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"timeRange": "P2D"}, r"azml:dashboards\.timeRange: .*'PT1H'.*'P30D'"),
        ({"driftMetrics": ["psi", "psi"]}, r"azml:dashboards\.driftMetrics: .*distinct"),
        ({"driftMetrics": ['psi") | union (']}, r"azml:dashboards\.driftMetrics\[0\]: .*pattern"),
        ({"activityLogs": True}, r"azml:dashboards\.activityLogs: unknown key; allowed keys: .*activityLog,"),
    ],
)
def test_bad_dashboards_config_is_one_error_line_and_exit_2(tmp_path: Path, section: dict, expected: str) -> None:
    document = load_stack("dev")
    document["config"]["azml:dashboards"] = section
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(expected, errors[0]), result.stderr
    assert not (tmp_path / "out").exists()


def test_azml_plan_prod_lists_the_workbook_and_passes_policy_and_checkov(tmp_path: Path) -> None:
    result = run_cli("plan", "prod", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(re.search(r"azml:components:Dashboards\s+dashboards$", line) for line in lines)
    assert any(re.search(r"[├└]─ azure-native:applicationinsights:Workbook\s+workbook$", line) for line in lines)
    assert any(re.search(r"azure-native:security:Pricing\s+defender-containers$", line) for line in lines)
    assert "no violations" in result.stdout
    assert re.search(r"checkov [\d.]+ on the ARM export: \d+ passed, 0 failed", result.stdout)
    written = json.loads((tmp_path / "prod" / "plan.json").read_text())
    assert any(r["type"] == WORKBOOK for r in written["resources"])
