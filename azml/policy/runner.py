"""Run the real CrossGuard pack over a recorded plan, the way the Pulumi CLI does.

The pack is launched exactly like the CLI's Python policy host launches it
(``python -m pulumi.policy <engine> <pack dir>``, which prints its gRPC port),
then driven over gRPC with Pulumi's public analyzer protocol: GetAnalyzerInfo,
Configure (with the stack's policy config reconciled like the CLI does),
Analyze for each resource and AnalyzeStack for the whole plan.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi.runtime.rpc import UNKNOWN, _special_secret_sig, _special_sig_key

from ..plan.model import SECRET_MARK, UNKNOWN_MARK, Plan, PlannedResource
from .pack_config import PolicySchema, PolicySetting, load_config_file, reconcile
from .report import PolicyReport, Violation

_LEVEL_NAMES = {v: k.lower() for k, v in analyzer_pb2.EnforcementLevel.items()}
_LEVEL_VALUES = {k.lower(): v for k, v in analyzer_pb2.EnforcementLevel.items()}
_SEVERITIES = {v: k.removeprefix("POLICY_SEVERITY_").lower() for k, v in analyzer_pb2.PolicySeverity.items()}
_STARTUP_SECONDS = 60


class PolicyRunError(RuntimeError):
    """The pack could not be started or answered unexpectedly."""


def _wire_value(value: Any) -> Any:
    """Plan values back to the wire form the engine sends: secrets as secret
    objects, unknowns as the unknown sentinel."""
    if value == UNKNOWN_MARK:
        return UNKNOWN
    if value == SECRET_MARK:
        return {_special_sig_key: _special_secret_sig, "value": SECRET_MARK}
    if isinstance(value, dict):
        return {k: _wire_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_value(v) for v in value]
    return value


def wire_struct(inputs: dict[str, Any]) -> struct_pb2.Struct:
    """Plan inputs as the Struct the engine sends to an analyzer."""
    struct = struct_pb2.Struct()
    struct.update(_wire_value(inputs))
    return struct


def _options(resource: PlannedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    options = resource.options
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(options.get("protect")),
        ignoreChanges=list(options.get("ignoreChanges", [])),
        deleteBeforeReplace=bool(options.get("deleteBeforeReplace")),
        deleteBeforeReplaceDefined="deleteBeforeReplace" in options,
        additionalSecretOutputs=list(options.get("additionalSecretOutputs", [])),
        aliases=list(options.get("aliases", [])),
        parent=resource.parent or "",
    )


@contextmanager
def launched_pack(pack_dir: Path, project: str, stack: str) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start the pack as the CLI would and yield a connected analyzer stub."""
    pack_dir = pack_dir.resolve()
    if not (pack_dir / "__main__.py").is_file():
        raise PolicyRunError(f"no policy pack at {pack_dir} (expected {pack_dir / '__main__.py'})")
    env = {**os.environ, "PULUMI_PROJECT": project, "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir)],
        cwd=pack_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], _STARTUP_SECONDS)
        line = process.stdout.readline().strip() if ready and process.stdout else ""
        if not line.isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            detail = (err or line or "no output").strip().splitlines()[-1:]
            raise PolicyRunError(f"policy pack did not start: {' '.join(detail)}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=_STARTUP_SECONDS)
        try:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            channel.close()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _schemas(info: analyzer_pb2.AnalyzerInfo) -> dict[str, PolicySchema]:
    return {
        policy.name: PolicySchema(
            name=policy.name,
            enforcement=_LEVEL_NAMES[policy.enforcementLevel],
            properties=json_format.MessageToDict(policy.configSchema.properties),
            required=tuple(policy.configSchema.required),
        )
        for policy in info.policies
    }


#: Analyze calls in flight at once. The pack is one Python process (its four
#: server threads share one interpreter lock), so this gains no parallel
#: evaluation; it overlaps our side of each call (building and sending the
#: next request, reading the last answer) with the pack's work and hides the
#: round trip, as the Pulumi engine does by analysing resources as its steps
#: run concurrently. Answers are read back in request order.
_IN_FLIGHT = 8


def _analyze_all(analyzer: analyzer_pb2_grpc.AnalyzerStub, requests: Iterable[analyzer_pb2.AnalyzeRequest]) -> list[Any]:
    pending: deque[Any] = deque()
    responses: list[Any] = []
    for request in requests:
        pending.append(analyzer.Analyze.future(request))
        if len(pending) >= _IN_FLIGHT:
            responses.append(pending.popleft().result())
    responses.extend(future.result() for future in pending)
    return responses


def evaluate(plan: Plan, pack_dir: Path, config_path: Path | None = None) -> PolicyReport:
    """Every diagnostic the pack reports on ``plan`` under ``config_path``."""
    started = time.perf_counter()
    with launched_pack(pack_dir, plan.project, plan.stack) as analyzer:
        info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
        ready = time.perf_counter()
        settings = reconcile(_schemas(info), load_config_file(config_path), config_path.name if config_path else "config")
        analyzer.Configure(_configure_request(settings))

        resources = [r for r in plan.resources if r.type != "pulumi:pulumi:Stack"]
        custom = [r for r in resources if r.custom]
        # Each resource's properties go to Analyze and to AnalyzeStack: build them once.
        structs = {r.urn: wire_struct(r.inputs) for r in resources}
        responses = _analyze_all(analyzer, (_analyze_request(r, structs[r.urn]) for r in custom))
        stack_response = analyzer.AnalyzeStack(
            analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_resource(r, structs[r.urn]) for r in resources])
        )
        analyzed = time.perf_counter()

    remediation = {p.name: p.remediation_steps for p in info.policies}
    descriptions = {p.name: p.description for p in info.policies}
    violations = [
        Violation(
            policy=d.policyName,
            urn=d.urn or resource_urn,
            # The SDK sends "<description>\n<violation>"; keep the violation.
            message=d.message.removeprefix(f"{d.description}\n") if d.description else d.message,
            enforcement=_LEVEL_NAMES[d.enforcementLevel],
            severity=_SEVERITIES.get(d.severity, "unspecified"),
            description=d.description or descriptions.get(d.policyName, ""),
            remediation=remediation.get(d.policyName, ""),
        )
        for resource_urn, response in [*zip([r.urn for r in custom], responses), ("", stack_response)]
        for d in response.diagnostics
    ]
    return PolicyReport(
        pack=info.name,
        version=_pack_version(pack_dir) or info.version,
        config=shown_path(config_path) if config_path else None,
        policies={name: setting.enforcement for name, setting in settings.items()},
        violations=violations,
        resources_analyzed=len(custom),
        timings={"startSeconds": round(ready - started, 3), "analyzeSeconds": round(analyzed - ready, 3)},
        exemptions={
            name: list(setting.properties.get("exemptResources") or [])
            for name, setting in settings.items()
            if setting.enforcement != "disabled" and setting.properties.get("exemptResources")
        },
    )


