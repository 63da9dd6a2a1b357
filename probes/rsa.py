"""Representational similarity analysis: layer RDMs against descriptor RDMs.

:class:`RSAProbe` compares the RDM of one layer with the RDM of every descriptor (:mod:`.rdm`: construction and
comparison), with a permutation p-value and a group-bootstrap interval (:mod:`.rsa_resampling`).

* Undefined: a descriptor whose values on the compared clips vary by float noise only (relative to
  its mean square over all clips), or a layer whose activations do (the rule of
  :func:`~audioprobe.probes._targets.variation_notes`), has an RDM of rounding residue whose ranks
  are arbitrary: the similarity, p-value and interval are NaN with the reason in ``note``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import ParameterError, check_choice
from ..log import logger
from ._targets import as_targets, has_note, variation_note, variation_notes
from .rdm import COMPARISONS, RDM_METRICS, compare_rdms, condensed_index, layer_rdm
from .rsa_resampling import (
    _group_index,
    _pair_weights,
    _SortedPairs,
    _spearman_bootstrap,
    _spearman_null,
    bootstrap_distribution,
    permutation_null,
)

__all__ = ["RSAProbe"]


class RSAProbe:
    """RSA of one layer against every descriptor, with permutation p-values and bootstrap CIs.

    Parameters
    ----------
    metric : {"correlation", "euclidean"}, keyword-only
        Distance between activation vectors.
    method : {"spearman", "tau-a"}, keyword-only
        RDM comparison.
    n_permutations : int, keyword-only, default 1000
        Clip-label permutations for the p-value (0: no p-value).
    n_bootstraps : int, keyword-only, default 1000
        Group bootstrap samples for the CI (0: no CI).
    ci : float, keyword-only, default 0.95
        Coverage of the percentile interval.
    random_state : int, np.random.Generator or None, keyword-only

    Attributes
    ----------
    results_ : pd.DataFrame
        One row per descriptor: ``feature, metric, value, p_value, ci_low, ci_high, n_clips, note``; ``note``
        says why the value is NaN (<NA> otherwise).
    """

    def __init__(self, *, metric: str = "correlation", method: str = "spearman", n_permutations: int = 1000,
                 n_bootstraps: int = 1000, ci: float = 0.95, random_state=None):
        self.metric = metric
        self.method = method
        self.n_permutations = n_permutations
        self.n_bootstraps = n_bootstraps
        self.ci = ci
        self.random_state = random_state

    def fit(self, X, Y, groups) -> RSAProbe:
        """Compare the layer RDM of ``X`` with the RDM of every column of ``Y``.

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
        Y : DataFrame or array-like, shape (n_clips, n_targets)
            NaN = missing: the clip is left out for that descriptor.
        groups : array-like, shape (n_clips,)
        """
        check_choice("metric", self.metric, RDM_METRICS)
        check_choice("method", self.method, COMPARISONS)
        if not 0 < self.ci < 1:
            raise ParameterError(f"ci must be in (0, 1), got {self.ci!r}")
        Yv, names = as_targets(Y)
        X = np.asarray(X, dtype=np.float64)
        groups = np.asarray(groups)
        rng = np.random.default_rng(self.random_state)
        usable = np.all(np.isfinite(X), axis=1)
        if self.metric == "correlation":
            usable &= np.ptp(np.where(np.isfinite(X), X, 0.0), axis=1) > 0
        if (~usable).any():
            logger.warning("RSA: %d clip(s) with constant or non-finite activations left out", int((~usable).sum()))
        rdm_full = layer_rdm(np.where(usable[:, None], X, 0.0), metric=self.metric)
        layer = np.where(usable[:, None], X, np.nan)
        rows = []
        finite = np.isfinite(Yv) & usable[:, None]
        patterns, which = np.unique(finite.T, axis=0, return_inverse=True)
        for k, keep in enumerate(patterns):
            cols = np.flatnonzero(which.ravel() == k)
            clips = np.flatnonzero(keep)
            rows.extend(self._fit_pattern(rdm_full, layer, clips, Yv[:, cols], [names[c] for c in cols],
                                          groups[clips], rng))
        order = {name: i for i, name in enumerate(names)}
        self.results_ = (pd.DataFrame(rows, columns=["feature", "metric", "value", "p_value", "ci_low", "ci_high",
                                                     "n_clips", "note"])
                         .sort_values("feature", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
                         .astype({"note": "string"}))
        return self

    @staticmethod
    def _undefined(clips: np.ndarray, Y: np.ndarray, layer: np.ndarray) -> np.ndarray:
        """Why the similarity of each column of ``Y`` on ``clips`` is undefined (None where it is not).

        ``Y`` (n_clips, n_targets) and ``layer`` (n_clips, n_units; NaN rows unusable) over all clips set the
        scales of the rule.
        """
        notes = variation_notes(Y[clips], Y, what="descriptor", min_count=4)
        layer_note = variation_note(layer[clips], layer, what="layer") if len(clips) >= 4 else None
        return np.array([note if note is not None else layer_note for note in notes], dtype=object)

    def _scores(self, rdm_layer: np.ndarray, rdm_targets: np.ndarray, groups: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Compute the similarity, its permutation null and its bootstrap replicates.

        The similarity of the layer RDM (m,) with every descriptor RDM (m, n_targets) is :func:`compare_rdms`'s;
        the null has shape (n_permutations, n_targets) and the replicates (n_bootstraps, n_targets), None when
        not asked for. Spearman sorts each RDM once for all three.
        """
        if self.method != "spearman":
            value = np.array([compare_rdms(rdm_layer, col, method=self.method) for col in rdm_targets.T])
            null = (permutation_null(rdm_layer, rdm_targets, method=self.method, n_permutations=self.n_permutations,
                                     random_state=rng) if self.n_permutations else None)
            boot = (bootstrap_distribution(rdm_layer, rdm_targets, groups, method=self.method,
                                           n_bootstraps=self.n_bootstraps, random_state=rng)
                    if self.n_bootstraps else None)
            return value, null, boot
        layer, targets = _SortedPairs.of(rdm_layer), _SortedPairs.of(rdm_targets)
        ranks_layer, ranks_targets = layer.normalised_ranks()[:, 0], targets.normalised_ranks()
        constant = has_note(variation_notes(np.c_[rdm_layer, rdm_targets], min_count=3))
        value = np.where(constant[0] | constant[1:], np.nan, ranks_layer @ ranks_targets)
        null = _spearman_null(ranks_layer, ranks_targets, self.n_permutations, rng) if self.n_permutations else None
        boot = (_spearman_bootstrap(layer, targets, _pair_weights(_group_index(groups, len(groups)),
                                                                  self.n_bootstraps, rng))
                if self.n_bootstraps else None)
        return value, null, boot

    def _fit_pattern(self, rdm_full, layer, clips, Ysub, names, groups, rng):
        metric_name = self.method.replace("-", "_")
        n = len(layer)
        notes = self._undefined(clips, Ysub, layer)
        if len(clips) < 4:
            return [(name, metric_name, np.nan, np.nan, np.nan, np.nan, len(clips), notes[t])
                    for t, name in enumerate(names)]
        rows, cols = np.triu_indices(len(clips), 1)
        rdm_layer = rdm_full[condensed_index(clips[rows], clips[cols], n)]
        rdm_targets = np.abs(Ysub[clips][rows] - Ysub[clips][cols])
        value, null, boot = self._scores(rdm_layer, rdm_targets, groups, rng)
        value[has_note(notes)] = np.nan
        p = np.full(len(names), np.nan)
        if self.n_permutations:
            tol = 1e-12 * np.maximum(1.0, np.abs(value))
            p = (1 + np.sum(null >= value - tol, axis=0)) / (1 + self.n_permutations)
            p[~np.isfinite(value)] = np.nan
        low = high = np.full(len(names), np.nan)
        if self.n_bootstraps:
            tail = (1 - self.ci) / 2
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
                low, high = np.nanquantile(boot, [tail, 1 - tail], axis=0)
            low[~np.isfinite(value)] = high[~np.isfinite(value)] = np.nan
        return [(name, metric_name, value[t], p[t], low[t], high[t], len(clips),
                 notes[t] if notes[t] is not None or np.isfinite(value[t]) else "an RDM is constant up to float noise")
                for t, name in enumerate(names)]
