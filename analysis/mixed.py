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
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from .design import contrast_name, is_constant

__all__ = ["MixedFit", "fit_domain_model", "domain_contrast", "mixed_contrasts", "MIXED_TEST_NAMES"]

MIXED_TEST_NAMES = {
    False: "mixed model score ~ domain * layer + (1|seed), REML, Wald t with between-within df",
    True: "mixed model score ~ domain * layer + (1|seed) + (1|feature) + (1|feature:layer), REML, "
          "Wald t with between-within df",
}
_FORMULA = "value ~ C(domain) * C(layer)"


@dataclass
class MixedFit:
    """A fitted domain model and what is needed to form contrasts.

    Attributes
    ----------
    fe_params : ndarray, shape (k,)
        Fixed-effect estimates.
    fe_cov : ndarray, shape (k, k)
        Their covariance.
    cell_rows : dict
        ``(domain, layer) -> design row`` (ndarray, shape (k,)).
    df : int
        Between-within degrees of freedom (models - domains).
    n_models : dict
        Models per domain.
    notes : list of str
        Fit warnings (convergence, boundary).
    """

    fe_params: np.ndarray
    fe_cov: np.ndarray
    cell_rows: dict
    df: int
    n_models: dict
    notes: list = field(default_factory=list)


def fit_domain_model(data: pd.DataFrame, *, across_features: bool) -> MixedFit:
    """Fit the per-descriptor or across-descriptor mixed model by REML.

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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if across_features:
            data = data.assign(one=1, feature_layer=data["feature"].astype(str) + ":" + data["layer"].astype(str))
            vc = {"seed": "0 + C(seed)", "feature": "0 + C(feature)", "feature_layer": "0 + C(feature_layer)"}
            model = sm.MixedLM.from_formula(_FORMULA, data, groups="one", re_formula="0", vc_formula=vc)
        else:
            model = sm.MixedLM.from_formula(_FORMULA, data, groups="seed")
        result = model.fit(reml=True)
    messages = dict.fromkeys(str(w.message).splitlines()[0] for w in caught)
    if result.converged:  # drop the messages of optimisers statsmodels retried before converging
        messages = [m for m in messages if "failed to converge" not in m and "Retrying" not in m]
    notes = [f"MixedLM: {m}" for m in messages] + ([] if result.converged else ["MixedLM did not converge"])
    k = model.k_fe
    first = data.groupby(["domain", "layer"], sort=False).head(1)
    exog = np.asarray(model.exog)
    cell_rows = {(d, lay): exog[i] for i, d, lay in zip(first.index, first["domain"], first["layer"])}
    n_models = data.groupby("domain")["seed"].nunique().to_dict()
    return MixedFit(np.asarray(result.fe_params), np.asarray(result.cov_params())[:k, :k], cell_rows,
                    int(sum(n_models.values()) - len(n_models)), n_models, notes)


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
    half = stats.t.ppf(1.0 - alpha / 2.0, fit.df) * se
    return dict(estimate=estimate, se=se, ci_low=estimate - half, ci_high=estimate + half,
                p_value=float(2.0 * stats.t.sf(abs(estimate) / se, fit.df)), n_layers=len(layers))


def _row(pair, feature, across, fit=None, *, alpha, note="") -> dict:
    row = dict(contrast=contrast_name(pair), layer="all", layer_index=pd.NA, feature=feature, estimate=np.nan,
               ci_low=np.nan, ci_high=np.nan, p_value=np.nan, test=MIXED_TEST_NAMES[across], unit="seed",
               n=0, note=note)
    if fit is not None:
        res = domain_contrast(fit, pair, alpha=alpha)
        row.update({k: res[k] for k in ("estimate", "ci_low", "ci_high", "p_value")},
                   n=int(sum(fit.n_models.get(d, 0) for d in pair)),
                   note="; ".join([f"averaged over {res['n_layers']} layers; df = {fit.df}", *fit.notes]))
    return row


def mixed_contrasts(scores: pd.DataFrame, models: pd.DataFrame, pairs: list[tuple[str, str]], *,
                    alpha: float) -> pd.DataFrame:
    """Mixed-model domain contrasts per descriptor (``layer="all"``) and across descriptors (``feature="all"``).

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

    Returns
    -------
    pd.DataFrame
        Same columns as :func:`~.seed_unit.seed_permutation_grid`; one row per contrast x
        feature plus one per contrast with ``feature="all"`` when there are several features.
    """
    domains = sorted({d for pair in pairs for d in pair})
    data = scores[scores["pretrain_domain"].isin(domains) & np.isfinite(scores["value"])]
    data = data[["value", "pretrain_domain", "layer", "model", "feature"]].rename(
        columns={"pretrain_domain": "domain", "model": "seed"})
    features = list(dict.fromkeys(scores["feature"]))
    rows = []
    for feature in [*features, "all"] if len(features) > 1 else features:
        across = feature == "all"
        part = data if across else data[data["feature"] == feature]
        fit, note = None, ""
        if part["layer"].nunique() < 2:
            note = "not tested: the mixed model needs scores at 2 or more layers"
        elif is_constant(part["value"].to_numpy()):
            note = "not tested: the score is identical for every model and layer"
        else:
            try:
                fit = fit_domain_model(part, across_features=across)
            except (np.linalg.LinAlgError, ValueError) as exc:
                note = f"not tested: MixedLM could not be fitted ({type(exc).__name__}: {exc})"
        rows += [_row(pair, feature, across, fit, alpha=alpha, note=note) for pair in pairs]
    table = pd.DataFrame(rows)
    table["layer_index"] = table["layer_index"].astype("Int64")
    return table
