"""The supply chain of serving images (policies/azml_policies/supply_chain.py):
approved and pinned images, the Defender for Containers scan gate on the
registry Azure ML builds into, no export out of it. Each rule broken on a copy
of the recorded prod plan fires its policy by name; the untouched plans are clean."""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

import pytest

from azml.plan.model import Plan

from .test_policy_pack import POLICY_INFO, ROOT, Finding, evaluate, one, put

ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
REGISTRY = "azure-native:containerregistry:Registry"
PRICING = "azure-native:security:Pricing"
#: The Containers plan (prod also carries StorageAccounts, KeyVaults and Arm pricings).
CONTAINERS_PLAN = "defender-containers"
OURS = {"azml-approved-images", "azml-registry-vulnerability-assessment", "azml-registry-export-disabled"}
DIGEST = "@sha256:" + "ab" * 32
BASE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
STACK_REGISTRY = "crazmlprd3d136e.azurecr.io/credit-risk/scoring"

Mutation = Callable[[Plan], None]


def new_findings(plan: Plan, mutate: Mutation, stack: str = "prod", overrides: dict[str, Any] | None = None) -> list[Finding]:
    before = set(evaluate(plan, stack, overrides))
    changed = copy.deepcopy(plan)
    mutate(changed)
    return [f for f in evaluate(changed, stack, overrides) if f not in before]


def image(reference: str) -> Mutation:
    return lambda plan: put(one(plan, ENVIRONMENT).inputs, "properties.image", reference)


def setting(type_token: str, path: str, value: Any, name: str | None = None) -> Mutation:
    return lambda plan: put(one(plan, type_token, name).inputs, path, value)


