"""Mixed-effects models of score on domain x layer with the seed (model) as a random effect.

Per descriptor::

    score ~ domain * layer + (1 | seed)                                  (REML, statsmodels MixedLM)

Across descriptors, with the descriptor as a random effect (crossed with the seed, fitted as
variance components of one group)::

    score ~ domain * layer + (1 | seed) + (1 | feature) + (1 | feature:layer)

A contrast between two domains is their difference averaged over the layers both have (equal
weight per layer), ``L @ beta`` with ``L`` built from the model's own design rows, so it does not
depend on the coding of the factors. Because the domain is a between-seed factor, its Wald
statistic is referred to a t distribution with the *between-within* degrees of freedom
``n_models - n_domains`` (the seed-level residual df; the normal reference statsmodels reports
is anti-conservative with a handful of seeds). The same df gives the t interval.

Rule for difficult fits (counted in stats_summary.txt, column ``fit``): the scores are
standardised before fitting; a fit whose default optimisers do not converge is refitted with
Powell then Nelder-Mead; if it still does not converge, or a variance component is at the
boundary (at most 1e-4 of the total variance: REML truncated it at 0, so the Wald standard error
ignores that source of variation and is too small), the contrast is replaced by the Student t-test
of the seeds' scores averaged over the layers (and descriptors) -- what the mixed model reduces to
for balanced data with an interior variance. Cells identical by construction (the input layer)
are left out of every fit and average.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from .design import contrast_name, is_constant
from .power import mde_from_se, minimum_detectable_effect
from .seed_unit import student_t

__all__ = ["MixedFit", "fit_domain_model", "domain_contrast", "mixed_contrasts", "MIXED_TEST_NAMES", "FIT_STATUS",
           "BOUNDARY_RTOL", "REFIT_METHODS"]

MIXED_TEST_NAMES = {
    False: "mixed model score ~ domain * layer + (1|seed), REML, Wald t with between-within df",
    True: "mixed model score ~ domain * layer + (1|seed) + (1|feature) + (1|feature:layer), REML, "
          "Wald t with between-within df",
}
_FORMULA = "value ~ C(domain) * C(layer)"


BOUNDARY_RTOL = 1e-4
REFIT_METHODS = ["powell", "nm"]


@dataclass
class MixedFit:
    """A fitted domain model and what is needed to form contrasts.

    Attributes
    ----------
    fe_params : ndarray, shape (k,)
        Fixed-effect estimates (units of the scores).
    fe_cov : ndarray, shape (k, k)
        Their covariance.
    cell_rows : dict
        ``(domain, layer) -> design row`` (ndarray, shape (k,)).
    df : int
        Between-within degrees of freedom (models - domains).
    n_models : dict
        Models per domain.
    notes : list of str
        Fit warnings other than statsmodels' boundary warning (which tests an absolute 0.01).
    converged : bool
        Whether the (last) optimiser converged.
    refit : bool
        Whether the default optimisers failed and :data:`REFIT_METHODS` were tried.
    boundary : bool
        Whether a variance component is at most :data:`BOUNDARY_RTOL` of the total variance.
    """

    fe_params: np.ndarray
    fe_cov: np.ndarray
    cell_rows: dict
    df: int
    n_models: dict
    notes: list = field(default_factory=list)
    converged: bool = True
    refit: bool = False
    boundary: bool = False


def _fit(model: sm.MixedLM, method: list | None) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=True, method=method) if method else model.fit(reml=True)
    messages = dict.fromkeys(str(w.message).splitlines()[0] for w in caught)
    drop = ("failed to converge", "Retrying", "boundary of the parameter space", "optimization failed")
    return result, [m for m in messages if not any(d in m for d in drop)]


def _at_boundary(result) -> bool:
    """Tell whether a variance component is at most ``BOUNDARY_RTOL`` of the total (scale-free, unlike statsmodels')."""
    components = np.concatenate([np.diag(np.atleast_2d(np.asarray(result.cov_re, dtype=float))),
                                 np.atleast_1d(np.asarray(result.vcomp, dtype=float))])
    components = components[np.isfinite(components)]
    total = float(result.scale) + float(np.sum(np.abs(components)))
    return bool(components.size and np.min(components) <= BOUNDARY_RTOL * total)


def fit_domain_model(data: pd.DataFrame, *, across_features: bool) -> MixedFit:
    """Fit the per-descriptor or across-descriptor mixed model by REML.

    The scores are divided by their standard deviation before fitting (statsmodels' optimiser
    tolerances and its boundary warning, a variance below 0.01, are absolute: R^2 scores vary by
    ~0.01, so nearly every fit warned), and the estimates scaled back. When statsmodels' default
    optimisers do not converge, the model is refitted with :data:`REFIT_METHODS`. ``boundary`` is
    judged on the scale of the data (:data:`BOUNDARY_RTOL`).

    Parameters
    ----------
    data : pd.DataFrame
        Columns ``value`` (float, finite), ``domain``, ``layer``, ``seed`` (the model's name) and,
        when ``across_features``, ``feature``.
    across_features : bool
        Add crossed random intercepts of feature and feature x layer.

    Returns
    -------
    MixedFit

    Raises
    ------
    numpy.linalg.LinAlgError, ValueError
        When statsmodels cannot fit the model (e.g. a singular fixed-effect design).
    """
    data = data.reset_index(drop=True)
    sd = float(np.std(data["value"].to_numpy(dtype=float))) or 1.0
    data = data.assign(value=data["value"] / sd)
    if across_features:
        data = data.assign(one=1, feature_layer=data["feature"].astype(str) + ":" + data["layer"].astype(str))
        vc = {"seed": "0 + C(seed)", "feature": "0 + C(feature)", "feature_layer": "0 + C(feature_layer)"}
        model = sm.MixedLM.from_formula(_FORMULA, data, groups="one", re_formula="0", vc_formula=vc)
    else:
        model = sm.MixedLM.from_formula(_FORMULA, data, groups="seed")
    result, messages = _fit(model, None)
    refit = not result.converged
    if refit:
        result, messages = _fit(model, REFIT_METHODS)
    notes = [f"MixedLM: {m}" for m in messages]
    k = model.k_fe
    first = data.groupby(["domain", "layer"], sort=False).head(1)
    exog = np.asarray(model.exog)
    cell_rows = {(d, lay): exog[i] for i, d, lay in zip(first.index, first["domain"], first["layer"])}
    n_models = data.groupby("domain")["seed"].nunique().to_dict()
    return MixedFit(sd * np.asarray(result.fe_params), sd ** 2 * np.asarray(result.cov_params())[:k, :k], cell_rows,
                    int(sum(n_models.values()) - len(n_models)), n_models, notes, converged=bool(result.converged),
                    refit=refit, boundary=_at_boundary(result))


def domain_contrast(fit: MixedFit, pair: tuple[str, str], *, alpha: float = 0.05) -> dict:
    """Estimate, t interval and two-sided p of ``domain a - domain b`` averaged over their common layers.

    Returns
    -------
    dict
        ``estimate, se, ci_low, ci_high, p_value, n_layers``.
    """
    layers = sorted({lay for d, lay in fit.cell_rows if d == pair[0]} & {lay for d, lay in fit.cell_rows
                                                                        if d == pair[1]})
    L = np.mean([fit.cell_rows[(pair[0], lay)] - fit.cell_rows[(pair[1], lay)] for lay in layers], axis=0)
    estimate = float(L @ fit.fe_params)
    se = float(np.sqrt(max(L @ fit.fe_cov @ L, 0.0)))
    if fit.df < 1 or not se > 0:
        return dict(estimate=estimate, se=se, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, n_layers=len(layers))
    ci_low, ci_high = stats.t.interval(1.0 - alpha, fit.df, loc=estimate, scale=se)
    return dict(estimate=estimate, se=se, ci_low=float(ci_low), ci_high=float(ci_high),
                p_value=float(2.0 * stats.t.sf(abs(estimate) / se, fit.df)), n_layers=len(layers))


FIT_STATUS = {
    "converged": "REML fit converged with statsmodels' default optimisers, variance components inside",
    "refit": f"default optimisers failed; refitted with {REFIT_METHODS}, converged, variance components inside",
    "boundary_fallback": "a variance component at the boundary (<= 1e-4 of the total variance): replaced by the "
                         "Student t-test of the seeds' layer-averaged scores",
    "nonconverged_fallback": "did not converge after the refit: replaced by the Student t-test of the seeds' "
                             "layer-averaged scores",
    "not_fitted": "not fitted (reason in note)",
}


def _fallback(part: pd.DataFrame, pair: tuple[str, str], *, alpha: float) -> dict:
    """Student t-test of the two domains' per-seed scores averaged over the layers (and features) they share."""
    cells = [set(map(tuple, part.loc[part["domain"] == d, ["layer", "feature"]].drop_duplicates().to_numpy()))
             for d in pair]
    common = cells[0] & cells[1]
    keep = part[[(lay, f) in common for lay, f in zip(part["layer"], part["feature"])]]
    means = [keep[keep["domain"] == d].groupby("seed")["value"].mean().to_numpy()[:, None] for d in pair]
    p, low, high, sd = student_t(*means, alpha=alpha)
    n_a, n_b = len(means[0]), len(means[1])
    return dict(estimate=float(means[0].mean() - means[1].mean()), ci_low=low[0], ci_high=high[0], p_value=p[0],
                mde=float(minimum_detectable_effect(sd, n_a, n_b, alpha=alpha)[0]), n=n_a + n_b,
                test=f"Student two-sample t-test of the seeds' scores averaged over {len(common)} layer x descriptor "
                     f"cells, df = {n_a + n_b - 2} (mixed-model fallback)")


def _row(pair, feature, across, part, fit=None, *, alpha, note="") -> dict:
    row = dict(contrast=contrast_name(pair), layer="all", layer_index=pd.NA, feature=feature, estimate=np.nan,
               ci_low=np.nan, ci_high=np.nan, p_value=np.nan, test=MIXED_TEST_NAMES[across], unit="seed",
               n=0, note=note, status="not_tested", smallest_p=np.nan, seed_sd=np.nan, mde=np.nan,
               fit="not_fitted")
    if fit is None:
        return row
    fit_status = ("nonconverged_fallback" if not fit.converged else "boundary_fallback" if fit.boundary
                  else "refit" if fit.refit else "converged")
    row.update(fit=fit_status, status="tested", smallest_p=0.0)
    if fit_status.endswith("fallback"):
        row.update(_fallback(part, pair, alpha=alpha), note="; ".join([FIT_STATUS[fit_status], *fit.notes]))
        return row
    res = domain_contrast(fit, pair, alpha=alpha)
    row.update({k: res[k] for k in ("estimate", "ci_low", "ci_high", "p_value")},
               mde=mde_from_se(res["se"], fit.df, alpha=alpha), n=int(sum(fit.n_models.get(d, 0) for d in pair)),
               note="; ".join([f"averaged over {res['n_layers']} layers; df = {fit.df}", *fit.notes]))
    return row


def mixed_contrasts(scores: pd.DataFrame, models: pd.DataFrame, pairs: list[tuple[str, str]], *,
                    alpha: float, identical: pd.Series | None = None) -> pd.DataFrame:
    """Mixed-model domain contrasts per descriptor (``layer="all"``) and across descriptors (``feature="all"``).

    Fits that do not converge after a refit, or whose variance components are at the boundary
    (:func:`fit_domain_model`), are replaced by a Student t-test of the seeds' layer-averaged
    scores (column ``fit`` says which, :data:`FIT_STATUS`).

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`~.design.model_scores` output.
    models : pd.DataFrame
        :func:`~.design.model_table` output.
    pairs : list of (str, str)
        The contrasts; the model is fitted once on every domain they involve.
    alpha : float
        1 - confidence level.
    identical : pd.Series of bool, optional
        Cells identical by construction (index ``layer_index, layer, feature``), left out of
        every fit and layer average.

    Returns
    -------
    pd.DataFrame
        Same columns as :func:`~.seed_unit.seed_grid` plus ``fit``; one row per contrast x
        feature plus one per contrast with ``feature="all"`` when there are several features.
    """
    domains = sorted({d for pair in pairs for d in pair})
    data = scores[scores["pretrain_domain"].isin(domains) & np.isfinite(scores["value"])]
    if identical is not None and identical.any():
        shared = set(identical.index[identical.to_numpy(dtype=bool)].droplevel("layer_index"))
        data = data[[(lay, f) not in shared for lay, f in zip(data["layer"], data["feature"])]]
    data = data[["value", "pretrain_domain", "layer", "model", "feature"]].rename(
        columns={"pretrain_domain": "domain", "model": "seed"})
    features = list(dict.fromkeys(scores["feature"]))
    rows = []
    for feature in [*features, "all"] if len(features) > 1 else features:
        across = feature == "all"
        part = data if across else data[data["feature"] == feature]
        fit, note = None, ""
        if part["layer"].nunique() < 2:
            note = ("not tested: the mixed model needs scores at 2 or more layers that are not identical by "
                    "construction")
        elif is_constant(part["value"].to_numpy()):
            note = "not tested: the score is identical for every model and layer"
        else:
            try:
                fit = fit_domain_model(part, across_features=across)
            except (np.linalg.LinAlgError, ValueError) as exc:
                note = f"not tested: MixedLM could not be fitted ({type(exc).__name__}: {exc})"
        rows += [_row(pair, feature, across, part, fit, alpha=alpha, note=note) for pair in pairs]
    table = pd.DataFrame(rows)
    table["layer_index"] = table["layer_index"].astype("Int64")
    return table
