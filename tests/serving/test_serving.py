"""Serving from stack config: online endpoints with blue/green deployments and
their routing resource, autoscale, batch endpoints; traffic validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from azml.config import read_stack_file
from azml.plan.engine import run_plan
from azml.plan.model import Plan, PlannedResource

from ..conftest import ROOT, load_stack, run_cli, write_stack

ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
ROUTING = "pulumi-python:dynamic/azml:EndpointRouting"


def with_green(traffic: dict[str, int], mirror: dict[str, int] | None = None) -> dict[str, Any]:
    """The prod stack with a `green` deployment beside `blue` and the given split."""
    document = load_stack("prod")
    (endpoint,) = document["config"]["azml:onlineEndpoints"]
    green = copy.deepcopy(endpoint["deployments"][0])
    green["name"] = "green"
    green["model"]["version"] = "4"
    endpoint["deployments"].append(green)
    endpoint["traffic"] = traffic
    endpoint["mirrorTraffic"] = mirror or {}
    return document


def plan_document(tmp_path: Path, document: dict[str, Any], name: str = "variant") -> Plan:
    return run_plan(read_stack_file(str(write_stack(tmp_path, name, document)), ROOT))


def routing_of(plan: Plan, kind: str = "online") -> PlannedResource:
    (routing,) = [r for r in plan.of_type(ROUTING) if r.inputs["kind"] == kind]
    return routing


def test_prod_plan_serves_credit_risk_blue(prod_plan: Plan) -> None:
    (endpoint,) = prod_plan.of_type(ENDPOINT)
    assert endpoint.inputs["endpointName"] == "azml-prd-credit-risk-endpoint"
    assert endpoint.inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert endpoint.inputs["properties"]["authMode"] == "AADToken"
    assert endpoint.inputs["identity"] == {"type": "SystemAssigned"}
    # The split is not on the endpoint, and changes to it there are ignored.
    assert "traffic" not in endpoint.inputs["properties"]
    assert set(endpoint.options["ignoreChanges"]) == {"properties.traffic", "properties.mirrorTraffic"}
    (blue,) = prod_plan.of_type(DEPLOYMENT)
    assert blue.inputs["deploymentName"] == "blue"
    assert routing_of(prod_plan).inputs["traffic"] == {"blue": 100}


def test_deployments_are_locked_down_and_observable(any_plan: Plan) -> None:
    for deployment in any_plan.of_type(DEPLOYMENT):
        props = deployment.inputs["properties"]
        assert props["endpointComputeType"] == "Managed"
        # Outbound goes through the workspace managed network; the deployment
        # flag "no longer applies" there and is left unset.
        assert "egressPublicNetworkAccess" not in props
        assert "maxQueueWait" not in props["requestSettings"]  # deprecated, ignored by Azure
        assert props["appInsightsEnabled"] is True
        collections = props["dataCollector"]["collections"]
        assert collections["model_inputs"]["dataCollectionMode"] == "Enabled"
        assert collections["model_outputs"]["dataCollectionMode"] == "Enabled"
        assert props["environmentVariables"]["ENABLE_MONITORING"] == "true"
        # The model from the registry (exists before the run); the code declared registered by the pipeline.
        assert props["model"] == "azureml://registries/azml-models/models/credit-risk/versions/" + props["model"].rsplit("/", 1)[1]
        assert "/codes/credit-risk-score/versions/" in props["codeConfiguration"]["codeId"]
        assert deployment.inputs["tags"]["registered-assets"] == "code"
        assert "/environments/credit-risk-scoring/versions/1" in props["environmentId"]
        assert props["livenessProbe"]["period"].startswith("PT") and props["readinessProbe"]["failureThreshold"] >= 1


def test_prod_runs_two_instances_behind_autoscale(prod_plan: Plan) -> None:
    (blue,) = prod_plan.of_type(DEPLOYMENT)
    assert blue.inputs["sku"]["capacity"] == 2
    (autoscale,) = prod_plan.of_type("azure-native:monitor:AutoscaleSetting")
    assert autoscale.inputs["targetResourceUri"].endswith("/onlineEndpoints/azml-prd-credit-risk-endpoint/deployments/blue")
    (profile,) = autoscale.inputs["profiles"]
    assert profile["capacity"] == {"minimum": "2", "maximum": "6", "default": "2"}
    metrics = {(r["metricTrigger"]["metricName"], r["scaleAction"]["direction"]) for r in profile["rules"]}
    assert metrics == {
        ("CpuUtilizationPercentage", "Increase"),
        ("CpuUtilizationPercentage", "Decrease"),
        ("RequestLatency_P95", "Increase"),
    }


def test_environment_is_built_from_the_repo_conda_spec_on_an_approved_base(prod_plan: Plan) -> None:
    (environment,) = prod_plan.of_type("azure-native:machinelearningservices:EnvironmentVersion")
    props = environment.inputs["properties"]
    assert props["image"].startswith("mcr.microsoft.com/azureml/")
    assert props["condaFile"] == (ROOT / "serving/credit-risk/conda.yaml").read_text()


def test_endpoint_identity_roles_are_left_to_azure_ml(prod_plan: Plan) -> None:
    """Azure ML assigns AcrPull and the storage blob roles to a system-assigned
    endpoint identity itself: the stack creating them would collide."""
    (endpoint,) = prod_plan.of_type(ENDPOINT)
    grants = [
        r for r in prod_plan.of_type("azure-native:authorization:RoleAssignment")
        if endpoint.urn in r.property_dependencies.get("principalId", [])
    ]
    assert grants == []


def test_autoscale_owns_the_instance_count(prod_plan: Plan, dev_plan: Plan) -> None:
    (blue,) = prod_plan.of_type(DEPLOYMENT)
    assert blue.options["ignoreChanges"] == ["sku.capacity"]
    (dev_blue,) = dev_plan.of_type(DEPLOYMENT)  # no autoscale in dev: Pulumi owns the count
    assert "ignoreChanges" not in dev_blue.options


def test_batch_endpoint_with_default_deployment(prod_plan: Plan) -> None:
    (endpoint,) = prod_plan.of_type("azure-native:machinelearningservices:BatchEndpoint")
    assert endpoint.inputs["endpointName"] == "azml-prd-credit-risk-batch"
    assert endpoint.inputs["properties"]["authMode"] == "AADToken"
    assert "defaults" not in endpoint.inputs["properties"]
    (deployment,) = prod_plan.of_type("azure-native:machinelearningservices:BatchDeployment")
    props = deployment.inputs["properties"]
    assert props["compute"].endswith("/computes/cpu-train")
    assert props["model"] == {"referenceType": "Id", "assetId": props["model"]["assetId"]}
    assert props["retrySettings"] == {"maxRetries": 3, "timeout": "PT600S"}
    assert (props["outputAction"], props["loggingLevel"], props["miniBatchSize"]) == ("AppendRow", "Info", 100)
    routing = routing_of(prod_plan, "batch")
    assert routing.inputs["defaultDeployment"] == "nightly-v3"
    assert deployment.urn in routing.dependencies


def test_routing_waits_for_every_deployment_of_its_endpoint(tmp_path: Path) -> None:
    plan = plan_document(tmp_path, with_green({"blue": 90, "green": 10}))
    routing = routing_of(plan)
    deployments = plan.of_type(DEPLOYMENT)
    assert {d.inputs["deploymentName"] for d in deployments} == {"blue", "green"}
    assert {d.urn for d in deployments} <= set(routing.dependencies)
    assert routing.inputs["traffic"] == {"blue": 90, "green": 10}
    assert routing.inputs["deployments"] == ["blue", "green"]


def test_changing_traffic_changes_only_the_routing_resource(tmp_path: Path) -> None:
    before = plan_document(tmp_path, with_green({"blue": 90, "green": 10}), "before")
    after = plan_document(tmp_path, with_green({"blue": 0, "green": 100}, {}), "after")
    before_inputs = {r.urn.replace("before", "x"): r.inputs for r in before.resources}
    after_inputs = {r.urn.replace("after", "x"): r.inputs for r in after.resources}
    assert before_inputs.keys() == after_inputs.keys()
    changed = [urn for urn in before_inputs if before_inputs[urn] != after_inputs[urn]]
    assert len(changed) == 1 and changed[0].endswith("EndpointRouting::credit-risk-endpoint-traffic")


def test_mirror_traffic_reaches_the_routing_resource(tmp_path: Path) -> None:
    plan = plan_document(tmp_path, with_green({"blue": 100, "green": 0}, {"green": 10}))
    assert routing_of(plan).inputs["mirrorTraffic"] == {"green": 10}


@pytest.mark.parametrize(
    ("traffic", "mirror", "key", "text"),
    [
        ({"blue": 90}, {}, "traffic", "sum to 0 or 100 (got 90)"),
        ({"blue": 90, "green": 10, "red": 0}, {}, "traffic.red", "names no declared deployment (declared: blue, green)"),
        ({"blue": 100, "green": 0}, {"ghost": 10}, "mirrorTraffic.ghost", "names no declared deployment"),
        ({"blue": 100}, {"green": 60}, "mirrorTraffic.green", "at most 50 (got 60)"),
        ({"blue": 50, "green": 50}, {"green": 10}, "mirrorTraffic.green", "has live traffic"),
        ({"blue": 100}, {"green": 10, "blue": 5}, "mirrorTraffic", "at most one deployment"),
        ({"blue": 100.5, "green": 0}, {}, "traffic.blue", "valid integer"),
        ({"blue": 110, "green": -10}, {}, "traffic.blue", "whole percentage 0..100 (got 110)"),
    ],
)
def test_invalid_splits_exit_2_naming_the_key(
    tmp_path: Path, traffic: dict, mirror: dict, key: str, text: str
) -> None:
    path = write_stack(tmp_path, "bad", with_green(traffic, mirror))
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"error: azml:onlineEndpoints[0].{key}: ") and text in line for line in lines), lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("deployments", 0, "instanceCount"), 0, "azml:onlineEndpoints[0].deployments[0].instanceCount: Input should be greater than or equal to 1"),
        (("name",), "Credit_Risk", "azml:onlineEndpoints[0].name: must be 3-32 characters"),
        (("name",), "a-very-long-credit-risk-name", "'azml-prd-a-very-long-credit-risk-name' is 37 characters; Azure allows 32"),
        (("deployments", 0, "name"), "b", "azml:onlineEndpoints[0].deployments[0].name: must be 3-32 characters"),
        (("authMode",), "basic", "azml:onlineEndpoints[0].authMode: Input should be 'key', 'aml_token' or 'aad_token'"),
        (("deployments", 0, "environment", "baseImage"), "docker.io/library/python:3.11", "must be an approved base image"),
        (("deployments", 0, "environment", "condaFile"), "serving/missing.yaml", "no file serving/missing.yaml"),
    ],
)
def test_invalid_endpoint_config_is_refused(tmp_path: Path, path: tuple, value: Any, expected: str) -> None:
    document = load_stack("prod")
    node: Any = document["config"]["azml:onlineEndpoints"][0]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    assert any(expected in line for line in result.stderr.splitlines()), result.stderr


def test_batch_references_are_checked(tmp_path: Path) -> None:
    document = load_stack("prod")
    batch = document["config"]["azml:batchEndpoints"][0]
    batch["deployments"][0]["compute"] = "gpu-nowhere"
    batch["defaultDeployment"] = "nightly-v4"
    lines = run_cli("plan", str(write_stack(tmp_path, "bad", document))).stderr.splitlines()
    assert any("azml:batchEndpoints[0]: defaultDeployment 'nightly-v4' is not a declared deployment" in l for l in lines)
    document["config"]["azml:batchEndpoints"][0]["defaultDeployment"] = "nightly-v3"
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    assert "error: azml:batchEndpoints[0].deployments[0].compute: 'gpu-nowhere' is not a declared compute cluster" in result.stderr


def test_one_environment_version_one_definition(tmp_path: Path) -> None:
    document = with_green({"blue": 100, "green": 0})
    green_env = document["config"]["azml:onlineEndpoints"][0]["deployments"][1]["environment"]
    green_env["baseImage"] = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py311-cpu-inference:latest"
    result = run_cli("plan", str(write_stack(tmp_path, "bad", document)))
    assert result.returncode == 2
    assert "environment credit-risk-scoring:1 is defined differently" in result.stderr


def test_routing_provider_survives_pulumis_serialization() -> None:
    """Pulumi pickles a dynamic provider with dill at registration and the
    provider host unpickles it in a fresh interpreter: it must travel by
    reference (small, stable) and work there."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    from azml.serving.routing_resource import EndpointRoutingProvider

    payload = serialize_provider(EndpointRoutingProvider())
    assert payload == serialize_provider(EndpointRoutingProvider())  # stable: no spurious diffs
    assert len(payload) < 2000  # by reference, not by value
    program = (
        "import base64, dill, sys\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "result = provider.check({}, {'kind': 'online', 'deployments': ['blue'], 'traffic': {'blue': 90}})\n"
        "print(type(provider).__module__, [f.reason for f in result.failures])\n"
    )
    done = subprocess.run([sys.executable, "-c", program, payload], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "azml.serving.routing_resource ['values must sum to 0 or 100 (got 90)']"
