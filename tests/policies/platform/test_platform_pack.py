"""The Azure platform-rules pack (policies/platform): its metadata, its
project files, the pack served over gRPC as the Pulumi CLI launches it, and
the ordering rule on identities and their grants.

The rules of each area are tested beside it (tests/policies/platform/test_platform_*.py)."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest
from pulumi_policy import ResourceValidationPolicy, Severity, StackValidationPolicy
from ruamel.yaml import YAML

from azml.plan.model import Plan, PlannedResource
from azml.policy.runner import evaluate

from ...conftest import ROOT, run_cli
from ...platform_harness import ALL_POLICIES, PLATFORM_INFO, PLATFORM_PACK_DIR, POLICIES_DIR, fired, run_rules

from azml_platform import FRAMEWORK, PACK_NAME, QUOTES  # noqa: E402  (platform_harness put policies/ on sys.path)
from azml_policies import ALL_POLICIES as CHECKLIST_POLICIES  # noqa: E402
from azml_policies import POLICY_INFO as CHECKLIST_INFO  # noqa: E402

DOC = ROOT / "docs" / "platform-rules.md"
UAI = "azure-native:managedidentity:UserAssignedIdentity"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def test_the_pack_has_its_own_name_and_registry() -> None:
    assert PACK_NAME == "azml-azure-platform"
    assert len(ALL_POLICIES) == len(PLATFORM_INFO) >= 1
    assert {p.name for p in ALL_POLICIES} == set(PLATFORM_INFO)
    # Importing the platform rules adds nothing to the checklist's table.
    assert not set(PLATFORM_INFO) & set(CHECKLIST_INFO)
    assert len(CHECKLIST_INFO) == len(CHECKLIST_POLICIES)


@pytest.mark.parametrize("name", sorted(PLATFORM_INFO))
def test_every_rule_cites_microsoft_and_declares_its_metadata(name: str) -> None:
    info = PLATFORM_INFO[name]
    policy = next(p for p in ALL_POLICIES if p.name == name)
    assert re.fullmatch(r"azure(-[a-z0-9]+)+", name)
    assert info.source.startswith("https://learn.microsoft.com/"), info.source
    assert len(QUOTES[name]) > 20, "Microsoft's own words for the rule"
    assert policy.framework is not None and policy.framework.name == FRAMEWORK
    assert policy.framework.reference == info.source
    assert isinstance(info.severity, Severity) and len(info.remediation) > 20 and info.description
    assert info.resource_types and info.properties
    assert isinstance(policy, ResourceValidationPolicy if info.kind == "resource" else StackValidationPolicy)


def test_main_only_builds_the_pack_after_putting_policies_on_the_path() -> None:
    tree = ast.parse((PLATFORM_PACK_DIR / "__main__.py").read_text())
    imports = {(n.module, tuple(a.name for a in n.names)) for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert ("azml_platform", ("ALL_POLICIES", "PACK_NAME")) in imports
    calls = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    assert calls == [
        "sys.path.insert(0, str(Path(__file__).resolve().parent.parent))",
        "serve_pack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=ALL_POLICIES)",
    ]


def test_project_files_share_the_checklist_packs_environment() -> None:
    project = YAML(typ="safe").load((PLATFORM_PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "../venv"}}
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])

    def pins(path: Path) -> list[str]:
        return sorted(line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))

    assert pins(PLATFORM_PACK_DIR / "requirements.txt") == pins(POLICIES_DIR / "requirements.txt")


def test_docs_list_every_rule_with_its_source() -> None:
    text = DOC.read_text()
    for name, info in PLATFORM_INFO.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/platform-rules.md has no row for {name}"
        assert info.source in row


# --------------------------------------------------------------------------- ordering rule


def _with_identity(plan: Plan, *, consumer_waits: bool) -> Plan:
    """``plan`` plus a user-assigned identity, its grant, and a compute that
    runs as it (waiting on the grant or not)."""
    plan = copy.deepcopy(plan)
    (compute, *_) = [r for r in plan.resources if r.type == "azure-native:machinelearningservices:Compute"]
    identity = PlannedResource(
        "urn:x::UserAssignedIdentity::id-test", UAI, "id-test", True, None, [], {}, {"resourceName": "id-test"}, {}
    )
    grant = PlannedResource(
        "urn:x::RoleAssignment::ra-test", ROLE_ASSIGNMENT, "ra-test", True, None, [identity.urn],
        {"principalId": [identity.urn]}, {"principalId": "[unknown]", "scope": "/subscriptions/x"}, {},
    )
    compute.dependencies = [*compute.dependencies, identity.urn, *([grant.urn] if consumer_waits else [])]
    compute.property_dependencies = {**compute.property_dependencies, "identity": [identity.urn]}
    plan.resources.extend([identity, grant])
    return plan


def test_a_resource_running_as_an_identity_before_its_grant_fires(prod_plan: Plan) -> None:
    (compute, *_) = [r for r in prod_plan.resources if r.type == "azure-native:machinelearningservices:Compute"]
    findings = [f for f in run_rules(_with_identity(prod_plan, consumer_waits=False)) if f.rule == "azure-rbac-grants-before-identity-use"]
    assert [(f.name, f.rule) for f in findings] == [(compute.name, "azure-rbac-grants-before-identity-use")]
    assert "does not depend on its role assignment(s) ra-test" in findings[0].message
    assert "Source: https://learn.microsoft.com/azure/machine-learning/how-to-access-resources-from-endpoints" in findings[0].message
    assert ("azure-rbac-grants-before-identity-use", compute.name) not in fired(_with_identity(prod_plan, consumer_waits=True))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_break_no_platform_rule(stack: str, request: pytest.FixtureRequest) -> None:
    assert run_rules(request.getfixturevalue(f"{stack}_plan")) == []


# --------------------------------------------------------------------------- served as the CLI serves it


def test_the_pack_served_over_grpc_reports_a_violation_with_its_source(prod_plan: Plan) -> None:
    report = evaluate(_with_identity(prod_plan, consumer_waits=False), PLATFORM_PACK_DIR)
    assert report.pack == PACK_NAME and report.version == "0.1.0"
    assert set(report.policies) == set(PLATFORM_INFO) and set(report.policies.values()) == {"mandatory"}
    (violation,) = [v for v in report.violations if v.policy == "azure-rbac-grants-before-identity-use"]
    assert violation.enforcement == "mandatory" and violation.severity == "high"
    assert "learn.microsoft.com" in violation.message and violation.remediation


def test_plan_records_both_packs_verdicts(tmp_path: Path) -> None:
    result = run_cli("plan", "dev", "--format", "json", "--no-checkov", "--no-day-two", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["policy"]["pack"] == "azml-security-checklist"
    assert document["platform"]["pack"] == PACK_NAME
    assert document["platform"]["summary"] == {"mandatory": 0, "advisory": 0}


def test_the_rule_table_in_the_docs_is_generated_from_the_pack() -> None:
    from azml.policy.ruledoc import render

    page = DOC.read_text()
    assert render(page) == page, "docs/platform-rules.md is stale: run `make docs`"


def test_a_prod_copy_without_package_outbound_rules_fails_the_plan_naming_the_rule(tmp_path: Path) -> None:
    """Row 4 re-added from config alone: conda/pip builds under approved-outbound with no rule to reach them."""
    from ...conftest import load_stack, write_stack

    document = load_stack("prod")
    document["config"]["azml:workspace"]["packageRepositories"] = []
    path = write_stack(tmp_path, "prod", document)
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"), "--no-checkov", "--no-day-two")
    assert result.returncode == 1
    assert "error: 1 mandatory policy violation(s)" in result.stderr
    assert "[mandatory] azure-ml-image-build-package-outbound on azure-native:machinelearningservices:EnvironmentVersion::" in result.stdout
    assert "Source: https://learn.microsoft.com/azure/machine-learning/how-to-managed-network" in result.stdout
    violations = json.loads((tmp_path / "out" / "prod" / "plan.json").read_text())["platform"]["violations"]
    assert {v["policy"] for v in violations} == {"azure-ml-image-build-package-outbound"}
