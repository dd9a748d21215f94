"""Stack config validation: the shipped stacks are valid; each class of bad
input yields one line naming the key path and what is allowed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from azml.config import ConfigError, StackConfig, validate_config
from azml.config.loader import raw_from_pulumi_values
from azml.naming import names_for

from ..conftest import load_stack


def azml_namespace(stack: str) -> dict[str, Any]:
    config = load_stack(stack)["config"]
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("azml:")}


def problems_for(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    return caught.value.problems


def mutated(stack: str, path: str, value: Any) -> dict[str, Any]:
    """dev/prod namespace with the dotted ``path`` (list indexes as ints) set to value."""
    raw = copy.deepcopy(azml_namespace(stack))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = raw
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_are_valid(stack: str) -> None:
    config = validate_config(azml_namespace(stack))
    assert isinstance(config, StackConfig)
    assert config.environment == stack


def test_prod_differs_from_dev_where_a_platform_team_expects() -> None:
    dev, prod = (validate_config(azml_namespace(s)) for s in ("dev", "prod"))
    assert prod.storage.sku in ("Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS")
    assert dev.storage.sku == "Standard_LRS"
    assert prod.monitoring.retention_days > dev.monitoring.retention_days
    assert prod.storage.blob_soft_delete_days > dev.storage.blob_soft_delete_days
    assert prod.key_vault.soft_delete_retention_days > dev.key_vault.soft_delete_retention_days
    assert prod.workspace.hbi and not dev.workspace.hbi
    assert sum(c.max_nodes for c in prod.compute.clusters) > sum(c.max_nodes for c in dev.compute.clusters)
    assert prod.registry.zone_redundant and not dev.registry.zone_redundant


def test_wrong_scalar_type_names_the_key() -> None:
    problems = problems_for(mutated("dev", "location", 42))
    assert problems == ["azml:location: Input should be a valid string (got 42)"]


def test_nested_list_path_is_reported_with_index() -> None:
    problems = problems_for(mutated("dev", "compute.clusters.0.maxNodes", 0))
    assert len(problems) == 1
    assert problems[0].startswith("azml:compute.clusters[0].maxNodes: ")
    assert "greater than or equal to 1" in problems[0]


def test_unknown_top_level_key_lists_allowed_keys() -> None:
    raw = azml_namespace("dev") | {"netwrok": {}}
    (problem,) = problems_for(raw)
    assert problem.startswith("azml:netwrok: unknown key; allowed keys: environment, location, prefix")


def test_unknown_nested_key_lists_that_level_allowed_keys() -> None:
    (problem,) = problems_for(mutated("dev", "storage.skuName", "Standard_LRS"))
    assert problem.startswith("azml:storage.skuName: unknown key; allowed keys: sku, blobSoftDeleteDays")


def test_literal_out_of_set_names_allowed_values() -> None:
    (problem,) = problems_for(mutated("dev", "environment", "qa"))
    assert problem.startswith("azml:environment: ")
    assert "'dev', 'test', 'staging' or 'prod'" in problem


def test_storage_sku_must_be_known() -> None:
    (problem,) = problems_for(mutated("dev", "storage.sku", "Premium_LRS"))
    assert problem.startswith("azml:storage.sku: ") and "Standard_GZRS" in problem


def test_unknown_region_is_refused_with_a_hint() -> None:
    (problem,) = problems_for(mutated("dev", "location", "westeurop"))
    assert problem.startswith("azml:location: must be an Azure region name")
    assert "westeurope" in problem


def test_missing_required_keys_are_each_reported() -> None:
    raw = azml_namespace("dev")
    del raw["network"], raw["prefix"]
    assert sorted(problems_for(raw)) == [
        "azml:network: required key is missing",
        "azml:prefix: required key is missing",
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("network.subnets.training", "10.99.0.0/24", "lies outside addressSpace 10.20.0.0/16"),
        ("network.subnets.training", "10.20.1.128/25", "overlaps subnets.privateEndpoints"),
        ("network.subnets.training", "10.20.2.1/24", "no host bits set"),
        ("network.subnets.training", "10.20.2.0/30", "/29 or larger"),
        ("network.addressSpace", "not-a-cidr", "IPv4 CIDR"),
    ],
)
def test_network_rules(path: str, value: str, expected: str) -> None:
    problems = problems_for(mutated("dev", path, value))
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("azml:network")


def test_min_nodes_above_max_nodes() -> None:
    (problem,) = problems_for(mutated("dev", "compute.clusters.1.minNodes", 9))
    assert problem == "azml:compute.clusters[1]: minNodes (9) must not exceed maxNodes (4)"


def test_duplicate_cluster_names() -> None:
    raw = azml_namespace("dev")
    raw["compute"]["clusters"].append(dict(raw["compute"]["clusters"][0]))
    (problem,) = problems_for(raw)
    assert problem == "azml:compute.clusters: cluster name 'cpu-build' is declared twice"


def test_cluster_name_rule() -> None:
    (problem,) = problems_for(mutated("dev", "compute.clusters.1.name", "1_bad"))
    assert problem.startswith("azml:compute.clusters[1].name: must be 3-24 characters")


def test_image_build_compute_must_be_declared() -> None:
    (problem,) = problems_for(mutated("dev", "workspace.imageBuildCompute", "nope"))
    assert "workspace.imageBuildCompute 'nope' is not a declared compute cluster" in problem
    assert "cpu-build, cpu-train" in problem


def test_principal_ids_must_be_guids() -> None:
    raw = azml_namespace("dev") | {"principals": {"readers": ["alice@contoso.com"]}}
    (problem,) = problems_for(raw)
    assert problem.startswith("azml:principals.readers[0].objectId: String should match pattern")


def test_principal_type_must_be_known() -> None:
    raw = azml_namespace("dev") | {
        "principals": {"approvers": [{"objectId": "11111111-2222-4333-8444-555555555555", "type": "Robot"}]}
    }
    (problem,) = problems_for(raw)
    assert problem.startswith("azml:principals.approvers[0].type: Input should be 'Group', 'User' or 'ServicePrincipal'")


def test_prefix_rule_protects_storage_account_name_length() -> None:
    (problem,) = problems_for(mutated("dev", "prefix", "waytoolongprefix"))
    assert problem.startswith("azml:prefix: must be 2-8 characters")


def test_all_problems_are_reported_at_once() -> None:
    raw = mutated("dev", "location", 42)
    raw["storage"]["sku"] = "nope"
    raw["bogus"] = 1
    problems = problems_for(raw)
    assert len(problems) == 3
    assert {p.split(":", 2)[1] for p in problems} == {"location", "storage.sku", "bogus"}


def test_pulumi_engine_values_decode_like_the_cli_passes_them() -> None:
    # The CLI hands structured config to programs as JSON text and scalars as text.
    raw = azml_namespace("dev")
    as_engine = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items()}
    assert raw_from_pulumi_values(as_engine) == raw
    # A numeric-looking prefix stays a string, as Pulumi passes it.
    assert raw_from_pulumi_values({"prefix": "1234"}) == {"prefix": "1234"}


def test_derived_names_follow_azure_rules() -> None:
    config = validate_config(mutated("dev", "environment", "staging"))
    names = names_for(config)
    assert len(names.storage_account) <= 24 and names.storage_account.isalnum()
    assert len(names.key_vault) <= 24
    # Globally unique names differ per stack (suffix from prefix/env/location).
    other = names_for(validate_config(azml_namespace("dev")))
    assert names.storage_account != other.storage_account
