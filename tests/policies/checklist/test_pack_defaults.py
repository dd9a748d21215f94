"""The checklist pack without a config file is the strictest, prod-like pack.

``pulumi preview --policy-pack policies`` without ``--policy-pack-config``
runs every policy with its schema defaults: they must be prod's values, so
forgetting the config file can only make the pack stricter. Prod's config
then only accepts risks (dated ``exemptResources`` entries); dev's relaxes,
and each relaxation is listed in policies/README.md.
"""

from __future__ import annotations

import copy
from typing import Any

from pulumi_policy import Severity

from azml.plan.model import Plan

from .test_policy_pack import (
    COMPUTE,
    ONLINE_ENDPOINT,
    PACK_DIR,
    POLICY_INFO,
    VAULT,
    WORKSPACE,
    by_level,
    evaluate,
    load_config,
    one,
)


def _accepted(stack: str) -> set[tuple[str, str]]:
    """(policy, resource) of every risk acceptance in config.<stack>.json."""
    return {
        (policy, entry["resource"])
        for policy, setting in load_config(stack).items()
        if isinstance(setting, dict)
        for entry in setting.get("exemptResources", [])
    }


def _relaxations(stack: str) -> dict[str, dict[str, Any]]:
    """What config.<stack>.json sets other than risk acceptances: per policy,
    properties that differ from the in-code default, and a changed level."""
    found: dict[str, dict[str, Any]] = {}
    for policy, setting in load_config(stack).items():
        info = POLICY_INFO[policy]
        declared = info.enforcement.value if info.enforcement else "mandatory"
        entry = {"enforcementLevel": setting} if isinstance(setting, str) else dict(setting)
        changed = {
            key: value
            for key, value in entry.items()
            if key != "exemptResources"
            and (value != declared if key == "enforcementLevel" else value != info.defaults[key])
        }
        if changed:
            found[policy] = changed
    return found


def _covered_by_acceptances(stack: str) -> dict[str, dict[str, Any]]:
    """Prod relaxations other than exemptResources may only carry names of
    resources that have a dated acceptance (e.g. an Azure Policy assignment's
    notScopes listing st-fn, whose public endpoint prod accepts until a date):
    the date of that acceptance then bounds the relaxation too."""
    accepted = {resource for _, resource in _accepted(stack)}
    relaxed = _relaxations(stack)
    for policy, changed in relaxed.items():
        for key, value in changed.items():
            names = value if isinstance(value, list) else [value]
            assert names and all(isinstance(n, str) and n in accepted for n in names), (
                f"config.{stack}.json relaxes {policy}.{key} = {value!r}: prod takes the in-code (strictest) "
                "default unless a dated risk acceptance (exemptResources) covers it"
            )
    return relaxed


def test_untouched_prod_plan_under_defaults_only_breaks_only_its_accepted_risks(prod_plan: Plan) -> None:
    """No config at all: the only mandatory violations are the risks prod
    accepts (each acceptance used: none is stale), and what a relaxation tied
    to one of them covers."""
    findings = evaluate(prod_plan, None)
    mandatory = by_level(findings, "mandatory")
    tied = _covered_by_acceptances("prod")
    assert {(p, n) for p, n in mandatory if p not in tied} == _accepted("prod") >= {
        ("azml-storage-public-network-disabled", "st-fn"),
        ("azml-registry-quarantine", "cr"),
    }
    assert by_level(findings, "advisory") == set()
    assert by_level(evaluate(prod_plan, "prod"), "mandatory") == set()


def test_prod_config_relaxes_nothing_but_accepted_risks() -> None:
    _covered_by_acceptances("prod")
    for policy, setting in load_config("prod").items():
        assert isinstance(setting, dict) and "enforcementLevel" not in setting, policy


def test_every_dev_relaxation_is_listed_and_documented() -> None:
    relaxed = _relaxations("dev")
    assert {
        "azml-workspace-managed-network-isolation": {"allowedIsolationModes": ["AllowOnlyApprovedOutbound", "AllowInternetOutbound"]},
        "azml-workspace-hbi": {"required": False},
        "azml-keyvault-soft-delete": {"minRetentionDays": 7},
        "azml-registry-quarantine": {"required": False},
        "azml-endpoint-auth-mode": {"allowedAuthModes": ["AADToken", "AMLToken"]},
        "azml-deployment-min-instances": {"minInstances": 1},
        "azml-deployment-lineage-tags": {"enforcementLevel": "advisory"},
    }.items() <= relaxed.items()
    section = (PACK_DIR / "README.md").read_text().split("## Dev relaxations", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `azml-")]
    for policy, changed in relaxed.items():
        named = [r for r in rows if r.startswith(f"| `{policy}`")]
        assert named, f"policies/README.md, Dev relaxations: no row for {policy}"
        for key, value in changed.items():
            # A row names the property (or the level) that dev relaxes.
            assert any(key in r or (key == "enforcementLevel" and value in r) for r in named), (policy, key)


def _set(plan: Plan, type_token: str, path: str, value: Any, name: str | None = None) -> Plan:
    changed = copy.deepcopy(plan)
    target: Any = one(changed, type_token, name).inputs
    keys = path.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value
    return changed


def test_defaults_refuse_what_only_dev_allows(prod_plan: Plan) -> None:
    """The three settings the review found passing without a config file."""
    cases = {
        "azml-workspace-managed-network-isolation": (WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound", None),
        "azml-endpoint-auth-mode": (ONLINE_ENDPOINT, "properties.authMode", "AMLToken", None),
        "azml-keyvault-soft-delete": (VAULT, "properties.softDeleteRetentionInDays", 7, None),
    }
    for policy, (token, path, value, name) in cases.items():
        changed = _set(prod_plan, token, path, value, name)
        fired = {p for p, _ in by_level(evaluate(changed, None), "mandatory")}
        assert policy in fired, (policy, fired)
        assert {p for p, _ in by_level(evaluate(changed, "dev"), "mandatory")} == set(), policy


def test_low_severity_policies_are_advisory_unless_a_stack_makes_them_mandatory(prod_plan: Plan) -> None:
    assert {n for n, i in POLICY_INFO.items() if i.severity == Severity.LOW} == {
        n for n, i in POLICY_INFO.items() if i.enforcement is not None and i.enforcement.value == "advisory"
    }
    cluster = min((r for r in prod_plan.of_type(COMPUTE) if r.inputs["properties"].get("computeType") == "AmlCompute"), key=lambda r: r.name)
    warm = _set(prod_plan, COMPUTE, "properties.properties.scaleSettings.minNodeCount", 2, cluster.name)
    for stack in ("prod", "dev", None):
        findings = evaluate(warm, stack)
        assert ("azml-compute-scale-to-zero", cluster.name) in by_level(findings, "advisory"), stack
        assert not {p for p, _ in by_level(findings, "mandatory")} & {"azml-compute-scale-to-zero"}
    deliberate = {"azml-compute-scale-to-zero": {"enforcementLevel": "mandatory"}}
    assert ("azml-compute-scale-to-zero", cluster.name) in by_level(evaluate(warm, "prod", deliberate), "mandatory")
