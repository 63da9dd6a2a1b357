"""Clips (or groups of clips) as the unit of inference, for one model per domain.

For a contrast ``a - b`` the two models' out-of-fold ridge predictions on the same clips
(``oof.parquet``, paired by ``clip_id``) give per-clip squared errors. The estimate is the
difference of pooled R^2, ``R^2_a - R^2_b = (SSE_b - SSE_a) / SST``; the p-value is a sign-flip
permutation test of the per-group sums of ``(e_b - e_a)`` (clips of one group, e.g. one speaker,
are not independent, so whole groups are flipped); the interval is a paired wild cluster bootstrap
over groups (:mod:`.bootstrap`).

Such inference is about these two trained networks on this population of clips: it says nothing
about other seeds or trainings of the same domains, and the output says so.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .bootstrap import group_sums, r2_difference, wild_r2_difference_ci
from .design import contrast_name
from .permutation import sign_flip_test

__all__ = ["clip_contrast_grid", "minimum_units", "OOF_COLUMNS", "SIGN_FLIP_TEST_NAME"]

OOF_COLUMNS = ["model", "layer", "feature", "clip_id", "y_true", "y_pred"]
SIGN_FLIP_TEST_NAME = "sign-flip permutation of per-group squared-error differences"
_BOOTSTRAP_NAME = "paired wild cluster bootstrap over groups (Webb weights)"


def minimum_units(alpha: float) -> int:
    """Fewest units (groups) for which an exact sign-flip test can give ``p <= alpha`` (``2 / 2**G <= alpha``)."""
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
    """One feature's paired arrays: common layers, targets (n_clips,), squared errors (n_layers, n_clips) of
    each model (NaN where a model has no prediction) and the clips' groups (n_clips,)."""
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
                       layer_index: dict, alpha: float, n_permutations: int, n_bootstrap: int,
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
    n_permutations : int
        Maximum sign patterns (exact when ``2**groups`` is not larger).
    n_bootstrap : int
        Bootstrap resamples.
    rng : Generator
        Source of sign flips and bootstrap resamples.

    Returns
    -------
    pd.DataFrame
        One row per layer present for both models x feature, columns as
        :func:`~.seed_unit.seed_permutation_grid`.
    """
    part = _paired_errors(oof, model_a, model_b)
    both = part.groupby("clip_id")["model"].nunique() == 2
    shared = part[part["clip_id"].isin(both.index[both])]
    n_groups = shared["group"].nunique() if "group" in shared.columns else shared["clip_id"].nunique()
    if n_groups < minimum_units(alpha):
        raise ParameterError(f"unit='clip' needs at least {minimum_units(alpha)} groups of clips predicted by both "
                             f"{model_a!r} and {model_b!r} for a sign-flip test to reach p <= {alpha} "
                             f"(smallest p = 2 / 2**groups); they share {n_groups}")
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
                          note=f"not tested: {len(uniques)} groups with paired predictions; a sign-flip test needs "
                               f"at least {minimum_units(alpha)} to reach p <= {alpha}") for lay in layers]
            continue
        sums = group_sums(codes, y[keep], ea[:, keep], eb[:, keep])
        tested, differ = True, differ or bool(np.any(ea[:, keep] != eb[:, keep]))
        estimate = r2_difference(sums)
        flip = sign_flip_test(sums.sse_b - sums.sse_a, n_permutations=n_permutations, random_state=rng)
        low, high = wild_r2_difference_ci(sums, confidence_level=1.0 - alpha, n_resamples=n_bootstrap,
                                          random_state=rng)
        test = flip.describe(SIGN_FLIP_TEST_NAME) + f"; CI: {_BOOTSTRAP_NAME}, {n_bootstrap} resamples"
        rows += [dict(base, layer=lay, estimate=estimate[i], ci_low=low[i], ci_high=high[i],
                      p_value=flip.pvalue[i], test=test, note=note) for i, lay in enumerate(layers)]
    if tested and not differ:
        raise ParameterError(f"models {model_a!r} and {model_b!r} have identical out-of-fold errors on every clip, "
                             "layer and feature: there is no difference between them to test")
    table = pd.DataFrame(rows, columns=["contrast", "layer", "feature", "estimate", "ci_low", "ci_high", "p_value",
                                        "test", "unit", "n", "note"])
    table.insert(2, "layer_index", table["layer"].map(layer_index).astype("Int64"))
    return table
