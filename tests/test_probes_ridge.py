"""Ridge probes and grouped splitters: oracles (scikit-learn), planted effects, null, leakage, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audioprobe.errors import ParameterError
from audioprobe.probes.ridge import RidgeProbe, cross_validate_ridge
from audioprobe.probes.ridge_solver import _level_means, decompose, fit_predict_ridge, loo_errors
from audioprobe.probes.scores import pearson_columns, r2_score_columns, score_notes
from audioprobe.probes.splitters import GroupFolds, fold_labels
from audioprobe.probes.transfer import DomainTransfer

ALPHAS = np.logspace(-2, 4, 13)


def planted(n=120, p=10, n_targets=3, n_groups=30, r2=0.6, seed=0):
    """y_j = X w_j + noise with population R^2 = r2 for every target; groups of n / n_groups clips."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    W = rng.normal(size=(p, n_targets))
    W /= np.linalg.norm(W, axis=0)
    noise = np.sqrt((1 - r2) / r2)
    Y = X @ W + noise * rng.normal(size=(n, n_targets))
    groups = np.repeat(np.arange(n_groups), n // n_groups)
    return X, Y, rng.permutation(groups)


@pytest.mark.parametrize("p", [8, 70])  # n_units < n_train (SVD) and n_units > n_train (Gram eigendecomposition)
def test_predictions_and_alphas_equal_sklearn(p):
    X, Y, groups = planted(n=80, p=p, n_groups=16)
    X = X * np.linspace(0.2, 5, p) + 3.0  # unequal unit scales and an offset: centring must be per training fold
    folds = fold_labels(GroupFolds(4), groups)
    res = cross_validate_ridge(X, Y, folds, alphas=ALPHAS)
    for f in range(4):
        train, test = folds != f, folds == f
        oracle = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X[train], Y[train])
        np.testing.assert_array_equal(res.alpha[f], oracle.alpha_)
        for j in range(Y.shape[1]):
            pred = Ridge(alpha=res.alpha[f, j]).fit(X[train], Y[train, j]).predict(X[test])
            np.testing.assert_allclose(res.y_pred[test, j], pred, rtol=0, atol=1e-6)
            ss = ((Y[test, j] - Y[test, j].mean()) ** 2).sum()
            assert res.r2[f, j] == pytest.approx(1 - ((Y[test, j] - pred) ** 2).sum() / ss, abs=1e-6)


@pytest.mark.parametrize("scaling, make", [("center", lambda a: Ridge(alpha=a)),
                                           ("standard", lambda a: make_pipeline(StandardScaler(), Ridge(alpha=a)))])
def test_scores_equal_cross_val_score(scaling, make):
    X, Y, groups = planted(n=90, p=12, n_targets=2, n_groups=18, seed=1)
    X[:, 0] *= 100
    cv = GroupFolds(5)
    probe = RidgeProbe(5, alphas=[3.0], scaling=scaling).fit(X, pd.DataFrame(Y, columns=["a", "b"]), groups)
    for j in range(2):
        scores = cross_val_score(make(3.0), X, Y[:, j], groups=groups, cv=cv, scoring="r2")
        np.testing.assert_allclose(probe.result_.r2[:, j], scores, rtol=0, atol=1e-6)
        oof = cross_val_predict(make(3.0), X, Y[:, j], groups=groups, cv=cv)
        np.testing.assert_allclose(probe.result_.y_pred[:, j], oof, rtol=0, atol=1e-6)
        pooled = 1 - ((Y[:, j] - oof) ** 2).sum() / ((Y[:, j] - Y[:, j].mean()) ** 2).sum()
        assert probe.result_.r2_pooled[j] == pytest.approx(pooled, abs=1e-6)
        assert probe.result_.pearson_r_pooled[j] == pytest.approx(np.corrcoef(Y[:, j], oof)[0, 1], abs=1e-6)


def test_planted_effect_recovered_at_known_strength():
    X, Y, groups = planted(n=600, p=10, n_targets=3, n_groups=100, r2=0.6, seed=2)
    res = RidgeProbe(5).fit(X, Y, groups).result_
    np.testing.assert_allclose(res.r2_pooled, 0.6, atol=0.06)
    np.testing.assert_allclose(res.pearson_r_pooled, np.sqrt(0.6), atol=0.05)


