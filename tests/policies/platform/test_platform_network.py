"""Platform rules of the managed network, image builds, serverless Spark
monitors, batch and compute identities (policies/azml_platform/network.py):
the untouched dev and prod plans pass each rule; a copy of a plan that re-adds
the defect fails it alone, naming the resource, the property and the
Microsoft source. Also: what the program declares for them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterable

import pytest

from azml.config import ConfigError, read_stack_file, validate_config
from azml.plan.engine import run_plan
from azml.plan.model import Plan, PlannedResource

from ...conftest import ROOT, load_stack, write_stack
from ...config.test_config import azml_namespace
from ...platform_harness import PLATFORM_INFO, resource, run_rules

from azml_platform.network import conda_hosts  # noqa: E402  (platform_harness put policies/ on sys.path)

WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
SCHEDULE = "azure-native:machinelearningservices:Schedule"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
BATCH_DEPLOYMENT = "azure-native:machinelearningservices:BatchDeployment"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
UAI = "azure-native:managedidentity:UserAssignedIdentity"
PROVISIONING = "pulumi-python:dynamic/azml:ManagedNetworkProvisioning"

RULES = (
    "azure-ml-managed-network-provisioned",
    "azure-ml-image-build-compute-before-build",
    "azure-ml-image-build-package-outbound",
    "azure-ml-spark-storage-outbound-rule",
    "azure-ml-spark-network-provisioned",
    "azure-ml-monitor-identity-keyless-storage",
    "azure-ml-batch-storage-outbound-rules",
    "azure-ml-batch-compute-identity-roles",
    "azure-ml-compute-identity-data-roles",
)
MONITOR_IDENTITY = "properties.action.monitorDefinition.computeConfiguration.computeIdentity"


def findings(plan: Plan) -> dict[tuple[str, str], str]:
    """``{(rule, Pulumi name): message}`` of this module's rules."""
    return {(f.rule, f.name): f.message for f in run_rules(plan) if f.rule in RULES}


def assert_fires(plan: Plan, rule: str, names: Iterable[str], *words: str) -> None:
    found = findings(plan)
    assert set(found) == {(rule, name) for name in names}, found
    source = PLATFORM_INFO[rule].source
    for message in found.values():
        assert source in message and f"rule: {PLATFORM_INFO[rule].description}" in message
        for word in words:
            assert word in message, (word, message)


def cut(plan: Plan, urn: str, *, keep: Iterable[str] = ()) -> None:
    """Drop every recorded dependency on ``urn`` (except those of resources named in ``keep``)."""
    kept = set(keep)
    for r in plan.resources:
        if r.name in kept:
            continue
        r.dependencies = [d for d in r.dependencies if d != urn]
        r.property_dependencies = {k: [d for d in v if d != urn] for k, v in r.property_dependencies.items()}


def drop(plan: Plan, target: PlannedResource) -> None:
    plan.resources.remove(target)
    cut(plan, target.urn)


def outbound_rules(plan: Plan) -> dict:
    return resource(plan, WORKSPACE, "mlw").inputs["managedNetwork"]["outboundRules"]


# --------------------------------------------------------------------------- the shipped stacks


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_network_rule(stack: str, request: pytest.FixtureRequest) -> None:
    assert not findings(request.getfixturevalue(f"{stack}_plan"))
    assert set(RULES) <= set(PLATFORM_INFO)


