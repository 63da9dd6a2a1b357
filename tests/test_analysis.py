"""Tests of audioprobe.analysis: known answers for every test, FDR against statsmodels, refused designs,
planted effects, and the ``audioprobe compare`` round trip through a run folder."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from audioprobe.analysis.bootstrap import (
    GroupSums,
    group_sums,
    r2_difference,
    wild_r2_difference_ci,
    wild_r2_difference_test,
)
from audioprobe.analysis.compare import STATS_COLUMNS, compare_domains
from audioprobe.analysis.design import model_scores, model_table, parse_contrasts
from audioprobe.analysis.fdr import fdr_bh
from audioprobe.analysis.mixed import domain_contrast, fit_domain_model
from audioprobe.analysis.permutation import label_permutation_test, sign_flip_test
from audioprobe.analysis.power import mde_from_se, minimum_detectable_effect, seeds_needed
from audioprobe.analysis.seed_unit import permutation_interval
from audioprobe.analysis.simulate import (
    SeedDesign,
    seed_scores_table,
    simulate_group_errors,
    simulate_oof_run,
    simulate_probes,
    simulate_seed_scores,
)
from audioprobe.analysis.summary import summarize
from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.runstore import Run

PAIRS = [("speech", "nonspeech"), ("speech", "mixed"), ("nonspeech", "mixed")]


def _scores(n_seeds=4, n_features=2, n_layers=4, effect=0.0, random_state=0, **design):
    design = SeedDesign(n_seeds=n_seeds, n_features=n_features, n_layers=n_layers, **design)
    return simulate_seed_scores(design, 1, effect=effect, random_state=random_state)[0]


@pytest.fixture(scope="module")
def null_probes():
    return simulate_probes(_scores(random_state=1))


@pytest.fixture(scope="module")
def planted():
    """Speech models (5 seeds per domain) gain 0.15 R^2 at layers 2 and 3 (~9 SDs of a domain mean difference)."""
    probes = simulate_probes(_scores(n_seeds=5, effect=np.array([0.0, 0.0, 0.15, 0.15]), random_state=2))
    return probes, compare_domains(probes, n_permutations=2000)


# ---- permutation tests: exact enumeration by brute force ----------------------------------------------
def _brute_two_sided(null: np.ndarray, observed: float) -> float:
    tol = 1e-12 * max(1.0, abs(observed))
    return min(1.0, 2 * min(np.mean(null <= observed + tol), np.mean(null >= observed - tol)))


def test_label_permutation_exact_matches_enumeration():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, (3, 5)), rng.normal(0, 1, (4, 5))
    res = label_permutation_test(a, b, n_permutations=1000)
    assert res.exact and res.n_resamples == 35 and res.smallest_p == pytest.approx(2 / 35)
    pooled = np.concatenate([a, b])
    for cell in range(5):
        null = np.array([pooled[list(idx), cell].mean() - np.delete(pooled[:, cell], list(idx)).mean()
                         for idx in itertools.combinations(range(7), 3)])
        assert res.statistic[cell] == pytest.approx(a[:, cell].mean() - b[:, cell].mean())
        assert res.pvalue[cell] == pytest.approx(_brute_two_sided(null, res.statistic[cell]))


def test_label_permutation_monte_carlo_close_to_exact():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.8, 1, (6, 3)), rng.normal(0, 1, (6, 3))
    exact = label_permutation_test(a, b, n_permutations=924)
    mc = label_permutation_test(a, b, n_permutations=4000, random_state=3)
    assert exact.exact and mc.exact  # 924 relabellings <= 4000
    mc = label_permutation_test(a, b, n_permutations=500, random_state=3)
    assert not mc.exact and mc.n_resamples == 500 and mc.smallest_p == pytest.approx(2 / 501)
    np.testing.assert_allclose(mc.pvalue, exact.pvalue, atol=4 * np.sqrt(0.25 / 500) + 0.01)


def test_sign_flip_exact_matches_enumeration():
    rng = np.random.default_rng(2)
    d = rng.normal(0.3, 1, (2, 8))
    res = sign_flip_test(d, n_permutations=256)
    assert res.exact and res.n_resamples == 256
    signs = np.array(list(itertools.product([-1, 1], repeat=8)))
    for cell in range(2):
        assert res.pvalue[cell] == pytest.approx(_brute_two_sided(signs @ d[cell], d[cell].sum()))
    assert not sign_flip_test(d, n_permutations=100).exact


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_permutation_counts_are_validated(bad):
    with pytest.raises(ParameterError, match="n_permutations"):
        label_permutation_test(np.ones((2, 1)), np.zeros((2, 1)), n_permutations=bad)


# ---- wild cluster bootstrap --------------------------------------------------------------------------
def test_r2_difference_equals_sklearn():
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(10), 3)
    y = rng.normal(size=30)
    pa, pb = y + rng.normal(0, 0.5, 30), y + rng.normal(0, 0.8, 30)
    sums = group_sums(codes, y, (pa - y) ** 2, (pb - y) ** 2)
    assert r2_difference(sums)[0] == pytest.approx(r2_score(y, pa) - r2_score(y, pb))


def test_wild_bootstrap_interval_has_the_clt_width():
    """With many groups the interval is the estimate +- z * sqrt(sum of squared linearised contributions)."""
    rng = np.random.default_rng(4)
    n_groups = 400
    codes = np.repeat(np.arange(n_groups), 2)
    y = rng.normal(size=2 * n_groups)
    ea, eb = rng.chisquare(1, (2, 2 * n_groups))
    sums = group_sums(codes, y, ea, eb)
    low, high = wild_r2_difference_ci(sums, n_bootstraps=20000, random_state=0)
    est = r2_difference(sums)[0]
    contrib = ((sums.sse_b - sums.sse_a) - est * sums.sst_shares()) / sums.sst_shares().sum()
    half = stats.norm.ppf(0.975) * np.sqrt((contrib ** 2).sum())
    assert low[0] < est < high[0]
    assert (high[0] - low[0]) / 2 == pytest.approx(half, rel=0.05)


# ---- Benjamini-Hochberg --------------------------------------------------------------------------------
def test_fdr_equals_statsmodels_with_ties_and_nans():
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, 10), [0.02, 0.02, 1.0]])
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    with_nan = p.copy()
    with_nan[[3, 7]] = np.nan
    out = fdr_bh(with_nan)
    assert np.isnan(out[[3, 7]]).all()
    keep = ~np.isnan(with_nan)
    np.testing.assert_allclose(out[keep], multipletests(with_nan[keep], method="fdr_bh")[1], rtol=1e-12)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        fdr_bh([0.5, 1.5])


def test_compare_fdr_equals_statsmodels_per_contrast(planted):
    _, table = planted
    families = [table["contrast"], table["layer"] != "all", table["feature"] == "all"]
    for (contrast, is_grid, across), rows in table.groupby(families):
        if across:
            np.testing.assert_allclose(rows["p_fdr"], rows["p_value"])
            assert rows["correction"].str.startswith("none").all()
            continue
        np.testing.assert_allclose(rows["p_fdr"], multipletests(rows["p_value"], method="fdr_bh")[1], rtol=1e-12)
        what = "layer x feature" if is_grid else "descriptors"
        assert rows["correction"].str.contains(f"fdr_bh.*{len(rows)} tested {what}").all()


# ---- design --------------------------------------------------------------------------------------------
def test_model_scores_keeps_pooled_rows_and_the_control(null_probes):
    scores = model_scores(null_probes)
    assert len(scores) == 13 * 2 * 4  # 12 seeds + random control, 2 features, 4 layers; per-fold rows dropped
    models = model_table(scores)
    assert models["pretrain_domain"].tolist() == ["speech"] * 4 + ["nonspeech"] * 4 + ["mixed"] * 4 + ["none"]
    assert parse_contrasts(None, models) == PAIRS
    assert parse_contrasts(["mixed-speech", ("nonspeech", "speech")], models) == [("mixed", "speech"),
                                                                                   ("nonspeech", "speech")]


@pytest.mark.parametrize("change, message", [
    (lambda p: p.drop(columns="layer_index"), r"lacks column\(s\) \['layer_index'\]"),
    (lambda p: pd.concat([p, p.head(1)]), "rows sharing model, layer and feature"),
    (lambda p: p.assign(pretrain_domain=p["pretrain_domain"].replace("mixed", "music")),
     r"pretrain_domain must be one of .* got \['music'\]"),
])
def test_malformed_probe_tables_are_refused(null_probes, change, message):
    with pytest.raises(ParameterError, match=message):
        compare_domains(change(null_probes))


def test_unknown_metric_and_contrast_are_refused(null_probes):
    with pytest.raises(ParameterError, match=r"metric must be one of .*'r2_pooled'.* got 'auc'"):
        compare_domains(null_probes, metric="auc")
    with pytest.raises(ParameterError, match="contrasts must be pairs"):
        compare_domains(null_probes, contrasts=["speech-music"])
    with pytest.raises(ParameterError, match="unit must be one of"):
        compare_domains(null_probes, unit="layer")
    with pytest.raises(ParameterError, match="alpha"):
        compare_domains(null_probes, alpha=1.5)


# ---- degenerate designs --------------------------------------------------------------------------------
def test_absent_domain_is_refused_with_the_counts(null_probes):
    no_mixed = null_probes[null_probes["pretrain_domain"] != "mixed"]
    with pytest.raises(ParameterError, match=r"needs models pretrained on \['mixed'\].*mixed: 0"):
        compare_domains(no_mixed, contrasts=["speech-mixed"])
    only_speech = null_probes[null_probes["pretrain_domain"].isin(["speech", "none"])]
    with pytest.raises(ParameterError, match="at least two pretraining domains"):
        compare_domains(only_speech)


def test_one_seed_per_domain_is_refused_for_the_seed_unit():
    probes, _ = simulate_oof_run()
    with pytest.raises(ParameterError, match=r"unit='seed' needs at least 2 models .*'speech' has 1 \(speech-0\)"):
        compare_domains(probes, unit="seed")
    with pytest.raises(ParameterError, match="unit='clip' needs oof"):
        compare_domains(probes, unit="clip")
    with pytest.raises(ParameterError, match="unit='auto' found no valid design"):
        compare_domains(probes, unit="auto")


def test_constant_scores_are_refused_and_constant_cells_untested(null_probes):
    with pytest.raises(ParameterError, match="identical for every model in every layer and feature"):
        compare_domains(null_probes.assign(value=0.3))
    shared_input = null_probes.copy()
    shared_input.loc[shared_input["layer"] == "L0", "value"] = 0.25  # the log-mel input is the same for all models
    table = compare_domains(shared_input, n_permutations=500, mixed=False)
    layer0 = table[table["layer"] == "L0"]
    assert layer0["p_value"].isna().all() and layer0["note"].str.contains("identical for every model").all()
    assert layer0["estimate"].eq(0).all()
    others = table[table["layer"] != "L0"]
    assert others["p_value"].notna().all()
    assert others["correction"].str.contains("over the 6 tested layer x feature").all()


def test_too_few_groups_and_several_models_are_refused_for_the_clip_unit():
    probes, oof = simulate_oof_run(n_groups=5)
    with pytest.raises(ParameterError, match=r"needs at least 6 groups .* they share 5"):
        compare_domains(probes, unit="clip", oof=oof)
    seeds = simulate_probes(_scores())
    with pytest.raises(ParameterError, match="exactly one model per domain"):
        compare_domains(seeds, unit="clip", oof=oof)


def test_identical_or_inconsistent_predictions_are_refused_for_the_clip_unit():
    probes, oof = simulate_oof_run()
    same = oof.copy()
    speech = same[same["model"] == "speech-0"].set_index(["layer", "feature", "clip_id"])["y_pred"]
    mask = same["model"] == "nonspeech-0"
    same.loc[mask, "y_pred"] = speech.reindex(pd.MultiIndex.from_frame(same.loc[mask, ["layer", "feature",
                                                                                       "clip_id"]])).to_numpy()
    with pytest.raises(ParameterError, match="identical out-of-fold errors"):
        compare_domains(probes, unit="clip", oof=same, contrasts=["speech-nonspeech"])
    shifted = oof.assign(y_true=oof["y_true"] + (oof["model"] == "mixed-0"))
    with pytest.raises(ParameterError, match="probed on different targets"):
        compare_domains(probes, unit="clip", oof=shifted, contrasts=["speech-mixed"])


def test_few_seeds_permutation_option_says_it_cannot_reject(null_probes, caplog):
    three = null_probes[~null_probes["model"].str.endswith("-3")]
    table = compare_domains(three, n_permutations=500, mixed=False, seed_test="permutation")
    assert table["note"].str.contains("smallest attainable p is 0.1 > alpha").all()
    assert table["test"].str.contains(r"exact, 20 relabellings").all()
    assert (table["status"] == "cannot_reject").all() and not table["can_reject"].any()
    assert (table["smallest_p"] == 0.1).all() and np.isinf(table[["ci_low", "ci_high"]]).all().all()
    assert "cannot reject" in caplog.text
    default = compare_domains(three, mixed=False)  # Student t: the same 3 vs 3 design can reject
    assert (default["status"] == "tested").all() and default["can_reject"].all()
    assert default["test"].str.contains("Student two-sample t-test, pooled variance, df = 4").all()


def test_permutation_option_interval_inverts_its_test():
    """With 5 vs 5 seeds (252 relabellings) p <= alpha exactly when the inverted interval excludes 0."""
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.0, 1.0, (5, 200)), rng.normal(0.0, 1.0, (5, 200))
    a[:, :100] += 1.5
    p = label_permutation_test(a, b, n_permutations=1000, random_state=3).pvalue
    low, high = permutation_interval(a, b, alpha=0.05, n_permutations=1000, random_state=3)
    assert 20 < (p <= 0.05).sum() < 180
    np.testing.assert_array_equal(p <= 0.05, (low > 0) | (high < 0))
    assert np.all(low <= a.mean(0) - b.mean(0)) and np.all(a.mean(0) - b.mean(0) <= high)


# ---- seed unit: known answers --------------------------------------------------------------------------
def _pooled_t_statsmodels(a: np.ndarray, b: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Two-sided p and 1 - alpha interval of Student's pooled-variance t-test, by statsmodels (not scipy)."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    means = CompareMeans(DescrStatsW(a), DescrStatsW(b))
    _, p, _ = means.ttest_ind(usevar="pooled")
    low, high = means.tconfint_diff(alpha=alpha, usevar="pooled")
    return float(p), float(low), float(high)


def test_seed_grid_cells_equal_direct_tests(null_probes):
    table = compare_domains(null_probes, contrasts=["speech-mixed"], mixed=False)
    assert list(table.columns) == STATS_COLUMNS
    assert len(table) == 8 and (table["unit"] == "seed").all() and (table["n"] == 8).all()
    wide = model_scores(null_probes).pivot(index=["layer", "feature"], columns="model", values="value")
    row = table[(table["layer"] == "L2") & (table["feature"] == "f1")].iloc[0]
    a = wide.loc[("L2", "f1"), [f"speech-{i}" for i in range(4)]].to_numpy(float)
    b = wide.loc[("L2", "f1"), [f"mixed-{i}" for i in range(4)]].to_numpy(float)
    assert row["estimate"] == pytest.approx(a.mean() - b.mean())
    p, low, high = _pooled_t_statsmodels(a, b)  # an implementation other than the scipy.stats.ttest_ind it calls
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert row["seed_sd"] == pytest.approx(sd)
    d = TTestIndPower().solve_power(None, nobs1=4, alpha=0.05, power=0.8, ratio=1.0)
    assert row["mde"] == pytest.approx(d * sd, rel=1e-6)
    assert "df = 6" in row["test"] and row["status"] == "tested" and row["can_reject"] and row["smallest_p"] == 0
    assert ((table["p_value"] <= 0.05) == ((table["ci_low"] > 0) | (table["ci_high"] < 0))).all()


def test_missing_scores_reduce_n_and_too_few_are_not_tested(null_probes):
    holes = null_probes.copy()
    cell = (holes["layer"] == "L1") & (holes["feature"] == "f0") & (holes["metric"] == "r2_pooled")
    holes.loc[cell & holes["model"].isin(["speech-0"]), "value"] = np.nan
    table = compare_domains(holes, contrasts=["speech-nonspeech"], n_permutations=500, mixed=False)
    row = table[(table["layer"] == "L1") & (table["feature"] == "f0")].iloc[0]
    assert row["n"] == 7 and "df = 5" in row["test"]
    holes.loc[cell & holes["model"].isin(["speech-1", "speech-2"]), "value"] = np.nan
    table = compare_domains(holes, contrasts=["speech-nonspeech"], n_permutations=500, mixed=False)
    row = table[(table["layer"] == "L1") & (table["feature"] == "f0")].iloc[0]
    assert np.isnan(row["p_value"]) and "needs at least 2 per domain" in row["note"]
    assert row["status"] == "not_tested" and not row["can_reject"]


def _seed_means_t(table: pd.DataFrame, pair, *, by=("seed",)) -> tuple[float, float, int]:
    """Balanced split-plot known answer: t-test on seed means with the within-domain variance pooled over domains."""
    means = table.groupby(["domain", *by])["value"].mean().groupby(level=[0, 1]).mean()
    per_domain = means.groupby(level=0)
    pooled_var = sum(((g - g.mean()) ** 2).sum() for _, g in per_domain) / (len(means) - per_domain.ngroups)
    n = per_domain.size()
    diff = per_domain.mean()[pair[0]] - per_domain.mean()[pair[1]]
    return diff, diff / np.sqrt(pooled_var * (1 / n[pair[0]] + 1 / n[pair[1]])), len(means) - per_domain.ngroups


@pytest.mark.parametrize("across", [False, True])
def test_mixed_model_contrast_equals_seed_means_t_test(across):
    scores = _scores(n_seeds=4, n_features=3 if across else 1, n_layers=4, sd_seed=0.05, random_state=7,
                     effect=0.02)
    data = seed_scores_table(scores)
    fit = fit_domain_model(data, across_features=across)
    for pair in PAIRS:
        res = domain_contrast(fit, pair)
        diff, t, df = _seed_means_t(data, pair)
        assert fit.df == df == 9
        assert res["estimate"] == pytest.approx(diff, abs=1e-10)
        assert res["estimate"] / res["se"] == pytest.approx(t, rel=2e-3)
        assert res["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-2)


def test_mixed_rows_are_labelled(planted):
    _, table = planted
    mixed = table[table["layer"] == "all"]
    assert len(mixed) == 3 * 3  # 3 contrasts x (2 descriptors + across)
    assert mixed["layer_index"].isna().all() and (mixed["n"] == 10).all()
    fitted = mixed["fit"].isin(["converged", "refit"])
    fallback = mixed["fit"].str.endswith("fallback")
    assert (fitted | fallback).all() and (mixed["status"] == "tested").all()
    across = mixed[(mixed["feature"] == "all") & fitted]
    assert across["test"].str.contains(r"\(1\|feature\)").all()
    assert mixed[(mixed["feature"] != "all") & fitted]["test"].str.contains(r"\(1\|seed\), REML").all()
    assert mixed.loc[fitted, "note"].str.contains("df = 12").all()
    assert mixed.loc[fallback, "test"].str.contains("mixed-model fallback").all()
    assert mixed.loc[fallback, "test"].str.contains("df = 8").all()  # the pair's 5 + 5 seeds


# ---- planted effects -----------------------------------------------------------------------------------
def test_planted_domain_effect_is_detected(planted):
    _, table = planted
    grid = table[table["layer"] != "all"]
    speech = grid[grid["contrast"].str.startswith("speech")]
    hit = speech["layer"].isin(["L2", "L3"])
    assert (speech.loc[hit, "p_fdr"] <= 0.05).all()
    assert (speech.loc[hit, "estimate"] > 0.1).all() and (speech.loc[hit, "ci_low"] > 0).all()
    assert (grid.loc[~grid["contrast"].str.startswith("speech"), "p_fdr"] > 0.05).all()
    mixed = table[(table["layer"] == "all") & table["contrast"].str.startswith("speech")]
    np.testing.assert_allclose(mixed["estimate"], 0.075, atol=0.03)  # half the layers carry 0.15
    assert (mixed["p_value"] < 0.05).all() and (mixed["ci_low"] > 0).all()


def test_clip_unit_known_answers_and_planted_effect():
    probes, oof = simulate_oof_run(n_groups=12, effect=0.6, random_state=4)
    table = compare_domains(probes, unit="clip", oof=oof, n_permutations=5000, n_bootstraps=2000)
    assert list(table.columns) == STATS_COLUMNS and (table["unit"] == "clip").all() and (table["n"] == 12).all()
    assert table["note"].str.contains("does not reach beyond these models").all()
    pooled = probes.set_index(["model", "layer", "feature"])["value"]
    for _, row in table.iterrows():
        a, b = (f"{d}-0" for d in row["contrast"].split("-"))
        assert row["estimate"] == pytest.approx(pooled[(a, row["layer"], row["feature"])]
                                                - pooled[(b, row["layer"], row["feature"])])
    assert "paired wild cluster bootstrap of the pooled R^2 difference" in table["test"].iloc[0]
    assert ((table["p_value"] <= 0.05) == ((table["ci_low"] > 0) | (table["ci_high"] < 0))).all()
    np.testing.assert_allclose(table["smallest_p"], 2 / 2001)
    assert table["mde"].gt(0).all()
    speech = table[table["contrast"].str.startswith("speech")]
    assert (speech["p_fdr"] <= 0.05).all() and (speech["ci_low"] > 0).all()


# ---- the compare command -------------------------------------------------------------------------------
def test_compare_command_round_trip(tmp_path, planted):
    probes, expected = planted
    run = Run(tmp_path / "run")
    run.write_table("probes.parquet", probes)
    args = ["compare", str(run.path), "--permutations", "2000", "-q"]
    assert main(args) == 0
    table = run.read_table("stats.parquet")
    assert list(table.columns) == STATS_COLUMNS
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    summary = run.file("stats_summary.txt").read_text()
    assert "unit of inference: seed" in summary and "Benjamini-Hochberg" in summary
    assert "excluded from every contrast: 1 with pretrain_domain 'none'" in summary
    assert "Student two-sample t-test" in summary and "mixed model" in summary
    assert "mixed models: 9 fits" in summary and "mde" in summary
    n_sig = int((table["p_fdr"] <= 0.05).sum())
    assert f"significant at FDR 0.05 (p_fdr <= 0.05): {n_sig} of {len(table)} tests" in summary
    record = json.loads(run.file("run.json").read_text())["stages"]["compare"]
    assert record["status"] == "complete" and record["config"]["n_permutations"] == 2000
    assert record["summary"]["n_significant"] == n_sig and len(record["inputs"]["probes.parquet"]) == 64
    stamp = run.file("stats.parquet").stat().st_mtime_ns
    assert main(args) == 0 and run.file("stats.parquet").stat().st_mtime_ns == stamp  # complete: skipped
    assert main([*args, "--force"]) == 0 and run.file("stats.parquet").stat().st_mtime_ns != stamp


def test_compare_command_clip_unit_and_refusal(tmp_path):
    probes, oof = simulate_oof_run(n_groups=8)
    run = Run(tmp_path / "run")
    run.write_table("probes.parquet", probes)
    assert main(["compare", str(run.path), "--unit", "seed", "-q"]) == 2  # one seed per domain: refused
    assert main(["compare", str(run.path), "-q"]) == 2  # auto: no oof -> no valid design
    run.write_table("oof.parquet", oof)
    assert main(["compare", str(run.path), "--permutations", "300", "--bootstraps", "500", "-q"]) == 0
    table = run.read_table("stats.parquet")
    assert (table["unit"] == "clip").all() and len(table) == 3 * 3 * 2
    summary = run.file("stats_summary.txt").read_text()
    assert "unit of inference: clip" in summary and "does not reach beyond these models" in summary
    assert "paired wild cluster bootstrap" in summary


# ---- power analysis ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_a, n_b, alpha", [(3, 3, 0.05), (3, 5, 0.05), (10, 10, 0.01)])
def test_power_analysis_equals_statsmodels(n_a, n_b, alpha):
    analysis = TTestIndPower()
    d = analysis.solve_power(None, nobs1=n_a, alpha=alpha, power=0.8, ratio=n_b / n_a)
    sd = np.array([0.01, 0.03])
    np.testing.assert_allclose(minimum_detectable_effect(sd, n_a, n_b, alpha=alpha), d * sd, rtol=1e-9)
    se = 0.02 * np.sqrt(1 / n_a + 1 / n_b)  # a t-test's standard error and df give the same MDE
    assert mde_from_se(se, n_a + n_b - 2, alpha=alpha) == pytest.approx(d * 0.02, rel=1e-6)
    sds = np.array([0.01, 0.02, 0.0149, 0.05])
    expected = [np.ceil(analysis.solve_power(0.03 / s, nobs1=None, alpha=alpha, power=0.8)) for s in sds]
    np.testing.assert_array_equal(seeds_needed(0.03, sds, alpha=alpha), np.maximum(expected, 2))
    with pytest.raises(ParameterError, match="nonzero"):
        seeds_needed(0.0, sds, alpha=alpha)


# ---- cells identical by construction -------------------------------------------------------------------
def test_input_layer_is_described_not_tested_and_absent_from_fdr_families(null_probes):
    shared = null_probes.copy()
    rng = np.random.default_rng(9)
    at_input = shared["layer"] == "L0"  # the log-mel input: the same for every model up to float rounding
    shared.loc[at_input, "value"] = 0.25 + rng.normal(0, 1e-8, int(at_input.sum()))
    table = compare_domains(shared)
    grid = table[table["layer"] != "all"]
    layer0 = grid[grid["layer"] == "L0"]
    assert (layer0["status"] == "identical").all() and layer0["p_value"].isna().all()
    assert layer0["p_fdr"].isna().all() and not layer0["can_reject"].any()
    assert layer0["note"].str.contains("input layer").all()
    families = grid[grid["status"] == "tested"]
    assert families["correction"].str.contains("over the 6 tested layer x feature").all()
    for contrast, rows in families.groupby("contrast"):  # the FDR family is the other layers only
        np.testing.assert_allclose(rows["p_fdr"], multipletests(rows["p_value"], method="fdr_bh")[1], rtol=1e-12)
    mixed = table[(table["layer"] == "all") & table["fit"].isin(["converged", "refit"])]
    assert mixed["note"].str.contains("averaged over 3 layers").all()
    without = compare_domains(shared[~at_input])  # layer averages equal those of the run without the input layer
    pd.testing.assert_series_equal(table.loc[table["layer"] == "all", "estimate"].reset_index(drop=True),
                                   without.loc[without["layer"] == "all", "estimate"].reset_index(drop=True))


# ---- mixed models at the boundary ----------------------------------------------------------------------
def test_boundary_fit_falls_back_to_the_seed_means_t_test():
    """No seed variance at all: the REML seed variance is 0 (boundary); the seed-means t-test replaces it."""
    scores = _scores(n_seeds=4, n_features=1, n_layers=4, sd_seed=0.0, sd_seed_feature=0.0, layer_corr=0.0,
                     random_state=5)
    probes = simulate_probes(scores)
    fit = fit_domain_model(seed_scores_table(scores), across_features=False)
    assert fit.boundary and fit.converged
    table = compare_domains(probes)
    mixed = table[table["layer"] == "all"]
    assert (mixed["fit"] == "boundary_fallback").all() and mixed["note"].str.contains("boundary").all()
    data = seed_scores_table(scores)
    for _, row in mixed.iterrows():
        a, b = (data[data["domain"] == d].groupby("seed")["value"].mean() for d in row["contrast"].split("-"))
        p, _, _ = _pooled_t_statsmodels(a.to_numpy(float), b.to_numpy(float))
        assert row["estimate"] == pytest.approx(a.mean() - b.mean()) and row["p_value"] == pytest.approx(p, rel=1e-9)
    summary = summarize(table)
    assert "boundary_fallback: 3" in summary


def test_statsmodels_absolute_boundary_warning_is_not_a_boundary():
    """R^2-scale seed variances (~4e-4) trip statsmodels' absolute 0.01 warning; standardised, they are interior."""
    scores = _scores(n_seeds=3, n_features=1, n_layers=6, random_state=1)
    fit = fit_domain_model(seed_scores_table(scores), across_features=False)
    assert not fit.boundary and fit.converged and not any("boundary" in n for n in fit.notes)


