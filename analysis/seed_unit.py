"""Seed (model) as the unit of inference: per layer x feature, a two-sample test of the domains' seeds.

For each cell the estimate is the difference of the two domains' mean scores. Two tests, each with
the interval of its own statistic (p <= alpha exactly when the 1 - alpha interval excludes 0):

* ``"t"`` (default): Student's two-sample t-test with pooled variance
  (:func:`scipy.stats.ttest_ind`, ``equal_var=True``) and its t interval. Exact under normal
  scores with equal between-seed variance in both domains, it can reject with 3 vs 3 seeds
  (df = 4); with equal seed counts it is also robust to unequal variances. Welch's test was
  measured beside it at 3 vs 3 (``calibrate``): its Satterthwaite df (2-4) make it conservative
  there, so it would waste the little power 3 seeds give.
* ``"permutation"``: permutation of domain labels across seeds
  (:func:`~.permutation.label_permutation_test`), its interval the set of shifts of the first
  domain's scores that the same relabellings do not reject (test inversion). Exact, but with
  ``comb(n_a + n_b, n_a)`` relabellings its smallest p is ``2 / comb``: 0.1 at 3 vs 3, which can
  never reach 0.05; such cells say so (``status`` ``cannot_reject``, infinite interval).

Cells identical by construction (:func:`~.design.identical_cells`, e.g. the shared input layer)
are described, not tested. Every tested cell gets its power analysis (:mod:`.power`): the
between-seed SD and the minimum detectable effect at 80 % power.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_choice
from .design import contrast_name, score_matrix
from .permutation import label_permutation_test
from .power import minimum_detectable_effect

__all__ = ["seed_grid", "student_t", "welch_interval", "permutation_interval", "SEED_TESTS", "STATUS",
           "identical_note"]

SEED_TESTS = {
    "t": "Student two-sample t-test of the seeds' scores (pooled variance); CI: its t interval",
    "permutation": "permutation of domain labels across seeds; CI: inversion of the same permutation test",
}
STATUS = {
    "tested": "tested; the design can reach p <= alpha",
    "cannot_reject": "tested, but the smallest attainable p exceeds alpha: no difference can be declared",
    "identical": "identical by construction for every model (e.g. the shared input layer): described, not tested",
    "not_tested": "no valid test (too few models with a score, fit failure, ...): reason in note",
}
_BISECTIONS = 40


def identical_note(layer_index: object) -> str:
    """Return the note of a cell identical by construction."""
    where = " (layer_index 0: the input layer, the same for every model)" if layer_index == 0 else ""
    return (f"not tested: the score is identical for every model up to float rounding{where}; described, kept out "
            "of the FDR family and of the layer averages")


def _quiet_ttest(a: np.ndarray, b: np.ndarray, equal_var: bool):
    # cells whose scores are (nearly) equal across models: scipy's precision-loss warning says nothing more
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        return stats.ttest_ind(a, b, axis=0, equal_var=equal_var)


def student_t(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05) -> tuple[np.ndarray, ...]:
    """Student's two-sample t-test (pooled variance) of ``mean(a) - mean(b)`` per column, with its interval.

    Parameters
    ----------
    a : ndarray, shape (n_a, n_cells)
    b : ndarray, shape (n_b, n_cells)
    alpha : float
        1 - confidence level.

    Returns
    -------
    p_value, low, high, sd : ndarray, shape (n_cells,)
        Two-sided p, the t interval and the pooled between-seed standard deviation.
    """
    res = _quiet_ttest(a, b, equal_var=True)
    ci = res.confidence_interval(1.0 - alpha)
    n_a, n_b = a.shape[0], b.shape[0]
    sd = np.sqrt(((n_a - 1) * a.var(axis=0, ddof=1) + (n_b - 1) * b.var(axis=0, ddof=1)) / (n_a + n_b - 2))
    return np.atleast_1d(res.pvalue), np.atleast_1d(ci.low), np.atleast_1d(ci.high), np.atleast_1d(sd)


def welch_interval(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Welch t confidence interval of ``mean(a) - mean(b)`` per column (shapes as :func:`student_t`)."""
    ci = _quiet_ttest(a, b, equal_var=False).confidence_interval(1.0 - alpha)
    return np.atleast_1d(ci.low), np.atleast_1d(ci.high)


