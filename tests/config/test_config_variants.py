"""Config choices change the plan the way docs/config.md and docs/platform.md say they do."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path

import pytest
from pulumi.runtime.config import set_all_config

from azml.config import ConfigError, load_from_pulumi, read_stack_file
from azml.plan.engine import run_plan
from azml.plan.model import Plan

from ..conftest import ROOT, load_stack, write_stack


def plan_with(tmp_path: Path, **changes: object) -> Plan:
    document = load_stack("dev")
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            document["config"][f"azml:{section}"][field] = value
        else:
            document["config"][f"azml:{section}"] = value
    return run_plan(read_stack_file(str(write_stack(tmp_path, "variant", document)), ROOT))


def test_without_managed_network_clusters_join_the_training_subnet(tmp_path: Path) -> None:
    # FQDN outbound rules exist only in a managed network: none configured here.
    plan = plan_with(tmp_path, workspace__isolationMode="Disabled", workspace__packageRepositories=[])
    (workspace,) = plan.of_type("azure-native:machinelearningservices:Workspace")
    assert workspace.inputs["managedNetwork"] == {"isolationMode": "Disabled"}
    # Nothing to provision without a managed network.
    assert not plan.of_type("pulumi-python:dynamic/azml:ManagedNetworkProvisioning")
    for cluster in plan.of_type("azure-native:machinelearningservices:Compute"):
        assert cluster.inputs["properties"]["properties"]["subnet"]["id"].endswith("/subnets/snet-azml-dev-training")


def test_persona_principals_get_workspace_scoped_roles(tmp_path: Path) -> None:
    reader, scientist = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"
    plan = plan_with(
        tmp_path, principals={"readers": [reader], "dataScientists": [{"objectId": scientist, "type": "User"}]}
    )
    grants = {
        r.inputs["principalId"]: r.inputs
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["principalId"] in (reader, scientist)
    }
    assert grants[reader]["roleDefinitionId"].endswith("/acdd72a7-3385-48ef-bd42-f606fba81ae7")  # Reader
    assert grants[scientist]["roleDefinitionId"].endswith("/f6c7c914-8db3-469d-8ca1-694a8f32e121")  # AzureML Data Scientist
    # A bare object id is a group; the declared type must match or Azure refuses it.
    assert grants[reader]["principalType"] == "Group"
    assert grants[scientist]["principalType"] == "User"
    for grant in grants.values():
        assert grant["scope"].endswith("/workspaces/mlw-azml-dev")


def test_unique_suffix_overrides_global_names(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, uniqueSuffix="x1y2")
    (account,) = [a for a in plan.of_type("azure-native:storage:StorageAccount") if a.name == "st"]
    (vault,) = plan.of_type("azure-native:keyvault:Vault")
    assert account.inputs["accountName"] == "stazmldevx1y2"
    assert vault.inputs["vaultName"] == "kv-azml-dev-x1y2"


def test_cluster_sizes_come_from_config(tmp_path: Path) -> None:
    clusters = [{"name": "big", "vmSize": "Standard_NC6s_v3", "minNodes": 1, "maxNodes": 3, "idleSecondsBeforeScaleDown": 600}]
    plan = plan_with(tmp_path, compute={"clusters": clusters}, workspace__imageBuildCompute="big")
    (cluster,) = plan.of_type("azure-native:machinelearningservices:Compute")
    aml = cluster.inputs["properties"]["properties"]
    assert aml["vmSize"] == "Standard_NC6s_v3"
    assert aml["scaleSettings"] == {"minNodeCount": 1, "maxNodeCount": 3, "nodeIdleTimeBeforeScaleDown": "PT600S"}


def _load_in_fresh_runtime(values: dict[str, str]):
    def load():
        set_all_config(values)
        return load_from_pulumi()

    return contextvars.Context().run(load)


def test_program_side_loader_reads_config_as_the_cli_passes_it() -> None:
    raw = {k: v for k, v in load_stack("dev")["config"].items() if k.startswith("azml:")}
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    config = _load_in_fresh_runtime(values)
    assert config.environment == "dev" and config.compute.clusters[0].name == "cpu-build"


def test_program_side_loader_refuses_bad_config_before_any_resource() -> None:
    raw = {k: v for k, v in load_stack("dev")["config"].items() if k.startswith("azml:")}
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    values["azml:netwrok"] = "{}"
    values["azml:location"] = "mars"
    with pytest.raises(ConfigError) as caught:
        _load_in_fresh_runtime(values)
    assert [p.split(":")[1] for p in caught.value.problems] == ["netwrok", "location"]
