"""The offline policy runner drives a real pack over gRPC the way the CLI does:
config reconciled with schema defaults, per-resource and stack validations."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from azml.plan.model import Plan
from azml.policy.pack_config import PackConfigError
from azml.policy.runner import PolicyRunError, evaluate, evaluate_all

from ..conftest import FIXTURES

PACK = FIXTURES / "policy_pack"


def with_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_clean_plan_has_no_violations_under_defaults(dev_plan: Plan) -> None:
    report = evaluate(dev_plan, PACK)
    assert report.pack == "fixture-pack"
    assert report.violations == []
    assert report.policies == {"vault-purge-protection": "mandatory", "resource-count": "advisory"}
    assert report.resources_analyzed == sum(1 for r in dev_plan.resources if r.custom)


def test_a_resource_violation_names_policy_resource_and_fix(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    (vault,) = plan.of_type("azure-native:keyvault:Vault")
    vault.inputs["properties"]["enablePurgeProtection"] = False
    (violation,) = evaluate(plan, PACK).violations
    assert (violation.policy, violation.urn, violation.enforcement, violation.severity) == (
        "vault-purge-protection", vault.urn, "mandatory", "high",
    )  # fmt: skip
    assert violation.message == "purge protection is off"
    assert violation.remediation == "Set properties.enablePurgeProtection."
    assert violation.resource == "azure-native:keyvault:Vault::kv"


def test_schema_defaults_and_config_properties_reach_the_policy(dev_plan: Plan, tmp_path: Path) -> None:
    config = with_config(tmp_path, {"vault-purge-protection": {"alwaysReport": True}})
    (violation,) = evaluate(dev_plan, PACK, config).violations
    # The schema default, filled like the CLI does; numbers cross the wire as
    # protobuf Struct numbers, i.e. floats, exactly as with the real CLI.
    assert violation.message == "config seen: minimum=2.0"


def test_stack_validation_and_enforcement_overrides(dev_plan: Plan, tmp_path: Path) -> None:
    config = with_config(tmp_path, {"all": "advisory", "resource-count": {"enforcementLevel": "mandatory", "maxResources": 3}})
    report = evaluate(dev_plan, PACK, config)
    (violation,) = report.violations
    assert violation.policy == "resource-count" and violation.urn == "" and violation.enforcement == "mandatory"
    assert violation.resource == "(stack)"
    assert report.policies["vault-purge-protection"] == "advisory"


def test_disabled_policies_report_nothing(dev_plan: Plan, tmp_path: Path) -> None:
    plan = copy.deepcopy(dev_plan)
    (vault,) = plan.of_type("azure-native:keyvault:Vault")
    vault.inputs["properties"]["enablePurgeProtection"] = False
    assert evaluate(plan, PACK, with_config(tmp_path, {"vault-purge-protection": "disabled"})).violations == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"no-such-policy": "mandatory"}, "no-such-policy: no such policy in the pack"),
        ({"resource-count": "fatal"}, "resource-count: enforcement level must be one of advisory, mandatory, disabled, remediate"),
        ({"resource-count": {"maxResources": "many"}}, "resource-count.maxResources: 'many' is not of type 'integer'"),
    ],
)
def test_bad_config_is_refused_with_one_line_each(dev_plan: Plan, tmp_path: Path, config: dict, expected: str) -> None:
    with pytest.raises(PackConfigError) as caught:
        evaluate(dev_plan, PACK, with_config(tmp_path, config))
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_unknown_and_secret_values_reach_the_pack_as_such(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    (vault,) = plan.of_type("azure-native:keyvault:Vault")
    vault.inputs["properties"]["enablePurgeProtection"] = "[unknown]"
    vault.inputs["tags"] = "[secret]"
    # The SDK notices a policy reading a value unknown during preview and
    # downgrades that run to an advisory notice, as it does under the CLI.
    (notice,) = evaluate(plan, PACK).violations
    assert notice.enforcement == "advisory"
    assert "enablePurgeProtection can't be known during preview" in notice.message


def test_a_missing_pack_is_a_clear_error(dev_plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(PolicyRunError, match="no policy pack at"):
        evaluate(dev_plan, tmp_path)


def test_packs_run_side_by_side_answer_in_the_order_given_and_the_first_error_wins(dev_plan: Plan, tmp_path: Path) -> None:
    disabled = with_config(tmp_path, {"vault-purge-protection": "disabled"})
    reports = evaluate_all(dev_plan, [(PACK, disabled), (PACK, None)])
    assert [r.policies["vault-purge-protection"] for r in reports] == ["disabled", "mandatory"]
    assert [r.config for r in reports][1] is None
    with pytest.raises(PolicyRunError, match=f"no policy pack at {tmp_path / 'first'}"):
        evaluate_all(dev_plan, [(tmp_path / "first", None), (tmp_path / "second", None)])