def test_the_policies_are_registered() -> None:
    assert OURS <= set(POLICY_INFO)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_untouched_plans_are_clean_and_pin_a_dated_base_image(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    assert [f for f in evaluate(plan, stack) if f.policy in OURS] == []
    images = {e.inputs["properties"]["image"] for e in plan.of_type(ENVIRONMENT)}
    assert images == {f"{BASE}:20241202.v1"}


def test_the_pinned_tag_is_one_microsoft_released() -> None:
    """The stack files name the tag (and where it comes from) next to it; no
    floating reference is left in either."""
    for stack in ("dev", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert not re.search(r"(image|baseImage): \S+:latest\b", text, re.IGNORECASE)
        assert re.findall(r"baseImage: (\S+)", text) and set(re.findall(r"baseImage: (\S+)", text)) == {f"{BASE}:20241202.v1"}
        assert "images/openmpi4.1.0-ubuntu22.04/release-notes.md" in text


IMAGE_CASES: dict[str, tuple[str, str | None]] = {
    # reference: (case id, fragment of the message; None: passes in prod)
    f"{BASE}:latest": ("latest", "is tagged latest, which moves to every new build"),
    f"{BASE}:LATEST": ("latest upper case", "is tagged latest"),
    BASE: ("untagged", "has no tag, which moves to every new build"),
    f"{BASE}:20241202": ("date without its build number", "floats (tag '20241202' can be pushed again)"),
    f"{BASE}:22.04": ("version-like mutable tag", "floats (tag '22.04' can be pushed again)"),
    f"{STACK_REGISTRY}:1.4.2": ("semver tag in the stack registry", "floats (tag '1.4.2' can be pushed again); pin a digest"),
    f"{STACK_REGISTRY}:20241202.v1": ("dated tag outside Microsoft's images", "floats"),
    f"{STACK_REGISTRY}{DIGEST}": ("stack registry by digest", None),
    f"{STACK_REGISTRY}:1.4.2{DIGEST}": ("tag and digest", None),
    f"{BASE}{DIGEST}": ("base image by digest", None),
    f"{BASE}:20240908.v1": ("older dated tag", None),
    f"{BASE}:20241202.v12": ("later build of a day", None),
}


@pytest.mark.parametrize("reference", list(IMAGE_CASES), ids=[c[0] for c in IMAGE_CASES.values()])
def test_images_must_be_pinned_in_prod(reference: str, prod_plan: Plan) -> None:
    _, fragment = IMAGE_CASES[reference]
    found = new_findings(prod_plan, image(reference))
    if fragment is None:
        assert found == []
        return
    assert [(f.policy, f.name) for f in found] == [("azml-approved-images", "env-credit-risk-scoring-1")]
    message = found[0].message
    assert message.startswith("EnvironmentVersion 'credit-risk-scoring:1' (env-credit-risk-scoring-1): properties.image")
    assert reference in message and fragment in message


def test_image_tags_are_read_after_the_last_slash() -> None:
    from azml_policies.supply_chain import image_tag

    assert image_tag("myregistry.azurecr.io:443/team/scoring") is None  # a port is not a tag
    assert image_tag("myregistry.azurecr.io:443/team/scoring:2.0") == "2.0"
    assert image_tag(f"{BASE}:20241202.v1{DIGEST}") == "20241202.v1"
    assert image_tag(f"{BASE}{DIGEST}") is None


def test_dev_may_float_tags_only_with_a_reason_and_never_latest(dev_plan: Plan) -> None:
    relaxed = {"azml-approved-images": {"allowFloatingTags": True, "floatingTagsReason": "dev rebuilds nightly from the newest CI image"}}
    assert new_findings(dev_plan, image(f"{BASE}:22.04"), "dev", relaxed) == []
    for floating in (f"{BASE}:latest", BASE):
        assert {f.policy for f in new_findings(dev_plan, image(floating), "dev", relaxed)} == {"azml-approved-images"}
    unexplained = {"azml-approved-images": {"allowFloatingTags": True}}
    found = new_findings(dev_plan, image(f"{BASE}:22.04"), "dev", unexplained)
    assert [f.policy for f in found] == ["azml-approved-images"]
    assert "allowFloatingTags is set without a floatingTagsReason" in found[0].message
    # The shipped dev config does not relax it: dev pins like prod.
    assert {f.policy for f in new_findings(dev_plan, image(f"{BASE}:22.04"), "dev")} == {"azml-approved-images"}


def test_immutable_tag_patterns_are_per_publisher(prod_plan: Plan) -> None:
    """A registry whose tags are locked can be declared immutable with its own pattern."""
    trusted = {"azml-approved-images": {"immutableTags": {"crazmlprd3d136e.azurecr.io/": r"git-[0-9a-f]{40}"}}}
    assert new_findings(prod_plan, image(f"{STACK_REGISTRY}:git-{'a' * 40}"), overrides=trusted) == []
    # ...and replacing the map drops the Microsoft pattern.
    assert {f.policy for f in new_findings(prod_plan, image(f"{BASE}:20240908.v1"), overrides=trusted)} == {"azml-approved-images"}


def test_unapproved_source_is_reported_before_pinning(prod_plan: Plan) -> None:
    found = new_findings(prod_plan, image("docker.io/library/python:latest"))
    assert [f.policy for f in found] == ["azml-approved-images"]
    assert "is not from an approved registry" in found[0].message and "latest" not in found[0].message.split(")")[-1]


SCAN_CASES: dict[str, tuple[Mutation, str]] = {
    "no Defender plan": (
        lambda plan: plan.resources.remove(one(plan, PRICING, CONTAINERS_PLAN)),
        "no security:Pricing 'Containers' in the stack",
    ),
    "Defender on the free tier": (setting(PRICING, "pricingTier", "Free", CONTAINERS_PLAN), "pricingTier is 'Free'; must be 'Standard'"),
    "registry scanning extension off": (
        lambda plan: _extension(plan, "False"),
        "extension ContainerRegistriesVulnerabilityAssessments isEnabled is false",
    ),
    "registry scanning extension left unnamed": (
        lambda plan: _extension(plan, None),
        "extensions does not name ContainerRegistriesVulnerabilityAssessments",
    ),
}


def _extension(plan: Plan, enabled: str | None) -> None:
    extensions = one(plan, PRICING, CONTAINERS_PLAN).inputs["extensions"]
    extensions[:] = [e for e in extensions if e["name"] != "ContainerRegistriesVulnerabilityAssessments"]
    if enabled is not None:
        extensions.append({"name": "ContainerRegistriesVulnerabilityAssessments", "isEnabled": enabled})


@pytest.mark.parametrize("case", list(SCAN_CASES), ids=list(SCAN_CASES))
def test_the_registry_needs_the_vulnerability_assessment_gate(case: str, prod_plan: Plan) -> None:
    mutate, fragment = SCAN_CASES[case]
    found = [f for f in new_findings(prod_plan, mutate) if f.policy == "azml-registry-vulnerability-assessment"]
    assert [f.name for f in found] == ["cr"]
    assert found[0].message.startswith("Registry 'crazmlprd3d136e' (cr): images pushed here (Azure ML builds into it) are not scanned")
    assert fragment in found[0].message


def test_the_scan_gate_is_relaxed_in_dev_only(dev_plan: Plan) -> None:
    """dev leaves the subscription-wide plan to prod (docs: Defender for
    Containers); under the strict defaults its registry is reported."""
    assert not dev_plan.of_type(PRICING)
    strict = [f for f in evaluate(dev_plan, None) if f.policy == "azml-registry-vulnerability-assessment"]
    assert [f.name for f in strict] == ["cr"]


def test_export_must_stay_disabled(prod_plan: Plan) -> None:
    found = new_findings(prod_plan, setting(REGISTRY, "policies.exportPolicy.status", "enabled"))
    assert [(f.policy, f.name) for f in found] == [("azml-registry-export-disabled", "cr")]
    assert "policies.exportPolicy.status is 'enabled'; must be 'disabled'" in found[0].message
    unset = new_findings(prod_plan, lambda plan: one(plan, REGISTRY).inputs["policies"].pop("exportPolicy"))
    assert [f.policy for f in unset] == ["azml-registry-export-disabled"]
    assert "(Azure default: enabled)" in unset[0].message


def test_quarantine_stays_a_dated_acceptance_next_to_the_scan_gate(prod_plan: Plan) -> None:
    """Quarantine is off in both stacks (nothing releases Azure ML's images);
    prod carries it as a dated risk acceptance and the scan gate holds."""
    registry = one(prod_plan, REGISTRY).inputs
    assert registry["policies"]["quarantinePolicy"] == {"status": "disabled"}
    findings = evaluate(prod_plan, "prod", {"azml-registry-quarantine": {"exemptResources": []}})
    assert {(f.policy, f.name) for f in findings if f.policy.startswith("azml-registry")} == {("azml-registry-quarantine", "cr")}


def test_unknowns_are_not_reported(prod_plan: Plan) -> None:
    def unknowns(plan: Plan) -> None:
        put(one(plan, ENVIRONMENT).inputs, "properties.image", "[unknown]")
        put(one(plan, PRICING, CONTAINERS_PLAN).inputs, "pricingTier", "[unknown]")
        put(one(plan, REGISTRY).inputs, "policies.exportPolicy.status", "[unknown]")

    assert new_findings(prod_plan, unknowns) == []
