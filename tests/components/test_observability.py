"""Operations: model monitors on online deployments, SLO alerts on endpoints
and deployments, one action group per stack, webhook URLs kept secret."""

from __future__ import annotations

import contextvars
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.config import set_all_config

from azml.config import ConfigError, load_from_pulumi, read_stack_file
from azml.config.platform import observability as obs
from azml.config.stackfile import SECRET_PLACEHOLDER
from azml.plan.engine import run_plan
from azml.plan.model import Plan, PlannedResource

from ..conftest import ROOT, load_stack, run_cli, write_stack

SCHEDULE = "azure-native:machinelearningservices:Schedule"
DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
QUERY_RULE = "azure-native:monitor:ScheduledQueryRule"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
CIPHERTEXT = "v1:c2VjcmV0LXdlYmhvb2stY2lwaGVydGV4dA=="


def plan_document(tmp_path: Path, document: dict[str, Any], name: str = "variant") -> Plan:
    return run_plan(read_stack_file(str(write_stack(tmp_path, name, document)), ROOT))


def prod_with(**sections: Any) -> dict[str, Any]:
    document = load_stack("prod")
    for key, value in sections.items():
        document["config"][f"azml:{key}"] = value
    return document


def only(plan: Plan, token: str) -> PlannedResource:
    (resource,) = plan.of_type(token)
    return resource


def alerts_by_metric(plan: Plan) -> dict[str, list[PlannedResource]]:
    found: dict[str, list[PlannedResource]] = {}
    for alert in plan.of_type(METRIC_ALERT):
        (criterion,) = alert.inputs["criteria"]["allOf"]
        found.setdefault(criterion["metricName"], []).append(alert)
    return found


# -- model monitors -------------------------------------------------------------


def test_prod_monitors_each_collecting_deployment_weekly_against_training_data(prod_plan: Plan) -> None:
    configured = load_stack("prod")["config"]["azml:modelMonitoring"]
    deployment = only(prod_plan, DEPLOYMENT)
    schedule = only(prod_plan, SCHEDULE)
    props = schedule.inputs["properties"]
    assert schedule.inputs["name"] == "monitor-azml-prd-credit-risk-endpoint-blue"
    assert schedule.inputs["workspaceName"] == "mlw-azml-prd"
    assert props["isEnabled"] is True
    assert props["trigger"] == {
        "triggerType": "Recurrence",
        "frequency": "Week",
        "interval": 1,
        "schedule": {"hours": [3], "minutes": [15], "weekDays": ["Monday"]},
        "timeZone": "UTC",
    }
    definition = props["action"]["monitorDefinition"]
    assert props["action"]["actionType"] == "CreateMonitor"
    assert definition["computeConfiguration"] == {
        "computeType": "ServerlessSpark",
        "instanceType": "standard_e4s_v3",
        "runtimeVersion": "3.4",
        # Key-less storage: the monitors run as the stack's user-assigned compute identity.
        "computeIdentity": {
            "computeIdentityType": "ManagedIdentity",
            "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": [
                    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-azml-prd-westeurope"
                    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-azml-prd-compute"
                ],
            },
        },
    }
    # The monitor targets the deployment resource itself (an output of it).
    assert definition["monitoringTarget"]["deploymentId"].endswith("/onlineEndpoints/azml-prd-credit-risk-endpoint/deployments/blue")
    assert deployment.urn in schedule.dependencies
    assert definition["monitoringTarget"]["modelId"].endswith("/models/credit-risk/versions/3")
    assert definition["alertNotificationSettings"]["emailNotificationSettings"]["emails"] == ["ml-platform-oncall@example.com"]

    signals = definition["signals"]
    assert set(signals) == {"dataDrift", "predictionDrift", "dataQuality", "featureAttributionDrift"}
    features = ["income", "debt_ratio", "credit_score"]
    assert signals["dataDrift"]["features"] == {"filterType": "FeatureSubset", "features": features}
    assert signals["dataQuality"]["features"]["features"] == features

    drift = {(t["dataType"], t["metric"]): t["threshold"]["value"] for t in signals["dataDrift"]["metricThresholds"]}
    wanted = configured["dataDrift"]["thresholds"]
    assert drift[("Numerical", "PopulationStabilityIndex")] == wanted["PopulationStabilityIndex"] == 0.2
    assert drift[("Categorical", "PopulationStabilityIndex")] == 0.2
    assert drift[("Numerical", "NormalizedWassersteinDistance")] == wanted["NormalizedWassersteinDistance"]
    assert drift[("Categorical", "PearsonsChiSquaredTest")] == wanted["PearsonsChiSquaredTest"]
    # Each metric only for the feature types Azure defines it for.
    assert ("Categorical", "NormalizedWassersteinDistance") not in drift
    assert ("Numerical", "PearsonsChiSquaredTest") not in drift
    quality = {(t["dataType"], t["metric"]): t["threshold"]["value"] for t in signals["dataQuality"]["metricThresholds"]}
    assert quality[("Numerical", "NullValueRate")] == configured["dataQuality"]["thresholds"]["NullValueRate"]
    assert quality[("Categorical", "OutOfBoundsRate")] == configured["dataQuality"]["thresholds"]["OutOfBoundsRate"]
    attribution = signals["featureAttributionDrift"]
    assert attribution["metricThreshold"] == {"metric": "NormalizedDiscountedCumulativeGain", "threshold": {"value": 0.9}}
    assert attribution["featureImportanceSettings"] == {"mode": "Enabled", "targetColumn": "defaulted"}


