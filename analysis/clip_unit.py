"""Clips (or groups of clips) as the unit of inference, for one model per domain.

For a contrast ``a - b`` the two models' out-of-fold ridge predictions on the same clips
(``oof.parquet``, paired by ``clip_id``) give per-clip squared errors. The estimate is the
difference of pooled R^2, ``R^2_a - R^2_b = (SSE_b - SSE_a) / SST``; the interval and the
p-value both come from one paired wild cluster bootstrap of that difference over groups (clips of
one group, e.g. one speaker, are not independent, so whole groups carry one weight;
:func:`~.bootstrap.wild_r2_difference_test`): p <= alpha exactly when the interval excludes 0.
(A sign-flip test of the squared-error sums and a bootstrap interval of the R^2 difference, as
before, could disagree: p = 0.0014 beside an interval holding 0.) Cells where both models make
the same errors (the shared input layer) are described, not tested.

Such inference is about these two trained networks on this population of clips: it says nothing
about other seeds or trainings of the same domains, and the output says so.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ParameterError
from .bootstrap import group_sums, wild_r2_difference_test
from .design import IDENTICAL_RTOL, contrast_name
from .power import POWER
from .seed_unit import identical_note

__all__ = ["clip_contrast_grid", "minimum_units", "OOF_COLUMNS", "BOOTSTRAP_TEST_NAME"]

OOF_COLUMNS = ["model", "layer", "feature", "clip_id", "y_true", "y_pred"]
BOOTSTRAP_TEST_NAME = "paired wild cluster bootstrap of the pooled R^2 difference over groups (Webb weights)"


def minimum_units(alpha: float) -> int:
    """Fewest groups whose two-point sign patterns alone could give ``p <= alpha`` (``2 / 2**G <= alpha``).

    The wild bootstrap's six-point weights have more patterns, but with fewer groups than this its
    null distribution is too coarse to trust at ``alpha``.
    """
    return max(2, math.ceil(math.log2(2.0 / alpha)))


def _paired_errors(oof: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """Clip-level squared errors of both models, one row per (feature, clip_id), one column per (model, layer)."""
    part = oof[oof["model"].isin([model_a, model_b])].copy()
    key = ["model", "layer", "feature", "clip_id"]
    dup = part.duplicated(key, keep=False)
    if dup.any():
        example = part.loc[dup, key].iloc[0].to_dict()
        raise ParameterError(f"oof table has {int(dup.sum())} rows sharing model, layer, feature and clip_id "
                             f"(e.g. {example}); expected one out-of-fold prediction per clip")
    part["sq_error"] = (part["y_pred"].astype(float) - part["y_true"].astype(float)) ** 2
    return part


def _feature_arrays(fpart: pd.DataFrame, model_a: str, model_b: str, layer_index: dict
                    ) -> tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One feature's paired arrays.

    Common layers, targets (n_clips,), squared errors (n_layers, n_clips) of each model (NaN where a model has no
    prediction) and the clips' groups (n_clips,).
    """
    feature = fpart["feature"].iloc[0]
    targets = fpart["y_true"].astype(float).groupby(fpart["clip_id"])
    spread = targets.max() - targets.min()
    if (spread > 1e-9).any():
        raise ParameterError(f"oof y_true of feature {feature!r} differs between {model_a!r} and {model_b!r} on "
                             f"{int((spread > 1e-9).sum())} clips: the models were probed on different targets")
    layers = sorted(set(fpart.loc[fpart["model"] == model_a, "layer"]) & set(fpart.loc[fpart["model"] == model_b,
                                                                                        "layer"]),
                    key=lambda lay: (layer_index.get(lay, math.inf), lay))
    err = fpart.pivot(index="clip_id", columns=["model", "layer"], values="sq_error")
    ea, eb = (err.reindex(columns=pd.MultiIndex.from_product([[m], layers])).to_numpy().T for m in (model_a, model_b))
    clips = fpart.drop_duplicates("clip_id").set_index("clip_id").reindex(err.index)
    groups = clips["group"] if "group" in clips.columns else clips.index.to_series()
    return layers, clips["y_true"].to_numpy(dtype=float), ea, eb, groups.astype(str).to_numpy()


