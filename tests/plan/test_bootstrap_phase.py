"""The first `pulumi up` on an empty subscription: ``azml:phase: platform``
deploys the platform without the deployments whose code assets cannot exist
yet; the second phase only adds to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from azml.config import ConfigError, read_stack_file
from azml.plan.engine import run_plan
from azml.plan.model import Plan

from ..conftest import ROOT, load_stack, write_stack
from ..platform_harness import run_rules

SERVING_TYPES = (
    "azure-native:machinelearningservices:OnlineEndpoint",
    "azure-native:machinelearningservices:OnlineDeployment",
    "azure-native:machinelearningservices:BatchEndpoint",
    "azure-native:machinelearningservices:BatchDeployment",
    "azure-native:machinelearningservices:Schedule",
)


def _phase(tmp_path: Path, phase: object) -> Path:
    document = load_stack("prod")
    document["config"]["azml:phase"] = phase
    return write_stack(tmp_path, "prod", document)


def test_the_platform_phase_leaves_serving_out_and_phase_two_only_adds(tmp_path: Path, prod_plan: Plan) -> None:
    platform = run_plan(read_stack_file(str(_phase(tmp_path, "platform")), ROOT))
    assert not [r for r in platform.resources if r.type in SERVING_TYPES]
    assert any(r.type.endswith(":Workspace") for r in platform.resources)
    assert run_rules(platform) == []
    urns = {r.urn for r in prod_plan.resources}
    assert {r.urn for r in platform.resources} <= urns, "phase two (the committed stack) only adds resources"
    assert any(r.type in SERVING_TYPES for r in prod_plan.resources)


def test_an_unknown_phase_is_refused_naming_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        run_plan(read_stack_file(str(_phase(tmp_path, "bootstrap")), ROOT))
    assert raised.value.problems == ["azml:phase: Input should be 'platform' or 'serving' (got \"bootstrap\")"]