def test_prod_provisions_the_network_with_spark_and_declares_the_outbound_rules(prod_plan: Plan) -> None:
    workspace = resource(prod_plan, WORKSPACE, "mlw")
    network = workspace.inputs["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert "firewallSku" not in network  # prod keeps Azure's default (Standard)
    rules = network["outboundRules"]
    assert {n for n, r in rules.items() if r["type"] == "FQDN"} == {
        "fqdn-any-anaconda-org", "fqdn-pypi-org", "fqdn-any-pythonhosted-org"
    }
    assert rules["pe-storage-blob-spark"]["destination"]["sparkEnabled"] is True
    assert {rules[n]["destination"]["subresourceTarget"] for n in ("pe-storage-queue", "pe-storage-table")} == {"queue", "table"}
    provisioning = resource(prod_plan, PROVISIONING)
    assert provisioning.inputs["includeSpark"] is True
    assert workspace.urn in provisioning.dependencies
    assert workspace.inputs["identity"]["type"] == "SystemAssigned,UserAssigned"


def test_dev_uses_a_basic_firewall_and_has_no_batch_rules(dev_plan: Plan) -> None:
    network = resource(dev_plan, WORKSPACE, "mlw").inputs["managedNetwork"]
    assert network["firewallSku"] == "Basic"
    assert not {"pe-storage-queue", "pe-storage-table"} & set(network["outboundRules"])


def test_clusters_and_monitors_run_as_the_granted_compute_identity(prod_plan: Plan) -> None:
    identity = resource(prod_plan, UAI)
    grants = {
        r.inputs["description"]
        for r in prod_plan.resources
        if r.type == ROLE_ASSIGNMENT and identity.urn in r.property_dependencies.get("principalId", [])
    }
    assert len(grants) == 4  # blob, AcrPull, and queue + table for the batch endpoint
    for cluster in (r for r in prod_plan.resources if r.type == COMPUTE):
        assert cluster.inputs["identity"]["type"] == "UserAssigned"
        assert identity.urn in cluster.dependencies
    schedule = resource(prod_plan, SCHEDULE)
    compute_identity = schedule.inputs["properties"]["action"]["monitorDefinition"]["computeConfiguration"]["computeIdentity"]
    assert compute_identity["computeIdentityType"] == "ManagedIdentity"
    assert compute_identity["identity"]["type"] == "UserAssigned"


# --------------------------------------------------------------------------- row 3


def test_a_deployment_not_waiting_for_network_provisioning_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    provisioning = resource(plan, PROVISIONING)
    cut(plan, provisioning.urn, keep=["credit-risk-endpoint-blue-monitor"])
    assert_fires(
        plan, "azure-ml-managed-network-provisioned", ["credit-risk-endpoint-blue", "credit-risk-batch-nightly-v3"],
        "workspaceName is 'mlw-azml-prd'", "AllowOnlyApprovedOutbound", "does not wait",
    )


def test_a_managed_network_nothing_provisions_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    drop(plan, resource(plan, PROVISIONING))
    found = findings(plan)
    assert {rule for rule, _ in found} == {"azure-ml-managed-network-provisioned", "azure-ml-spark-network-provisioned"}
    assert "nothing in the stack provisions it" in found[("azure-ml-managed-network-provisioned", "credit-risk-endpoint-blue")]


def test_provision_network_now_counts_as_provisioned(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    cut(plan, resource(plan, PROVISIONING).urn, keep=["credit-risk-endpoint-blue-monitor"])
    resource(plan, WORKSPACE, "mlw").inputs["provisionNetworkNow"] = True
    assert not findings(plan)


def test_a_deployment_not_waiting_for_the_image_build_compute_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    cut(plan, resource(plan, COMPUTE, "cluster-cpu-build").urn)
    assert_fires(
        plan, "azure-ml-image-build-compute-before-build", ["credit-risk-endpoint-blue", "credit-risk-batch-nightly-v3"],
        "imageBuildCompute 'cpu-build'", "credit-risk-scoring:1", "does not depend on",
    )


def test_an_image_build_compute_the_stack_does_not_create_fails(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    resource(plan, WORKSPACE, "mlw").inputs["imageBuildCompute"] = "elsewhere"
    assert_fires(plan, "azure-ml-image-build-compute-before-build", ["credit-risk-endpoint-blue"], "'elsewhere'", "does not create")


def test_a_conda_build_behind_a_private_registry_without_build_compute_fails(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    del resource(plan, WORKSPACE, "mlw").inputs["imageBuildCompute"]
    assert_fires(plan, "azure-ml-image-build-compute-before-build", ["credit-risk-endpoint-blue"], "no imageBuildCompute")


# --------------------------------------------------------------------------- row 4


def test_conda_hosts_reads_channels_and_pip() -> None:
    spec = "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip:\n      - pandas==2.2.3\n"
    assert conda_hosts(spec) == {
        "conda.anaconda.org": "channel conda-forge", "pypi.org": "pip (PyPI)", "files.pythonhosted.org": "pip (PyPI)"
    }
    private = "dependencies:\n  - pip:\n      - --index-url https://pkgs.example.com/simple\n      - x==1\n"
    assert conda_hosts(private) == {"repo.anaconda.com": "channel defaults", "pkgs.example.com": "pip index https://pkgs.example.com/simple"}
    assert conda_hosts("{not yaml: [") == {}


def test_the_shipped_conda_spec_is_what_the_rules_approve() -> None:
    hosts = conda_hosts((ROOT / "serving" / "credit-risk" / "conda.yaml").read_text())
    assert set(hosts) == {"conda.anaconda.org", "pypi.org", "files.pythonhosted.org"}


def test_a_conda_channel_without_an_fqdn_rule_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    del outbound_rules(plan)["fqdn-any-anaconda-org"]
    assert_fires(
        plan, "azure-ml-image-build-package-outbound", ["env-credit-risk-scoring-1"],
        "properties.condaFile installs from conda.anaconda.org (channel conda-forge)", "no FQDN rule",
    )


def test_zero_outbound_rules_fail_for_every_repository(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    rules = outbound_rules(plan)
    for name in [n for n, r in rules.items() if r["type"] == "FQDN"]:
        del rules[name]
    assert_fires(plan, "azure-ml-image-build-package-outbound", ["env-credit-risk-scoring-1"], "pypi.org", "files.pythonhosted.org")


def test_a_prod_stack_without_package_repositories_fails_the_plan(tmp_path: Path) -> None:
    document = load_stack("prod")
    del document["config"]["azml:workspace"]["packageRepositories"]
    plan = run_plan(read_stack_file(str(write_stack(tmp_path, "variant", document)), ROOT))
    assert {rule for rule, _ in findings(plan)} == {"azure-ml-image-build-package-outbound"}


def test_fqdn_rules_need_approved_outbound_and_no_storage_hosts() -> None:
    for change, expected in (
        ({"isolationMode": "AllowInternetOutbound"}, "need isolationMode AllowOnlyApprovedOutbound"),
        ({"outboundFqdns": ["myacct.blob.core.windows.net"]}, "private endpoint rule, not an FQDN rule"),
        ({"outboundFqdns": ["Not A Host"]}, "must be a lowercase host name"),
    ):
        raw = copy.deepcopy(azml_namespace("dev"))
        raw["workspace"].update(change)
        with pytest.raises(ConfigError) as error:
            validate_config(raw)
        assert any(p.startswith("azml:workspace") and expected in p for p in error.value.problems), error.value.problems


# --------------------------------------------------------------------------- row 6


def test_a_monitor_without_the_spark_storage_rule_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    outbound_rules(plan)["pe-storage-blob-spark"]["destination"]["sparkEnabled"] = False
    assert_fires(
        plan, "azure-ml-spark-storage-outbound-rule", ["credit-risk-endpoint-blue-monitor"],
        "serverless Spark", "sparkEnabled true",
    )


def test_a_network_provisioned_without_spark_fails(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    resource(plan, PROVISIONING).inputs["includeSpark"] = False
    assert_fires(plan, "azure-ml-spark-network-provisioned", ["credit-risk-endpoint-blue-monitor"], "includeSpark true")


def test_a_monitor_with_the_aml_token_on_keyless_storage_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    definition = resource(plan, SCHEDULE).inputs["properties"]["action"]["monitorDefinition"]
    definition["computeConfiguration"]["computeIdentity"] = {"computeIdentityType": "AmlToken"}
    assert_fires(
        plan, "azure-ml-monitor-identity-keyless-storage", ["credit-risk-endpoint-blue-monitor"],
        f"{MONITOR_IDENTITY}.computeIdentityType is 'AmlToken'", "allows no shared key",
    )


def test_a_monitor_identity_not_attached_to_the_workspace_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    workspace = resource(plan, WORKSPACE, "mlw")
    workspace.inputs["identity"] = {"type": "SystemAssigned"}
    workspace.property_dependencies.pop("identity", None)
    assert_fires(
        plan, "azure-ml-monitor-identity-keyless-storage", ["credit-risk-endpoint-blue-monitor"],
        "is not attached to workspace",
    )


# --------------------------------------------------------------------------- row 7


def test_a_batch_deployment_without_queue_and_table_rules_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    del outbound_rules(plan)["pe-storage-queue"]
    assert_fires(
        plan, "azure-ml-batch-storage-outbound-rules", ["credit-risk-batch-nightly-v3"],
        "managedNetwork.outboundRules has no PrivateEndpoint rule", "for queue",
    )


def test_a_batch_compute_identity_without_queue_role_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    drop(plan, resource(plan, ROLE_ASSIGNMENT, "ra-compute-storage-storage-queue-data-contributor"))
    assert_fires(
        plan, "azure-ml-batch-compute-identity-roles", ["credit-risk-batch-nightly-v3"],
        "Storage Queue Data Contributor", "cluster-cpu-train",
    )


# --------------------------------------------------------------------------- row 16


def test_a_cluster_whose_identity_has_no_data_role_fails(prod_plan: Plan) -> None:
    plan = copy.deepcopy(prod_plan)
    resource(plan, COMPUTE, "cluster-gpu-train").inputs["identity"] = {"type": "SystemAssigned"}
    assert_fires(
        plan, "azure-ml-compute-identity-data-roles", ["cluster-gpu-train"],
        "its system identity", "no Storage Blob Data role",
    )


def test_a_cluster_without_identity_fails(dev_plan: Plan) -> None:
    plan = copy.deepcopy(dev_plan)
    del resource(plan, COMPUTE, "cluster-cpu-build").inputs["identity"]
    assert_fires(plan, "azure-ml-compute-identity-data-roles", ["cluster-cpu-build"], "identity.type is not set")


# --------------------------------------------------------------------------- the provisioning resource


def test_provisioning_reruns_on_new_rules_or_spark_and_replaces_for_another_workspace() -> None:
    from components.managed_network import ManagedNetworkProvisioningProvider

    provider = ManagedNetworkProvisioningProvider(credential=object())
    old = {"workspaceId": "/ws/a", "includeSpark": False, "outboundRules": ["x"], "armEndpoint": "https://management.azure.com"}
    assert not provider.diff("id", old, dict(old)).changes
    spark = provider.diff("id", old, {**old, "includeSpark": True})
    assert spark.changes and not spark.replaces
    assert provider.diff("id", old, {**old, "outboundRules": ["x", "y"]}).changes
    assert provider.diff("id", old, {**old, "workspaceId": "/ws/b"}).replaces == ["workspaceId"]
    assert provider.check({}, {**old, "includeSpark": "yes"}).failures[0].property == "includeSpark"
