"""Platform rules of the retraining trigger, the function app and governance
(policies/azml_platform/integration.py): the untouched dev and prod plans
pass each rule; a copy of a plan that re-adds the defect fails it, naming
the resource, the property and the Microsoft source."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Callable

import pytest

from azml.plan.model import Plan, PlannedResource

from ...platform_harness import PLATFORM_INFO, resource, run_rules

STORAGE = "azure-native:storage:StorageAccount"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
TOPIC = "azure-native:eventgrid:SystemTopic"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
LOCK = "azure-native:authorization:ManagementLockByScope"
WEB_APP = "azure-native:web:WebApp"
SUBNET = "azure-native:network:Subnet"
BUDGET = "azure-native:consumption:Budget"
PRICING = "azure-native:security:Pricing"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
WORKSPACE = "azure-native:machinelearningservices:Workspace"

RULES = (
    "azure-eventgrid-storage-delivery-reachable",
    "azure-appinsights-entra-ingestion-role",
    "azure-lock-spares-release-resources",
    "azure-functions-flex-scale-limits",
    "azure-functions-vnet-egress",
    "azure-budget-start-date-in-time-grain",
    "azure-monitor-endpoint-logs-resource-specific",
    "azure-defender-pricing-extensions-explicit",
)


def _mine(plan: Plan) -> list:
    return [f for f in run_rules(plan) if f.rule in RULES]


def _broken(plan: Plan, change: Callable[[Plan], None]) -> Plan:
    broken = copy.deepcopy(plan)
    change(broken)
    return broken


def _fires_alone(plan: Plan, rule: str, name: str, *words: str) -> str:
    findings = _mine(plan)
    assert {(f.rule, f.name) for f in findings} == {(rule, name)}, findings
    message = findings[0].message
    assert PLATFORM_INFO[rule].source in message
    for word in words:
        assert word in message, (word, message)
    return message


def _one(plan: Plan, type_token: str, name: str) -> PlannedResource:
    return resource(plan, type_token, name)


# --------------------------------------------------------------------------- the untouched stacks


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_untouched_plans_pass_every_rule_of_the_module(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    assert _mine(plan) == []


def test_every_rule_is_declared_with_a_source_and_a_quote() -> None:
    from azml_platform import QUOTES

    for rule in RULES:
        assert PLATFORM_INFO[rule].source.startswith("https://learn.microsoft.com/")
        assert len(QUOTES[rule]) > 40


# --------------------------------------------------------------------------- row 5: Event Grid to firewalled storage


def test_host_storage_lets_event_grid_through_and_alerts_on_failed_delivery(prod_plan: Plan) -> None:
    host = _one(prod_plan, STORAGE, "st-fn")
    assert host.inputs["publicNetworkAccess"] == "Enabled"
    assert host.inputs["networkRuleSet"]["defaultAction"] == "Deny"
    assert host.inputs["networkRuleSet"]["bypass"] == "AzureServices"
    subscription = _one(prod_plan, SUBSCRIPTION, "blob-created")
    assert subscription.inputs["deliveryWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}
    assert subscription.inputs["deadLetterWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}
    topic = _one(prod_plan, TOPIC, "system-topic")
    alerts = {r.name: r for r in prod_plan.of_type(METRIC_ALERT) if r.name.startswith("alert-topic-")}
    assert set(alerts) == {"alert-topic-dead-lettered", "alert-topic-delivery-failed"}
    metrics = set()
    for alert in alerts.values():
        assert topic.urn in alert.property_dependencies["scopes"]
        assert alert.inputs["targetResourceType"] == "Microsoft.EventGrid/systemTopics"
        assert alert.inputs["actions"][0]["actionGroupId"].endswith("/actionGroups/ag-azml-prd")
        (criterion,) = alert.inputs["criteria"]["allOf"]
        assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 0, "Total")
        metrics.add(criterion["metricName"])
    assert metrics == {"DeadLetteredCount", "DeliveryAttemptFailCount"}


def test_prod_storage_policy_assignment_leaves_the_host_account_out(prod_plan: Plan) -> None:
    assignment = _one(prod_plan, "azure-native:authorization:PolicyAssignment", "policy-storage-no-public-network")
    assert assignment.inputs["notScopes"] == [
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-azml-prd-westeurope"
        "/providers/Microsoft.Storage/storageAccounts/stfnazmlprd3d136e"
    ]
    others = [r for r in prod_plan.of_type("azure-native:authorization:PolicyAssignment") if r.name != assignment.name]
    assert others and all("notScopes" not in r.inputs for r in others)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_host_account_with_public_network_access_disabled_is_refused(stack: str, request: pytest.FixtureRequest) -> None:
    plan = _broken(request.getfixturevalue(f"{stack}_plan"), lambda p: _one(p, STORAGE, "st-fn").inputs.update(publicNetworkAccess="Disabled"))
    message = _fires_alone(plan, "azure-eventgrid-storage-delivery-reachable", "blob-created", "publicNetworkAccess is 'Disabled'", "StorageAccount")
    assert "deliveryWithResourceIdentity" in message or "deadLetterWithResourceIdentity" in message


def test_a_firewall_without_trusted_services_is_refused(prod_plan: Plan) -> None:
    plan = _broken(prod_plan, lambda p: _one(p, STORAGE, "st-fn").inputs["networkRuleSet"].update(bypass="None"))
    _fires_alone(plan, "azure-eventgrid-storage-delivery-reachable", "blob-created", "networkRuleSet.bypass is 'None'")


def test_key_based_or_user_assigned_delivery_to_a_firewalled_account_is_refused(prod_plan: Plan) -> None:
    def keys(p: Plan) -> None:
        inputs = _one(p, SUBSCRIPTION, "blob-created").inputs
        inputs["destination"] = inputs.pop("deliveryWithResourceIdentity")["destination"]

    _fires_alone(_broken(prod_plan, keys), "azure-eventgrid-storage-delivery-reachable", "blob-created", "Event Grid's keys")

    def user_assigned(p: Plan) -> None:
        _one(p, SUBSCRIPTION, "blob-created").inputs["deadLetterWithResourceIdentity"]["identity"] = {"type": "UserAssigned"}

    _fires_alone(_broken(prod_plan, user_assigned), "azure-eventgrid-storage-delivery-reachable", "blob-created", "identity.type is 'UserAssigned'")


# --------------------------------------------------------------------------- row 8: App Insights with Entra ID


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_function_identity_may_publish_telemetry(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    grant = _one(plan, ROLE_ASSIGNMENT, "ra-func-monitoring-metrics-publisher")
    assert grant.inputs["roleDefinitionId"].endswith("/roleDefinitions/3913510d-42f4-4e42-8a64-420c390055eb")
    assert grant.inputs["scope"].endswith("/providers/Microsoft.Insights/components/" + f"appi-azml-{'prd' if stack == 'prod' else 'dev'}")
    assert _one(plan, WEB_APP, "func").urn in grant.property_dependencies["principalId"]


def test_entra_ingestion_without_the_role_is_refused(prod_plan: Plan) -> None:
    plan = _broken(prod_plan, lambda p: p.resources.remove(_one(p, ROLE_ASSIGNMENT, "ra-func-monitoring-metrics-publisher")))
    _fires_alone(plan, "azure-appinsights-entra-ingestion-role", "func", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "Monitoring Metrics Publisher")


# --------------------------------------------------------------------------- row 9: locks


def test_prod_locks_the_data_and_secrets_and_protects_the_workspace(prod_plan: Plan) -> None:
    scopes = sorted(r.inputs["scope"].rsplit("/providers/", 1)[1] for r in prod_plan.of_type(LOCK))
    assert scopes == ["Microsoft.KeyVault/vaults/kv-azml-prd-3d136e", "Microsoft.Storage/storageAccounts/stazmlprd3d136e"]
    assert _one(prod_plan, WORKSPACE, "mlw").options.get("protect") is True
    assert all(not r.options.get("protect") for r in prod_plan.resources if r.name != "mlw")


def test_dev_has_no_lock_and_no_protection(dev_plan: Plan) -> None:
    assert dev_plan.of_type(LOCK) == []
    assert not _one(dev_plan, WORKSPACE, "mlw").options.get("protect")


def test_a_lock_on_the_workspace_is_refused(prod_plan: Plan) -> None:
    def lock_workspace(p: Plan) -> None:
        lock = copy.deepcopy(_one(p, LOCK, "lock-key-vault"))
        workspace = _one(p, WORKSPACE, "mlw")
        lock.name = "lock-workspace"
        lock.urn = lock.urn.replace("::lock-key-vault", "::lock-workspace")
        lock.inputs["scope"] = lock.inputs["scope"].split("/providers/")[0] + "/providers/Microsoft.MachineLearningServices/workspaces/mlw-azml-prd"
        lock.property_dependencies = {"scope": [workspace.urn]}
        p.resources.append(lock)

    findings = [f for f in _mine(_broken(prod_plan, lock_workspace))]
    assert {f.rule for f in findings} == {"azure-lock-spares-release-resources"}
    assert {f.name for f in findings} == {"lock-workspace"}
    text = "\n".join(f.message for f in findings)
    assert "OnlineEndpoint" in text and "ScopeLocked" in text and "lock-resources" in text
    assert "persona" in text or "OnlineDeployment" in text


def test_a_lock_on_the_resource_group_is_refused(prod_plan: Plan) -> None:
    def lock_group(p: Plan) -> None:
        lock = _one(p, LOCK, "lock-storage")
        lock.inputs["scope"] = lock.inputs["scope"].split("/providers/")[0]

    message = _fires_alone(_broken(prod_plan, lock_group), "azure-lock-spares-release-resources", "lock-storage", "CanNotDelete")
    assert "rg-azml-prd-westeurope'" in message


def test_a_persona_assignment_under_a_lock_is_refused(prod_plan: Plan) -> None:
    def persona_on_storage(p: Plan) -> None:
        persona = next(r for r in p.of_type(ROLE_ASSIGNMENT) if r.name.startswith("ra-reader-"))
        persona.inputs["scope"] = _one(p, LOCK, "lock-storage").inputs["scope"]

    message = _fires_alone(_broken(prod_plan, persona_on_storage), "azure-lock-spares-release-resources", "lock-storage", "persona")
    assert "ra-reader-" in message


# --------------------------------------------------------------------------- row 11: Flex Consumption limits


@pytest.mark.parametrize("count", [0, 1001])
def test_instance_counts_outside_the_documented_range_are_refused(prod_plan: Plan, count: int) -> None:
    plan = _broken(prod_plan, lambda p: _one(p, WEB_APP, "func").inputs["functionAppConfig"]["scaleAndConcurrency"].update(maximumInstanceCount=count))
    _fires_alone(plan, "azure-functions-flex-scale-limits", "func", f"maximumInstanceCount is {count}", "1..1000")


def test_the_floor_is_configurable_for_the_older_documented_limit(dev_plan: Plan) -> None:
    # dev declares 2 instances: valid today (floor 1), not under the earlier floor of 40.
    findings = [f for f in run_rules(dev_plan, {"azure-functions-flex-scale-limits": {"minimumMaximumInstanceCount": 40}})]
    assert {(f.rule, f.name) for f in findings if f.rule in RULES} == {("azure-functions-flex-scale-limits", "func")}


def test_an_instance_size_flex_consumption_lacks_is_refused(prod_plan: Plan) -> None:
    plan = _broken(prod_plan, lambda p: _one(p, WEB_APP, "func").inputs["functionAppConfig"]["scaleAndConcurrency"].update(instanceMemoryMB=1024))
    _fires_alone(plan, "azure-functions-flex-scale-limits", "func", "instanceMemoryMB is 1024")


# --------------------------------------------------------------------------- row 12: function egress


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_integration_subnet_has_a_nat_gateway(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    subnet = _one(plan, SUBNET, "snet-integration")
    nat = _one(plan, "azure-native:network:NatGateway", "nat")
    assert subnet.inputs["defaultOutboundAccess"] is False
    assert nat.urn in subnet.property_dependencies["natGateway"]
    address = _one(plan, "azure-native:network:PublicIPAddress", "pip-nat")
    assert address.inputs["sku"]["name"] == "Standard" and address.inputs["publicIPAllocationMethod"] == "Static"
    others = [s for s in plan.of_type(SUBNET) if s.name != "snet-integration"]
    assert others and all("natGateway" not in s.inputs for s in others)


def test_a_function_subnet_without_an_outbound_path_is_refused(prod_plan: Plan) -> None:
    def no_nat(p: Plan) -> None:
        subnet = _one(p, SUBNET, "snet-integration")
        del subnet.inputs["natGateway"]
        subnet.property_dependencies.pop("natGateway", None)

    _fires_alone(_broken(prod_plan, no_nat), "azure-functions-vnet-egress", "func", "defaultOutboundAccess is false", "management.azure.com")


# --------------------------------------------------------------------------- row 15: budget start date


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_budget_starts_this_month_and_ignores_later_changes(stack: str, request: pytest.FixtureRequest) -> None:
    budget = _one(request.getfixturevalue(f"{stack}_plan"), BUDGET, "budget")
    today = dt.datetime.now(dt.timezone.utc).date()
    assert budget.inputs["timePeriod"]["startDate"] == f"{today.replace(day=1).isoformat()}T00:00:00Z"
    assert budget.options["ignoreChanges"] == ["timePeriod.startDate"]


@pytest.mark.parametrize(
    ("start", "words"),
    [
        ("2020-01-01T00:00:00Z", "before the current Monthly period"),
        ("2099-01-01T00:00:00Z", "more than twelve months ahead"),
        ("2026-12-15T00:00:00Z", "must be the first of a month"),
    ],
)
def test_a_budget_start_outside_the_time_grain_is_refused(prod_plan: Plan, start: str, words: str) -> None:
    plan = _broken(prod_plan, lambda p: _one(p, BUDGET, "budget").inputs["timePeriod"].update(startDate=start))
    _fires_alone(plan, "azure-budget-start-date-in-time-grain", "budget", "timePeriod.startDate", words)


def test_budget_start_defaults_to_the_first_of_the_current_month() -> None:
    from azml.config.platform.governance import BudgetConfig
    from components.governance import budget_start

    assert budget_start(BudgetConfig(amount=1), dt.date(2027, 3, 17)) == dt.date(2027, 3, 1)
    assert budget_start(BudgetConfig(amount=1, startDate="2027-05-01"), dt.date(2027, 3, 17)) == dt.date(2027, 5, 1)
    with pytest.raises(ValueError, match="first day of a month"):
        BudgetConfig(amount=1, startDate="2027-05-02")


# --------------------------------------------------------------------------- row 16: endpoint logs, Defender


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_endpoint_logs_land_in_the_tables_the_alerts_and_workbook_read(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    settings = [r for r in plan.of_type(DIAGNOSTIC_SETTING) if "/onlineEndpoints/" in str(r.inputs.get("resourceUri"))]
    assert settings and all(r.inputs["logAnalyticsDestinationType"] == "Dedicated" for r in settings)
    others = [r for r in plan.of_type(DIAGNOSTIC_SETTING) if r not in settings]
    assert all("logAnalyticsDestinationType" not in r.inputs for r in others)


def test_endpoint_logs_in_azure_diagnostics_are_refused(prod_plan: Plan) -> None:
    def shared_table(p: Plan) -> None:
        setting = next(r for r in p.of_type(DIAGNOSTIC_SETTING) if "/onlineEndpoints/" in str(r.inputs.get("resourceUri")))
        del setting.inputs["logAnalyticsDestinationType"]

    plan = _broken(prod_plan, shared_table)
    setting = next(r for r in plan.of_type(DIAGNOSTIC_SETTING) if "/onlineEndpoints/" in str(r.inputs.get("resourceUri")))
    _fires_alone(plan, "azure-monitor-endpoint-logs-resource-specific", setting.name, "logAnalyticsDestinationType", "AmlOnlineEndpoint")


def test_defender_names_every_containers_extension(prod_plan: Plan) -> None:
    pricing = _one(prod_plan, PRICING, "defender-containers")
    assert pricing.inputs["extensions"] == [
        {"name": "ContainerRegistriesVulnerabilityAssessments", "isEnabled": "True"},
        {"name": "AgentlessDiscoveryForKubernetes", "isEnabled": "True"},
        {"name": "ContainerSensor", "isEnabled": "True"},
    ]


def test_a_defender_pricing_that_omits_extensions_is_refused(prod_plan: Plan) -> None:
    plan = _broken(prod_plan, lambda p: _one(p, PRICING, "defender-containers").inputs.update(
        extensions=[{"name": "ContainerRegistriesVulnerabilityAssessments", "isEnabled": "True"}]
    ))  # fmt: skip
    _fires_alone(plan, "azure-defender-pricing-extensions-explicit", "defender-containers", "AgentlessDiscoveryForKubernetes, ContainerSensor")


def test_defender_extensions_config_names_them_all() -> None:
    from azml.config.platform.governance import GovernanceConfig

    config = GovernanceConfig.model_validate({"defenderForContainers": True, "defenderExtensions": {"ContainerSensor": False}})
    assert config.defender_plans.containers is not None
    assert config.defender_plans.containers.extensions == {
        "ContainerRegistriesVulnerabilityAssessments": True,
        "AgentlessDiscoveryForKubernetes": True,
        "ContainerSensor": False,
    }
    with pytest.raises(ValueError, match="defenderExtensions"):
        GovernanceConfig.model_validate({"defenderExtensions": {"NoSuchExtension": True}})
