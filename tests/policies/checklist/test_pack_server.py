"""The packs' servicer (policies/azml_policies/pack_server.py) answers exactly
what the SDK's own servicer answers, decoding each request once.

Both servicers are driven in-process with the requests ``azml plan`` sends
(azml.policy.runner) and their responses compared as serialized protobuf:
the real packs on broken copies of the recorded plans (violations, unknown
values, secrets, a disabled and a remediate-level policy, an advisory one,
stack tags), and a pack of hand-written policies that use the SDK's other
answers (an unknown value read through the proxy, not_applicable, an async
validation, a policy that only remediates).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from azml.plan.model import SECRET_MARK, UNKNOWN_MARK, Plan
from azml.policy import runner
from azml.policy.pack_config import load_config_file, reconcile

from ...conftest import ROOT

POLICIES_DIR = ROOT / "policies"
if str(POLICIES_DIR) not in sys.path:
    sys.path.insert(0, str(POLICIES_DIR))

import azml_platform  # noqa: E402
import azml_policies  # noqa: E402
from azml_policies import pack_server  # noqa: E402
from azml_policies.pack_server import SharedDecodingServicer  # noqa: E402

from ..platform.test_platform_pack import _with_identity  # noqa: E402
from .test_policy_pack import STORAGE, put, workspace_storage  # noqa: E402

PACKS = {
    "checklist": (azml_policies, POLICIES_DIR / "config.prod.json"),
    "platform": (azml_platform, POLICIES_DIR / "platform" / "config.prod.json"),
}


def _configure(servicer: Any, policies: list[Any], config_path: Path | None, levels: dict[str, str]) -> None:
    info = servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)
    settings = reconcile(runner._schemas(info), load_config_file(config_path), config_path.name if config_path else "config")
    for name, level in levels.items():
        settings[name] = dataclasses.replace(settings[name], enforcement=level)
    servicer.Configure(runner._configure_request(settings), None)
    servicer.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(tags={"team": "ml", "env": "prod"}), None)


def _servicers(policies: list[Any], config_path: Path | None = None, levels: dict[str, str] | None = None) -> tuple[Any, Any]:
    pair = (
        _PolicyAnalyzerServicer("pack", "0.0.1", policies, EnforcementLevel.MANDATORY),
        SharedDecodingServicer("pack", "0.0.1", policies, EnforcementLevel.MANDATORY),
    )
    for servicer in pair:
        _configure(servicer, policies, config_path, levels or {})
    return pair


def _requests(plan: Plan) -> tuple[list[Any], Any]:
    resources = [r for r in plan.resources if r.type != "pulumi:pulumi:Stack"]
    structs = {r.urn: runner.wire_struct(r.inputs) for r in resources}
    analyze = [runner._analyze_request(r, structs[r.urn]) for r in resources if r.custom]
    stack = analyzer_pb2.AnalyzeStackRequest(resources=[runner.analyzer_resource(r, structs[r.urn]) for r in resources])
    return analyze, stack


def _same_answers(sdk: Any, ours: Any, plan: Plan) -> int:
    """Every Analyze and the AnalyzeStack answered byte for byte alike; the
    number of diagnostics (so a caller can see the case reports something)."""
    analyze, stack = _requests(plan)
    diagnostics = 0
    for request in analyze:
        expected = sdk.Analyze(request, None)
        assert ours.Analyze(request, None).SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True
        ), request.urn
        diagnostics += len(expected.diagnostics)
    expected = sdk.AnalyzeStack(stack, None)
    assert ours.AnalyzeStack(stack, None).SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    return diagnostics + len(expected.diagnostics)


def _broken(plan: Plan) -> Plan:
    """A copy of ``plan`` with resource and stack violations of both packs, an
    unknown value and a secret in the inputs."""
    broken = _with_identity(plan, consumer_waits=False)
    account = workspace_storage(broken)
    account.inputs["enableHttpsTrafficOnly"] = False
    account.inputs["minimumTlsVersion"] = UNKNOWN_MARK
    put(account.inputs, "tags.apiToken", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    account.inputs["encryption"] = {"keySource": SECRET_MARK}
    broken.resources = [r for r in broken.resources if not r.name.startswith("diag-stfn")]
    return broken


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_the_real_packs_answer_as_through_the_sdk(pack: str, prod_plan: Plan) -> None:
    module, config_path = PACKS[pack]
    sdk, ours = _servicers(module.ALL_POLICIES, config_path)
    assert _same_answers(sdk, ours, _broken(prod_plan)) > 0


def test_levels_from_the_config_are_honoured_alike(dev_plan: Plan) -> None:
    """A disabled policy runs on neither; remediate reports as mandatory; a
    low-severity policy stays advisory."""
    levels = {"azml-storage-https-only": "disabled", "azml-storage-min-tls": "remediate", "azml-diagnostic-settings": "remediate"}
    sdk, ours = _servicers(azml_policies.ALL_POLICIES, POLICIES_DIR / "config.dev.json", levels)
    broken = _broken(dev_plan)
    account = next(r for r in broken.resources if r.type == STORAGE and r.inputs.get("enableHttpsTrafficOnly") is False)
    account.inputs["minimumTlsVersion"] = "TLS1_0"
    assert _same_answers(sdk, ours, broken) > 0
    (request,) = [q for q in _requests(broken)[0] if q.urn == account.urn]
    answered = {(d.policyName, d.enforcementLevel) for d in ours.Analyze(request, None).diagnostics}
    assert ("azml-storage-min-tls", analyzer_pb2.MANDATORY) in answered
    assert not any(name == "azml-storage-https-only" for name, _ in answered)


# --------------------------------------------------------------------------- the SDK's other answers


def _read_unknown(args: Any, report: Any) -> None:
    if "minimumTlsVersion" in args.props:
        report(f"tls is {args.props['minimumTlsVersion']}")  # the proxy raises on an unknown


def _not_applicable(args: Any, report: Any) -> None:
    if args.props.get("kind") != "StorageV2":
        args.not_applicable("only StorageV2")
    report("a StorageV2 account")


async def _async_check(args: Any, report: Any) -> None:
    report(f"{args.name} has tags {sorted(args.props.get('tags', {}))} in stack tagged {dict(args.stack_tags)}")


def _stack_check(args: Any, report: Any) -> None:
    for resource in args.resources:
        if resource.parent is not None and resource.dependencies and resource.resource_type == STORAGE:
            report(f"{resource.name} under {resource.parent.name} depends on {len(resource.dependencies)}", resource.urn)
    if args.get_config().get("notApplicable"):
        args.not_applicable("configured so")


def _sdk_policies() -> list[Any]:
    return [
        ResourceValidationPolicy(name="unknown-reader", description="reads an unknown", validate=_read_unknown),
        ResourceValidationPolicy(name="not-applicable", description="storage v2 only", validate=_not_applicable),
        ResourceValidationPolicy(name="async", description="async validation", validate=_async_check),
        ResourceValidationPolicy(name="remediation-only", description="only remediates", remediate=lambda args: None),
        StackValidationPolicy(name="stack", description="stack links", validate=_stack_check),
        *azml_policies.ALL_POLICIES[:3],
    ]


def test_unknowns_not_applicable_async_and_remediation_only_answered_alike(prod_plan: Plan) -> None:
    sdk, ours = _servicers(_sdk_policies())
    broken = _broken(prod_plan)
    assert _same_answers(sdk, ours, broken) > 0
    (request,) = [q for q in _requests(broken)[0] if q.urn == workspace_storage(broken).urn]
    response = ours.Analyze(request, None)
    assert any("minimumTlsVersion can't be known during preview" in d.message for d in response.diagnostics)
    assert {n.policy_name for n in response.not_applicable} >= {"remediation-only"}


# --------------------------------------------------------------------------- decoded once


@pytest.fixture()
def decodings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The properties the packs' servicer decodes (MessageToDict, deserialize,
    proxy), one entry each time."""
    calls: list[str] = []
    decode = pack_server._props

    def counted(properties: Any) -> Any:
        calls.append(json_format.MessageToJson(properties))
        return decode(properties)

    monkeypatch.setattr(pack_server, "_props", counted)
    return calls


