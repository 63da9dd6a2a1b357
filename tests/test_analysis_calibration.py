"""Calibration of every domain-comparison test under a simulated null with realistic structure.

The null designs (audioprobe.analysis.simulate) have correlated layers (AR(1) along the network),
seed random effects and seed x descriptor effects for the seed unit; heavy-tailed, heteroscedastic
per-group squared errors with shared clip difficulty for the clip unit. Each test's false-positive
rate at alpha = 0.05 must lie in [0.02, 0.08]; with the simulation counts below the Monte-Carlo
standard error of each rate is about 0.004 (mixed models: 0.008-0.011) (benchmarks/calibration.py runs 2000+ per test).
"""
from __future__ import annotations

import pytest

from audioprobe.analysis.calibration import CALIBRATION_TESTS, calibrate

N_SIMS = {  # designs per test (the mixed models are slow: fewer designs, each pooling its 3 contrasts)
    "permutation-exact": 3000, "permutation-monte-carlo": 3000, "welch-interval": 3000, "mixed-per-descriptor": 400,
    "mixed-across-descriptors": 250, "sign-flip": 3000, "bootstrap": 3000,
}


@pytest.mark.parametrize("test", list(CALIBRATION_TESTS))
def test_false_positive_rate_under_the_null(test):
    result = calibrate(N_SIMS[test], tests=[test], random_state=11).iloc[0]
    assert 0.02 <= result["rate"] <= 0.08, result.to_dict()


def test_planted_effects_raise_the_rejection_rate():
    null = calibrate(300, tests=["permutation-exact", "sign-flip", "bootstrap"], random_state=5)
    power = calibrate(300, tests=["permutation-exact", "sign-flip", "bootstrap"], seed_effect=0.06,
                      clip_effect=0.25, random_state=5)
    assert (power["rate"] > null["rate"] + 0.3).all(), power.to_dict()
