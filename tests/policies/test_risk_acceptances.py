"""Risk acceptances: one shape (what, on which resource, why, until when) for
both packs' ``exemptResources`` and checkov's skips; the pack stops exempting
after the date, and ``azml plan`` lists them all, warns 30 days ahead and
fails on an expired one.

Time is injected: the pack's ``acceptances.clock`` and the plan's
``azml.policy.acceptances.utc_today`` are replaced by fixed dates. Where the
pack runs in its own process (real clock), acceptances are dated either long
past (2020) or far ahead (2998), so no test depends on today's date.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from azml.arm.skips import SKIPS, Skip, SkipError
from azml.plan.model import Plan
from azml.policy import acceptances as ledger_module
from azml.policy.acceptances import Ledger, RiskAcceptance, from_pack_properties, from_skips
from azml.policy.pack_config import PackConfigError, PolicySchema, reconcile
from azml.policy.runner import evaluate as run_pack

from .checklist.test_policy_pack import PACK_DIR, POLICY_INFO, STORAGE, by_level, evaluate, load_config, one

from azml_policies import acceptances  # noqa: E402  (on sys.path through test_policy_pack)
from azml_platform.rules import PLATFORM_INFO  # noqa: E402

ROOT = PACK_DIR.parent
PUBLIC = "azml-storage-public-network-disabled"


def _accept(resource: str, expires: str, reason: str = "Event Grid delivers over the public endpoint only") -> dict[str, str]:
    return {"resource": resource, "reason": reason, "expires": expires}


def _public_host(plan: Plan, acceptance: dict[str, Any] | str) -> set[tuple[str, str]]:
    findings = evaluate(plan, "prod", {PUBLIC: {"exemptResources": [acceptance]}})
    return {(policy, name) for policy, name in by_level(findings, "mandatory") if policy == PUBLIC}


# --------------------------------------------------------------------------- in the pack


def test_an_acceptance_holds_through_its_last_day_then_the_policy_checks_again(
    prod_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2031, 3, 31))
    assert _public_host(prod_plan, _accept("st-fn", "2031-03-31")) == set()
    # The Azure name works as well as the Pulumi name.
    account = one(prod_plan, STORAGE, "st-fn").inputs["accountName"]
    assert _public_host(prod_plan, _accept(account, "2031-03-31")) == set()

    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2031, 4, 1))
    findings = [f for f in evaluate(prod_plan, "prod", {PUBLIC: {"exemptResources": [_accept("st-fn", "2031-03-31")]}}) if f.policy == PUBLIC]
    (finding,) = findings
    assert finding.name == "st-fn" and finding.level == "mandatory"
    assert "publicNetworkAccess is 'Enabled'" in finding.message
    assert "its risk acceptance in exemptResources expired on 2031-03-31" in finding.message


def test_a_stack_policy_says_when_an_acceptance_lapsed(prod_plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2031, 4, 1))
    plan = Plan(prod_plan.project, prod_plan.stack, [r for r in prod_plan.resources if not r.name.startswith("diag-stfn")], {})
    config = {"azml-diagnostic-settings": {"exemptResources": [_accept("st-fn", "2031-03-31")]}}
    (finding,) = [f for f in evaluate(plan, "prod", config) if f.policy == "azml-diagnostic-settings"]
    assert finding.name == "st-fn" and finding.message.endswith(
        "[its risk acceptance in exemptResources expired on 2031-03-31: fix the resource, or renew the acceptance "
        "with a reason and a new date]"
    )
    monkeypatch.setattr(acceptances, "clock", lambda: dt.date(2031, 3, 1))
    assert [f for f in evaluate(plan, "prod", config) if f.policy == "azml-diagnostic-settings"] == []


def test_an_acceptance_without_reason_and_date_exempts_nothing(prod_plan: Plan) -> None:
    for entry in ("st-fn", {"resource": "st-fn"}, _accept("st-fn", "2031-02-30"), _accept("st-fn", "next year")):
        assert _public_host(prod_plan, entry) == {(PUBLIC, "st-fn")}, entry
    (finding,) = [f for f in evaluate(prod_plan, "prod", {PUBLIC: {"exemptResources": [_accept("st-fn", "2031-02-30")]}}) if f.policy == PUBLIC]
    assert "has no valid expiry date ('2031-02-30')" in finding.message


# --------------------------------------------------------------------------- the schema (CLI and azml alike)


def _schemas() -> dict[str, PolicySchema]:
    return {name: PolicySchema(name, "mandatory", info.config_schema) for name, info in POLICY_INFO.items()}


@pytest.mark.parametrize(
    "entry, problem",
    [
        ("st-fn", "is not of type 'object'"),
        ({"resource": "st-fn", "expires": "2027-06-30"}, "'reason' is a required property"),
        ({"resource": "st-fn", "reason": "because we must, for now", "expires": "30/06/2027"}, "does not match"),
        ({"resource": "st-fn", "reason": "short", "expires": "2027-06-30"}, "is too short"),
        ({**_accept("st-fn", "2027-06-30"), "owner": "ops"}, "Additional properties are not allowed"),
    ],
)
def test_the_schema_refuses_an_acceptance_without_its_reason_or_date(entry: Any, problem: str) -> None:
    with pytest.raises(PackConfigError) as caught:
        reconcile(_schemas(), {PUBLIC: {"exemptResources": [entry]}}, "config.test.json")
    assert any(problem in line and f"{PUBLIC}.exemptResources.0" in line for line in caught.value.problems), caught.value.problems


def test_both_packs_take_the_same_shape_and_the_shipped_configs_fit_it() -> None:
    shapes = {json.dumps(info.config_schema["exemptResources"], sort_keys=True) for info in [*POLICY_INFO.values(), *PLATFORM_INFO.values()]}
    assert shapes == {json.dumps(acceptances.EXEMPT_SCHEMA, sort_keys=True)}
    for stack in ("dev", "prod"):
        settings = reconcile(_schemas(), load_config(stack), f"config.{stack}.json")
        entries = [e for s in settings.values() for e in s.properties["exemptResources"]]
        assert entries and all(acceptances.parse_date(e["expires"]) for e in entries)


def test_the_pack_served_over_grpc_reports_its_acceptances_and_honours_them(prod_plan: Plan, tmp_path: Path) -> None:
    shipped = run_pack(prod_plan, PACK_DIR, PACK_DIR / "config.prod.json")
    assert shipped.mandatory == []
    assert [e["resource"] for e in shipped.exemptions[PUBLIC]] == ["st-fn"]
    assert shipped.exemptions["azml-registry-quarantine"][0]["resource"] == "cr"

    config = {**load_config("prod"), PUBLIC: {"exemptResources": [_accept("st-fn", "2020-01-01")]}}
    path = tmp_path / "config.lapsed.json"
    path.write_text(json.dumps(config))
    lapsed = run_pack(prod_plan, PACK_DIR, path)
    (violation,) = [v for v in lapsed.mandatory if v.policy == PUBLIC]
    assert violation.resource.endswith("::st-fn") and "expired on 2020-01-01" in violation.message


# --------------------------------------------------------------------------- the ledger azml plan keeps

TODAY = dt.date(2030, 6, 1)


def _acceptance(expires: str, check: str = PUBLIC) -> RiskAcceptance:
    return RiskAcceptance("policy", check, ("st-fn",), "Event Grid delivers over the public endpoint only", expires)


def test_status_is_read_against_the_injected_day() -> None:
    assert _acceptance("2030-05-31").status(TODAY) == "expired"
    assert _acceptance("2030-06-01").status(TODAY) == "expiring"  # its last day
    assert _acceptance("2030-07-01").status(TODAY) == "expiring"  # 30 days ahead
    assert _acceptance("2030-07-02").status(TODAY) == "active"
    assert _acceptance("2030-02-30").status(TODAY) == "expired"  # not a date


def test_the_ledger_warns_fails_and_lists_every_acceptance() -> None:
    ledger = Ledger([_acceptance("2031-01-01"), _acceptance("2030-06-11", "azml-registry-quarantine"), _acceptance("2030-05-01")], TODAY)
    lines = ledger.lines()
    assert lines[0] == "Risk acceptances: 3 (1 expired, 1 expiring within 30 days; as of 2030-06-01 UTC)"
    assert lines[1] == (
        f"    [ERROR] risk acceptance {PUBLIC} on st-fn (policy) expired on 2030-05-01: fix it, or renew it with a "
        "reason and a new date"
    )
    assert lines[2] == "    [WARNING] risk acceptance azml-registry-quarantine on st-fn (policy) expires on 2030-06-11 (in 10 days)"
    assert lines[3].startswith("    [ok] ") and "expires on 2031-01-01 (in 214 days)" in lines[3]
    assert ledger.failure_lines() == [lines[1].split("] ", 1)[1]]
    document = ledger.to_json()
    assert document["asOf"] == "2030-06-01" and document["summary"] == {"active": 1, "expiring": 1, "expired": 1}
    assert document["acceptances"][0] == {
        "source": "policy",
        "check": PUBLIC,
        "resources": ["st-fn"],
        "reason": "Event Grid delivers over the public endpoint only",
        "expires": "2031-01-01",
        "status": "active",
        "daysLeft": 214,
    }


def test_pack_exemptions_and_checkov_skips_become_acceptances() -> None:
    from_pack = from_pack_properties("platform", {"azure-rule": {"exemptResources": [_accept("st-fn", "2030-01-01")]}, "other": {}})
    assert from_pack == [RiskAcceptance("platform", "azure-rule", ("st-fn",), "Event Grid delivers over the public endpoint only", "2030-01-01")]
    dev_only = {s.check_id for s in SKIPS if s.stacks == ("dev",)}
    assert dev_only and not dev_only & {a.check for a in from_skips(SKIPS, "prod")}
    assert {a.check for a in from_skips(SKIPS, "dev")} == {s.check_id for s in SKIPS}
    assert all(a.source == "checkov" and a.expires and a.resources for a in from_skips(SKIPS, "prod"))


def test_a_skip_names_its_resources_and_its_date() -> None:
    reason = "not applicable to the queue-triggered retraining function"
    with pytest.raises(SkipError, match="name the resources"):
        Skip("CKV_AZURE_17", reason, expires="2030-01-01")
    with pytest.raises(SkipError, match="resource patterns"):
        Skip("CKV_AZURE_17", reason, resources=("Microsoft.Web/sites.*",), expires="2030-01-01")
    with pytest.raises(SkipError, match="resource patterns"):
        Skip("CKV_AZURE_17", reason, resources=("*",), expires="2030-01-01")
    with pytest.raises(SkipError, match="expires"):
        Skip("CKV_AZURE_17", reason, resources=("Microsoft.Web/sites.func-azml-*",))
    with pytest.raises(SkipError, match="expires"):
        Skip("CKV_AZURE_17", reason, resources=("Microsoft.Web/sites.func-azml-*",), expires="2030-02-30")
    skip = Skip("CKV_AZURE_17", reason, resources=("Microsoft.Web/sites.func-azml-*-retrain-*",), expires="2030-01-01")
    assert skip.matches("CKV_AZURE_17", "Microsoft.Web/sites.func-azml-prd-retrain-3d136e", "prod")
    assert not skip.matches("CKV_AZURE_17", "Microsoft.Web/sites.func-payments", "prod")
    assert skip.to_json()["expires"] == "2030-01-01"


# --------------------------------------------------------------------------- azml plan


def test_azml_plan_lists_warns_and_fails_on_an_expired_acceptance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azml.cli import app

    monkeypatch.setattr(ledger_module, "utc_today", lambda: dt.date(2998, 12, 20))
    config = {
        **load_config("prod"),
        PUBLIC: {"exemptResources": [_accept("st-fn", "2020-01-01")]},
        "azml-registry-quarantine": {"exemptResources": [_accept("cr", "2998-12-31", "no scanner releases quarantined images yet")]},
    }
    path = tmp_path / "config.test.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(
        app,
        ["plan", "prod", "--project-dir", str(ROOT), "--policy-config", str(path), "--no-checkov", "--no-day-two", "-o", str(tmp_path / "out")],
    )
    assert result.exit_code == 1, result.output
    assert f"[ERROR] risk acceptance {PUBLIC} on st-fn (policy) expired on 2020-01-01" in result.output
    assert "[WARNING] risk acceptance azml-registry-quarantine on cr (policy) expires on 2998-12-31 (in 11 days)" in result.output
    document = json.loads((tmp_path / "out" / "prod" / "plan.json").read_text())
    listed = {(a["check"], tuple(a["resources"])): a for a in document["riskAcceptances"]["acceptances"]}
    assert listed[(PUBLIC, ("st-fn",))]["status"] == "expired"
    assert listed[("azml-registry-quarantine", ("cr",))] | {} == {
        "source": "policy",
        "check": "azml-registry-quarantine",
        "resources": ["cr"],
        "reason": "no scanner releases quarantined images yet",
        "expires": "2998-12-31",
        "status": "expiring",
        "daysLeft": 11,
    }
    # The pack (its own process, real clock) checks st-fn again: the violation says why.
    (violation,) = [v for v in document["policy"]["violations"] if v["policy"] == PUBLIC]
    assert "expired on 2020-01-01" in violation["message"]


def test_azml_checkov_fails_on_an_expired_skip(tmp_path: Path, prod_plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from azml.cli import app

    monkeypatch.setattr(ledger_module, "utc_today", lambda: dt.date(2999, 1, 1))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(prod_plan.to_json()))
    result = CliRunner().invoke(app, ["checkov", "--plan-json", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    for skip in (s for s in SKIPS if not s.stacks or "prod" in s.stacks):
        assert f"risk acceptance {skip.check_id} on {', '.join(skip.resources)} (checkov) expired on {skip.expires}" in result.output
