"""The per-domain profile summary (figures/profile.py::domain_profile) against scipy, group by group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audioprobe.figures.profile import domain_profile


def _scores() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    models = [("s0", "speech"), ("s1", "speech"), ("s2", "speech"), ("n0", "nonspeech"), ("n1", "nonspeech"),
              ("r0", "none"), ("e0", "equal"), ("e1", "equal")]
    rows = [{"model": m, "pretrain_domain": d, "layer_index": i, "feature": f, "value": rng.uniform(-0.3, 0.9),
             "ci_low": np.nan, "ci_high": np.nan} for m, d in models for i in range(3) for f in ("f0", "hnr")]
    table = pd.DataFrame(rows)
    table.loc[(table["model"] == "s1") & (table["feature"] == "hnr"), "value"] = np.nan  # undefined score
    table.loc[(table["model"] == "n1") & (table["layer_index"] == 2), "value"] = np.inf
    control = table["model"] == "r0"
    table.loc[control & (table["feature"] == "f0"), ["ci_low", "ci_high"]] = [-0.1, 0.4]  # its own interval
    equal = table["model"].isin(["e0", "e1"])
    table.loc[equal, "value"] = 0.25  # equal seeds
    return table


def test_domain_profile_matches_scipy_group_by_group():
    scores = _scores()
    profile = domain_profile(scores, confidence=0.9).set_index(["pretrain_domain", "feature", "layer_index"])
    assert len(profile) == scores.groupby(["pretrain_domain", "feature", "layer_index"]).ngroups
    for (domain, feature, index), group in scores.groupby(["pretrain_domain", "feature", "layer_index"]):
        row = profile.loc[(domain, feature, index)]
        values = group["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        assert row["n_models"] == group["model"].nunique()
        if values.size >= 2 and np.ptp(values) > 0:
            low, high = stats.t.interval(0.9, values.size - 1, loc=values.mean(), scale=stats.sem(values))
            assert row["interval"] == "seeds (t)"
            np.testing.assert_allclose(row[["mean", "ci_low", "ci_high"]].astype(float),
                                       [values.mean(), low, high], rtol=1e-12)
        elif values.size >= 2:  # equal seeds: a zero-width interval
            assert row["interval"] == "seeds (t)" and row["ci_low"] == row["ci_high"] == pytest.approx(0.25)
        elif domain == "none" and feature == "f0":
            assert row["interval"] == "model" and (row["ci_low"], row["ci_high"]) == (-0.1, 0.4)
        else:  # one value and no interval of its own, or no value
            assert row["interval"] == "none" and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
            assert (row["mean"] == pytest.approx(values[0])) if values.size else np.isnan(row["mean"])
    assert profile.loc[("nonspeech", "f0", 2), "interval"] == "none"  # one finite value left of two
    assert profile.loc[("speech", "hnr", 0), "interval"] == "seeds (t)"  # two of three seeds defined


def test_domain_profile_without_interval_columns():
    profile = domain_profile(_scores().drop(columns=["ci_low", "ci_high"]))
    assert set(profile.loc[profile["pretrain_domain"] == "none", "interval"]) == {"none"}