def test_a_request_is_decoded_once_whatever_the_number_of_policies(prod_plan: Plan, decodings: list[str]) -> None:
    _, ours = _servicers(azml_policies.ALL_POLICIES, POLICIES_DIR / "config.prod.json")
    analyze, stack = _requests(prod_plan)
    account = next(q for q in analyze if q.urn == workspace_storage(prod_plan).urn)
    storage_policies = [p for p in azml_policies.ALL_POLICIES if isinstance(p, ResourceValidationPolicy) and p.applies_to(STORAGE)]
    assert len(storage_policies) >= 10
    ours.Analyze(account, None)
    assert len(decodings) == 1
    decodings.clear()
    ours.AnalyzeStack(stack, None)
    stack_policies = [p for p in azml_policies.ALL_POLICIES if isinstance(p, StackValidationPolicy)]
    # Once for the stack, whatever the number of stack policies; the account Analyze decoded is reused.
    assert len(stack_policies) > 5 and len(decodings) == len(stack.resources) - 1


def test_the_stack_reuses_an_analyze_decoding_only_for_the_same_bytes(prod_plan: Plan, decodings: list[str]) -> None:
    sdk, ours = _servicers(azml_policies.ALL_POLICIES, POLICIES_DIR / "config.prod.json")
    analyze, stack = _requests(prod_plan)
    account = next(q for q in analyze if q.urn == workspace_storage(prod_plan).urn)
    ours.Analyze(account, None)
    # The engine's stack view of the account differs from what Analyze saw: decoded anew, judged on it.
    (stacked,) = (r for r in stack.resources if r.urn == account.urn)
    stacked.properties.update({"allowSharedKeyAccess": True})
    decodings.clear()
    expected = sdk.AnalyzeStack(stack, None)
    assert ours.AnalyzeStack(stack, None).SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert len(decodings) == len(stack.resources)


def test_a_type_no_policy_reads_is_not_decoded(decodings: list[str]) -> None:
    _, ours = _servicers([p for p in azml_policies.ALL_POLICIES if isinstance(p, ResourceValidationPolicy) and "*" not in p.info.resource_types])
    response = ours.Analyze(analyzer_pb2.AnalyzeRequest(type="azml:test:Unread", urn="urn:x", name="x"), None)
    assert not response.diagnostics and not decodings
