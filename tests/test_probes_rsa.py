"""RSA: RDMs against scipy, comparisons against rsatoolbox, permutation null and bootstrap against brute force."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import kstest, rankdata, spearmanr

from audioprobe.errors import ParameterError
from audioprobe.probes.rsa import (
    RSAProbe,
    _doubled_midranks,
    _SortedPairs,
    bootstrap_distribution,
    compare_rdms,
    descriptor_rdm,
    layer_rdm,
    permutation_null,
)

rsatoolbox = pytest.importorskip("rsatoolbox")


def _rdms(values):
    return rsatoolbox.rdm.RDMs(np.atleast_2d(values), pattern_descriptors={"index": np.arange(_n(len(values)))})


def _n(m):
    return int(round((1 + np.sqrt(1 + 8 * m)) / 2))


def test_layer_rdm_known_distances_and_undefined_pairs():
    """Correlation distance 1 - r and euclidean distance on rows with known answers; NaN where undefined."""
    X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 2.0, 1.0], [0.0, 3.0, 4.0]])
    # pairs (0,1) r = 1, (0,2) r = -1, (0,3): r = 4 / sqrt(2 * 26/3), (1,2) r = -1, (1,3) as (0,3), (2,3) = -(0,3)
    r03 = 4.0 / np.sqrt(2.0 * 26.0 / 3.0)
    np.testing.assert_allclose(layer_rdm(X), [0.0, 2.0, 1 - r03, 2.0, 1 - r03, 1 + r03], atol=1e-12)
    np.testing.assert_allclose(layer_rdm(X, metric="euclidean"),
                               [np.sqrt(14), np.sqrt(8), np.sqrt(3), np.sqrt(30), np.sqrt(9), np.sqrt(19)], atol=1e-12)
    y = np.array([1.0, 4.0, 2.5])
    np.testing.assert_allclose(descriptor_rdm(y), [3.0, 1.5, 1.5])
    X[2] = 5.0  # a constant row: its correlation distances are undefined, its euclidean ones are not
    undefined = np.isnan(layer_rdm(X))
    np.testing.assert_array_equal(undefined, [False, True, False, True, False, True])
    assert np.isfinite(layer_rdm(X, metric="euclidean")).all()
    X[3, 1] = np.nan  # a row with a NaN: every pair with it is NaN
    np.testing.assert_array_equal(np.isnan(layer_rdm(X, metric="euclidean")), [False, False, True, False, True, True])
    with pytest.raises(ParameterError, match="metric must be one of"):
        layer_rdm(X, metric="cosine")


def test_layer_rdm_equals_rsatoolbox():
    X = np.random.default_rng(0).normal(size=(15, 9))
    for metric in ("correlation", "euclidean"):
        oracle = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(X), method=metric).get_vectors()[0]
        scale = 1.0 if metric == "correlation" else X.shape[1]  # rsatoolbox's euclidean is the squared mean
        expected = oracle if metric == "correlation" else np.sqrt(oracle * scale)
        np.testing.assert_allclose(layer_rdm(X, metric=metric), expected, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "tau-a"])
def test_compare_equals_rsatoolbox(method):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(14, 6))
    rdm = layer_rdm(X)
    for y in (rng.normal(size=14), rng.integers(0, 3, size=14).astype(float)):  # continuous, and many ties
        d = descriptor_rdm(y)
        oracle = rsatoolbox.rdm.compare(_rdms(rdm), _rdms(d), method=method)[0, 0]
        assert compare_rdms(rdm, d, method=method) == pytest.approx(oracle, abs=1e-6)


def test_permutation_null_equals_recomputed_permutations():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(11, 5)), rng.normal(size=(11, 3))
    rdm = layer_rdm(X)
    targets = np.stack([descriptor_rdm(Y[:, j]) for j in range(3)], axis=1)
    for method in ("spearman", "tau-a"):
        null = permutation_null(rdm, targets, method=method, n_permutations=6, random_state=7, batch=4)
        draw = np.random.default_rng(7)
        perms = (draw.permuted(np.tile(np.arange(11), (6, 1)), axis=1) if method == "spearman"
                 else np.array([draw.permutation(11) for _ in range(6)]))
        for b, perm in enumerate(perms):
            shuffled = pdist(X[perm], "correlation")  # the layer's clip labels permuted
            expected = [rsatoolbox.rdm.compare(_rdms(shuffled), _rdms(targets[:, j]), method=method)[0, 0]
                        for j in range(3)]
            np.testing.assert_allclose(null[b], expected, atol=1e-6)


@pytest.mark.parametrize("tied_layer", [True, False])
def test_bootstrap_replicates_equal_rsatoolbox_subsampling(tied_layer):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(12, 2)).astype(float) if tied_layer else rng.normal(size=(12, 2))
    rdm = layer_rdm(X, metric="euclidean")
    targets = np.stack([descriptor_rdm(rng.integers(0, 5, size=12).astype(float)),  # many ties
                        descriptor_rdm(rng.normal(size=12))], axis=1)                 # none
    groups = np.arange(12) // 2
    boot = bootstrap_distribution(rdm, targets, groups, n_bootstraps=4, random_state=11)
    draw = np.random.default_rng(11)
    for b in range(4):
        drawn = np.bincount(draw.integers(0, 6, 6), minlength=6)
        sample = np.concatenate([np.flatnonzero(groups == g) for g in range(6) for _ in range(drawn[g])])
        a = _rdms(rdm).subsample_pattern("index", sample)
        for j in range(2):
            c = _rdms(targets[:, j]).subsample_pattern("index", sample)
            assert boot[b, j] == pytest.approx(rsatoolbox.rdm.compare(a, c, method="spearman")[0, 0], abs=1e-6)


@pytest.mark.parametrize("levels", [6, 10**9])  # many ties, and (almost surely) none
def test_weighted_midranks_equal_ranks_of_expanded_vector(levels):
    rng = np.random.default_rng(4)
    V = rng.integers(0, levels, size=(40, 3)).astype(float)
    w = rng.integers(0, 4, size=40).astype(float)
    x = rng.normal(size=40)
    sorted_pairs = _SortedPairs.of(V)
    assert sorted_pairs.tied == (levels == 6)
    products, ties = sorted_pairs.rank_cross_products(np.c_[w, x])
    for j in range(3):
        ranks2 = np.empty(40)
        tie_term = _doubled_midranks(sorted_pairs.order[j], sorted_pairs.ends[j], w, ranks2)
        expanded = np.repeat(V[:, j], w.astype(int))
        np.testing.assert_array_equal(np.repeat(ranks2, w.astype(int)), 2 * rankdata(expanded))
        counts = np.unique(expanded, return_counts=True)[1].astype(float)
        assert tie_term == ties[j] == np.sum(counts**3 - counts)
        assert products[j] == pytest.approx(np.sum(x * ranks2), rel=1e-12)


@pytest.mark.parametrize("tied_layer", [True, False])
def test_bootstrap_equals_spearman_of_expanded_samples(tied_layer):
    """Every bootstrap replicate equals scipy's Spearman of the pairs repeated by their weights (unequal groups)."""
    rng = np.random.default_rng(8)
    n = 25
    X = rng.integers(0, 3, size=(n, 2)).astype(float) if tied_layer else rng.normal(size=(n, 4))
    rdm = layer_rdm(X, metric="euclidean")
    targets = np.stack([descriptor_rdm(rng.integers(0, 4, size=n).astype(float)),
                        descriptor_rdm(rng.normal(size=n)), descriptor_rdm(X[:, 0] + rng.normal(size=n))], axis=1)
    groups = np.r_[np.arange(9), rng.integers(0, 9, size=n - 9)]  # 9 groups of unequal sizes
    boot = bootstrap_distribution(rdm, targets, groups, n_bootstraps=40, random_state=2)
    _, group_of = np.unique(groups.astype(str), return_inverse=True)
    draw = np.random.default_rng(2)
    rows, cols = np.triu_indices(n, 1)
    for b in range(40):
        count = np.bincount(draw.integers(0, 9, 9), minlength=9)[group_of]
        reps = count[rows] * count[cols]
        for j in range(3):
            expected = spearmanr(np.repeat(rdm, reps), np.repeat(targets[:, j], reps)).statistic
            assert boot[b, j] == pytest.approx(expected, abs=1e-12)


