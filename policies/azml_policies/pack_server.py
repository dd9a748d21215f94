"""The analyzer both packs are served by: the SDK's, minus its repeated work.

``pulumi_policy.PolicyPack`` serves a pack through the SDK's
``_PolicyAnalyzerServicer``. Its ``Analyze`` converts the resource's protobuf
properties to a dict (``MessageToDict``), deserializes them and wraps them in
the unknown-checking proxy *once per resource policy*, and its
``AnalyzeStack`` converts every resource of the stack again *once per stack
policy*; each call also inspects ``pulumi.runtime.Settings``' signature. With
~70 policies that repeated decoding, not the checks, was most of the time a
5,000-resource plan took (benchmarks/policy_scaling.py).

:class:`SharedDecodingServicer` answers the same protocol with the same
messages (tests/policies/checklist/test_pack_server.py compares its responses with the SDK's
servicer byte for byte):

- ``Analyze`` decodes the request once, on the first policy that runs, and
  hands every policy the same props, options and provider, each with its own
  config, in the SDK's order; resource policies that declare their types
  (:meth:`~azml_policies.checks.AzmlResourcePolicy.applies_to`) are skipped
  on other types before anything is built for them (they would return at
  once);
- ``AnalyzeStack`` decodes and links the stack once and hands every stack
  policy the same resources; a resource whose properties are byte for byte
  those an ``Analyze`` call of this process already decoded (the engine sends
  each resource to ``Analyze`` first) reuses that decoding instead of
  repeating it;
- both hand policies ``args.memo``, a dict that lives for one request, where
  the pack keeps what it derives from the request once for all its policies
  (normalized properties, the indexed stack);
- the runtime settings the SDK reconfigures on every call are configured
  once per server thread: they come from the process environment, which does
  not change, and are context variables, so each thread keeps its own.

Unknown values and secrets reach policies exactly as through the SDK: the
decoding is the SDK's own (``deserialize_properties`` and
``unknown_checking_proxy`` of ``MessageToDict``), only done fewer times.
:func:`serve_pack` is ``PolicyPack(...)`` with this servicer: the SDK still
checks the arguments, starts the gRPC server and prints its port.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from inspect import isawaitable
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

from google.protobuf import json_format
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    PolicyResource,
    PolicyResourceOptions,
    PolicyProviderResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import policy as sdk
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

Memo = dict[str, Any]


class SharedResourceArgs(ResourceValidationArgs):
    """``ResourceValidationArgs`` plus ``memo``: one dict per Analyze request,
    shared by every policy the request runs."""

    def __init__(self, *args: Any, memo: Memo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo = memo


class SharedStackArgs(StackValidationArgs):
    """``StackValidationArgs`` plus ``memo``: one dict per AnalyzeStack request."""

    def __init__(self, *args: Any, memo: Memo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo = memo


def request_memo(args: Any) -> Memo | None:
    """The request's memo, or None when a policy is called some other way
    (the SDK's own servicer, tests): then nothing is shared."""
    memo = getattr(args, "memo", None)
    return memo if isinstance(memo, dict) else None


def memoized(args: Any, key: str, build: Callable[[], Any]) -> Any:
    """``build()``, once per request when the request has a memo."""
    memo = request_memo(args)
    if memo is None:
        return build()
    if key not in memo:
        memo[key] = build()
    return memo[key]


class _Decoded(NamedTuple):
    props: Any
    opts: PolicyResourceOptions
    provider: PolicyProviderResource | None


def _props(properties: Any) -> Any:
    """The SDK's decoding of a Struct of properties, as its servicer does it."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(properties)))


class SharedDecodingServicer(sdk._PolicyAnalyzerServicer):
    """The SDK's analyzer servicer, decoding each request once (module docstring)."""

    def __init__(self, name: str, version: str, policies: list[Any], enforcement_level: EnforcementLevel, *rest: Any) -> None:
        super().__init__(name, version, policies, enforcement_level, *rest)
        self._pack_name = name
        self._pack_version = version
        self._policies = list(policies)
        self._stack_tags: Mapping[str, str] = MappingProxyType({})
        self._by_type: dict[str, list[Any]] = {}
        self._thread = threading.local()
        # urn -> (serialized properties, their decoding) from Analyze, for AnalyzeStack.
        self._seen: dict[str, tuple[bytes, Any]] = {}
        self._seen_lock = threading.Lock()

    # ------------------------------------------------------------------ once, not per call

    def _configure_runtime_settings(self) -> None:
        if not getattr(self._thread, "configured", False):
            super()._configure_runtime_settings()
            self._thread.configured = True

    def ConfigureStack(self, request: Any, context: Any) -> Any:
        self._stack_tags = MappingProxyType(dict(request.tags))
        return super().ConfigureStack(request, context)

    def _policies_for(self, resource_type: str) -> list[Any]:
        """The policies in pack order, less the resource policies that declare
        other types (built once per type token)."""
        policies = self._by_type.get(resource_type)
        if policies is None:
            policies = [
                p for p in self._policies
                if not isinstance(p, ResourceValidationPolicy) or getattr(p, "applies_to", lambda _: True)(resource_type)
            ]
            self._by_type[resource_type] = policies
        return policies

    def _decode(self, request: Any) -> _Decoded:
        props = _props(request.properties)
        with self._seen_lock:
            self._seen[request.urn] = (request.properties.SerializeToString(deterministic=True), props)
        return _Decoded(props, self._get_resource_options(request), self._get_provider_resource(request))

    def _stack_props(self, resource: Any) -> Any:
        """The decoding Analyze made of the same bytes, else a fresh one."""
        with self._seen_lock:
            seen = self._seen.get(resource.urn)
        if seen is not None and seen[0] == resource.properties.SerializeToString(deterministic=True):
            return seen[1]
        return _props(resource.properties)

    # ------------------------------------------------------------------ the protocol

    def _run(self, response: Any, policy: Any, args: Any, report_violation: Any) -> None:
        """Run one policy as the SDK does, turning its exceptions into the SDK's answers."""
        try:
            result = policy.validate(args, report_violation)
            if isawaitable(result):
                loop = asyncio.new_event_loop()
                task = asyncio.Task(result, loop=loop)
                loop.run_until_complete(task)
                loop.close()
        except UnknownValueError as e:
            response.diagnostics.append(proto.AnalyzeDiagnostic(
                policyName=policy.name,
                policyPackName=self._pack_name,
                policyPackVersion=self._pack_version,
                message=(f"can't run policy '{policy.name}' from policy pack "
                         f"'{self._pack_name}@v{self._pack_version}' during preview: {e.message}"),
                urn="",
                description=policy.description,
                enforcementLevel=self._map_enforcement_level(EnforcementLevel.ADVISORY),
            ))
        except sdk._NotApplicableError as e:
            response.not_applicable.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=e.reason or ""))

    def Analyze(self, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        decoded: _Decoded | None = None
        memo: Memo = {}
        for policy in self._policies_for(request.type):
            enforcement_level = self._get_enforcement_level(policy)
            if enforcement_level == EnforcementLevel.DISABLED or not isinstance(policy, ResourceValidationPolicy):
                continue
            if not policy.has_validation():
                response.not_applicable.append(proto.PolicyNotApplicable(
                    policy_name=policy.name, reason="Policy does not implement validate",
                ))
                continue
            if enforcement_level == EnforcementLevel.REMEDIATE:
                # As the SDK: a violation after remediation is reported as mandatory.
                enforcement_level = EnforcementLevel.MANDATORY
            report_violation = self._create_report_violation(
                response, policy.name, policy.description, enforcement_level, policy.severity
            )
            if decoded is None:
                decoded = self._decode(request)
            args = SharedResourceArgs(
                request.type, decoded.props, request.urn, request.name, decoded.opts, decoded.provider,
                self._get_policy_config(policy.name), self._stack_tags, memo=memo,
            )
            self._run(response, policy, args, report_violation)
        return response

    def _stack(self, request: Any) -> list[PolicyResource]:
        """The request's resources, decoded and linked as the SDK's AnalyzeStack links them."""
        resources: list[PolicyResource] = []
        links = []
        for r in request.resources:
            resource = PolicyResource(
                r.type, self._stack_props(r), r.urn, r.name, self._get_resource_options(r),
                self._get_provider_resource(r), None, [], {},
            )
            resources.append(resource)
            links.append((r.parent, list(r.dependencies), {k: list(v.urns) for k, v in r.propertyDependencies.items()}))
        by_urn = {r.urn: r for r in resources}
        for resource, (parent, dependencies, property_dependencies) in zip(resources, links):
            if parent is not None and parent in by_urn:
                resource.parent = by_urn[parent]
            resource.dependencies.extend(by_urn[d] for d in dependencies if d in by_urn)
            for key, urns in property_dependencies.items():
                resource.property_dependencies[key] = [by_urn[d] for d in urns if d in by_urn]
        return resources

    def AnalyzeStack(self, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        resources: list[PolicyResource] | None = None
        memo: Memo = {}
        for policy in self._policies:
            enforcement_level = self._get_enforcement_level(policy)
            if enforcement_level == EnforcementLevel.DISABLED or not isinstance(policy, StackValidationPolicy):
                continue
            if enforcement_level == EnforcementLevel.REMEDIATE:
                # As the SDK: stack policies cannot remediate, so the level is mandatory.
                enforcement_level = EnforcementLevel.MANDATORY
            report_violation = self._create_report_violation(
                response, policy.name, policy.description, enforcement_level, policy.severity
            )
            if resources is None:
                resources = self._stack(request)
            args = SharedStackArgs(resources, self._get_policy_config(policy.name), self._stack_tags, memo=memo)
            self._run(response, policy, args, report_violation)
        return response


def serve_pack(**pack: Any) -> None:
    """``PolicyPack(**pack)`` served by :class:`SharedDecodingServicer`: the
    SDK's PolicyPack checks the arguments, starts the gRPC server, prints its
    port and blocks as always; it builds its servicer by this module-level
    name, the one thing replaced (only in the pack's own process, which runs
    nothing else)."""
    sdk._PolicyAnalyzerServicer = SharedDecodingServicer  # type: ignore[misc]
    # What the pack imported (pulumi, grpc, protobuf, the policies) stays for its
    # whole life: out of the cyclic collector's reach, its full collections scan only
    # what requests allocate (decoding thousands of resources triggers many).
    gc.freeze()
    PolicyPack(**pack)
