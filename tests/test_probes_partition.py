"""Variance partitioning and cross-domain transfer on planted effects of known size."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audioprobe.errors import ParameterError
from audioprobe.probes.partition import VariancePartition
from audioprobe.probes.scaling import fit_scaling
from audioprobe.probes.shared import SharedCache
from audioprobe.probes.splitters import GroupFolds, fold_labels
from audioprobe.probes.transfer import DomainTransfer


def _unit(rng, p):
    w = rng.normal(size=p)
    return w / np.linalg.norm(w)


def test_unique_variance_of_planted_and_redundant_descriptors():
    rng = np.random.default_rng(0)
    n, p = 240, 20
    a, b, c = rng.normal(size=(3, n))
    D = pd.DataFrame({"a": a, "a_copy": a + 0.05 * rng.normal(size=n), "b": b, "c": c})
    # layer variance: 4 from a, 4 from b, 20 * 0.1 = 2 from noise -> R^2 full 0.8, unique(b) 0.4
    X = np.outer(a, 2 * _unit(rng, p)) + np.outer(b, 2 * _unit(rng, p)) + np.sqrt(0.1) * rng.normal(size=(n, p))
    groups = np.arange(n) // 4
    single = VariancePartition(5, n_components=8).fit(X, D, groups)
    assert single.r2_full_pooled_ == pytest.approx(0.8, abs=0.05)
    unique = {k: single.r2_full_pooled_ - v for k, v in single.r2_without_pooled_.items()}
    assert unique["b"] == pytest.approx(0.4, abs=0.05)
    for redundant in ("a", "a_copy", "c"):  # a and its copy: neither is credited; c: unrelated
        assert abs(unique[redundant]) < 0.03
    sets = VariancePartition(5, sets={"a-family": ["a", "a_copy"], "b": ["b"]}, n_components=8).fit(X, D, groups)
    table = sets.to_frame()
    pooled = table[table["fold"].isna()].set_index(["feature", "metric"])["value"]
    assert pooled[("a-family", "unique_r2")] == pytest.approx(0.4, abs=0.05)
    assert pooled[("all", "r2_full")] == pytest.approx(0.8, abs=0.05)
    assert len(table.query("metric == 'unique_r2'")) == 2 * 6  # 2 sets x (5 folds + pooled)


def test_shared_descriptor_fits_give_the_same_partition_for_every_layer():
    """With a cache shared by two layers, the second layer reuses the descriptor decompositions: same tables."""
    rng = np.random.default_rng(3)
    n = 120
    D = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    sets = {"ab": ["a", "b"], "c": ["c"]}
    layers = [np.outer(D["a"], _unit(rng, 10)) + 0.3 * rng.normal(size=(n, 10)), rng.normal(size=(n, 6))]
    groups = np.arange(n) // 3
    cache = SharedCache()
    for X in layers:
        shared = VariancePartition(4, sets=sets, n_components=5, cache=cache).fit(X, D, groups).to_frame()
        pd.testing.assert_frame_equal(shared, VariancePartition(4, sets=sets, n_components=5).fit(X, D, groups)
                                      .to_frame())
    assert len(cache) == 4 * 3 and cache.hits == 4 * 3  # per fold: all, without ab, without c; reused once
    assert shared.query("feature == 'ab' and metric == 'unique_r2'")["value"].abs().max() < 0.2  # noise layer


def test_partition_drops_incomplete_clips_and_checks_input():
    rng = np.random.default_rng(1)
    X, D = rng.normal(size=(60, 5)), pd.DataFrame(rng.normal(size=(60, 2)), columns=["x", "y"])
    D.iloc[:6, 0] = np.nan
    part = VariancePartition(3).fit(X, D, np.arange(60) // 3)
    assert part.n_clips_ == 54
    assert part.r2_full_pooled_ < 0.05
    with pytest.raises(ParameterError, match="lacks"):
        VariancePartition(3, sets={"s": ["z"]}).fit(X, D, np.arange(60) // 3)
    with pytest.raises(ParameterError, match="DataFrame"):
        VariancePartition(3).fit(X, D.to_numpy(), np.arange(60) // 3)


def test_transfer_follows_the_planted_mapping_of_each_domain():
    rng = np.random.default_rng(2)
    n, p = 90, 6
    X = rng.normal(size=(n, p))
    w = _unit(rng, p)
    domains = np.repeat(["speech", "music", "environmental"], n // 3)
    sign = np.where(domains == "environmental", -1.0, 1.0)  # environmental clips map the other way
    y = sign * (X @ w) + 0.3 * rng.normal(size=n)
    groups = np.arange(n) // 3
    res = DomainTransfer(3).fit(X, pd.DataFrame({"f": y}), domains, groups).results_
    score = res.set_index(["train_domain", "eval_domain", "metric"])["value"]
    expected_r2 = 1 / (1 + 0.09)
    assert score[("speech", "speech", "r2")] == pytest.approx(expected_r2, abs=0.1)
    assert score[("speech", "music", "r2")] == pytest.approx(expected_r2, abs=0.1)
    assert score[("speech", "environmental", "pearson_r")] < -0.8
    assert score[("environmental", "speech", "r2")] < -1
    assert set(res["n_clips"]) == {30}


def test_partition_fold_whose_layer_varies_by_float_noise_is_nan_with_reason():
    rng = np.random.default_rng(13)
    n, p = 60, 6
    D = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    X = np.outer(D["a"], _unit(rng, p)) + 0.3 * rng.normal(size=(n, p))
    groups = np.arange(n) // 3
    folds = fold_labels(GroupFolds(3), groups)
    X[folds == 0] = X[0] + 1e-13 * rng.normal(size=((folds == 0).sum(), p))  # fold 0: all clips alike
    part = VariancePartition(3, n_components=4).fit(X, D, groups)
    table = part.to_frame()
    fold0 = table[table["fold"] == 0]
    assert fold0["value"].isna().all() and fold0["note"].str.startswith("layer variance is float noise").all()
    others = table[table["fold"] != 0]  # fold 1, 2 and pooled (<NA> compares as NA and is kept out here)
    assert others["value"].notna().all() and others["note"].isna().all()
    pooled = table[table["fold"].isna()]
    assert pooled["value"].notna().all()


def test_standard_scaling_leaves_float_noise_columns_unscaled():
    rng = np.random.default_rng(14)
    X = np.c_[1000.0 + 1e-10 * rng.normal(size=50), 1e-12 * rng.normal(size=50), rng.normal(size=50)]
    mean, scale = fit_scaling(X, "standard")
    assert scale[0] == 1.0  # residue around a level: constant
    assert scale[1] == pytest.approx(X[:, 1].std())  # small but genuine: standardised
    assert scale[2] == pytest.approx(X[:, 2].std())
    assert fit_scaling(np.ones((5, 2)), "standard")[1].tolist() == [1.0, 1.0]