def test_production_data_is_what_the_data_collector_registers(prod_plan: Plan) -> None:
    signals = only(prod_plan, SCHEDULE).inputs["properties"]["action"]["monitorDefinition"]["signals"]
    production = signals["dataDrift"]["productionData"]
    workspace_id = prod_plan.outputs["workspaceId"]
    assert production == {
        "inputDataType": "Rolling",
        "jobInputType": "uri_folder",
        "uri": f"azureml:{workspace_id}/data/azml-prd-credit-risk-endpoint-blue-model_inputs/versions/1",
        "dataContext": "model_inputs",
        "windowSize": "P7D",
        "windowOffset": "P0D",
    }
    assert signals["predictionDrift"]["productionData"]["uri"].endswith("-blue-model_outputs/versions/1")
    # Reference: the training data asset from config (drift, quality, attribution) ...
    reference = signals["dataDrift"]["referenceData"]
    assert reference == {
        "inputDataType": "Fixed",
        "jobInputType": "mltable",
        "uri": f"azureml:{workspace_id}/data/credit-risk-training/versions/3",
        "dataContext": "training",
    }
    assert signals["featureAttributionDrift"]["referenceData"] == reference
    assert [p["dataContext"] for p in signals["featureAttributionDrift"]["productionData"]] == ["model_inputs", "model_outputs"]
    # ... and the preceding week of outputs for prediction drift.
    assert signals["predictionDrift"]["referenceData"]["windowOffset"] == "P7D"


def test_dev_monitors_daily_against_the_previous_day(dev_plan: Plan) -> None:
    props = only(dev_plan, SCHEDULE).inputs["properties"]
    assert props["trigger"]["frequency"] == "Day"
    assert props["trigger"]["schedule"] == {"hours": [6], "minutes": [0]}
    signals = props["action"]["monitorDefinition"]["signals"]
    assert set(signals) == {"dataDrift", "dataQuality"}  # prediction drift off, no training data
    reference = signals["dataDrift"]["referenceData"]
    assert (reference["inputDataType"], reference["windowSize"], reference["windowOffset"]) == ("Rolling", "P1D", "P1D")
    assert reference["uri"].endswith("-blue-model_inputs/versions/1")


def test_only_deployments_that_collect_data_are_monitored(tmp_path: Path) -> None:
    document = load_stack("prod")
    (endpoint,) = document["config"]["azml:onlineEndpoints"]
    green = copy.deepcopy(endpoint["deployments"][0])
    green.update(name="green", dataCollection=False)
    endpoint["deployments"].append(green)
    endpoint["traffic"] = {"blue": 100, "green": 0}
    plan = plan_document(tmp_path, document)
    assert [s.inputs["name"] for s in plan.of_type(SCHEDULE)] == ["monitor-azml-prd-credit-risk-endpoint-blue"]


def test_disabled_sections_create_nothing(tmp_path: Path) -> None:
    document = prod_with(modelMonitoring={"enabled": False}, alerts={"enabled": False})
    plan = plan_document(tmp_path, document)
    for token in (SCHEDULE, METRIC_ALERT, QUERY_RULE, ACTION_GROUP):
        assert plan.of_type(token) == [], token
    assert plan.outputs.get("actionGroupId") is None


