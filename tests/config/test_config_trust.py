"""A stack file arrives in pull requests: no value in it can switch a
safeguard off, and no path in it can read the runner's files.

Numbers are finite and of their own type, booleans are booleans, strings
match their whole pattern (a trailing newline is not a name), enums take
their allowed values, and the gate and rollback thresholds have bounds that
no value can widen into "always pass"."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from azml.config import ConfigError, validate_config
from azml.config.releases.release import GateThresholds, ReleaseConfig, RollbackTriggers
from azml import tracking as t
from azml.release.evidence.gate import decide, gate_metrics, rollback_triggers
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.verdict import Decision

from ..conftest import ROOT, load_stack, run_cli, write_stack


def _namespace(stack: str = "prod") -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in load_stack(stack)["config"].items() if k.startswith("azml:")}


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


def _problems(path: tuple[Any, ...], value: Any) -> list[str]:
    raw = _namespace()
    _set(raw, path, value)
    with pytest.raises(ConfigError) as raised:
        validate_config(raw, ROOT)
    return raised.value.problems


CASES: dict[str, tuple[tuple[Any, ...], Any, str]] = {
    "infinite p95 SLA": (("release", "gate", "maxLatencyP95Ms"), float("inf"), "azml:release.gate.maxLatencyP95Ms: Input should be a finite number"),
    "infinite rollback multiple": (("release", "rollback", "errorRateMultiple"), float("inf"), "azml:release.rollback.errorRateMultiple: Input should be a finite number"),
    "NaN PSI limit": (("release", "gate", "maxPsi"), float("nan"), "azml:release.gate.maxPsi: Input should be a finite number"),
    "infinite alert threshold": (("alerts", "serverErrors", "thresholdPerMinute"), float("inf"), "azml:alerts.serverErrors.thresholdPerMinute:"),
    "true as an error rate": (("release", "gate", "maxErrorRate"), True, "azml:release.gate.maxErrorRate: Input should be a valid number"),
    "true as an instance count": (("onlineEndpoints", 0, "deployments", 0, "instanceCount"), True, "azml:onlineEndpoints[0].deployments[0].instanceCount: Input should be a valid integer"),
    "text as a number": (("release", "windowMinutes"), "60", "azml:release.windowMinutes: Input should be a valid integer"),
    "yes as a boolean": (("governance", "locks"), "yes", "azml:governance.locks: Input should be a valid boolean"),
    "1 as a boolean": (("workspace", "hbi"), 1, "azml:workspace.hbi: Input should be a valid boolean"),
    "a name with a trailing newline": (("compute", "clusters", 2, "name"), "gpu-train\n", "azml:compute.clusters[2].name:"),
    "a prefix with a trailing newline": (("prefix",), "azml\n", "azml:prefix:"),
    "an e-mail with a trailing newline": (("alerts", "emails", 0), "oncall@example.com\n", "azml:alerts.emails[0]:"),
    "a NUL in the tracking URI": (("release", "metrics", "trackingUri"), "sqlite:///mlruns.db\x00", "azml:release.metrics.trackingUri: must not contain control characters"),
    "an unknown policy effect": (("governance", "policies", 0, "parameters", "effect"), "Off", "azml:governance.policies[0]: parameters.effect must be one of Audit, Deny, Disabled (got 'Off')"),
    "a gate that passes 100 % errors": (("release", "gate", "maxErrorRate"), 1, "azml:release.gate.maxErrorRate: Input should be less than or equal to 0.5"),
    "a gate that passes any accuracy": (("release", "gate", "minAccuracyDelta"), -1, "azml:release.gate.minAccuracyDelta: Input should be greater than or equal to -0.1"),
    "a p95 SLA of a day": (("release", "gate", "maxLatencyP95Ms"), 86_400_000, "azml:release.gate.maxLatencyP95Ms: Input should be less than or equal to 60000"),
    "a rollback that never fires": (("release", "rollback", "errorRateMultiple"), 1e9, "azml:release.rollback.errorRateMultiple: Input should be less than or equal to 100"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_that_would_weaken_a_safeguard_is_refused_naming_the_key(case: str) -> None:
    path, value, expected = CASES[case]
    problems = _problems(path, value)
    assert any(p.startswith(expected) for p in problems), problems


def test_the_cli_refuses_with_one_line_and_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    document = load_stack("prod")
    document["config"]["azml:release"]["gate"]["maxLatencyP95Ms"] = float("inf")
    path = write_stack(tmp_path, "weak", document)
    assert ".inf" in path.read_text()
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"), "--no-checkov")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: azml:release.gate.maxLatencyP95Ms: Input should be a finite number (got Infinity)"
    ]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def _observation(name: str, **metrics: float) -> Observation:
    return Observation(name, {metric: Measure(value, 100_000) for metric, value in metrics.items()})


def test_the_widest_thresholds_still_hold_or_roll_back_a_bad_canary() -> None:
    """Every gate and rollback threshold at the edge its bounds allow: a canary
    with 90 % errors, a p95 of 10^9 ms, a PSI of 5, accuracy 0.5 below the
    champion and a parity gap of 0.9 is never promoted, and is rolled back."""
    widest = ReleaseConfig(
        gate=GateThresholds(
            min_accuracy_delta=-0.1, max_latency_p95_ms=60_000, max_error_rate=0.5, max_psi=1, max_parity_difference=0.5
        ),
        rollback=RollbackTriggers(
            error_rate_multiple=100, latency_over_sla_percent=1000, critical_regression=0.5, error_rate_floor=0.1,
            critical_metrics=["accuracy", "parityDifference"],
        ),
    )
    champion = _observation("blue", **{t.METRIC_ACCURACY: 0.95, t.METRIC_LATENCY_P95: 100, t.METRIC_ERROR_RATE: 0.001, t.METRIC_PSI: 0.01, t.METRIC_PARITY: 0.01})
    canary = _observation("green", **{t.METRIC_ACCURACY: 0.40, t.METRIC_LATENCY_P95: 1e9, t.METRIC_ERROR_RATE: 0.9, t.METRIC_PSI: 5, t.METRIC_PARITY: 0.9})
    metrics = gate_metrics(widest, champion, canary)
    assert all(m.outcome.name == "FAIL" for m in metrics), metrics
    triggers = rollback_triggers(widest, champion, canary)
    assert any(s.startswith("latencyP95Ms") for s in triggers) and any(s.startswith("accuracy regressed") for s in triggers)
    assert decide(metrics, triggers) is Decision.ROLLBACK


# --------------------------------------------------------------------------- paths stay inside the project


PATH_CASES = {
    "absolute": "/etc/passwd",
    "parent escape": "../../../../etc/hostname",
    "escape in the middle": "serving/../../outside.yaml",
    "windows drive": "C:/Windows/win.ini",
    "backslash": "serving\\credit-risk\\conda.yaml",
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_a_conda_file_outside_the_project_is_refused(case: str) -> None:
    problems = _problems(("onlineEndpoints", 0, "deployments", 0, "environment", "condaFile"), PATH_CASES[case])
    assert any(
        p.startswith("azml:onlineEndpoints[0].deployments[0].environment.condaFile: must be a path inside the project")
        for p in problems
    ), problems


def test_a_symlink_that_leaves_the_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((ROOT / name).read_text())
    (project / "serving").mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("runner secret\n")
    os.symlink(outside, project / "serving" / "conda.yaml")
    raw = _namespace()
    raw["onlineEndpoints"][0]["deployments"][0]["environment"]["condaFile"] = "serving/conda.yaml"
    with pytest.raises(ConfigError) as raised:
        validate_config(raw, project)
    assert any("condaFile: must be a path inside the project" in p and "leaves it" in p for p in raised.value.problems)


def test_the_plan_never_copies_a_runner_file_into_plan_json(tmp_path: Path) -> None:
    document = load_stack("prod")
    document["config"]["azml:onlineEndpoints"][0]["deployments"][0]["environment"]["condaFile"] = "/etc/hostname"
    path = write_stack(tmp_path, "pr", document)
    result = run_cli("plan", str(path), "--out", str(tmp_path / "out"), "--no-checkov")
    assert result.returncode == 2
    assert "condaFile: must be a path inside the project" in result.stderr
    assert not (tmp_path / "out").exists()
