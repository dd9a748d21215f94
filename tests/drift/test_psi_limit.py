"""The PSI limit has one type, one default and one sense: drift only when PSI is
above the limit. A PSI equal to the limit passes the promotion gate, does not
trigger retraining, passes data validation and is no drift breach."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from azml import tracking as t
from azml.config.releases.data_validation import DistributionCheck, ModelValidation
from azml.config.platform.model_monitoring import ModelMonitoringConfig
from azml.config.releases.release import GateThresholds, ReleaseConfig, RetrainTriggers
from azml.drift import compute_drift
from azml.drift.defaults import DEFAULT_PSI_LIMIT, psi_breaches
from azml.drift.metrics import PSI, breached, breaches
from azml.release.evidence.gate import gate_metrics
from azml.release.evidence.observations import Measure, Observation
from azml.release.evidence.validation import check_distribution
from azml.release.evidence.verdict import Outcome
from azml.retrain.triggers import Inputs, Status, Thresholds, decide

LIMIT = 0.2


def test_one_sense_drift_only_above_the_limit() -> None:
    assert not psi_breaches(LIMIT, LIMIT)
    assert psi_breaches(np.nextafter(LIMIT, 1), LIMIT)
    assert not psi_breaches(0.0, LIMIT)


def test_one_default_everywhere() -> None:
    assert DEFAULT_PSI_LIMIT == 0.2
    assert GateThresholds().max_psi == DEFAULT_PSI_LIMIT
    assert RetrainTriggers().max_psi == DEFAULT_PSI_LIMIT
    monitors = ModelMonitoringConfig(features=["income"])
    assert monitors.data_drift.thresholds.metrics()[PSI] == DEFAULT_PSI_LIMIT
    assert monitors.prediction_drift.thresholds.metrics()[PSI] == DEFAULT_PSI_LIMIT


@pytest.mark.parametrize("value", [0, -0.1, 1.5])
def test_one_type_everywhere(value: float) -> None:
    for build in (
        lambda: GateThresholds(max_psi=value),
        lambda: RetrainTriggers(max_psi=value),
        lambda: DistributionCheck(max_psi=value),
        lambda: ModelMonitoringConfig.model_validate(
            {"features": ["income"], "dataDrift": {"thresholds": {"PopulationStabilityIndex": value}}}
        ),
    ):
        with pytest.raises(ValidationError):
            build()


def test_psi_equal_to_the_limit_passes_the_gate() -> None:
    def observation(name: str, psi: float) -> Observation:
        return Observation(name, {t.METRIC_PSI: Measure(psi, 5000)}, 1)

    rows = {r.name: r for r in gate_metrics(ReleaseConfig(), observation("blue", 0.01), observation("green", LIMIT))}
    assert rows["psi"].outcome is Outcome.PASS and rows["psi"].comparison == "<="
    rows = {r.name: r for r in gate_metrics(ReleaseConfig(), observation("blue", 0.01), observation("green", 0.2001))}
    assert rows["psi"].outcome is Outcome.FAIL


def test_psi_equal_to_the_limit_does_not_trigger_retraining() -> None:
    now = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    inputs = Inputs(now=now, psi={"income": LIMIT}, accuracy=0.9, accuracy_n=1000, training_accuracy=0.9,
                    trained_at=now - dt.timedelta(days=1))
    thresholds = Thresholds(max_psi=RetrainTriggers().max_psi, max_accuracy_drop=0.03, max_model_age_days=30)
    decision = decide(inputs, thresholds)
    assert decision.status is Status.NONE and decision.reasons == ()


def test_psi_equal_to_the_limit_passes_data_validation_and_is_no_drift_breach() -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, 2000)})
    psi = compute_drift(reference, current, features=["x"]).features[0].psi
    assert 0 < psi <= 1
    rules = ModelValidation.model_validate({"columns": {"x": {"dtype": "float"}}, "reference": "reference.csv", "distribution": {"x": {"maxPsi": psi}}})
    shifts, failures = check_distribution(rules, current, reference)
    assert failures == [] and shifts[0].passed
    assert not breached(PSI, psi, psi) and breaches("numeric", {PSI: psi}, {PSI: psi}) == ()
    at_limit = compute_drift(reference, current, features=["x"], default_threshold=psi)
    assert at_limit.features[0].status == "ok"
    below = compute_drift(reference, current, features=["x"], default_threshold=float(np.nextafter(psi, 0)))
    assert below.features[0].status == "drift"