# -- alerts ------------------------------------------------------------------------


def test_endpoint_metric_alerts_watch_latency_and_server_errors(prod_plan: Plan) -> None:
    endpoint = only(prod_plan, ENDPOINT)
    group = only(prod_plan, ACTION_GROUP)
    endpoint_id = f"{prod_plan.outputs['workspaceId']}/onlineEndpoints/{endpoint.inputs['endpointName']}"
    by_metric = alerts_by_metric(prod_plan)

    (latency,) = by_metric["RequestLatency_P95"]
    assert latency.inputs["scopes"] == [endpoint_id]
    assert endpoint.urn in latency.property_dependencies["scopes"]
    (criterion,) = latency.inputs["criteria"]["allOf"]
    assert latency.inputs["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 350, "Average")
    assert criterion["metricNamespace"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    assert (latency.inputs["severity"], latency.inputs["evaluationFrequency"], latency.inputs["windowSize"]) == (2, "PT1M", "PT5M")
    assert latency.inputs["location"] == "global"

    (errors,) = by_metric["RequestsPerMinute"]
    assert errors.inputs["scopes"] == [endpoint_id]
    (criterion,) = errors.inputs["criteria"]["allOf"]
    assert criterion["dimensions"] == [{"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}]

    for alert in prod_plan.of_type(METRIC_ALERT):
        assert alert.inputs["actions"] == [{"actionGroupId": prod_plan.outputs["actionGroupId"]}]
        assert group.urn in alert.dependencies


def test_deployment_utilisation_alerts(prod_plan: Plan) -> None:
    deployment = only(prod_plan, DEPLOYMENT)
    by_metric = alerts_by_metric(prod_plan)
    expected = {"CpuUtilizationPercentage": 80, "CpuMemoryUtilizationPercentage": 85, "DiskUtilization": 90}
    for metric, threshold in expected.items():
        (alert,) = by_metric[metric]
        assert alert.inputs["scopes"][0].endswith("/onlineEndpoints/azml-prd-credit-risk-endpoint/deployments/blue")
        assert deployment.urn in alert.property_dependencies["scopes"]
        assert alert.inputs["targetResourceType"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
        assert alert.inputs["criteria"]["allOf"][0]["threshold"] == threshold


def test_log_alerts_query_the_traffic_log_on_log_analytics(prod_plan: Plan) -> None:
    log_analytics = only(prod_plan, LOG_ANALYTICS)
    rules = {r.name: r for r in prod_plan.of_type(QUERY_RULE)}
    assert set(rules) == {"traffic-latency-p95", "traffic-error-rate", "availability-burn-rate"}
    for rule in rules.values():
        assert rule.inputs["kind"] == "LogAlert"
        assert len(rule.inputs["scopes"]) == 1
        assert rule.inputs["scopes"][0].endswith(f"/workspaces/{log_analytics.inputs['workspaceName']}")
        assert log_analytics.urn in rule.property_dependencies["scopes"]
        assert rule.inputs["skipQueryValidation"] is True
        assert rule.inputs["actions"]["actionGroups"] == [prod_plan.outputs["actionGroupId"]]
        (condition,) = rule.inputs["criteria"]["allOf"]
        assert "AmlOnlineEndpointTrafficLog\n| where EndpointName in (" in condition["query"]
        assert '"azml-prd-credit-risk-endpoint"' in condition["query"]

    (error_rate,) = rules["traffic-error-rate"].inputs["criteria"]["allOf"]
    assert (error_rate["metricMeasureColumn"], error_rate["threshold"]) == ("ErrorRatePercent", 2)
    assert "toint(ResponseCode) >= 500" in error_rate["query"]
    assert {d["name"] for d in error_rate["dimensions"]} == {"EndpointName", "DeploymentName"}
    assert (rules["traffic-error-rate"].inputs["windowSize"], rules["traffic-error-rate"].inputs["severity"]) == ("PT5M", 1)
    (latency,) = rules["traffic-latency-p95"].inputs["criteria"]["allOf"]
    assert "percentile(TotalDurationMs, 95)" in latency["query"] and latency["threshold"] == 350
    (burn,) = rules["availability-burn-rate"].inputs["criteria"]["allOf"]
    assert burn["metricMeasureColumn"] == "BurnRate" and burn["threshold"] == 14.4
    assert "let budget = 0.005;" in burn["query"] and "now() - 5m" in burn["query"]
    assert rules["availability-burn-rate"].inputs["windowSize"] == "PT1H"


def test_endpoint_traffic_logs_reach_log_analytics(any_plan: Plan) -> None:
    endpoint = only(any_plan, ENDPOINT)
    settings = [
        s for s in any_plan.of_type("azure-native:monitor:DiagnosticSetting") if endpoint.urn in s.property_dependencies["resourceUri"]
    ]
    (setting,) = settings
    assert setting.inputs["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]


def test_dev_alerts_are_fewer_and_quieter(dev_plan: Plan, prod_plan: Plan) -> None:
    assert len(dev_plan.of_type(METRIC_ALERT)) < len(prod_plan.of_type(METRIC_ALERT))
    assert [r.name for r in dev_plan.of_type(QUERY_RULE)] == ["traffic-error-rate"]
    # SLO alerts only: the retraining trigger's delivery alerts (alert-topic-*) page in both stacks.
    slo = [a for a in dev_plan.of_type(METRIC_ALERT) if not a.name.startswith("alert-topic-")]
    assert min(a.inputs["severity"] for a in slo) == 3
    assert "DiskUtilization" not in alerts_by_metric(dev_plan)


def test_one_action_group_per_stack(any_plan: Plan) -> None:
    group = only(any_plan, ACTION_GROUP)
    assert len(group.inputs["groupShortName"]) <= 12
    assert group.inputs["location"] == "Global"
    assert group.inputs["emailReceivers"][0]["emailAddress"].endswith("@example.com")
    assert any_plan.outputs["actionGroupId"].endswith(f"/actionGroups/{group.inputs['actionGroupName']}")


def test_webhook_urls_are_secrets_in_the_plan(tmp_path: Path) -> None:
    document = prod_with(alertWebhooks={"oncall": {"secure": CIPHERTEXT}, "teams": {"secure": CIPHERTEXT + "x"}})
    path = write_stack(tmp_path, "hooks", document)
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "hooks" / "plan.json").read_text()
    assert CIPHERTEXT not in text
    plan = json.loads(text)
    (group,) = [r for r in plan["resources"] if r["type"] == ACTION_GROUP]
    receivers = group["inputs"]["webhookReceivers"]
    assert [(r["name"], r["serviceUri"]) for r in receivers] == [
        ("oncall", SECRET_PLACEHOLDER),
        ("teams", SECRET_PLACEHOLDER),
    ]


def test_the_stack_file_reader_masks_secure_leaves(tmp_path: Path) -> None:
    document = prod_with(alertWebhooks={"oncall": {"secure": CIPHERTEXT}})
    stack_file = read_stack_file(str(write_stack(tmp_path, "hooks", document)), ROOT)
    assert stack_file.config["azml:alertWebhooks"] == {"oncall": SECRET_PLACEHOLDER}
    assert "azml:alertWebhooks" in stack_file.secret_keys
    assert obs.SECRET_PLACEHOLDER == SECRET_PLACEHOLDER


def _load_in_fresh_runtime(values: dict[str, str], secret_keys: list[str]):
    def load():
        set_all_config(values, secret_keys)
        return load_from_pulumi()

    return contextvars.Context().run(load)


def test_program_refuses_webhooks_that_are_not_pulumi_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    monkeypatch.setattr(pulumi, "get_root_directory", lambda: str(ROOT))  # conda files resolve
    raw = {k: v for k, v in load_stack("prod")["config"].items() if k.startswith("azml:")}
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    values["azml:alertWebhooks"] = json.dumps({"oncall": "https://hooks.example.com/T0/B0/xyz"})
    # As `pulumi up` passes it: decrypted, and the key listed as secret.
    config = _load_in_fresh_runtime(values, ["azml:alertWebhooks"])
    assert list(config.alert_webhooks) == ["oncall"]
    with pytest.raises(ConfigError) as refused:
        _load_in_fresh_runtime(values, [])
    (problem,) = refused.value.problems
    assert problem.startswith("azml:alertWebhooks: webhook URLs are secrets")
    assert "hooks.example.com" not in problem


# -- invalid config ------------------------------------------------------------------


def _set(document: dict[str, Any], key: str, path: tuple, value: Any) -> dict[str, Any]:
    node = document["config"][key]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("key", "path", "value", "expected"),
    [
        (
            "azml:modelMonitoring", ("dataDrift", "thresholds", "KullbackLeibler"), 0.1,
            "azml:modelMonitoring.dataDrift.thresholds.KullbackLeibler: unknown key; allowed keys: JensenShannonDistance,",
        ),
        (
            "azml:modelMonitoring", ("dataDrift", "thresholds", "PopulationStabilityIndex"), -0.1,
            "azml:modelMonitoring.dataDrift.thresholds.PopulationStabilityIndex: Input should be greater than 0",
        ),
        (
            "azml:modelMonitoring", ("dataDrift", "thresholds", "JensenShannonDistance"), 1.5,
            "azml:modelMonitoring.dataDrift.thresholds.JensenShannonDistance: Input should be less than or equal to 1",
        ),
        (
            "azml:modelMonitoring", ("predictionDrift", "thresholds", "PearsonsChiSquaredTest"), 2,
            "azml:modelMonitoring.predictionDrift.thresholds.PearsonsChiSquaredTest: Input should be less than or equal to 1",
        ),
        (
            "azml:modelMonitoring", ("dataQuality", "thresholds", "NullValueRate"), 1.2,
            "azml:modelMonitoring.dataQuality.thresholds.NullValueRate: Input should be less than or equal to 1",
        ),
        (
            "azml:modelMonitoring", ("dataQuality", "thresholds"), {},
            "azml:modelMonitoring.dataQuality.thresholds: give at least one metric",
        ),
        ("azml:modelMonitoring", ("features",), [], "azml:modelMonitoring: features: list the input features"),
        (
            "azml:modelMonitoring", ("features",), ["income", "income"],
            "azml:modelMonitoring.features: feature(s) listed twice: income",
        ),
        (
            "azml:modelMonitoring", ("compute", "instanceType"), "Standard_DS3_v2",
            "azml:modelMonitoring.compute.instanceType: must be one of standard_e4s_v3",
        ),
        (
            "azml:modelMonitoring", ("compute", "runtimeVersion"), "3.1",
            "azml:modelMonitoring.compute.runtimeVersion: Input should be '3.3' or '3.4'",
        ),
        (
            "azml:modelMonitoring", ("endpoints",), ["fraud-endpoint"],
            "azml:modelMonitoring.endpoints[0]: 'fraud-endpoint' is not a declared online endpoint",
        ),
        (
            "azml:modelMonitoring", ("trainingData", "targetColumn"), None,
            "azml:modelMonitoring.trainingData.targetColumn: feature attribution drift needs the label column",
        ),
        ("azml:alerts", ("errorRate", "severity"), 5, "azml:alerts.errorRate.severity: Input should be less than or equal to 4"),
        (
            "azml:alerts", ("latencyP95", "frequency"), "PT2M",
            "azml:alerts.latencyP95.frequency: Input should be 'PT1M', 'PT5M', 'PT15M', 'PT30M' or 'PT1H'",
        ),
        (
            "azml:alerts", ("cpu", "window"), "PT1M",
            "azml:alerts.cpu: window (PT1M) must be at least the evaluation frequency (PT5M)",
        ),
        (
            "azml:alerts", ("availability", "objectivePercent"), 100,
            "azml:alerts.availability.objectivePercent: Input should be less than 100",
        ),
        (
            "azml:alerts", ("actionGroupShortName",), "azml-prod-operations",
            "azml:alerts.actionGroupShortName: String should match pattern",
        ),
        ("azml:alerts", ("emails",), ["oncall"], "azml:alerts.emails[0]: must be an email address"),
    ],
)
def test_invalid_operations_config_exits_2_naming_the_key(
    tmp_path: Path, key: str, path: tuple, value: Any, expected: str
) -> None:
    document = _set(load_stack("prod"), key, path, value)
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"error: {expected}") for line in lines), lines
    assert not (tmp_path / "out").exists()


def test_plaintext_webhook_in_the_stack_file_is_refused(tmp_path: Path) -> None:
    url = "https://hooks.example.com/services/T000/B000/plaintext"
    document = prod_with(alertWebhooks={"oncall": url, "pager": {"secure": CIPHERTEXT}})
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: azml:alertWebhooks.oncall: webhook URLs are secrets and must not be stored in plain text; remove it "
        "and run pulumi config set --secret --path 'azml:alertWebhooks.oncall' <url>"
    ]
    assert url not in result.stderr


# -- a threshold change touches exactly its own alert ------------------------------------------


def _changed(tmp_path: Path, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old = plan_document(tmp_path, before, "before")
    new = plan_document(tmp_path, after, "after")
    old_inputs = {r.urn.replace("before", "x"): r.inputs for r in old.resources}
    new_inputs = {r.urn.replace("after", "x"): r.inputs for r in new.resources}
    assert old_inputs.keys() == new_inputs.keys()
    return [urn.rsplit("::", 1)[1] for urn in old_inputs if old_inputs[urn] != new_inputs[urn]]


@pytest.mark.parametrize(
    ("key", "path", "value", "owner"),
    [
        ("azml:alerts", ("errorRate", "thresholdPercent"), 3, "traffic-error-rate"),
        ("azml:alerts", ("latencyP95", "thresholdMs"), 400, "credit-risk-endpoint-latency-p95"),
        ("azml:alerts", ("cpu", "thresholdPercent"), 75, "credit-risk-endpoint-blue-cpu"),
        ("azml:alerts", ("availability", "burnRate"), 6, "availability-burn-rate"),
        ("azml:modelMonitoring", ("dataDrift", "thresholds", "PopulationStabilityIndex"), 0.25, "credit-risk-endpoint-blue-monitor"),
    ],
)
def test_changing_a_threshold_changes_only_the_alert_that_owns_it(
    tmp_path: Path, key: str, path: tuple, value: Any, owner: str
) -> None:
    before = load_stack("prod")
    after = _set(load_stack("prod"), key, path, value)
    assert _changed(tmp_path, before, after) == [owner]


@pytest.mark.parametrize(("resource", "default"), [("cpu", 80), ("memory", 85), ("disk", 90)])
def test_a_utilisation_section_without_a_threshold_keeps_its_own_default(resource: str, default: float) -> None:
    """``memory: {severity: 3}`` alerts above 85 %, as an absent memory section does, not at the CPU's 80."""
    absent = obs.AlertsConfig.model_validate({})
    partial = obs.AlertsConfig.model_validate({resource: {"severity": 3}})
    assert getattr(absent, resource).threshold_percent == default
    assert getattr(partial, resource).threshold_percent == default and getattr(partial, resource).severity == 3


# -- the config speaks Azure's metric names -----------------------------------------------------


def test_metric_names_are_the_sdk_enum_values() -> None:
    from pulumi_azure_native.machinelearningservices import _enums as enums

    def values(enum: type) -> set[str]:
        return {member.value for member in enum}

    assert set(obs.NUMERICAL_DRIFT_METRICS) == values(enums.NumericalDataDriftMetric) == values(enums.NumericalPredictionDriftMetric)
    assert set(obs.CATEGORICAL_DRIFT_METRICS) == values(enums.CategoricalDataDriftMetric) == values(enums.CategoricalPredictionDriftMetric)
    assert set(obs.DATA_QUALITY_METRICS) == values(enums.NumericalDataQualityMetric) == values(enums.CategoricalDataQualityMetric)
    assert set(obs.FEATURE_ATTRIBUTION_METRICS) == values(enums.FeatureAttributionMetric)
    drift_keys = {f.alias for f in obs.DriftThresholds.model_fields.values()}
    assert drift_keys == set(obs.NUMERICAL_DRIFT_METRICS) | set(obs.CATEGORICAL_DRIFT_METRICS)
    assert {f.alias for f in obs.DataQualityThresholds.model_fields.values()} == set(obs.DATA_QUALITY_METRICS)
    assert obs.MetricFrequency.__args__ == obs.METRIC_FREQUENCIES
    assert obs.LogWindow.__args__ == obs.LOG_WINDOWS


def test_a_webhook_map_encrypted_as_a_whole_is_refused_with_a_hint(tmp_path: Path) -> None:
    result = run_cli("plan", str(write_stack(tmp_path, "bad", prod_with(alertWebhooks={"secure": CIPHERTEXT}))))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: azml:alertWebhooks: encrypt each URL on its own so receiver names stay visible: "
        "pulumi config set --secret --path 'azml:alertWebhooks.<name>' <url>"
    )
