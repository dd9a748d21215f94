"""The CrossGuard pack in policies/: every policy run with the SDK's own
argument types on the recorded dev and prod plans, as the Pulumi CLI would run
it (properties through protobuf and the SDK's deserializer and unknown-checking
proxy, config with schema defaults filled), plus the pack served over gRPC the
way the CLI launches it.

The pack's ``__main__.py`` is never imported (PolicyPack() blocks): the
policies come from the sibling package ``azml_policies``.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import random
import re
import select
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import grpc
import jsonschema
import pytest
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy
from ruamel.yaml import YAML

from azml.plan.model import Plan, PlannedResource
from azml.policy.runner import analyzer_resource, wire_struct

from ...conftest import ROOT

PACK_DIR = ROOT / "policies"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

from azml_policies import ALL_POLICIES, BASELINE, CHECKLIST, PACK_NAME, POLICY_INFO, config_of  # noqa: E402
from azml_policies.pack_server import SharedResourceArgs, SharedStackArgs  # noqa: E402

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
PACK_LEVEL = "mandatory"  # what __main__.py gives the pack
POLICIES = {p.name: p for p in ALL_POLICIES}

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
ONLINE_ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
SCHEDULE = "azure-native:machinelearningservices:Schedule"
ROUTING = "pulumi-python:dynamic/azml:EndpointRouting"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
SYSTEM_TOPIC = "azure-native:eventgrid:SystemTopic"
BATCH_DEPLOYMENT = "azure-native:machinelearningservices:BatchDeployment"
NSG = "azure-native:network:NetworkSecurityGroup"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
VNET_LINK = "azure-native:privatedns:VirtualNetworkLink"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
LOCK = "azure-native:authorization:ManagementLockByScope"
POLICY_ASSIGNMENT = "azure-native:authorization:PolicyAssignment"
PRICING = "azure-native:security:Pricing"
FOREIGN_ENVIRONMENT = (
    "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/other/environments/e/versions/1"
)

# What the untouched stacks may break under their own policy config, as
# (policy, Pulumi name of the resource): nothing; an entry would be a gap in the program.
KNOWN_GAPS: dict[str, set[tuple[str, str]]] = {"dev": set(), "prod": set()}
KNOWN_ADVISORIES: dict[str, set[tuple[str, str]]] = {"dev": set(), "prod": set()}


# --------------------------------------------------------------------------- harness


def sdk_props(inputs: dict[str, Any]) -> Any:
    """Properties exactly as the SDK's analyzer hands them to a policy."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(wire_struct(inputs))))


def _options(resource: PlannedResource) -> PolicyResourceOptions:
    options = resource.options
    return PolicyResourceOptions(
        protect=bool(options.get("protect")),
        ignore_changes=list(options.get("ignoreChanges", [])),
        delete_before_replace=options.get("deleteBeforeReplace"),
        aliases=list(options.get("aliases", [])),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(options.get("additionalSecretOutputs", [])),
        parent=resource.parent,
    )


def stack_resources(plan: Plan, props: dict[str, Any]) -> list[PolicyResource]:
    """PolicyResource objects linked like the SDK's AnalyzeStack links them."""
    by_urn = {
        r.urn: PolicyResource(r.type, props[r.urn], r.urn, r.name, _options(r), None, None, [], {}) for r in plan.resources
    }
    for r in plan.resources:
        resource = by_urn[r.urn]
        resource.parent = by_urn.get(r.parent) if r.parent else None
        resource.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
        resource.property_dependencies = {k: [by_urn[d] for d in v if d in by_urn] for k, v in r.property_dependencies.items()}
    return list(by_urn.values())


def load_config(stack: str | None) -> dict[str, Any]:
    return json.loads((PACK_DIR / f"config.{stack}.json").read_text()) if stack else {}