def test_planted_similarity_is_detected_and_null_p_values_are_uniform():
    rng = np.random.default_rng(5)
    n = 20
    p_values = []
    for _ in range(150):
        X, y = rng.normal(size=(n, 6)), rng.normal(size=(n, 2))
        probe = RSAProbe(n_permutations=99, n_bootstraps=0, random_state=rng).fit(X, y, np.arange(n))
        p_values.extend(probe.results_["p_value"])
    p_values = np.array(p_values)
    assert kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(p_values <= 0.05) <= 0.09
    y = rng.normal(size=n)
    X = np.column_stack([y, y**2]) + 0.3 * rng.normal(size=(n, 2))
    res = RSAProbe(metric="euclidean", n_permutations=199, n_bootstraps=200, random_state=0).fit(
        X, pd.DataFrame({"f": y}), np.arange(n) // 2).results_
    assert res.loc[0, "p_value"] == pytest.approx(1 / 200)
    assert 0.3 < res.loc[0, "ci_low"] < res.loc[0, "value"] < res.loc[0, "ci_high"] <= 1


def test_missing_values_random_state_and_bad_input():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(16, 5)), rng.normal(size=(16, 2))
    Y[:4, 1] = np.nan
    groups = np.arange(16) // 2
    first = RSAProbe(n_permutations=50, n_bootstraps=50, random_state=3).fit(X, Y, groups).results_
    again = RSAProbe(n_permutations=50, n_bootstraps=50, random_state=3).fit(X, Y, groups).results_
    pd.testing.assert_frame_equal(first, again)
    assert first["n_clips"].tolist() == [16, 12]
    assert first.loc[1, "value"] == pytest.approx(compare_rdms(layer_rdm(X[4:]), descriptor_rdm(Y[4:, 1])))
    with pytest.raises(ParameterError, match="method must be one of"):
        RSAProbe(method="pearson").fit(X, Y, groups)
    with pytest.raises(ParameterError, match="same number of pairs"):
        compare_rdms(np.ones(3), np.ones(6))