# ---- clip unit: one statistic for p and interval -------------------------------------------------------
@pytest.mark.parametrize("effect", [0.0, 0.15])
def test_bootstrap_p_below_alpha_iff_interval_excludes_zero(effect):
    sums = GroupSums(*simulate_group_errors(400, 12, effect=effect, random_state=int(effect * 100)))
    for alpha in (0.05, 0.2):
        est, low, high, p, sd = wild_r2_difference_test(sums, alpha=alpha, n_bootstraps=999, random_state=1)
        np.testing.assert_array_equal(p <= alpha, (low > 0) | (high < 0))
        assert np.all((low <= est) & (est <= high)) and np.all(sd > 0)
    assert 0 < (p <= 0.2).sum() < 400


# ---- the power flag ------------------------------------------------------------------------------------
def test_compare_command_power_flag(tmp_path, null_probes):
    run = Run(tmp_path / "run")
    run.write_table("probes.parquet", null_probes)
    assert main(["compare", str(run.path), "--power", "0.05", "--no-mixed", "-q"]) == 0
    table = run.read_table("stats.parquet")
    np.testing.assert_array_equal(table["seeds_needed"], seeds_needed(0.05, table["seed_sd"], alpha=0.05))
    summary = run.file("stats_summary.txt").read_text()
    assert "seeds per domain needed for a difference of 0.05 at 80% power" in summary
    assert "mde" in summary and "what these tests can and cannot show" in summary


def test_is_constant_over_finite_values_and_silent_on_an_all_nan_row():
    """Equal finite values (up to 1e-12 relative) are constant, NaNs ignored; a row with no value at all (a descriptor
    undefined on every clip) counts as constant without numpy's 'All-NaN slice' warning in the compare log."""
    import warnings

    from audioprobe.analysis.design import is_constant

    values = np.array([[np.nan, np.nan], [1.0, 1.0 + 1e-14], [1.0, 2.0], [np.nan, 3.0], [-2.0, -2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert is_constant(values).tolist() == [True, True, False, True, True]
