"""Seed (model) as the unit of inference: per layer x feature, permutation of domain labels across seeds.

For each cell the estimate is the difference of the two domains' mean scores, the p-value comes
from relabelling which models belong to which domain (:func:`~.permutation.label_permutation_test`)
and the interval is Welch's t interval on the same two samples of models.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .design import contrast_name, is_constant, score_matrix
from .permutation import label_permutation_test

__all__ = ["seed_permutation_grid", "welch_interval", "PERMUTATION_TEST_NAME"]

PERMUTATION_TEST_NAME = "permutation of domain labels across seeds"


def welch_interval(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Welch t confidence interval of ``mean(a) - mean(b)`` per column.

    Parameters
    ----------
    a : ndarray, shape (n_a, n_cells)
    b : ndarray, shape (n_b, n_cells)
    alpha : float
        1 - confidence level.

    Returns
    -------
    low, high : ndarray, shape (n_cells,)
    """
    # cells whose scores are (nearly) equal across models get a (near-)zero-width interval: scipy's
    # precision-loss warning says nothing the interval does not
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        ci = stats.ttest_ind(a, b, axis=0, equal_var=False).confidence_interval(1.0 - alpha)
    return np.atleast_1d(ci.low), np.atleast_1d(ci.high)


def seed_permutation_grid(scores: pd.DataFrame, models: pd.DataFrame, pair: tuple[str, str], *, alpha: float,
                          n_permutations: int, rng: np.random.Generator) -> pd.DataFrame:
    """Test one contrast in every layer x feature cell, with the models (seeds) as the unit.

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`~.design.model_scores` output.
    models : pd.DataFrame
        :func:`~.design.model_table` output.
    pair : (str, str)
        The two domains; the estimate is ``mean(first) - mean(second)``.
    alpha : float
        1 - confidence level of the intervals.
    n_permutations : int
        Maximum relabellings (exact enumeration when there are fewer).
    rng : Generator
        Source of the Monte-Carlo relabellings.

    Returns
    -------
    pd.DataFrame
        One row per cell: ``contrast, layer, layer_index, feature, estimate, ci_low, ci_high,
        p_value, test, unit, n, note``. Cells without a valid test (fewer than 2 models with a
        score in a domain, scores identical across models) have NaN ``p_value`` and say why.
    """
    wide = score_matrix(scores)
    members = [models.loc[models["pretrain_domain"] == d, "model"].tolist() for d in pair]
    a_all, b_all = wide[members[0]].to_numpy(), wide[members[1]].to_numpy()
    n_cells = len(wide)
    out = {k: np.full(n_cells, np.nan) for k in ("estimate", "ci_low", "ci_high", "p_value")}
    test = np.full(n_cells, "", dtype=object)
    note = np.full(n_cells, "", dtype=object)
    n = np.zeros(n_cells, dtype=int)
    patterns = np.concatenate([np.isfinite(a_all), np.isfinite(b_all)], axis=1)
    _, pattern_id = np.unique(patterns, axis=0, return_inverse=True)
    for pid in np.unique(pattern_id):
        rows = np.flatnonzero(pattern_id == pid)
        use_a, use_b = np.isfinite(a_all[rows[0]]), np.isfinite(b_all[rows[0]])
        a, b = a_all[np.ix_(rows, use_a)].T, b_all[np.ix_(rows, use_b)].T
        n[rows] = a.shape[0] + b.shape[0]
        if a.shape[0] < 2 or b.shape[0] < 2:
            note[rows] = (f"not tested: {a.shape[0]} {pair[0]} and {b.shape[0]} {pair[1]} models have a score here; "
                          "a permutation across seeds needs at least 2 per domain")
            continue
        out["estimate"][rows] = a.mean(axis=0) - b.mean(axis=0)
        constant = is_constant(np.concatenate([a, b]), axis=0)
        note[rows[constant]] = "not tested: the score is identical for every model (e.g. the shared input layer)"
        tested = rows[~constant]
        if not tested.size:
            continue
        a, b = a[:, ~constant], b[:, ~constant]
        res = label_permutation_test(a, b, n_permutations=n_permutations, random_state=rng)
        out["p_value"][tested] = res.pvalue
        out["ci_low"][tested], out["ci_high"][tested] = welch_interval(a, b, alpha=alpha)
        test[tested] = res.describe(PERMUTATION_TEST_NAME) + "; CI: Welch t"
        if res.smallest_p > alpha:
            note[tested] = (f"with {a.shape[0]} and {b.shape[0]} seeds the smallest attainable p is "
                            f"{res.smallest_p:.3g} > alpha = {alpha}: this test cannot reject")
    index = wide.index.to_frame(index=False)
    return pd.DataFrame({
        "contrast": contrast_name(pair), "layer": index["layer"], "layer_index": index["layer_index"].astype("Int64"),
        "feature": index["feature"], **out, "test": test, "unit": "seed", "n": n, "note": note})
