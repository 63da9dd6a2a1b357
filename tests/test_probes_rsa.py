"""RSA: RDMs against scipy, comparisons against rsatoolbox, permutation null and bootstrap against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import chisquare, kstest, rankdata, spearmanr

from audioprobe.errors import ParameterError
from audioprobe.probes.rdm import compare_rdms, descriptor_rdm, layer_rdm
from audioprobe.probes.rsa import RSAProbe
from audioprobe.probes.rsa_resampling import _doubled_midranks, _SortedPairs, bootstrap_distribution, permutation_null
from audioprobe.probes.shared import SharedCache

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


def _frequencies_match(values, outcomes, probabilities):
    """Every value is one of the enumerated outcomes (rows of ``outcomes``) and their frequencies follow
    ``probabilities`` (chi-square); outcomes with equal values are pooled."""
    def key(v):  # NaN (a constant resampled RDM) is an outcome too
        return tuple(None if np.isnan(x) else round(float(x), 9) for x in v)

    keys = [key(o) for o in outcomes]
    pooled = {}
    for outcome, prob in zip(keys, probabilities):
        pooled[outcome] = pooled.get(outcome, 0.0) + prob
    observed = dict.fromkeys(pooled, 0)
    for v in values:
        assert key(v) in observed, f"{v} is not the value of any permutation or resample"
        observed[key(v)] += 1
    expected = np.array(list(pooled.values())) * len(values)
    assert chisquare(list(observed.values()), expected).pvalue > 1e-3


@pytest.mark.parametrize("method", ["spearman", "tau-a"])
def test_permutation_null_is_the_distribution_over_all_clip_permutations(method):
    """With 5 clips every one of the 120 permutations is enumerated: each null value is rsatoolbox's similarity
    of the targets with the layer RDM of one permutation of the clips, and all permutations are equally likely."""
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    rdm = layer_rdm(X)
    targets = np.stack([descriptor_rdm(Y[:, j]) for j in range(2)], axis=1)
    null = permutation_null(rdm, targets, method=method, n_permutations=1200 if method == "spearman" else 600,
                            random_state=7, batch=64)
    outcomes = [[rsatoolbox.rdm.compare(_rdms(pdist(X[list(perm)], "correlation")), _rdms(targets[:, j]),
                                        method=method)[0, 0] for j in range(2)]
                for perm in itertools.permutations(range(5))]
    _frequencies_match(null, outcomes, np.full(120, 1 / 120))


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
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_bootstrap_is_the_distribution_over_all_group_resamples(tied_layer):
    """With 3 groups of unequal sizes every resample of the groups (10 count vectors, multinomial probabilities)
    is enumerated: each replicate is scipy's Spearman of the pairs repeated by their weights (count of clip i x
    count of clip j) for one resample, with that resample's probability."""
    rng = np.random.default_rng(8)
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    n = len(groups)
    X = rng.integers(0, 3, size=(n, 2)).astype(float) if tied_layer else rng.normal(size=(n, 4))
    rdm = layer_rdm(X, metric="euclidean")
    targets = np.stack([descriptor_rdm(rng.integers(0, 4, size=n).astype(float)),
                        descriptor_rdm(rng.normal(size=n)), descriptor_rdm(X[:, 0] + rng.normal(size=n))], axis=1)
    boot = bootstrap_distribution(rdm, targets, groups, n_bootstraps=1000, random_state=2)
    rows, cols = np.triu_indices(n, 1)
    outcomes, probabilities = [], []
    for drawn in itertools.product(range(3), repeat=3):  # 27 equally likely sequences of drawn groups
        count = np.bincount(drawn, minlength=3)[groups]
        reps = (count[rows] * count[cols]).astype(int)
        outcomes.append([spearmanr(np.repeat(rdm, reps), np.repeat(targets[:, j], reps)).statistic
                         for j in range(3)])
        probabilities.append(1 / 27)
    _frequencies_match(boot, outcomes, probabilities)


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


@pytest.mark.parametrize("method", ["spearman", "tau-a"])
def test_shared_descriptor_side_gives_the_same_results_for_every_layer(method):
    """A cache shared by the layers of a stage returns exactly what each probe computes alone, keyed by content."""
    rng = np.random.default_rng(12)
    n = 20
    Y = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "noise": 0.5 + 1e-12 * rng.normal(size=n)})
    Y.loc[:5, "b"] = np.nan  # two patterns of clips
    other = Y.assign(a=Y["a"] ** 3)  # same shape and missing values, other values: must not hit the cache
    layers = [rng.normal(size=(n, 6)), np.c_[Y["a"], 0.1 * rng.normal(size=(n, 3))], rng.normal(size=(n, 6))]
    groups = np.arange(n) // 2
    cache = SharedCache()
    for X, targets in zip(layers, (Y, Y, other)):
        options = dict(metric="euclidean", method=method, n_permutations=30,
                       n_bootstraps=20 if method == "spearman" else 3, random_state=4)
        shared = RSAProbe(cache=cache, **options).fit(X, targets, groups).results_
        pd.testing.assert_frame_equal(shared, RSAProbe(**options).fit(X, targets, groups).results_)
    # patterns {a, noise} (all clips) and {b} (14 clips): the second layer reuses both; `other` differs in a only
    assert len(cache) == 3 and cache.hits == 3
    planted = RSAProbe(cache=cache, metric="euclidean", method=method).fit(layers[1], Y, groups).results_
    assert planted.loc[0, "value"] > 0.5
