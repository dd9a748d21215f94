"""Defender for Cloud plans: what prod deploys (Containers, StorageAccounts
with its scans, KeyVaults, Arm), the typed config that chooses them, and the
checks that refuse their removal or weakening: the checklist policies
``azml-governance-defender-plans`` and ``azml-governance-defender-storage-scans``
and the platform rule ``azure-defender-pricing-extensions-explicit``, each
fired on a copy of the recorded prod plan."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from pydantic import ValidationError

from azml.config.platform.defender import DefenderPlans
from azml.config.platform.governance import GovernanceConfig
from azml.plan.model import Plan
from tests.platform_harness import run_rules
from tests.policies.checklist.test_pack_rbac_governance import new_findings, only
from tests.policies.checklist.test_policy_pack import evaluate, one, put

PRICING = "azure-native:security:Pricing"
STORAGE_SETTING = "azure-native:security:DefenderForStorage"
GOVERNANCE = "azml:components:Governance"
SUBSCRIPTION = "/subscriptions/00000000-0000-4000-8000-000000000001"
STORAGE_ID = f"{SUBSCRIPTION}/resourceGroups/rg-azml-prd-westeurope/providers/Microsoft.Storage/storageAccounts/stazmlprd3d136e"

PLANS = "azml-governance-defender-plans"
SCANS = "azml-governance-defender-storage-scans"
EXPLICIT = "azure-defender-pricing-extensions-explicit"
STORAGE_PLAN = "defender-storage-accounts"
LABEL = "Pricing 'defender-storage-accounts' (plan StorageAccounts)"


def _storage_extension(plan: Plan, name: str) -> dict[str, Any]:
    (extension,) = [e for e in one(plan, PRICING, STORAGE_PLAN).inputs["extensions"] if e["name"] == name]
    return extension


def _drop_storage_extension(name: str) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        pricing = one(plan, PRICING, STORAGE_PLAN)
        pricing.inputs["extensions"] = [e for e in pricing.inputs["extensions"] if e["name"] != name]

    return mutate


def _add_account_setting(**properties: Any) -> Callable[[Plan], None]:
    """A per-account Defender for Storage setting on the workspace storage account."""

    def mutate(plan: Plan) -> None:
        template = one(plan, PRICING, STORAGE_PLAN)
        setting = copy.deepcopy(template)
        setting.type, setting.name = STORAGE_SETTING, "defender-st"
        setting.urn = template.urn.replace(f"{PRICING}::{STORAGE_PLAN}", f"{STORAGE_SETTING}::defender-st")
        setting.inputs = {"resourceId": STORAGE_ID, "settingName": "current", "properties": properties}
        plan.resources.append(setting)

    return mutate


# --------------------------------------------------------------------------- the program


def test_prod_turns_on_each_plan_at_subscription_scope_with_every_extension_named(prod_plan: Plan) -> None:
    pricings = {p.inputs["pricingName"]: p for p in prod_plan.of_type(PRICING)}
    assert sorted(pricings) == ["Arm", "Containers", "KeyVaults", "StorageAccounts"]
    for pricing in pricings.values():
        assert (pricing.inputs["scopeId"], pricing.inputs["pricingTier"]) == (SUBSCRIPTION, "Standard")
        assert prod_plan.by_urn(pricing.parent).type == GOVERNANCE
    assert pricings["StorageAccounts"].inputs["subPlan"] == "DefenderForStorageV2"
    assert pricings["StorageAccounts"].inputs["extensions"] == [
        {"name": "OnUploadMalwareScanning", "isEnabled": "True", "additionalExtensionProperties": {"CapGBPerMonthPerStorageAccount": "5000"}},
        {"name": "SensitiveDataDiscovery", "isEnabled": "True"},
    ]
    assert (pricings["KeyVaults"].inputs["subPlan"], pricings["Arm"].inputs["subPlan"]) == ("PerKeyVault", "PerSubscription")
    assert "extensions" not in pricings["KeyVaults"].inputs and "extensions" not in pricings["Arm"].inputs


def test_dev_turns_on_no_plan(dev_plan: Plan) -> None:
    assert dev_plan.of_type(PRICING) == []


# --------------------------------------------------------------------------- the config


def test_plan_config_defaults_and_the_older_keys() -> None:
    plans = GovernanceConfig.model_validate({"defenderPlans": {"storageAccounts": {}, "arm": {}}}).defender_plans
    assert plans.enabled == ["StorageAccounts", "Arm"]
    assert plans.storage_accounts is not None
    assert plans.storage_accounts.extensions == {"OnUploadMalwareScanning": True, "SensitiveDataDiscovery": True}
    assert plans.storage_accounts.malware_scanning_cap_gb_per_month == 5000
    legacy = GovernanceConfig.model_validate({"defenderForContainers": True}).defender_plans
    assert legacy == DefenderPlans.model_validate({"containers": {}})
    assert GovernanceConfig.model_validate({"defenderForContainers": False}).defender_plans.enabled == []
    assert GovernanceConfig().defender_plans.enabled == []


@pytest.mark.parametrize(
    ("governance", "error"),
    [
        ({"defenderPlans": {"storageAccounts": {"malwareScanningCapGBPerMonth": 0}}}, "positive number of GB, or -1"),
        ({"defenderPlans": {"storageAccounts": {"subPlan": "PerTransaction"}}}, "DefenderForStorageV2"),
        ({"defenderPlans": {"keyVaults": {"subPlan": "PerTransaction"}}}, "PerKeyVault"),
        ({"defenderPlans": {"storage": {}}}, "Extra inputs are not permitted"),
        ({"defenderPlans": {"storageAccounts": {"malwareScanning": "yes"}}}, "valid boolean"),
        ({"defenderForContainers": True, "defenderPlans": {"containers": {}}}, "not both"),
        ({"defenderExtensions": {"ContainerSensor": False}}, "applies only with defenderForContainers: true"),
    ],
)
def test_plan_config_is_strict(governance: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        GovernanceConfig.model_validate(governance)


# --------------------------------------------------------------------------- azml-governance-defender-plans


@pytest.mark.parametrize("pricing", ["defender-storage-accounts", "defender-key-vaults", "defender-arm"])
def test_each_required_plan_must_stay(prod_plan: Plan, pricing: str) -> None:
    plan_name = one(prod_plan, PRICING, pricing).inputs["pricingName"]
    drop = lambda plan: plan.resources.remove(one(plan, PRICING, pricing))  # noqa: E731
    message = only(new_findings(prod_plan, "prod", drop), PLANS, "rg")
    assert f"no Standard Defender plan {plan_name}; refused: requiredPlans lists them" in message
    free = lambda plan: put(one(plan, PRICING, pricing).inputs, "pricingTier", "Free")  # noqa: E731
    findings = new_findings(prod_plan, "prod", free)
    assert {(f.policy, f.name) for f in findings} == {(PLANS, pricing), (PLANS, "rg")}


# --------------------------------------------------------------------------- azml-governance-defender-storage-scans


SCAN_CASES = {
    "malware scanning off": (
        lambda plan: _storage_extension(plan, "OnUploadMalwareScanning").update(isEnabled="False"),
        "extension OnUploadMalwareScanning has isEnabled false",
    ),
    "sensitive data discovery off": (
        lambda plan: _storage_extension(plan, "SensitiveDataDiscovery").update(isEnabled="False"),
        "extension SensitiveDataDiscovery has isEnabled false",
    ),
    "sensitive data discovery left out": (
        _drop_storage_extension("SensitiveDataDiscovery"),
        "extension SensitiveDataDiscovery is not named (left out, the PUT switches it off)",
    ),
    "classic sub-plan": (
        lambda plan: put(one(plan, PRICING, STORAGE_PLAN).inputs, "subPlan", "PerTransaction"),
        "subPlan is 'PerTransaction'; refused: malware scanning and sensitive data threat detection exist only on",
    ),
    "no sub-plan": (
        lambda plan: one(plan, PRICING, STORAGE_PLAN).inputs.pop("subPlan"),
        "subPlan is not set",
    ),
}


@pytest.mark.parametrize("case", list(SCAN_CASES), ids=list(SCAN_CASES))
def test_storage_scans_must_stay_on(prod_plan: Plan, case: str) -> None:
    mutate, fragment = SCAN_CASES[case]
    message = only([f for f in new_findings(prod_plan, "prod", mutate) if f.policy != PLANS], SCANS, STORAGE_PLAN)
    assert message.startswith(f"{LABEL}:"), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("properties", "switch"),
    [
        ({"isEnabled": False, "overrideSubscriptionLevelSettings": True}, "properties.isEnabled is false"),
        (
            {"isEnabled": True, "overrideSubscriptionLevelSettings": True, "malwareScanning": {"onUpload": {"isEnabled": False}},
             "sensitiveDataDiscovery": {"isEnabled": True}},
            "properties.malwareScanning.onUpload.isEnabled is false",
        ),
        (
            {"isEnabled": True, "malwareScanning": {"onUpload": {"isEnabled": True, "capGBPerMonth": 100}},
             "sensitiveDataDiscovery": {"isEnabled": False}},
            "properties.sensitiveDataDiscovery.isEnabled is false",
        ),
    ],
)
def test_a_per_account_setting_may_not_switch_defender_off(prod_plan: Plan, properties: dict[str, Any], switch: str) -> None:
    message = only(new_findings(prod_plan, "prod", _add_account_setting(**properties)), SCANS, "defender-st")
    assert switch in message and "takes the account out of the subscription plan's protection" in message


def test_allowed_variations_stay_silent(prod_plan: Plan) -> None:
    uncapped = lambda plan: _storage_extension(plan, "OnUploadMalwareScanning").update(  # noqa: E731
        additionalExtensionProperties={"CapGBPerMonthPerStorageAccount": "-1"}
    )
    assert new_findings(prod_plan, "prod", uncapped) == []
    all_on = _add_account_setting(
        isEnabled=True, overrideSubscriptionLevelSettings=True,
        malwareScanning={"onUpload": {"isEnabled": True, "capGBPerMonth": 1000}}, sensitiveDataDiscovery={"isEnabled": True},
    )  # fmt: skip
    assert new_findings(prod_plan, "prod", all_on) == []
    # a Free StorageAccounts pricing is the plans policy's finding, not a second one here
    free = lambda plan: put(one(plan, PRICING, STORAGE_PLAN).inputs, "pricingTier", "Free")  # noqa: E731
    assert {f.policy for f in new_findings(prod_plan, "prod", free)} == {PLANS}


def test_unknown_values_are_not_reported(prod_plan: Plan) -> None:
    def unknowns(plan: Plan) -> None:
        pricing = one(plan, PRICING, STORAGE_PLAN)
        pricing.inputs["subPlan"] = "[unknown]"
        pricing.inputs["extensions"] = "[unknown]"

    assert new_findings(prod_plan, "prod", unknowns) == []
    assert new_findings(prod_plan, "prod", _add_account_setting(isEnabled="[unknown]")) == []


def test_an_accepted_account_setting_is_not_reported(prod_plan: Plan) -> None:
    acceptance = {SCANS: {"exemptResources": [{"resource": "defender-st", "reason": "scanned by the landing zone", "expires": "2099-01-01"}]}}
    assert new_findings(prod_plan, "prod", _add_account_setting(isEnabled=False), acceptance) == []


def test_untouched_stacks_are_clean(dev_plan: Plan, prod_plan: Plan) -> None:
    assert [f for f in evaluate(prod_plan, "prod") if f.policy in (PLANS, SCANS)] == []
    assert [f for f in evaluate(dev_plan, "dev") if f.policy in (PLANS, SCANS)] == []


# --------------------------------------------------------------------------- azure-defender-pricing-extensions-explicit


def _explicit(plan: Plan) -> list[tuple[str, str, str]]:
    return [(f.rule, f.name, f.message) for f in run_rules(plan) if f.rule == EXPLICIT]


def test_the_platform_rule_covers_the_storage_plan(prod_plan: Plan) -> None:
    assert _explicit(prod_plan) == []
    broken = copy.deepcopy(prod_plan)
    _drop_storage_extension("SensitiveDataDiscovery")(broken)
    ((rule, name, message),) = _explicit(broken)
    assert (rule, name) == (EXPLICIT, STORAGE_PLAN)
    assert "extensions of plan StorageAccounts" in message and "leave out SensitiveDataDiscovery" in message
    # Key Vault and Resource Manager plans offer no extensions; a Free pricing turns the plan off anyway
    freed = copy.deepcopy(broken)
    put(one(freed, PRICING, STORAGE_PLAN).inputs, "pricingTier", "Free")
    assert _explicit(freed) == []


def test_the_platform_rule_reads_its_plans_from_config(prod_plan: Plan) -> None:
    config = {EXPLICIT: {"requiredExtensions": {"KeyVaults": ["SomeFutureExtension"]}}}
    names = [f.name for f in run_rules(prod_plan, config) if f.rule == EXPLICIT]
    assert names == ["defender-key-vaults"]