def effective_config(stack: str | None, overrides: dict[str, Any] | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """Level and properties of each policy as the CLI reconciles them: the
    pack's level, then ``all``, then the policy's entry; properties from the
    schema defaults, then the entry; numbers as the CLI sends them (floats)."""
    raw = {**load_config(stack), **(overrides or {})}
    result = {}
    for policy in ALL_POLICIES:
        level = raw.get("all", policy.enforcement_level.value if policy.enforcement_level else PACK_LEVEL)
        schema = policy.config_schema.properties if policy.config_schema else {}
        properties = {k: v["default"] for k, v in schema.items() if "default" in v}
        entry = raw.get(policy.name)
        if isinstance(entry, str):
            level = entry
        elif isinstance(entry, dict):
            level = entry.get("enforcementLevel", level)
            properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        result[policy.name] = (level, json_format.MessageToDict(wire_struct(properties)))
    return result


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    name: str  # Pulumi name of the resource ("" for the stack)
    message: str


def evaluate(
    plan: Plan, stack: str | None, overrides: dict[str, Any] | None = None, props: dict[str, Any] | None = None
) -> list[Finding]:
    """Every violation the pack reports on ``plan`` under ``config.<stack>.json``."""
    config = effective_config(stack, overrides)
    props = props or {r.urn: sdk_props(r.inputs) for r in plan.resources}
    names = {r.urn: r.name for r in plan.resources}
    findings: list[Finding] = []

    def collector(policy: str, level: str, default_urn: str | None) -> Callable[..., None]:
        def report(message: str, urn: str | None = None) -> None:
            assert isinstance(message, str) and message
            findings.append(Finding(policy, level, names.get(default_urn or urn or "", ""), message))

        return report

    resources = stack_resources(plan, props)
    # Shared as the pack's servicer shares them: one memo per request (a resource, the stack).
    stack_memo: dict[str, Any] = {}
    resource_memos: dict[str, dict[str, Any]] = {}
    for policy in ALL_POLICIES:
        level, properties = config[policy.name]
        if level == "disabled":
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for r in plan.resources:
                if r.custom:
                    args = SharedResourceArgs(
                        r.type, props[r.urn], r.urn, r.name, _options(r), None, properties,
                        memo=resource_memos.setdefault(r.urn, {}),
                    )
                    policy.validate(args, collector(policy.name, level, r.urn))
        else:
            assert isinstance(policy, StackValidationPolicy)
            policy.validate(SharedStackArgs(resources, properties, memo=stack_memo), collector(policy.name, level, None))
    return findings


def by_level(findings: Iterable[Finding], level: str) -> set[tuple[str, str]]:
    return {(f.policy, f.name) for f in findings if f.level == level}


def one(plan: Plan, type_token: str, name: str | None = None) -> PlannedResource:
    matches = [r for r in plan.of_type(type_token) if name is None or r.name == name]
    assert len(matches) == 1, (type_token, name, [r.name for r in matches])
    return matches[0]


def put(inputs: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        inputs = inputs[int(key)] if isinstance(inputs, list) else inputs[key]
    if isinstance(inputs, list):
        inputs[int(keys[-1])] = value
    else:
        inputs[keys[-1]] = value


def drop(plan: Plan, type_token: str, *names: str) -> None:
    gone = {one(plan, type_token, n).urn for n in names}
    plan.resources[:] = [r for r in plan.resources if r.urn not in gone]


def zone_configs(plan: Plan, group: str) -> list[dict[str, Any]]:
    return one(plan, ZONE_GROUP, group).inputs["privateDnsZoneConfigs"]


def workspace_storage(plan: Plan) -> PlannedResource:
    (workspace,) = plan.of_type(WORKSPACE)
    (account,) = [a for a in plan.of_type(STORAGE) if workspace.inputs["storageAccount"].endswith("/" + a.inputs["accountName"])]
    return account


# --------------------------------------------------------------------------- metadata


def test_pack_exports_name_and_policies() -> None:
    assert PACK_NAME == "azml-security-checklist"
    assert len(ALL_POLICIES) == len(POLICIES) == len(POLICY_INFO) == 72
    assert set(POLICY_INFO) == set(POLICIES)


@pytest.mark.parametrize("name", sorted(POLICY_INFO))
def test_every_policy_declares_its_metadata(name: str) -> None:
    info, policy = POLICY_INFO[name], POLICIES[name]
    assert re.fullmatch(r"azml(-[a-z0-9]+)+", name)
    assert info.description and policy.description == info.description
    assert info.checklist in CHECKLIST + BASELINE
    assert isinstance(info.severity, Severity) and policy.severity == info.severity
    assert len(info.remediation) > 20 and policy.remediation_steps == info.remediation
    # "*": every type (azml-secret-values walks the inputs of every resource).
    assert info.resource_types and all(
        t == "*" or re.fullmatch(r"(azure-native:[a-z]+|pulumi-python:dynamic/azml):[A-Za-z]+", t) for t in info.resource_types
    )
    assert info.properties and all(isinstance(p, str) and p for p in info.properties)
    assert policy.framework is not None and policy.framework.reference == info.checklist
    expected_type = ResourceValidationPolicy if info.kind == "resource" else StackValidationPolicy
    assert isinstance(policy, expected_type)
    # Config: a schema with a default for every property, defaults valid against it.
    assert policy.config_schema is not None and policy.config_schema.properties == info.config_schema
    schema = {"type": "object", "properties": info.config_schema}
    assert all("default" in spec for spec in info.config_schema.values())
    jsonschema.Draft7Validator(schema).validate(info.defaults)
    assert config_of(info, {}) == info.defaults == config_of(info, None)


def test_the_checklist_rows_are_all_covered() -> None:
    covered = {info.checklist for info in POLICY_INFO.values()}
    # "Promotion gate result persisted" belongs to the release controller, not to infrastructure.
    assert set(CHECKLIST) <= covered


def test_config_from_the_engine_is_coerced_to_the_schema_and_bad_values_keep_defaults() -> None:
    info = POLICY_INFO["azml-deployment-min-instances"]
    assert config_of(info, {"minInstances": 3.0})["minInstances"] == 3
    assert isinstance(config_of(info, {"minInstances": 3.0})["minInstances"], int)
    assert config_of(info, {"minInstances": "three"})["minInstances"] == 2
    assert config_of(info, {"minInstances": 2.5})["minInstances"] == 2
    assert config_of(info, {"unknownKey": 1}) == info.defaults


def test_readme_documents_every_policy_and_the_dev_relaxations() -> None:
    readme = (PACK_DIR / "README.md").read_text()
    for name in POLICY_INFO:
        assert f"`{name}`" in readme, name
    relaxed = {k for k in load_config("dev") if k != "all" and load_config("dev")[k] != load_config("prod").get(k)}
    section = readme.split("## Dev relaxations", 1)[1]
    for name in relaxed:
        assert f"`{name}`" in section, name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_config_files_name_existing_policies_valid_levels_and_valid_properties(stack: str) -> None:
    config = load_config(stack)
    # No "all": it would override the advisory level low-severity policies declare.
    assert "all" not in config
    for name, entry in config.items():
        if name == "all":
            continue
        assert name in POLICIES, f"config.{stack}.json names unknown policy {name}"
        if isinstance(entry, str):
            assert entry in LEVELS
            continue
        assert isinstance(entry, dict)
        assert entry.get("enforcementLevel", "mandatory") in LEVELS
        properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        schema = POLICY_INFO[name].config_schema
        assert set(properties) <= set(schema), f"{name}: unknown properties {set(properties) - set(schema)}"
        jsonschema.Draft7Validator({"type": "object", "properties": schema}).validate(properties)


def test_prod_enforces_everything_but_low_severity_advice() -> None:
    levels = {name: level for name, (level, _) in effective_config("prod").items()}
    advisory = {name for name, info in POLICY_INFO.items() if info.severity == Severity.LOW}
    assert advisory == {"azml-compute-scale-to-zero"}
    assert {name for name, level in levels.items() if level == "advisory"} == advisory
    assert {level for name, level in levels.items() if name not in advisory} == {"mandatory"}


def test_main_only_builds_the_policy_pack() -> None:
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # docstring
    imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
    calls = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    assert {(n.module, tuple(a.name for a in n.names)) for n in imports if isinstance(n, ast.ImportFrom)} == {
        ("pulumi_policy", ("EnforcementLevel",)),
        ("azml_policies", ("ALL_POLICIES", "PACK_NAME")),
        # The SDK's PolicyPack served by the packs' servicer (tests/policies/checklist/test_pack_server.py).
        ("azml_policies.pack_server", ("serve_pack",)),
    }
    (statement,) = calls
    assert isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
    call = statement.value
    assert isinstance(call.func, ast.Name) and call.func.id == "serve_pack" and not call.args
    keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
    assert keywords == {"name": "PACK_NAME", "enforcement_level": "EnforcementLevel.MANDATORY", "policies": "ALL_POLICIES"}


def test_pack_project_files() -> None:
    project = YAML(typ="safe").load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": "venv"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"]) and project["description"]
    requirements = [line.strip() for line in (PACK_DIR / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert sorted(requirements) == ["pulumi-policy==1.21.0", "pulumi==3.272.0"]
    assert "venv/" in (PACK_DIR / ".gitignore").read_text().split()


# --------------------------------------------------------------------------- the untouched stacks


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_untouched_plans_break_no_mandatory_policy_beyond_the_known_gaps(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    findings = evaluate(plan, stack)
    assert by_level(findings, "mandatory") == KNOWN_GAPS[stack]
    assert by_level(findings, "advisory") == KNOWN_ADVISORIES[stack]


def test_untouched_plans_under_defaults_only(dev_plan: Plan) -> None:
    """Without a config file the pack is strict (prod-like): dev's relaxed
    settings then show up."""
    assert by_level(evaluate(dev_plan, None), "mandatory") == {
        ("azml-workspace-hbi", "mlw"),
        ("azml-deployment-min-instances", "credit-risk-endpoint-blue"),
        ("azml-keyvault-soft-delete", "kv"),
        # Risk acceptances of the stack configs (dated, with reasons: README).
        ("azml-storage-public-network-disabled", "st-fn"),
        ("azml-registry-quarantine", "cr"),
        # Governance dev relaxes (no locks, one audit-only policy, no Defender plan: policies/README.md).
        ("azml-governance-locks", "kv"),
        ("azml-governance-locks", "st"),
        ("azml-governance-workspace-protected", "mlw"),
        ("azml-governance-policy-assignments", "policy-ml-workspace-no-public-network"),
        ("azml-governance-policy-assignments", "rg"),
        ("azml-governance-defender-plans", "rg"),
        # Data protection and the scan gate dev relaxes (week-long soft delete, Defender left to prod),
        # and App Insights' local auth, a dated acceptance in both stacks (policies/README.md).
        ("azml-storage-blob-soft-delete", "st"),
        ("azml-storage-blob-soft-delete", "st-fn"),
        ("azml-storage-container-soft-delete", "st"),
        ("azml-storage-container-soft-delete", "st-fn"),
        ("azml-registry-vulnerability-assessment", "cr"),
        ("azml-appinsights-local-auth-disabled", "appi"),
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_function_host_storage_keeps_its_public_endpoint(stack: str, request: pytest.FixtureRequest) -> None:
    """The exemption is that one account, and it still denies by default and
    lets only trusted services through its firewall."""
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    config = json.loads((PACK_DIR / f"config.{stack}.json").read_text())
    (acceptance,) = config["azml-storage-public-network-disabled"]["exemptResources"]
    assert acceptance["resource"] == "st-fn" and "Event Grid" in acceptance["reason"]
    host = one(plan, STORAGE, "st-fn")
    assert host.inputs["publicNetworkAccess"] == "Enabled"
    assert host.inputs["networkRuleSet"] == {"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []}
    others = [r for r in plan.of_type(STORAGE) if r.name != "st-fn"]
    assert others and all(r.inputs["publicNetworkAccess"] == "Disabled" for r in others)


def _without_host_storage_audit(plan: Plan) -> Plan:
    """A copy of ``plan`` whose retraining host storage has no diagnostic settings."""
    stripped = copy.deepcopy(plan)
    stripped.resources = [r for r in stripped.resources if not r.name.startswith("diag-stfn")]
    return stripped


def _without_lineage(plan: Plan) -> Plan:
    stripped = copy.deepcopy(plan)
    for deployment in stripped.of_type(ONLINE_DEPLOYMENT) + stripped.of_type(BATCH_DEPLOYMENT):
        for key in ("model-name", "model-version"):
            deployment.inputs["tags"].pop(key, None)
    return stripped


def test_violations_name_the_property_and_the_resource(prod_plan: Plan) -> None:
    findings = {(f.policy, f.name): f.message for f in evaluate(_without_lineage(_without_host_storage_audit(prod_plan)), "prod")}
    assert findings[("azml-diagnostic-settings", "st-fn")].startswith("StorageAccount 'stfnazmlprd3d136e' (st-fn): no diagnostic setting")
    assert "tags model-name, model-version missing" in findings[("azml-deployment-lineage-tags", "credit-risk-endpoint-blue")]


# --------------------------------------------------------------------------- each policy, triggered alone

Mutation = Callable[[Plan], None]


def _set(type_token: str, path: str, value: Any, name: str | None = None) -> Mutation:
    def mutate(plan: Plan) -> None:
        put(one(plan, type_token, name).inputs, path, value)

    return mutate


def _set_workspace_storage(path: str, value: Any) -> Mutation:
    return lambda plan: put(workspace_storage(plan).inputs, path, value)


def _add_owner_assignment(scope: str, role: str = OWNER) -> Mutation:
    def mutate(plan: Plan) -> None:
        template = plan.of_type(ROLE_ASSIGNMENT)[0]
        added = copy.deepcopy(template)
        added.name = "ra-break-glass"
        added.urn = template.urn.rsplit("::", 1)[0] + "::ra-break-glass"
        added.inputs.update(
            roleDefinitionId=f"/subscriptions/00000000-0000-4000-8000-000000000001/providers/Microsoft.Authorization/roleDefinitions/{role}",
            scope=scope.format(sub="00000000-0000-4000-8000-000000000001"),
        )
        added.property_dependencies = {}
        added.dependencies = []
        plan.resources.append(added)

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(plan: Plan) -> None:
        for mutation in mutations:
            mutation(plan)

    return mutate


def _drop(type_token: str, *names: str) -> Mutation:
    return lambda plan: drop(plan, type_token, *names)


def _drop_notebooks_zone(plan: Plan) -> None:
    group = one(plan, ZONE_GROUP, "pe-mlw-amlworkspace-dns")
    group.inputs["privateDnsZoneConfigs"] = [c for c in group.inputs["privateDnsZoneConfigs"] if "notebooks" not in c["privateDnsZoneId"]]
    zone = one(plan, PRIVATE_ZONE, "zone-notebooks-azure-net")
    group.property_dependencies["privateDnsZoneConfigs"].remove(zone.urn)


def _env_var(name: str, value: Any) -> Mutation:
    return lambda plan: one(plan, ONLINE_DEPLOYMENT).inputs["properties"]["environmentVariables"].update({name: value})


def _keyed_dead_letter(plan: Plan) -> None:
    inputs = one(plan, "azure-native:eventgrid:SystemTopicEventSubscription").inputs
    inputs["deadLetterDestination"] = inputs.pop("deadLetterWithResourceIdentity")["deadLetterDestination"]


def _traffic(traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, deployments: list[str] | None = None) -> Mutation:
    def mutate(plan: Plan) -> None:
        routing = one(plan, ROUTING, "credit-risk-endpoint-traffic")
        routing.inputs["traffic"] = traffic
        if mirror_traffic is not None:
            routing.inputs["mirrorTraffic"] = mirror_traffic
        if deployments is not None:
            routing.inputs["deployments"] = deployments

    return mutate


def _lineage_tags(name: str, version: str) -> Mutation:
    def mutate(plan: Plan) -> None:
        for deployment in plan.of_type(ONLINE_DEPLOYMENT) + plan.of_type(BATCH_DEPLOYMENT):
            deployment.inputs["tags"].update({"model-name": name, "model-version": version})

    return mutate


def _add_wildcard_action(plan: Plan) -> None:
    one(plan, ROLE_DEFINITION).inputs["permissions"][0]["actions"].append("*/read")


def _add_action(action: str) -> Mutation:
    return lambda plan: one(plan, ROLE_DEFINITION).inputs["permissions"][0]["actions"].append(action)


def _unprotect_workspace(plan: Plan) -> None:
    one(plan, WORKSPACE).options["protect"] = False


def _add_nsg_rule(**fields: Any) -> Mutation:
    """An inbound rule (HTTPS from the VNet unless ``fields`` say otherwise) added to the training subnet's NSG."""
    rule = {"name": "added", "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*", "destinationAddressPrefix": "VirtualNetwork",
            "destinationPortRange": "443", **fields}
    return lambda plan: one(plan, NSG, "nsg-training").inputs["securityRules"].append(rule)


def _add_public_ip(plan: Plan) -> None:
    template = one(plan, PUBLIC_IP, "pip-nat")
    added = copy.deepcopy(template)
    added.name, added.urn = "pip-vm", template.urn.replace("::pip-nat", "::pip-vm")
    added.inputs["publicIpAddressName"] = "pip-azml-prd-vm"
    plan.resources.append(added)


@dataclass(frozen=True)
class Case:
    """One bad setting on an untouched plan, and the one policy it must trigger."""

    stack: str
    mutate: Mutation
    expected: str
    overrides: dict[str, Any] | None = None


CASES: dict[str, Case] = {
    "workspace public": Case("prod", _set(WORKSPACE, "publicNetworkAccess", "Enabled"), "azml-workspace-public-network-disabled"),
    "workspace public behind vnet": Case(
        "prod",
        _set(WORKSPACE, "allowPublicAccessWhenBehindVnet", True),
        "azml-workspace-public-network-disabled",
    ),
    "internet outbound in prod": Case(
        "prod",
        _set(WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound"),
        "azml-workspace-managed-network-isolation",
    ),
    "no managed network": Case(
        "dev",
        # (the deployment then protects its own egress: legacy isolation)
        _both(_set(WORKSPACE, "managedNetwork", None), _set(ONLINE_DEPLOYMENT, "properties.egressPublicNetworkAccess", "Disabled")),
        "azml-workspace-managed-network-isolation",
    ),
    "prod workspace not HBI": Case("prod", _set(WORKSPACE, "hbiWorkspace", False), "azml-workspace-hbi"),
    "confidential data in dev": Case(
        "dev",
        _set(WORKSPACE, "tags.data-classification", "confidential"),
        "azml-workspace-hbi",
    ),
    "datastores with keys": Case(
        "dev",
        _set(WORKSPACE, "systemDatastoresAuthMode", "accessKey"),
        "azml-workspace-identity-datastore-auth",
    ),
    "storage http": Case("prod", _set_workspace_storage("enableHttpsTrafficOnly", False), "azml-storage-https-only"),
    "storage TLS 1.0": Case("prod", _set_workspace_storage("minimumTlsVersion", "TLS1_0"), "azml-storage-min-tls"),
    "public blobs": Case("dev", _set_workspace_storage("allowBlobPublicAccess", True), "azml-storage-no-public-blob-access"),
    "function storage shared key": Case(
        "dev",
        _set(STORAGE, "allowSharedKeyAccess", True, "st-fn"),
        "azml-storage-shared-key-disabled",
    ),
    "storage public network": Case(
        "prod",
        _set_workspace_storage("publicNetworkAccess", "Enabled"),
        "azml-storage-public-network-disabled",
    ),
    "storage default allow": Case(
        "prod",
        _set_workspace_storage("networkRuleSet.defaultAction", "Allow"),
        "azml-storage-network-default-deny",
    ),
    "storage single encryption": Case(
        "prod",
        _set_workspace_storage("encryption.requireInfrastructureEncryption", False),
        "azml-storage-infrastructure-encryption",
    ),
    "vault access policies": Case(
        "prod",
        _set(VAULT, "properties.enableRbacAuthorization", False),
        "azml-keyvault-rbac-authorization",
    ),
    "vault purgeable": Case("prod", _set(VAULT, "properties.enablePurgeProtection", False), "azml-keyvault-purge-protection"),
    "vault short retention in prod": Case(
        "prod",
        _set(VAULT, "properties.softDeleteRetentionInDays", 30),
        "azml-keyvault-soft-delete",
    ),
    "vault without soft delete": Case("dev", _set(VAULT, "properties.enableSoftDelete", False), "azml-keyvault-soft-delete"),
    "vault public": Case(
        "prod",
        _set(VAULT, "properties.publicNetworkAccess", "Enabled"),
        "azml-keyvault-public-network-disabled",
    ),
    "vault default allow": Case(
        "prod",
        _set(VAULT, "properties.networkAcls.defaultAction", "Allow"),
        "azml-keyvault-network-default-deny",
    ),
    "registry admin user": Case("prod", _set(REGISTRY, "adminUserEnabled", True), "azml-registry-admin-user-disabled"),
    "registry anonymous pull": Case(
        "prod",
        _set(REGISTRY, "anonymousPullEnabled", True),
        "azml-registry-anonymous-pull-disabled",
    ),
    "registry public": Case("prod", _set(REGISTRY, "publicNetworkAccess", "Enabled"), "azml-registry-public-network-disabled"),
    "registry standard": Case("prod", _set(REGISTRY, "sku.name", "Standard"), "azml-registry-premium-retention"),
    "registry without retention": Case(
        "dev",
        _set(REGISTRY, "policies.retentionPolicy.status", "disabled"),
        "azml-registry-premium-retention",
    ),
    "quarantine required by config": Case(
        "prod",
        lambda plan: None,
        "azml-registry-quarantine",
        {"azml-registry-quarantine": {"required": True}},
    ),
    "node public ip": Case(
        "prod",
        _set(COMPUTE, "properties.properties.enableNodePublicIp", True, "cluster-gpu-train"),
        "azml-compute-no-public-ip",
    ),
    "compute local auth": Case(
        "prod",
        _set(COMPUTE, "properties.disableLocalAuth", False, "cluster-cpu-train"),
        "azml-compute-local-auth-disabled",
    ),
    "compute ssh": Case(
        "dev",
        _set(COMPUTE, "properties.properties.remoteLoginPortPublicAccess", "Enabled", "cluster-cpu-train"),
        "azml-compute-ssh-disabled",
    ),
    "warm nodes": Case(
        "prod",
        _set(COMPUTE, "properties.properties.scaleSettings.minNodeCount", 1, "cluster-cpu-train"),
        "azml-compute-scale-to-zero",
    ),
    "endpoint keys": Case("prod", _set(ONLINE_ENDPOINT, "properties.authMode", "Key"), "azml-endpoint-auth-mode"),
    "AML tokens in prod": Case("prod", _set(ONLINE_ENDPOINT, "properties.authMode", "AMLToken"), "azml-endpoint-auth-mode"),
    "public endpoint": Case(
        "prod",
        _set(ONLINE_ENDPOINT, "properties.publicNetworkAccess", "Enabled"),
        "azml-endpoint-public-network-disabled",
    ),
    "deployment egress": Case(
        "prod",
        _set(ONLINE_DEPLOYMENT, "properties.egressPublicNetworkAccess", "Enabled"),
        "azml-deployment-egress-disabled",
    ),
    "legacy isolation without the deployment's egress flag": Case(
        "dev",
        _set(WORKSPACE, "managedNetwork.isolationMode", "Disabled"),
        "azml-deployment-egress-disabled",
        {"azml-workspace-managed-network-isolation": {"allowedIsolationModes": ["Disabled"]}},
    ),
    "plaintext API key": Case("prod", _env_var("API_KEY", "sk-live-0123456789"), "azml-secret-values"),
    "plaintext connection string": Case(
        "dev",
        _env_var("db_connection_string", "Server=tcp:x;Password=y"),
        "azml-secret-values",
    ),
    "pulumi secret in env": Case("prod", _env_var("SERVICE_TOKEN", "[secret]"), "azml-deployment-no-plaintext-secrets"),
    "lineage tags that lie": Case("prod", _lineage_tags("credit-risk", "2"), "azml-deployment-lineage-tags"),
    "owner at subscription": Case(
        "prod",
        _add_owner_assignment("/subscriptions/{sub}"),
        "azml-rbac-no-privileged-admin-roles",
    ),
    "owner at management group": Case(
        "prod",
        _add_owner_assignment("/providers/Microsoft.Management/managementGroups/corp"),
        "azml-rbac-no-privileged-admin-roles",
    ),
    "owner on the resource group": Case(
        "prod",
        _add_owner_assignment("/subscriptions/{sub}/resourceGroups/rg-azml-prd-westeurope"),
        "azml-rbac-no-privileged-admin-roles",
    ),
    "key vault administrator on the resource group": Case(
        "prod",
        _add_owner_assignment("/subscriptions/{sub}/resourceGroups/rg-azml-prd-westeurope", KEY_VAULT_ADMINISTRATOR),
        "azml-rbac-no-wide-data-roles",
    ),
    "persona granted to a user": Case(
        "prod",
        _set(ROLE_ASSIGNMENT, "principalType", "User", "ra-reader-5c1e6f0a-2b3d-4e4f-8a5b-6c7d8e9f0a1b"),
        "azml-rbac-personas-are-groups",
    ),
    "wildcard custom role": Case("prod", _add_wildcard_action, "azml-rbac-custom-role-least-privilege"),
    "custom role writes role assignments": Case(
        "prod", _add_action("Microsoft.Authorization/roleAssignments/write"), "azml-rbac-custom-role-no-authorization-writes"
    ),
    "custom role reconfigures storage": Case(
        "prod", _add_action("Microsoft.Storage/storageAccounts/write"), "azml-rbac-custom-role-no-storage-writes"
    ),
    "vault lock removed": Case("prod", _drop(LOCK, "lock-key-vault"), "azml-governance-locks"),
    "workspace unprotected": Case("prod", _unprotect_workspace, "azml-governance-workspace-protected"),
    "policy not enforced": Case(
        "prod",
        _set(POLICY_ASSIGNMENT, "enforcementMode", "DoNotEnforce", "policy-storage-no-public-network"),
        "azml-governance-policy-assignments",
    ),
    "another defender plan set to free": Case(
        "prod",
        _set(PRICING, "pricingTier", "Free", "defender-arm"),
        "azml-governance-defender-plans",
    ),
    "malware scanning off": Case(
        "prod",
        _set(PRICING, "extensions.0.isEnabled", "False", "defender-storage-accounts"),
        "azml-governance-defender-storage-scans",
    ),
    "activity log export removed": Case("prod", _drop(DIAGNOSTICS, "activity-log"), "azml-governance-activity-log-export"),
    "vault without private endpoint": Case(
        "prod",
        _drop(PRIVATE_ENDPOINT, "pe-kv-vault"),
        "azml-private-endpoints",
    ),
    "workspace storage without file endpoint": Case(
        "prod",
        _drop(PRIVATE_ENDPOINT, "pe-st-file"),
        "azml-private-endpoints",
    ),
    "missing notebooks zone": Case("prod", _drop_notebooks_zone, "azml-private-dns-zone-groups"),
    "registry endpoint without zone group": Case(
        "dev",
        _drop(ZONE_GROUP, "pe-cr-registry-dns"),
        "azml-private-dns-zone-groups",
    ),
    "vault without diagnostic setting": Case(
        "prod",
        _drop(DIAGNOSTICS, "diag-kv"),
        "azml-diagnostic-settings",
    ),
    "workspace diagnostics without logs": Case(
        "dev",
        _set(DIAGNOSTICS, "logs", [], "diag-mlw"),
        "azml-diagnostic-settings",
    ),
    "no latency alert": Case(
        "dev",
        _drop(METRIC_ALERT, "credit-risk-endpoint-latency-p95"),
        "azml-endpoint-alerts",
    ),
    "no drift monitor": Case("prod", _drop(SCHEDULE, "credit-risk-endpoint-blue-monitor"), "azml-endpoint-drift-monitor"),
    "monitor without drift signals": Case(
        "prod",
        _set(SCHEDULE, "properties.action.monitorDefinition.signals", {}),
        "azml-endpoint-drift-monitor",
    ),
    "split sums to 90": Case("prod", _traffic({"blue": 90}), "azml-traffic-split-valid"),
    "mirror to live deployment": Case("prod", _traffic({"blue": 100}, {"blue": 10}), "azml-traffic-split-valid"),
    "split names undeclared deployment": Case(
        "prod",
        _traffic({"blue": 90, "green": 10}, deployments=["blue", "green"]),
        "azml-traffic-split-valid",
    ),
    "one instance with all traffic": Case("prod", _set(ONLINE_DEPLOYMENT, "sku.capacity", 1), "azml-deployment-min-instances"),
    "autoscale down to one": Case("prod", _set(AUTOSCALE, "profiles.0.capacity.minimum", "1"), "azml-deployment-min-instances"),
    "image from docker hub": Case(
        "prod",
        _set(ENVIRONMENT, "properties.image", "docker.io/library/python:3.11-slim"),
        "azml-approved-images",
    ),
    "image from a foreign registry": Case(
        "prod",
        _set(ENVIRONMENT, "properties.image", "crsomeoneelse.azurecr.io/scoring:1.0.0"),
        "azml-approved-images",
    ),
    "floating latest tag": Case(
        "prod",
        _set(ENVIRONMENT, "properties.image", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"),
        "azml-approved-images",
    ),
    "environment from another workspace": Case(
        "prod",
        _set(ONLINE_DEPLOYMENT, "properties.environmentId", FOREIGN_ENVIRONMENT),
        "azml-approved-images",
    ),
    # Identity, data protection, supply chain (more cases: tests/policies/checklist/test_pack_data_protection.py, test_pack_supply_chain.py).
    "host storage blob soft delete off": Case(
        "prod", _set(BLOB_SERVICE, "deleteRetentionPolicy.enabled", False, "st-fn-blob"), "azml-storage-blob-soft-delete"
    ),
    "host storage container soft delete off": Case(
        "prod", _set(BLOB_SERVICE, "containerDeleteRetentionPolicy.enabled", False, "st-fn-blob"), "azml-storage-container-soft-delete"
    ),
    "cross-tenant replication": Case(
        "prod", _set(STORAGE, "allowCrossTenantReplication", True, "st-fn"), "azml-storage-cross-tenant-replication-disabled"
    ),
    "app insights local auth without its acceptance": Case(
        "prod",
        lambda plan: None,
        "azml-appinsights-local-auth-disabled",
        {"azml-appinsights-local-auth-disabled": {"exemptResources": []}},
    ),
    "entra-only app insights with key-only writers": Case("prod", _set(APP_INSIGHTS, "disableLocalAuth", True), "azml-appinsights-entra-writers"),
    "log analytics shared keys": Case(
        "prod", _set(LOG_ANALYTICS, "features.disableLocalAuth", False), "azml-log-analytics-local-auth-disabled"
    ),
    "event grid topic without identity": Case("prod", _set(SYSTEM_TOPIC, "identity", None), "azml-eventgrid-managed-identity"),
    "event grid dead letters with keys": Case("prod", _keyed_dead_letter, "azml-eventgrid-identity-delivery"),
    "v1 legacy mode": Case("prod", _set(WORKSPACE, "v1LegacyMode", True), "azml-workspace-v1-legacy-mode-disabled"),
    "vault without owner tag": Case("prod", _set(VAULT, "tags.owner", ""), "azml-required-tags"),
    "registry export enabled": Case("prod", _set(REGISTRY, "policies.exportPolicy.status", "enabled"), "azml-registry-export-disabled"),
    "registry scanning off": Case(
        "prod", _set(PRICING, "extensions.0.isEnabled", "False", "defender-containers"), "azml-registry-vulnerability-assessment"
    ),
    # Network (more cases, spellings and quiet variations: tests/policies/checklist/test_pack_network_security.py).
    "https open to the internet": Case("prod", _add_nsg_rule(sourceAddressPrefix="Internet"), "azml-nsg-no-inbound-from-anywhere"),
    "rdp open to the vnet": Case("prod", _add_nsg_rule(destinationPortRange="3389"), "azml-nsg-management-ports-closed"),
    "no outbound management deny": Case("prod", _set(NSG, "securityRules", [], "nsg-training"), "azml-nsg-lateral-traversal"),
    "deny-all inbound first": Case(
        "prod",
        _add_nsg_rule(access="Deny", protocol="*", sourceAddressPrefix="*", destinationAddressPrefix="*", destinationPortRange="*"),
        "azml-nsg-no-deny-all-inbound-first",
    ),
    "subnet without nsg": Case("prod", _set(SUBNET, "networkSecurityGroup", None, "snet-training"), "azml-subnet-nsg"),
    "default outbound access on": Case(
        "prod", _set(SUBNET, "defaultOutboundAccess", True, "snet-inference"), "azml-subnet-default-outbound-disabled"
    ),
    "single public dns server": Case("prod", _set(VNET, "dhcpOptions", {"dnsServers": ["8.8.8.8"]}), "azml-vnet-dns-servers"),
    "public ip beside the nat": Case("prod", _add_public_ip, "azml-public-ip-nat-only"),
    "zone not linked to the vnet": Case("prod", _drop(VNET_LINK, "link-vaultcore-azure-net"), "azml-private-dns-zone-vnet-links"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_single_bad_setting_triggers_exactly_its_policy(case: Case, request: pytest.FixtureRequest) -> None:
    plan = copy.deepcopy(request.getfixturevalue(f"{case.stack}_plan"))
    before = set(evaluate(plan, case.stack))
    case.mutate(plan)
    new = [f for f in evaluate(plan, case.stack, case.overrides) if f not in before]
    assert new and {f.policy for f in new} == {case.expected}, new


def test_every_policy_has_a_triggering_case() -> None:
    assert {case.expected for case in CASES.values()} == set(POLICY_INFO)


ALLOWED_CASES: list[tuple[str, str, Mutation]] = [
    ("dev", "internet outbound in dev", _set(WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound")),
    ("dev", "AML tokens in dev", _set(ONLINE_ENDPOINT, "properties.authMode", "AMLToken")),
    ("prod", "egress flag Disabled in a managed network", _set(ONLINE_DEPLOYMENT, "properties.egressPublicNetworkAccess", "Disabled")),
    ("prod", "key vault reference", _env_var("API_KEY", "${{keyvault:https://kv-azml-prd-3d136e.vault.azure.net/secrets/api-key/1}}")),
    ("prod", "connection reference", _env_var("OPENAI_API_KEY", "${{azureml://connections/aoai/credentials/key}}")),
    ("prod", "harmless variable", _env_var("LOG_LEVEL", "info")),
    ("prod", "image from the stack registry", _set(ENVIRONMENT, "properties.image", "crazmlprd3d136e.azurecr.io/credit-risk/scoring@sha256:" + "0f" * 32)),
    ("prod", "curated environment", _set(ONLINE_DEPLOYMENT, "properties.environmentId", "azureml://registries/azureml/environments/sklearn-1.5/versions/7")),
    ("prod", "true lineage tags", _lineage_tags("credit-risk", "3")),
    ("prod", "key vault administrator on the vault", _add_owner_assignment(
        "/subscriptions/{sub}/resourceGroups/rg-azml-prd-westeurope/providers/Microsoft.KeyVault/vaults/kv-azml-prd-3d136e",
        KEY_VAULT_ADMINISTRATOR,
    )),
    ("prod", "no live traffic", _traffic({"blue": 0})),
    # prod also alerts on the 5xx share from the traffic log: the metric alert alone may go.
    ("prod", "log alert covers errors", _drop(METRIC_ALERT, "credit-risk-endpoint-server-errors")),
]


@pytest.mark.parametrize(("stack", "mutate"), [(c[0], c[2]) for c in ALLOWED_CASES], ids=[c[1] for c in ALLOWED_CASES])
def test_allowed_variations_trigger_nothing(stack: str, mutate: Mutation, request: pytest.FixtureRequest) -> None:
    plan = copy.deepcopy(request.getfixturevalue(f"{stack}_plan"))
    before = set(evaluate(plan, stack))
    mutate(plan)
    assert [f for f in evaluate(plan, stack) if f not in before] == []


def test_lineage_tags_are_required_and_must_name_the_served_model(prod_plan: Plan) -> None:
    plan = _without_lineage(prod_plan)
    assert by_level(evaluate(plan, "prod"), "mandatory") == {
        ("azml-deployment-lineage-tags", "credit-risk-endpoint-blue"),
        ("azml-deployment-lineage-tags", "credit-risk-batch-nightly-v3"),
    }
    _lineage_tags("credit-risk", "3")(plan)
    assert by_level(evaluate(plan, "prod"), "mandatory") == set()


# --------------------------------------------------------------------------- unknown, missing and secret values

UNKNOWN_CASES: list[tuple[str, Mutation]] = [
    ("storage flag", _set_workspace_storage("enableHttpsTrafficOnly", "[unknown]")),
    ("whole vault properties", _set(VAULT, "properties", "[unknown]")),
    ("private link target id", _set(PRIVATE_ENDPOINT, "privateLinkServiceConnections.0.privateLinkServiceId", "[unknown]", "pe-kv-vault")),
    ("diagnostic resourceUri", _set(DIAGNOSTICS, "resourceUri", "[unknown]", "diag-kv")),
    ("zone ids", lambda plan: [put(c, "privateDnsZoneId", "[unknown]") for c in zone_configs(plan, "pe-mlw-amlworkspace-dns")]),
    ("traffic split", _set(ROUTING, "traffic", "[unknown]", "credit-risk-endpoint-traffic")),
    ("instance count", _set(ONLINE_DEPLOYMENT, "sku.capacity", "[unknown]")),
    ("monitored deployment id", _set(SCHEDULE, "properties.action.monitorDefinition.monitoringTarget.deploymentId", "[unknown]")),
    ("alert scopes", lambda plan: [put(a.inputs, "scopes", ["[unknown]"]) for a in plan.of_type(METRIC_ALERT)]),
    ("endpoint id of the routing", _set(ROUTING, "endpointId", "[unknown]", "credit-risk-endpoint-traffic")),
    ("environment id", _set(ONLINE_DEPLOYMENT, "properties.environmentId", "[unknown]")),
    ("role scope", lambda plan: [put(a.inputs, "scope", "[unknown]") for a in plan.of_type(ROLE_ASSIGNMENT)]),
    ("env var value", _env_var("API_KEY", "[unknown]")),
]


@pytest.mark.parametrize("mutate", [c[1] for c in UNKNOWN_CASES], ids=[c[0] for c in UNKNOWN_CASES])
def test_unknown_values_are_skipped_not_reported(mutate: Mutation, prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    before = set(evaluate(plan, "prod"))
    mutate(plan)
    assert [f for f in evaluate(plan, "prod") if f not in before] == []


def _everything_unknown(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _everything_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_everything_unknown(v) for v in value]
    return "[unknown]"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_plan_of_unknowns_reports_nothing(stack: str, request: pytest.FixtureRequest) -> None:
    """Every leaf of every resource unknown (a preview where nothing is known
    yet): no policy crashes, nothing new is reported, links are read from
    dependencies."""
    original: Plan = request.getfixturevalue(f"{stack}_plan")
    plan = copy.deepcopy(original)
    for resource in plan.resources:
        resource.inputs = _everything_unknown(resource.inputs)
    # Only what structure alone proves stays: absent tag keys, a resource nothing links to.
    findings = {(f.policy, f.name) for f in evaluate(plan, stack)}
    assert findings == {(f.policy, f.name) for f in evaluate(original, stack)} == KNOWN_GAPS[stack] | KNOWN_ADVISORIES[stack]


def test_outputs_shaped_properties_keep_the_links(prod_plan: Plan) -> None:
    """Stack policies get outputs from the engine: path parameters
    (resourceUri, privateEndpointName, vaultName) are absent, ids are present."""
    plan = copy.deepcopy(prod_plan)
    for setting in plan.of_type(DIAGNOSTICS):
        del setting.inputs["resourceUri"]
    for group in plan.of_type(ZONE_GROUP):
        del group.inputs["privateEndpointName"]
    vault = one(plan, VAULT)
    (connection,) = one(plan, PRIVATE_ENDPOINT, "pe-kv-vault").inputs["privateLinkServiceConnections"]
    vault.inputs["id"] = connection["privateLinkServiceId"]
    vault.inputs["name"] = vault.inputs.pop("vaultName")
    before = set(evaluate(prod_plan, "prod"))
    assert set(evaluate(plan, "prod")) <= before


@pytest.mark.parametrize("seed", range(4))
def test_missing_properties_never_crash_a_policy(seed: int, dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    rng = random.Random(seed)
    for resource in plan.resources:
        if seed == 0:
            resource.inputs = {}
        else:
            for key in list(resource.inputs):
                if rng.random() < 0.5:
                    del resource.inputs[key]
    evaluate(plan, "dev")  # no exception is the assertion


def test_secret_wrapped_values_are_read_and_never_shown(prod_plan: Plan) -> None:
    """The SDK hands Analyze secrets unwrapped; remediation (and other callers)
    may hand pulumi_policy.Secret objects: both are read, neither is printed."""
    deployment = one(prod_plan, ONLINE_DEPLOYMENT)
    inputs = copy.deepcopy(deployment.inputs)
    inputs["properties"]["environmentVariables"]["API_KEY"] = Secret("sk-live-0123456789")
    inputs["properties"]["environmentVariables"]["VAULT_KEY"] = Secret("${{keyvault:https://kv.vault.azure.net/secrets/k/1}}")
    inputs["properties"]["egressPublicNetworkAccess"] = Secret("Enabled")
    reported: list[tuple[str, str]] = []
    name = "azml-deployment-no-plaintext-secrets"
    args = ResourceValidationArgs(deployment.type, inputs, deployment.urn, deployment.name, _options(deployment), None, {})
    POLICIES[name].validate(args, lambda message, urn=None, name=name: reported.append((name, message)))
    # The egress policy needs the deployment's workspace: a stack policy.
    props = {r.urn: sdk_props(r.inputs) for r in prod_plan.resources}
    props[deployment.urn] = inputs
    name = "azml-deployment-egress-disabled"
    stack_args = StackValidationArgs(stack_resources(prod_plan, props), {})
    POLICIES[name].validate(stack_args, lambda message, urn=None, name=name: reported.append((name, message)))
    assert [name for name, _ in reported] == ["azml-deployment-no-plaintext-secrets", "azml-deployment-egress-disabled"]
    assert "API_KEY holds a Pulumi secret" in reported[0][1]
    assert all("sk-live" not in message for _, message in reported)


def test_policies_ignore_other_resource_types_and_versioned_tokens(prod_plan: Plan) -> None:
    vault = one(prod_plan, VAULT)
    inputs = copy.deepcopy(vault.inputs)
    inputs["properties"]["enablePurgeProtection"] = False
    policy = POLICIES["azml-keyvault-purge-protection"]
    reported: list[str] = []
    for token in ("azure-native:keyvault/v20240401preview:Vault", "azure-native:keyvault:Secret"):
        args = ResourceValidationArgs(token, sdk_props(inputs), vault.urn, vault.name, _options(vault), None, None)
        policy.validate(args, lambda message, urn=None, token=token: reported.append(token))
    assert reported == ["azure-native:keyvault/v20240401preview:Vault"]


def test_exempt_resources_are_skipped(prod_plan: Plan) -> None:
    plan = _without_host_storage_audit(prod_plan)
    assert by_level(evaluate(plan, "prod"), "mandatory") == {("azml-diagnostic-settings", "st-fn")}
    accepted = {"resource": "stfnazmlprd3d136e", "reason": "audit logs wired up in the next release", "expires": "2999-12-31"}
    exempt = {"azml-diagnostic-settings": {"exemptResources": [accepted]}}
    assert by_level(evaluate(plan, "prod", exempt), "mandatory") == set()
    # A bare name (no reason, no date) is not a risk acceptance: it exempts nothing.
    bare = {"azml-diagnostic-settings": {"exemptResources": ["stfnazmlprd3d136e"]}}
    assert by_level(evaluate(plan, "prod", bare), "mandatory") == {("azml-diagnostic-settings", "st-fn")}


# --------------------------------------------------------------------------- the pack as the CLI runs it


def _read_port(process: subprocess.Popen[str], timeout: float = 60) -> int:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"policy pack did not print its port: {line!r} {err[-2000:]}")
    return int(line)


_LEVEL = {name: analyzer_pb2.EnforcementLevel.Value(name.upper()) for name in LEVELS}
_SEVERITY = {
    Severity.LOW: analyzer_pb2.POLICY_SEVERITY_LOW,
    Severity.MEDIUM: analyzer_pb2.POLICY_SEVERITY_MEDIUM,
    Severity.HIGH: analyzer_pb2.POLICY_SEVERITY_HIGH,
    Severity.CRITICAL: analyzer_pb2.POLICY_SEVERITY_CRITICAL,
}


def test_the_pack_serves_its_policies_over_grpc_as_the_cli_launches_it(prod_plan: Plan) -> None:
    """The CLI's Python policy host runs ``python -u -m pulumi.policy
    <engine address> .`` in the pack directory; the pack prints its gRPC port."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PULUMI_PROJECT": "azml", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true"},
    )
    try:
        port = _read_port(process)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)

            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
            assert info.name == PACK_NAME and info.supportsConfig
            served = {p.name: p for p in info.policies}
            assert list(served) == [p.name for p in ALL_POLICIES]
            for name, policy in served.items():
                meta = POLICY_INFO[name]
                assert json_format.MessageToDict(policy.configSchema.properties) == json.loads(json.dumps(meta.config_schema))
                expected_level = meta.enforcement.value if meta.enforcement else "mandatory"
                assert policy.enforcementLevel == _LEVEL[expected_level]
                assert policy.severity == _SEVERITY[meta.severity]
                assert policy.remediation_steps == meta.remediation and policy.description == meta.description
                assert policy.framework.reference == meta.checklist
                kind = analyzer_pb2.POLICY_TYPE_RESOURCE if meta.kind == "resource" else analyzer_pb2.POLICY_TYPE_STACK
                assert policy.policy_type == kind

            request = analyzer_pb2.ConfigureAnalyzerRequest()
            for name, (level, properties) in effective_config("prod").items():
                request.policyConfig[name].CopyFrom(analyzer_pb2.PolicyConfig(enforcementLevel=_LEVEL[level], properties=wire_struct(properties)))
            analyzer.Configure(request)

            account = copy.deepcopy(workspace_storage(prod_plan))
            account.inputs["enableHttpsTrafficOnly"] = False
            account.inputs["minimumTlsVersion"] = "[unknown]"
            response = analyzer.Analyze(
                analyzer_pb2.AnalyzeRequest(type=account.type, properties=wire_struct(account.inputs), urn=account.urn, name=account.name)
            )
            assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [("azml-storage-https-only", analyzer_pb2.MANDATORY)]
            assert "enableHttpsTrafficOnly is false" in response.diagnostics[0].message

            unaudited = _without_host_storage_audit(prod_plan)
            stack_response = analyzer.AnalyzeStack(
                analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_resource(r) for r in unaudited.resources])
            )
            names = {r.urn: r.name for r in unaudited.resources}
            over_grpc = {(d.policyName, names.get(d.urn, "")) for d in stack_response.diagnostics}
            in_process = {(f.policy, f.name) for f in evaluate(unaudited, "prod") if POLICY_INFO[f.policy].kind == "stack"}
            assert over_grpc == in_process == {("azml-diagnostic-settings", "st-fn")}
    finally:
        process.kill()
        process.wait(timeout=10)


def test_normalize_reads_sdk_proxies_plan_marks_and_pulumi_unknowns() -> None:
    from pulumi.output import Unknown as PulumiUnknown

    from azml_policies.values import MISSING as missing, UNKNOWN as unknown, get, normalize

    props = sdk_props({"a": {"b": "[unknown]", "c": [1, "[unknown]", {"d": "[secret]"}]}, "e": "[unknown]"})
    data = normalize(props)
    assert get(data, "a.b") is unknown and get(data, "e") is unknown and get(data, "a.b.x") is unknown
    assert get(data, "a.c.0") == 1.0 and get(data, "a.c.1") is unknown
    assert get(data, "a.c.2.d") == "[secret]" and isinstance(get(data, "a.c.2.d", keep_secret=True), Secret)
    assert get(data, "a.z") is missing and get(data, "a.c.9") is missing
    assert normalize({"x": PulumiUnknown(), "y": Secret({"z": "[unknown]"})}) is not None
    assert get(normalize({"y": Secret({"z": "[unknown]"})}), "y.z") is unknown
    assert get(normalize({"x": PulumiUnknown()}), "x") is unknown