def test_no_relation_gives_no_positive_r2():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 20))
    Y = rng.normal(size=(150, 40))
    res = RidgeProbe(5).fit(X, Y, np.arange(150) // 3).result_
    assert res.r2.mean() <= 0
    assert res.r2_pooled.mean() <= 0


def test_missing_targets_dropped_per_target():
    X, Y, groups = planted(n=90, p=6, n_targets=3, n_groups=30, seed=4)
    Y[::4, 1] = np.nan
    Y[::9, 2] = np.nan
    probe = RidgeProbe(3, alphas=ALPHAS).fit(X, Y, groups)
    res = probe.result_
    np.testing.assert_array_equal(res.n_dropped, [0, int(np.isnan(Y[:, 1]).sum()), int(np.isnan(Y[:, 2]).sum())])
    assert np.all(np.isnan(res.y_pred[::4, 1])) and np.all(np.isfinite(res.y_pred[:, 0]))
    for j in (1, 2):
        keep = np.isfinite(Y[:, j])
        alone = cross_validate_ridge(X[keep], Y[keep, j], probe.folds_[keep], alphas=ALPHAS)
        np.testing.assert_allclose(res.y_pred[keep, j], alone.y_pred[:, 0], atol=1e-10)
        np.testing.assert_allclose(res.r2[:, j], alone.r2[:, 0], atol=1e-10)
    table = probe.to_frame()
    assert table.query("metric == 'n_dropped'")["value"].tolist() == res.n_dropped.tolist()
    assert table["fold"].dtype == "Int64"
    assert set(table["metric"]) == {"r2", "pearson_r", "alpha", "r2_pooled", "pearson_r_pooled", "n_dropped"}


def test_centring_only_keeps_sparse_relu_units_from_exploding():
    rng = np.random.default_rng(5)
    n = 100
    z = rng.normal(size=n)
    X = np.maximum(np.outer(z, rng.normal(size=30)) + rng.normal(size=(n, 30)), 0)
    groups = np.arange(n) // 4
    test_fold = fold_labels(GroupFolds(5), groups) == 0
    X[:, :5] = 0.0
    X[np.flatnonzero(~test_fold)[:2], :5] = 0.01  # units almost always silent in training...
    X[test_fold, :5] = rng.uniform(5, 10, size=(test_fold.sum(), 5))  # ...and active in the test fold
    centred = RidgeProbe(5).fit(X, z, groups).result_
    scaled = RidgeProbe(5, scaling="standard").fit(X, z, groups).result_
    assert centred.r2[0, 0] > 0.5 > 0 > scaled.r2[0, 0]


def test_group_folds_never_leak_a_group():
    rng = np.random.default_rng(6)
    groups = rng.choice([f"speaker{k}" for k in range(23)], size=200)
    seen = []
    for train, test in GroupFolds(5).split(np.zeros((200, 1)), groups=groups):
        assert not set(groups[train]) & set(groups[test])
        seen.extend(test)
    assert sorted(seen) == list(range(200))
    probe = RidgeProbe(5).fit(rng.normal(size=(200, 4)), rng.normal(size=200), groups)
    for g in np.unique(groups):
        assert len(np.unique(probe.folds_[groups == g])) == 1


def test_splitter_refuses_too_few_groups_and_bad_cv():
    X = np.zeros((12, 2))
    with pytest.raises(ParameterError, match=r"cv=5 folds need at least 5 distinct groups, got 3"):
        list(GroupFolds(5).split(X, groups=np.arange(12) % 3))
    with pytest.raises(ParameterError, match="integer >= 2"):
        list(GroupFolds(1).split(X, groups=np.arange(12)))
    with pytest.raises(ParameterError, match="needs groups"):
        list(GroupFolds(2).split(X))
    with pytest.raises(ParameterError, match="missing label"):
        list(GroupFolds(2).split(X[:3], groups=np.array(["a", None, "b"], dtype=object)))
    with pytest.raises(ParameterError, match=r"missing label\(s\) \(first at row 1\)"):
        list(GroupFolds(2).split(X[:3], groups=np.array([1.0, np.nan, 2.0])))
    with pytest.raises(ParameterError, match=r"groups must be one label per clip \(1-D\), got shape \(6, 2\)"):
        list(GroupFolds(2).split(X, groups=np.arange(12).reshape(6, 2)))
    with pytest.raises(ParameterError, match="groups has 11 labels but X has 12 rows"):
        list(GroupFolds(2).split(X, groups=np.arange(11)))
    with pytest.raises(ParameterError, match="integer >= 2, got 2.5"):
        list(GroupFolds(2.5).split(X, groups=np.arange(12)))


def test_bad_input_is_named():
    X, Y, _ = planted(n=30, p=3, n_groups=10)
    with pytest.raises(ParameterError, match="alphas must be"):
        fit_predict_ridge(X, Y, X, alphas=[1.0, -2.0])
    with pytest.raises(ParameterError, match="scaling must be one of"):
        fit_predict_ridge(X, Y, X, scaling="minmax")
    X[0, 0] = np.nan
    with pytest.raises(ParameterError, match="non-finite"):
        cross_validate_ridge(X, Y, np.arange(30) % 3)


# --- near-constant targets (issue 18 item 7): NaN with the reason, never -1e16 ---------------------------------

def test_handed_input_tiny_target_against_probe_level_predictions_is_nan_with_reason():
    y = np.linspace(1e-10, 2e-9, 20)  # a modulation band that is filter residue on steady tones
    pred = np.full(20, 0.035545745174352446)  # the probe's level: the band is ~0.03 on the other clips
    assert r2_score(y, pred) == pytest.approx(-3.8e15, rel=1e-6)  # what the formula gives (and gave here before)
    assert np.isnan(r2_score_columns(y, pred)[0])
    assert "target variance is float noise" in score_notes(y, pred)[0]
    run = np.r_[y, np.linspace(0.02, 0.3, 40)]  # the descriptor over all clips sets its scale
    assert np.isnan(r2_score_columns(y, y + 1e-10 * np.sin(np.arange(20)), reference=run)[0])
    assert np.isnan(pearson_columns(y, y, reference=run)[0])


def test_small_valued_genuine_target_keeps_its_score():
    rng = np.random.default_rng(7)
    y = np.linspace(1e-10, 2e-9, 20)
    pred = y + 3e-10 * rng.normal(size=20)
    assert r2_score_columns(y, pred)[0] == pytest.approx(r2_score(y, pred), abs=1e-12)
    assert pearson_columns(y, pred)[0] == pytest.approx(np.corrcoef(y, pred)[0, 1], abs=1e-12)
    assert score_notes(y, pred)[0] is None
    big_offset = 1e6 + y * 1e15  # a large offset with variation far above float noise: kept
    assert r2_score_columns(big_offset, big_offset + 1e5 * rng.normal(size=20))[0] > 0.5


def test_large_offset_with_float_noise_variation_is_nan():
    y = 1000.0 + 1e-6 * np.random.default_rng(8).normal(size=30)  # std 1e-9 of the level: below float32 resolution
    assert np.isnan(r2_score_columns(y, np.full(30, 1000.0))[0])
    assert np.isnan(r2_score_columns(np.full(30, 0.25), np.linspace(0, 1, 30))[0])  # exactly constant, as before
    assert score_notes(np.full(30, 0.25), np.linspace(0, 1, 30))[0] == "target is constant"


def test_pearson_needs_predictions_that_vary_beyond_float64_rounding():
    rng = np.random.default_rng(15)
    y = np.log(200.0) + 0.5 * rng.normal(size=40)  # a log-F0-like target with a large offset
    shrunk = y.mean() + 1e-9 * (y - y.mean()) + 1e-10 * rng.normal(size=40)  # tiny slope, genuine variation
    assert pearson_columns(y, shrunk)[0] == pytest.approx(np.corrcoef(y, shrunk)[0, 1], abs=1e-9)
    assert pearson_columns(y, shrunk)[0] > 0.9
    jitter = np.full(40, y.mean()) + np.spacing(y.mean()) * rng.integers(-2, 3, size=40)  # rounding only
    assert np.isnan(pearson_columns(y, jitter)[0])
    assert score_notes(y, jitter, metric="pearson_r")[0].startswith("prediction variance is float noise")
    assert np.isfinite(r2_score_columns(y, jitter)[0])  # R^2 of a constant prediction is defined (about 0)


def _domain_run(n_per=40, seed=9):
    """Three domains; units carry the domain and a within-domain latent z; groups of 2 clips."""
    rng = np.random.default_rng(seed)
    domains = np.repeat(["speech", "music", "environmental"], n_per)
    level = np.repeat([0.0, 1.0, 2.0], n_per)
    z = rng.normal(size=3 * n_per)
    X = np.c_[np.outer(level, rng.normal(size=6)), np.outer(z, rng.normal(size=6))]
    X += 0.1 * rng.normal(size=X.shape)
    groups = np.repeat(np.arange(3 * n_per // 2), 2)
    return X, domains, level, z, groups, rng


def test_per_domain_rows_of_a_band_that_is_float_noise_in_one_domain():
    X, domains, level, z, groups, rng = _domain_run()
    band = np.where(domains == "speech", 1e-17 * rng.normal(size=len(z)), 0.05 + 0.02 * z + 0.05 * level)
    probe = RidgeProbe(5).fit(X, pd.DataFrame({"tmod_band_4": band}), groups, domains=domains)
    per_domain = probe.domain_frame().set_index(["eval_domain", "metric"])
    speech = per_domain.loc[("speech", "r2_pooled")]
    sel = domains == "speech"
    assert r2_score(band[sel], probe.result_.y_pred[sel, 0]) < -1e20  # the formula on float noise
    assert np.isnan(speech["value"]) and "float noise" in speech["note"]
    assert np.isnan(per_domain.loc[("speech", "pearson_r_pooled"), "value"])
    for domain in ("music", "environmental"):  # genuine variation keeps its (modest) score
        assert np.isfinite(per_domain.loc[(domain, "r2_pooled"), "value"])
        assert pd.isna(per_domain.loc[(domain, "r2_pooled"), "note"])
    transfer = DomainTransfer(5).fit(X, pd.DataFrame({"tmod_band_4": band}), domains, groups).results_
    into_speech = transfer.query("eval_domain == 'speech' and metric == 'r2'")
    assert into_speech["value"].isna().all() and into_speech["note"].str.contains("float noise").all()
    assert transfer.query("eval_domain != 'speech' and train_domain != 'speech'")["value"].notna().all()
    from_speech = transfer.query("train_domain == 'speech' and eval_domain != 'speech' and metric == 'pearson_r'")
    assert from_speech["value"].isna().all()  # a probe fit to float noise predicts float noise
    assert from_speech["note"].str.startswith("prediction variance is float noise").all()
    pooled = probe.to_frame().set_index("metric").loc["r2_pooled"]
    assert pooled["value"] > 0.9 and pd.isna(pooled["note"])


# --- within-domain score (issue 13) -----------------------------------------------------------------------------

def test_between_domain_descriptor_scores_pooled_only_and_within_domain_signal_scores_within():
    X, domains, level, z, groups, rng = _domain_run(n_per=60)
    Y = pd.DataFrame({"between": 3 * level + 0.3 * rng.normal(size=len(z)),  # domain offset + noise not in X
                      "within": z + 0.3 * level + 0.3 * rng.normal(size=len(z))})
    table = RidgeProbe(5).fit(X, Y, groups, domains=domains).to_frame().set_index(["feature", "metric"])
    assert table.loc[("between", "r2_pooled"), "value"] > 0.9
    assert table.loc[("between", "r2_within"), "value"] <= 0.05
    assert table.loc[("within", "r2_within"), "value"] > 0.8
    assert table.loc[("within", "pearson_r_within"), "value"] > 0.9
    assert table.loc[("within", "r2_within"), "n_clips"] == len(z)
    assert table.loc[("between", "r2_within"), "fold"] is pd.NA


def test_descriptor_constant_within_each_domain_has_no_within_score():
    X, domains, level, _, groups, _ = _domain_run()
    probe = RidgeProbe(5).fit(X, pd.DataFrame({"d": 0.1 + 0.6 * level}), groups, domains=domains)
    row = probe.to_frame().set_index("metric").loc["r2_within"]
    assert np.isnan(row["value"]) and row["note"].startswith("within-domain deviation")
    assert probe.to_frame().set_index("metric").loc["r2_pooled", "value"] > 0.9


def _centred_on_domains(X, y, domains, fit):
    """X and y minus the domain means of the ``fit`` rows (the fixed-effects model, by hand)."""
    Xd, yd = X.copy(), y.copy()
    for d in np.unique(domains):
        Xd[domains == d] -= X[fit & (domains == d)].mean(axis=0)
        yd[domains == d] -= y[fit & (domains == d)].mean()
    return Xd, yd


def test_within_domain_predictions_equal_sklearn_on_domain_centred_training_folds():
    X, domains, level, z, groups, rng = _domain_run(n_per=30)
    y = z + level + 0.2 * rng.normal(size=len(z))
    y[::7] = np.nan
    folds = fold_labels(GroupFolds(3), groups)
    res = cross_validate_ridge(X, y, folds, alphas=[2.0], domains=domains)
    expected, deviations = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for f in range(3):
        train, test = folds != f, folds == f
        fit = train & np.isfinite(y)  # the target's finite training rows set both domain means
        Xd, yd = _centred_on_domains(X, y, domains, fit)
        expected[test] = Ridge(alpha=2.0).fit(Xd[fit], yd[fit]).predict(Xd[test])
        deviations[test] = yd[test]
    expected[np.isnan(y)] = np.nan
    np.testing.assert_allclose(res.y_within[:, 0], deviations, atol=1e-12)
    np.testing.assert_allclose(res.y_pred_within[:, 0], expected, atol=1e-8)
    ok = np.isfinite(y)
    assert res.r2_within[0] == pytest.approx(r2_score(deviations[ok], expected[ok]), abs=1e-8)
    assert res.n_within[0] == ok.sum()


def test_domain_intercept_alpha_is_the_brute_force_leave_one_out_choice():
    """Alpha of the fixed-effects model minimises the LOO error that refits the domain means without the row."""
    rng = np.random.default_rng(10)
    n, p = 21, 5
    domains = np.array(["a"] * 3 + ["b"] * 8 + ["c"] * 10)  # a small domain: its means move most without a row
    X = rng.normal(size=(n, p)) + np.repeat([[0.0], [3.0], [-2.0]], [3, 8, 10], axis=0)
    y = X[:, 0] + rng.normal(size=n) + np.repeat([5.0, 0.0, -5.0], [3, 8, 10])
    grid = np.logspace(-2, 3, 11)
    errors = np.zeros(len(grid))
    for a, alpha in enumerate(grid):
        for i in range(n):
            keep = np.arange(n) != i
            Xd, yd = _centred_on_domains(X, y, domains, keep)
            pred = Ridge(alpha=alpha).fit(Xd[keep], yd[keep]).predict(Xd[[i]])[0]
            errors[a] += (yd[i] - pred) ** 2
    Xd, yd = _centred_on_domains(X, y, domains, np.ones(n, dtype=bool))
    counts = np.repeat([3, 8, 10], [3, 8, 10])
    exact = loo_errors(decompose(Xd), yd[:, None], grid, intercept_leverage=1.0 / counts)[:, 0]
    np.testing.assert_allclose(exact, errors / n, rtol=1e-10)
    assert not np.allclose(loo_errors(decompose(Xd), yd[:, None], grid)[:, 0], errors / n, rtol=0.05)  # 1/n: wrong
    _, chosen = fit_predict_ridge(X, y, X[:2], alphas=grid, domains_train=domains, domains_test=domains[:2])
    assert chosen[0] == grid[np.argmin(errors)]
    with pytest.raises(ParameterError, match="both domains_train and domains_test"):
        fit_predict_ridge(X, y, X, domains_train=domains)


def test_domain_frame_needs_domains():
    X, Y, groups = planted(n=30, p=3, n_groups=10)
    probe = RidgeProbe(3).fit(X, Y, groups)
    assert "r2_within" not in set(probe.to_frame()["metric"])
    with pytest.raises(ParameterError, match="domains"):
        probe.domain_frame()


@pytest.mark.parametrize("n_levels", [1, 3])
@pytest.mark.parametrize("n_columns", [1, 2, 40])
def test_level_means_sum_rows_in_order_like_add_at(n_levels, n_columns):
    """The per-level sums equal np.add.at's (rows added in row order), bit for bit, where a pairwise sum would not."""
    rng = np.random.default_rng(21)
    values = rng.normal(size=(500, n_columns)) + 0.1
    inverse = rng.integers(0, n_levels, 500)
    expected = np.zeros((n_levels, n_columns))
    np.add.at(expected, inverse, values)
    expected /= np.bincount(inverse, minlength=n_levels)[:, None]
    np.testing.assert_array_equal(_level_means(values, inverse, n_levels), expected)
    pairwise = np.array([np.ascontiguousarray(values[inverse == k].T).sum(axis=1)  # along contiguous rows: pairwise
                         for k in range(n_levels)])
    assert not np.array_equal(pairwise / np.bincount(inverse)[:, None], expected)  # the test can tell them apart