def permutation_interval(a: np.ndarray, b: np.ndarray, *, alpha: float, n_permutations: int,
                         random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """``1 - alpha`` interval of ``mean(a) - mean(b)`` by inverting the label permutation test, per column.

    The interval holds the shifts ``delta`` for which the test of ``a - delta`` against ``b``
    (the same relabellings for every ``delta``: one integer ``random_state``) gives ``p > alpha``;
    its ends are found by bisection between the estimate and a shift the test rejects. When the
    design cannot reach ``p <= alpha`` the interval is ``(-inf, inf)``.

    Parameters
    ----------
    a : ndarray, shape (n_a, n_cells)
    b : ndarray, shape (n_b, n_cells)
    alpha : float
    n_permutations : int
        As :func:`~.permutation.label_permutation_test`.
    random_state : int
        Seed of the relabellings, shared by every shift.

    Returns
    -------
    low, high : ndarray, shape (n_cells,)
    """
    def pvalue(delta: np.ndarray) -> np.ndarray:
        return label_permutation_test(a - delta, b, n_permutations=n_permutations, random_state=random_state).pvalue

    estimate = a.mean(axis=0) - b.mean(axis=0)
    probe = label_permutation_test(a, b, n_permutations=n_permutations, random_state=random_state)
    n_cells = estimate.size
    if probe.smallest_p > alpha:
        return np.full(n_cells, -np.inf), np.full(n_cells, np.inf)
    span = 2.0 * (np.ptp(np.concatenate([a, b]), axis=0) + np.abs(estimate)) + 1e-12
    ends = []
    for side in (-1.0, 1.0):
        inside, outside = estimate.copy(), estimate + side * span
        while np.any(pvalue(outside) > alpha):  # widen until the far shift is rejected
            grow = pvalue(outside) > alpha
            outside[grow] = estimate[grow] + 2.0 * (outside[grow] - estimate[grow])
        for _ in range(_BISECTIONS):
            mid = (inside + outside) / 2.0
            keep = pvalue(mid) > alpha
            inside, outside = np.where(keep, mid, inside), np.where(keep, outside, mid)
        ends.append(inside)
    return ends[0], ends[1]


def _cell_table(n_cells: int) -> dict:
    return dict({k: np.full(n_cells, np.nan) for k in ("estimate", "ci_low", "ci_high", "p_value", "smallest_p",
                                                         "seed_sd", "mde")},
                test=np.full(n_cells, "", dtype=object), note=np.full(n_cells, "", dtype=object),
                status=np.full(n_cells, "not_tested", dtype=object), n=np.zeros(n_cells, dtype=int))


def _test_cells(out: dict, rows: np.ndarray, a: np.ndarray, b: np.ndarray, pair: tuple[str, str], *, test: str,
                alpha: float, n_permutations: int, rng: np.random.Generator) -> None:
    """Fill ``out`` at ``rows`` with the test of ``a`` (n_a, len(rows)) against ``b``."""
    n_a, n_b = a.shape[0], b.shape[0]
    p, low, high, sd = student_t(a, b, alpha=alpha)
    if test == "permutation":
        seed = int(rng.integers(2 ** 31))
        res = label_permutation_test(a, b, n_permutations=n_permutations, random_state=seed)
        p, smallest = res.pvalue, res.smallest_p
        low, high = permutation_interval(a, b, alpha=alpha, n_permutations=n_permutations, random_state=seed)
        name = res.describe("permutation of domain labels across seeds") + "; CI: inversion of the same test"
    else:
        smallest, name = 0.0, f"Student two-sample t-test, pooled variance, df = {n_a + n_b - 2}; CI: its t interval"
    out["p_value"][rows], out["ci_low"][rows], out["ci_high"][rows] = p, low, high
    out["smallest_p"][rows], out["seed_sd"][rows], out["test"][rows] = smallest, sd, name
    out["mde"][rows] = minimum_detectable_effect(sd, n_a, n_b, alpha=alpha)
    if smallest > alpha:
        out["status"][rows] = "cannot_reject"
        out["note"][rows] = (f"cannot reject: with {n_a} {pair[0]} and {n_b} {pair[1]} seeds the smallest attainable "
                             f"p is {smallest:.3g} > alpha = {alpha} ({math.comb(n_a + n_b, n_a)} relabellings); "
                             "no stars here do not mean no difference (use the t-test, or train more seeds)")
    else:
        out["status"][rows] = "tested"


def seed_grid(scores: pd.DataFrame, models: pd.DataFrame, pair: tuple[str, str], *, alpha: float,
              identical: pd.Series, test: str = "t", n_permutations: int = 10000,
              rng: np.random.Generator | None = None) -> pd.DataFrame:
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
        Level of the test and 1 - confidence level of the interval.
    identical : pd.Series of bool
        Cells identical by construction (:func:`~.design.identical_cells`), indexed like
        :func:`~.design.score_matrix`.
    test : {"t", "permutation"}
        See the module docstring.
    n_permutations : int
        Maximum relabellings of ``test="permutation"`` (exact enumeration when there are fewer).
    rng : Generator, optional
        Source of the Monte-Carlo relabellings.

    Returns
    -------
    pd.DataFrame
        One row per cell: ``contrast, layer, layer_index, feature, estimate, ci_low, ci_high,
        p_value, test, unit, n, note, status, smallest_p, seed_sd, mde``. Cells without a valid
        test (fewer than 2 models with a score in a domain, identical by construction) have NaN
        ``p_value`` and say why.
    """
    check_choice("seed_test", test, SEED_TESTS)
    rng = np.random.default_rng(rng)
    wide = score_matrix(scores)
    members = [models.loc[models["pretrain_domain"] == d, "model"].tolist() for d in pair]
    a_all, b_all = wide[members[0]].to_numpy(), wide[members[1]].to_numpy()
    out = _cell_table(len(wide))
    same = identical.reindex(wide.index).fillna(False).to_numpy(dtype=bool)
    patterns = np.concatenate([np.isfinite(a_all), np.isfinite(b_all)], axis=1)
    _, pattern_id = np.unique(patterns, axis=0, return_inverse=True)
    index = wide.index.to_frame(index=False)
    for pid in np.unique(pattern_id):
        rows = np.flatnonzero(pattern_id.ravel() == pid)
        use_a, use_b = np.isfinite(a_all[rows[0]]), np.isfinite(b_all[rows[0]])
        a, b = a_all[np.ix_(rows, use_a)].T, b_all[np.ix_(rows, use_b)].T
        out["n"][rows] = a.shape[0] + b.shape[0]
        if a.shape[0] < 2 or b.shape[0] < 2:
            n_models = (len(members[0]), len(members[1]))
            why = ("no model has a finite score here (the descriptor is undefined on these clips, or the probe's "
                   "score is NaN: see probes.parquet's note)" if a.shape[0] + b.shape[0] == 0
                   else f"only {a.shape[0]} of {n_models[0]} {pair[0]} and {b.shape[0]} of {n_models[1]} {pair[1]} "
                        "models have a finite score here")
            out["note"][rows] = f"not tested: {why}; a test across seeds needs at least 2 per domain"
            continue
        out["estimate"][rows] = a.mean(axis=0) - b.mean(axis=0)
        shared = same[rows]
        out["status"][rows[shared]] = "identical"
        out["note"][rows[shared]] = [identical_note(index["layer_index"].iloc[r]) for r in rows[shared]]
        if np.any(~shared):
            _test_cells(out, rows[~shared], a[:, ~shared], b[:, ~shared], pair, test=test, alpha=alpha,
                        n_permutations=n_permutations, rng=rng)
    return pd.DataFrame({
        "contrast": contrast_name(pair), "layer": index["layer"], "layer_index": index["layer_index"].astype("Int64"),
        "feature": index["feature"], **{k: out[k] for k in ("estimate", "ci_low", "ci_high", "p_value", "test")},
        "unit": "seed", "n": out["n"], "note": out["note"], "status": out["status"],
        "smallest_p": out["smallest_p"], "seed_sd": out["seed_sd"], "mde": out["mde"]})