def test_descriptor_or_layer_that_varies_by_float_noise_gives_nan_with_reason():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 8))
    X[:, 0] *= 4
    signal = X[:, 0] + 0.5 * rng.normal(size=30)
    Y = pd.DataFrame({"band_residue": 0.5 + 1e-12 * rng.normal(size=30),  # std 2e-12 of its level: float noise
                      "small_genuine": 1e-9 * signal,                    # tiny values, genuine variation
                      "signal": signal})
    before = compare_rdms(layer_rdm(X), descriptor_rdm(Y["band_residue"].to_numpy()))
    assert np.isfinite(before)  # the rank correlation of rounding residue, without the rule
    res = RSAProbe(n_permutations=50, n_bootstraps=20, random_state=0).fit(X, Y, np.arange(30) // 2).results_
    res = res.set_index("feature")
    assert res.loc["band_residue", ["value", "p_value", "ci_low", "ci_high"]].isna().all()
    assert res.loc["band_residue", "note"].startswith("descriptor variance is float noise")
    assert res.loc["small_genuine", "value"] == pytest.approx(res.loc["signal", "value"], abs=1e-12)
    assert res.loc["small_genuine", "value"] > 0.2 and pd.isna(res.loc["small_genuine", "note"])
    dead = np.outer(np.ones(30), rng.normal(size=8)) + 1e-13 * rng.normal(size=(30, 8))  # equal for all clips
    layer = RSAProbe(n_permutations=0, n_bootstraps=0).fit(dead, Y, np.arange(30) // 2).results_
    assert layer["value"].isna().all()
    assert layer["note"].iloc[1:].str.startswith("layer variance is float noise").all()
    assert np.isnan(compare_rdms(1.0 + 1e-12 * rng.normal(size=435), descriptor_rdm(signal)))
