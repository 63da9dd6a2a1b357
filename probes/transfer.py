"""Cross-domain transfer of ridge probes: fit on the clips of one domain, score on another.

For every training domain A: the probe (alpha per descriptor by leave-one-out on A's clips) is fit
on all of A and scored on every other domain B (R^2 around B's own mean, so a shift in level
between domains counts against transfer, and Pearson r, which ignores it). The within-domain
reference (train A, evaluate A) is the pooled out-of-fold score of grouped K-fold CV inside A.
Clips of B whose group also occurs in A are left out of B's score.

Every score is judged against the descriptor's scale over all clips
(:func:`~audioprobe.probes.scores.score_notes`): on a domain where a descriptor varies by float noise only
(a modulation band that is filter residue on steady tones) R^2 and r are NaN, with the reason in ``note``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..log import logger
from ._targets import as_targets
from .ridge import cross_validate_ridge
from .ridge_solver import fit_predict_ridge
from .scores import pearson_columns, r2_score_columns, score_notes
from .shared import ONCE
from .splitters import GroupFolds, fold_labels

__all__ = ["DomainTransfer"]


class DomainTransfer:
    """Ridge probes trained on one domain and evaluated on each domain.

    Parameters
    ----------
    cv : int, default 5
        Grouped folds for the within-domain reference.
    alphas : array-like, keyword-only, optional
    scaling : {"center", "standard"}, keyword-only
    min_clips : int, keyword-only, default 10
        Domains with fewer clips are neither trained on nor evaluated.

    Attributes
    ----------
    results_ : pd.DataFrame
        ``feature, metric, train_domain, eval_domain, value, n_clips, note``; metrics ``r2`` and ``pearson_r``;
        ``note`` says why a value is NaN (<NA> otherwise).
    """

    def __init__(self, cv: int = 5, *, alphas=None, scaling: str = "center", min_clips: int = 10):
        self.cv = cv
        self.alphas = alphas
        self.scaling = scaling
        self.min_clips = min_clips

    def fit(self, X, Y, domains, groups) -> DomainTransfer:
        """Score every (train domain, eval domain) pair.

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
        Y : DataFrame or array-like, shape (n_clips, n_targets)
        domains, groups : array-like, shape (n_clips,)
        """
        X = np.asarray(X, dtype=np.float64)
        Yv, names = as_targets(Y)
        domains = np.asarray(domains).astype(str)
        groups = np.asarray(groups).astype(str)
        if not (len(X) == len(Yv) == len(domains) == len(groups)):
            raise ParameterError("X, Y, domains and groups must have one row per clip")
        present = [d for d in pd.unique(domains) if (domains == d).sum() >= self.min_clips]
        if len(present) < 2:
            logger.warning("transfer: fewer than 2 domains with >= %d clips; nothing to transfer", self.min_clips,
                           extra=ONCE)
        rows = []

        def add(metric, values, train, evaluate, counts, notes):
            rows.extend((name, metric, train, evaluate, values[j], int(counts[j]),
                         pd.NA if notes[j] is None else notes[j]) for j, name in enumerate(names))

        for train in present:
            inside = domains == train
            if len(np.unique(groups[inside])) >= self.cv:
                res = cross_validate_ridge(X[inside], Yv[inside], fold_labels(GroupFolds(self.cv), groups[inside]),
                                           alphas=self.alphas, scaling=self.scaling, reference=Yv)
                add("r2", res.r2_pooled, train, train, res.n_clips, res.notes["r2_pooled"])
                add("pearson_r", res.pearson_r_pooled, train, train, res.n_clips, res.notes["pearson_r_pooled"])
            else:
                logger.warning("transfer: domain %r has fewer than cv=%d groups; no within-domain reference",
                               train, self.cv, extra=ONCE)
            evaluate = [d for d in present if d != train]
            if not evaluate:
                continue
            target = ~inside & np.isin(domains, evaluate) & ~np.isin(groups, groups[inside])
            pred, _ = fit_predict_ridge(X[inside], Yv[inside], X[target], alphas=self.alphas, scaling=self.scaling)
            for other in evaluate:
                sel = domains[target] == other
                y_true, y_pred = Yv[target][sel], pred[sel]
                counts = (np.isfinite(y_true) & np.isfinite(y_pred)).sum(axis=0)
                for metric, score in (("r2", r2_score_columns), ("pearson_r", pearson_columns)):
                    add(metric, score(y_true, y_pred, reference=Yv), train, other, counts,
                        score_notes(y_true, y_pred, metric=metric, reference=Yv))
        self.results_ = pd.DataFrame(rows, columns=["feature", "metric", "train_domain", "eval_domain", "value",
                                                    "n_clips", "note"]).astype({"note": "string"})
        return self