def clip_contrast_grid(oof: pd.DataFrame, model_a: str, model_b: str, pair: tuple[str, str], *,
                       layer_index: dict, alpha: float, n_bootstraps: int,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Test one contrast in every layer x feature cell, with the clips' groups as the unit.

    Parameters
    ----------
    oof : pd.DataFrame
        ``oof.parquet`` (docs/run-folder.md); ``group`` is optional (each clip is its own group
        when absent).
    model_a, model_b : str
        The single model of each domain of ``pair``.
    pair : (str, str)
        The two domains; the estimate is ``R^2(model_a) - R^2(model_b)``.
    layer_index : dict
        ``layer name -> layer_index``.
    alpha : float
        1 - confidence level.
    n_bootstraps : int
        Bootstrap resamples of the test and the interval.
    rng : Generator
        Source of the bootstrap weights.

    Returns
    -------
    pd.DataFrame
        One row per layer present for both models x feature, columns as
        :func:`~.seed_unit.seed_grid` (``seed_sd`` NaN; ``mde`` from the bootstrap SD with the
        normal approximation, ``(z_{1-alpha/2} + z_{0.8}) sd``).
    """
    part = _paired_errors(oof, model_a, model_b)
    both = part.groupby("clip_id")["model"].nunique() == 2
    shared = part[part["clip_id"].isin(both.index[both])]
    n_groups = shared["group"].nunique() if "group" in shared.columns else shared["clip_id"].nunique()
    if n_groups < minimum_units(alpha):
        raise ParameterError(f"unit='clip' needs at least {minimum_units(alpha)} groups of clips predicted by both "
                             f"{model_a!r} and {model_b!r} for a bootstrap over groups to reach p <= {alpha} "
                             f"(2 / 2**groups <= alpha); they share {n_groups}")
    rows = []
    tested = differ = False
    for feature, fpart in part.groupby("feature", sort=False):
        layers, y, ea, eb, groups = _feature_arrays(fpart, model_a, model_b, layer_index)
        keep = np.isfinite(y) & np.isfinite(ea).all(axis=0) & np.isfinite(eb).all(axis=0)
        codes, uniques = pd.factorize(groups[keep])
        base = dict(contrast=contrast_name(pair), feature=feature, unit="clip", n=len(uniques))
        note = (f"one model per domain ({model_a} vs {model_b}): inference over {len(uniques)} groups of "
                f"{int(keep.sum())} clips of these two models only; it does not reach beyond these models "
                f"(other seeds or trainings of the same domains)")
        if len(uniques) < minimum_units(alpha):
            rows += [dict(base, layer=lay, estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, test="",
                          status="not_tested",
                          note=f"not tested: {len(uniques)} groups with paired predictions; a bootstrap over groups "
                               f"needs at least {minimum_units(alpha)} to reach p <= {alpha}") for lay in layers]
            continue
        ea, eb = ea[:, keep], eb[:, keep]
        same = np.max(np.abs(ea - eb), axis=1) <= IDENTICAL_RTOL * np.maximum(np.max(ea, axis=1), np.max(eb, axis=1))
        sums = group_sums(codes, y[keep], ea, eb)
        tested, differ = True, differ or bool(np.any(~same))
        estimate, low, high, p, sd = wild_r2_difference_test(sums, alpha=alpha, n_bootstraps=n_bootstraps,
                                                             random_state=rng)
        mde = (stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(POWER)) * sd
        test = f"{BOOTSTRAP_TEST_NAME}, {n_bootstraps} resamples; CI: the same bootstrap"
        smallest = 2.0 / (n_bootstraps + 1)
        for i, lay in enumerate(layers):
            if same[i]:
                rows.append(dict(base, layer=lay, estimate=estimate[i], ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                                 test="", status="identical", note=identical_note(layer_index.get(lay))))
                continue
            rows.append(dict(base, layer=lay, estimate=estimate[i], ci_low=low[i], ci_high=high[i], p_value=p[i],
                             test=test, note=note, smallest_p=smallest, mde=mde[i],
                             status="tested" if smallest <= alpha else "cannot_reject"))
    if tested and not differ:
        raise ParameterError(f"models {model_a!r} and {model_b!r} have identical out-of-fold errors on every clip, "
                             "layer and feature: there is no difference between them to test")
    table = pd.DataFrame(rows, columns=["contrast", "layer", "feature", "estimate", "ci_low", "ci_high", "p_value",
                                        "test", "unit", "n", "note", "status", "smallest_p", "mde"])
    table["seed_sd"] = np.nan
    table.insert(2, "layer_index", table["layer"].map(layer_index).astype("Int64"))
    return table
