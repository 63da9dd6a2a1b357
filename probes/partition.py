"""Cross-validated variance partitioning: how much of a layer's variance each descriptor set explains uniquely.

Formulation (an encoding model, as in Lescroart et al. 2015 and de Heer et al. 2017): the
descriptors predict the layer. For every grouped fold,

1. the layer's training activations are centred and reduced to their first ``n_components``
   principal components (fit on the training clips only); targets are the component scores;
2. ridge regressions (descriptors z-scored on the training clips, alpha per component by exact
   leave-one-out on the training clips) predict the held-out scores from the **full** descriptor
   set and from the set **without** each descriptor set in turn;
3. held-out predictions are mapped back to unit space; the score is the variance-weighted R^2 of
   the layer, ``1 - sum ||x - xhat||^2 / sum ||x - mean||^2`` over held-out clips and all units
   (variance outside the kept components counts as unexplained).

The unique variance of set S is ``R^2(full) - R^2(full without S)``: variance that the other
descriptors cannot account for, so correlated descriptors (F0 and centroid, flatness and HNR) are
not credited twice. Shared variance is what the full model explains beyond the sum of unique parts.
Clips missing any descriptor of the full set are left out (all models see the same clips).
A fold whose held-out activations vary by float noise only, relative to the layer's mean square over all
clips (the rule of :func:`~audioprobe.probes._targets.variation_note`), has no variance to explain: its
scores are NaN with the reason in ``note``; the same holds for the pooled scores of such a layer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..log import logger
from ._targets import variation_note
from .ridge_solver import decompose, fit_predict_ridge
from .shared import ONCE, SharedCache
from .splitters import GroupFolds, fold_labels

__all__ = ["VariancePartition"]


def _sse_unit_space(X_test_c: np.ndarray, scores_test: np.ndarray, scores_pred: np.ndarray) -> float:
    """Sum of squared unit-space errors when the prediction is ``scores_pred @ V_k^T`` (V_k orthonormal)."""
    return float((X_test_c**2).sum() - 2 * (scores_pred * scores_test).sum() + (scores_pred**2).sum())


class VariancePartition:
    """Unique and full-model variance of a layer explained by descriptor sets, cross-validated.

    Parameters
    ----------
    cv : int, default 5
        Grouped folds.
    sets : dict of str -> list of str, keyword-only, optional
        Descriptor sets to partition (e.g. one per family); default: every descriptor alone.
    n_components : int, keyword-only, default 32
        Principal components of the layer predicted (fewer when the training rank is lower).
    alphas : array-like, keyword-only, optional
        Ridge alpha grid (see :func:`~audioprobe.probes.ridge_solver.fit_predict_ridge`).
    cache : SharedCache, optional, keyword-only
        Shares the decompositions of the descriptors' training rows (the same for every layer) between the
        partitions of several layers; the results are the same with or without it.

    Attributes
    ----------
    r2_full_ : np.ndarray, shape (n_folds,)
    r2_without_ : dict of str -> np.ndarray, shape (n_folds,)
    r2_full_pooled_ : float
    r2_without_pooled_ : dict of str -> float
    n_clips_ : int
        Clips with every descriptor of the full set.
    notes_ : list of (str or None), length n_folds + 1
        Why the scores of each fold (and, last, the pooled ones) are NaN; None where they are defined.
    """

    def __init__(self, cv: int = 5, *, sets: dict[str, list[str]] | None = None, n_components: int = 32,
                 alphas=None, cache: SharedCache | None = None):
        self.cv = cv
        self.sets = sets
        self.n_components = n_components
        self.alphas = alphas
        self.cache = cache

    def fit(self, X, D: pd.DataFrame, groups) -> VariancePartition:
        """Partition the variance of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
        D : pd.DataFrame, shape (n_clips, n_descriptors)
            Descriptors; columns name them.
        groups : array-like, shape (n_clips,)
        """
        if not isinstance(D, pd.DataFrame):
            raise ParameterError(f"D must be a DataFrame of descriptors (columns name them), got {type(D).__name__}")
        if not isinstance(self.n_components, int) or self.n_components < 1:
            raise ParameterError(f"n_components must be a positive integer, got {self.n_components!r}")
        sets = self.sets if self.sets is not None else {c: [c] for c in D.columns}
        unknown = sorted({c for cols in sets.values() for c in cols} - set(D.columns))
        if unknown:
            raise ParameterError(f"sets name descriptors that D lacks: {unknown}; D has {list(D.columns)}")
        used = [c for c in D.columns if any(c in cols for cols in sets.values())]
        X = np.asarray(X, dtype=np.float64)
        Dv = D[used].to_numpy(dtype=np.float64)
        keep = np.all(np.isfinite(Dv), axis=1) & np.all(np.isfinite(X), axis=1)
        if (~keep).any():
            logger.info("partition: %d of %d clips lack a descriptor or activations and are left out",
                        int((~keep).sum()), len(keep), extra=ONCE)
        X, Dv, groups = X[keep], Dv[keep], np.asarray(groups)[keep]
        folds = fold_labels(GroupFolds(self.cv), groups)
        reduced = {name: [j for j, c in enumerate(used) if c not in cols] for name, cols in sets.items()}
        n_folds = int(folds.max()) + 1
        sse_full = np.zeros(n_folds)
        sse_red = {name: np.zeros(n_folds) for name in sets}
        ss = np.zeros(n_folds)
        for f in range(n_folds):
            test = folds == f
            dec = decompose(X[~test])
            k = min(self.n_components, len(dec.s2))
            scores_train = dec.U[:, :k] * np.sqrt(dec.s2[:k])
            X_test_c = dec.transform(X[test])
            scores_test = X_test_c @ dec.V[:, :k]
            ss[f] = ((X[test] - X[test].mean(axis=0)) ** 2).sum()
            pred, _ = fit_predict_ridge(Dv[~test], scores_train, Dv[test], alphas=self.alphas, scaling="standard",
                                        cache=self.cache)
            sse_full[f] = _sse_unit_space(X_test_c, scores_test, pred)
            for name, cols in reduced.items():
                pred = (fit_predict_ridge(Dv[~test][:, cols], scores_train, Dv[test][:, cols], alphas=self.alphas,
                                          scaling="standard", cache=self.cache)[0]
                        if cols else np.zeros_like(scores_test))
                sse_red[name][f] = _sse_unit_space(X_test_c, scores_test, pred)
        ss_pooled = ((X - X.mean(axis=0)) ** 2).sum()
        self.notes_ = [variation_note(X[folds == f], X, what="layer") for f in range(n_folds)]
        self.notes_.append(variation_note(X, what="layer"))
        ss[[note is not None for note in self.notes_[:-1]]] = np.nan
        if self.notes_[-1] is not None:
            ss_pooled = np.nan
        self.n_clips_ = int(keep.sum())
        self.n_test_ = np.bincount(folds, minlength=n_folds)
        self.r2_full_ = 1 - sse_full / ss
        self.r2_full_pooled_ = float(1 - sse_full.sum() / ss_pooled)
        self.r2_without_ = {name: 1 - v / ss for name, v in sse_red.items()}
        self.r2_without_pooled_ = {name: float(1 - v.sum() / ss_pooled) for name, v in sse_red.items()}
        return self

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``feature, metric, fold, value, n_clips, note``.

        Metrics: ``r2_full`` (feature ``all``), ``r2_without`` and ``unique_r2`` per set; per fold and
        pooled over all held-out clips (fold <NA>). ``note`` says why a value is NaN (<NA> otherwise).
        """
        rows = []
        folds = [(f, self.n_test_[f], note) for f, note in zip(range(len(self.r2_full_)), self.notes_)]
        folds.append((pd.NA, self.n_clips_, self.notes_[-1]))
        full = [*self.r2_full_, self.r2_full_pooled_]
        for (fold, n, note), value in zip(folds, full):
            rows.append(("all", "r2_full", fold, value, n, note))
        for name, per_fold in self.r2_without_.items():
            without = [*per_fold, self.r2_without_pooled_[name]]
            for (fold, n, note), w, value in zip(folds, without, full):
                rows.append((name, "r2_without", fold, w, n, note))
                rows.append((name, "unique_r2", fold, value - w, n, note))
        table = pd.DataFrame(rows, columns=["feature", "metric", "fold", "value", "n_clips", "note"])
        table["fold"] = table["fold"].astype("Int64")
        table["note"] = table["note"].astype("string")
        return table
