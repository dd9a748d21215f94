"""Run the platform-rules pack (policies/azml_platform) on a recorded plan
with the SDK's own argument types, as the Pulumi CLI would: properties
through protobuf and the SDK's deserializer and unknown-checking proxy,
dependencies and parents linked like AnalyzeStack links them.

Tests of the rules break one rule on a copy of the recorded dev or prod plan
(``copy.deepcopy(prod_plan)``) and assert it fires alone, naming the rule.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from azml.plan.model import Plan, PlannedResource

ROOT = Path(__file__).resolve().parents[1]
POLICIES_DIR = ROOT / "policies"
PLATFORM_PACK_DIR = POLICIES_DIR / "platform"
if str(POLICIES_DIR) not in sys.path:
    sys.path.insert(0, str(POLICIES_DIR))

from azml_platform import ALL_POLICIES, PLATFORM_INFO  # noqa: E402
from azml_policies.pack_server import SharedResourceArgs, SharedStackArgs  # noqa: E402

from .policies.checklist.test_policy_pack import _options, sdk_props, stack_resources  # noqa: E402


@dataclass(frozen=True)
class RuleFinding:
    rule: str
    name: str  # Pulumi name of the resource ("" for the stack)
    message: str


def run_rules(plan: Plan, config: dict[str, dict[str, Any]] | None = None) -> list[RuleFinding]:
    """Every violation of the platform pack on ``plan``; ``config`` gives a
    rule's properties (its defaults otherwise)."""
    props = {r.urn: sdk_props(r.inputs) for r in plan.resources}
    names = {r.urn: r.name for r in plan.resources}
    resources = stack_resources(plan, props)
    # Shared as the pack's servicer shares them: one memo per request (a resource, the stack).
    stack_memo: dict[str, Any] = {}
    resource_memos: dict[str, dict[str, Any]] = {}
    findings: list[RuleFinding] = []
    for policy in ALL_POLICIES:
        info = PLATFORM_INFO[policy.name]
        properties = {**info.defaults, **(config or {}).get(policy.name, {})}

        def report(message: str, urn: str | None = None, *, _rule: str = policy.name, _default: str = "") -> None:
            assert isinstance(message, str) and message
            findings.append(RuleFinding(_rule, names.get(urn or _default, ""), message))

        if isinstance(policy, ResourceValidationPolicy):
            for r in plan.resources:
                if r.custom:
                    args = SharedResourceArgs(
                        r.type, props[r.urn], r.urn, r.name, _options(r), None, properties,
                        memo=resource_memos.setdefault(r.urn, {}),
                    )
                    policy.validate(args, lambda m, u=None, _u=r.urn, _r=policy.name: report(m, u, _rule=_r, _default=_u))
        else:
            policy.validate(SharedStackArgs(resources, properties, memo=stack_memo), report)
    return findings


def fired(plan: Plan, config: dict[str, dict[str, Any]] | None = None) -> set[tuple[str, str]]:
    """``{(rule, Pulumi name)}`` of every violation."""
    return {(f.rule, f.name) for f in run_rules(plan, config)}


def resource(plan: Plan, type_token: str, name: str | None = None) -> PlannedResource:
    """The one resource of ``type_token`` (named ``name``) in ``plan``."""
    matches = [r for r in plan.resources if r.type == type_token and (name is None or r.name == name)]
    assert len(matches) == 1, (type_token, name, [r.name for r in matches])
    return matches[0]