def evaluate_all(plan: Plan, packs: list[tuple[Path, Path | None]]) -> list[PolicyReport]:
    """:func:`evaluate` for each ``(pack_dir, config_path)``, the packs run
    side by side (each is its own process, so they use a core each, as the
    Pulumi CLI runs every ``--policy-pack`` it is given); the reports come
    back in the order given, and the first pack's error (in that order) is
    the one raised."""
    if len(packs) < 2:
        return [evaluate(plan, pack_dir, config) for pack_dir, config in packs]
    with ThreadPoolExecutor(max_workers=len(packs), thread_name_prefix="policy-pack") as pool:
        futures = [pool.submit(evaluate, plan, pack_dir, config) for pack_dir, config in packs]
        return [future.result() for future in futures]


def shown_path(path: Path) -> str:
    """``path`` as plan.json shows it: relative to its Pulumi project (the
    nearest folder above it holding ``Pulumi.yaml``), so that two machines
    produce the same plan for the same commit; else its name."""
    path = path.resolve()
    for folder in path.parents:
        if (folder / "Pulumi.yaml").is_file():
            return path.relative_to(folder).as_posix()
    return path.name


def _pack_version(pack_dir: Path) -> str | None:
    """The CLI takes a Python pack's version from PulumiPolicy.yaml (the SDK
    always answers 0.0.1)."""
    from ..yamlfile import YamlInputError, read_yaml

    path = pack_dir / "PulumiPolicy.yaml"
    try:
        document = read_yaml(path, what="policy pack project file") if path.is_file() else None
    except YamlInputError as error:
        raise PolicyRunError(str(error)) from None
    version = document.get("version") if isinstance(document, dict) else None
    return str(version) if version is not None else None


def _configure_request(settings: dict[str, PolicySetting]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, setting in settings.items():
        properties = struct_pb2.Struct()
        properties.update(setting.properties)
        request.policyConfig[name].CopyFrom(
            analyzer_pb2.PolicyConfig(enforcementLevel=_LEVEL_VALUES[setting.enforcement], properties=properties)
        )
    return request


def _analyze_request(resource: PlannedResource, properties: struct_pb2.Struct) -> analyzer_pb2.AnalyzeRequest:
    return analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=properties,
        urn=resource.urn,
        name=resource.name,
        options=_options(resource),
    )


def analyzer_resource(
    resource: PlannedResource, properties: struct_pb2.Struct | None = None
) -> analyzer_pb2.AnalyzerResource:
    """A plan resource as AnalyzeStack receives it from the engine."""
    message = analyzer_pb2.AnalyzerResource(
        type=resource.type,
        properties=properties if properties is not None else wire_struct(resource.inputs),
        urn=resource.urn,
        name=resource.name,
        options=_options(resource),
        parent=resource.parent or "",
        dependencies=resource.dependencies,
    )
    for key, urns in resource.property_dependencies.items():
        message.propertyDependencies[key].urns.extend(urns)
    return message

