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
from dataclasses import dataclass

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
from .shared import SharedCache, digest

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
    cache : SharedCache, optional, keyword-only
        Shares the descriptor side (the descriptor RDMs, their notes, sort orders and ranks, which depend on the
        descriptors and the compared clips only) between the probes of several layers; the results are the
        same with or without it.

    Attributes
    ----------
    results_ : pd.DataFrame
        One row per descriptor: ``feature, metric, value, p_value, ci_low, ci_high, n_clips, note``; ``note``
        says why the value is NaN (<NA> otherwise).
    """

    def __init__(self, *, metric: str = "correlation", method: str = "spearman", n_permutations: int = 1000,
                 n_bootstraps: int = 1000, ci: float = 0.95, random_state=None, cache: SharedCache | None = None):
        self.metric = metric
        self.method = method
        self.n_permutations = n_permutations
        self.n_bootstraps = n_bootstraps
        self.ci = ci
        self.random_state = random_state
        self.cache = cache

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

    def _descriptors(self, clips: np.ndarray, Y: np.ndarray) -> _DescriptorSide:
        """Return the descriptor side of comparing the columns of ``Y`` (n_clips, n_targets) on ``clips`` (cached)."""
        if self.cache is None:
            return _DescriptorSide.of(clips, Y, self.method)
        key = ("rsa-descriptors", self.method, digest(clips, Y))
        return self.cache.get(key, lambda: _DescriptorSide.of(clips, Y, self.method))

    def _scores(self, rdm_layer: np.ndarray, side: _DescriptorSide, groups: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Compute the similarity, its permutation null and its bootstrap replicates.

        The similarity of the layer RDM (m,) with every descriptor RDM of ``side`` is :func:`compare_rdms`'s;
        the null has shape (n_permutations, n_targets) and the replicates (n_bootstraps, n_targets), None when
        not asked for. Spearman sorts each RDM once for all three (the descriptor RDMs once for all layers).
        """
        rdm_targets = side.rdms
        if self.method != "spearman":
            value = np.array([compare_rdms(rdm_layer, col, method=self.method) for col in rdm_targets.T])
            null = (permutation_null(rdm_layer, rdm_targets, method=self.method, n_permutations=self.n_permutations,
                                     random_state=rng) if self.n_permutations else None)
            boot = (bootstrap_distribution(rdm_layer, rdm_targets, groups, method=self.method,
                                           n_bootstraps=self.n_bootstraps, random_state=rng)
                    if self.n_bootstraps else None)
            return value, null, boot
        layer = _SortedPairs.of(rdm_layer)
        ranks_layer = layer.normalised_ranks()[:, 0]
        constant = has_note(variation_notes(rdm_layer, min_count=3))[0]
        value = np.where(constant | side.constant, np.nan, ranks_layer @ side.ranks)
        null = _spearman_null(ranks_layer, side.ranks, self.n_permutations, rng) if self.n_permutations else None
        boot = (_spearman_bootstrap(layer, side.pairs, _pair_weights(_group_index(groups, len(groups)),
                                                                     self.n_bootstraps, rng))
                if self.n_bootstraps else None)
        return value, null, boot

    def _fit_pattern(self, rdm_full, layer, clips, Ysub, names, groups, rng):
        metric_name = self.method.replace("-", "_")
        n = len(layer)
        side = self._descriptors(clips, Ysub)
        layer_note = variation_note(layer[clips], layer, what="layer") if len(clips) >= 4 else None
        notes = np.array([note if note is not None else layer_note for note in side.notes], dtype=object)
        if len(clips) < 4:
            return [(name, metric_name, np.nan, np.nan, np.nan, np.nan, len(clips), notes[t])
                    for t, name in enumerate(names)]
        rows, cols = np.triu_indices(len(clips), 1)
        rdm_layer = rdm_full[condensed_index(clips[rows], clips[cols], n)]
        value, null, boot = self._scores(rdm_layer, side, groups, rng)
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


@dataclass(frozen=True)
class _DescriptorSide:
    """What RSA needs of the descriptors on one set of clips, for every layer alike.

    Attributes
    ----------
    notes : np.ndarray of object, shape (n_targets,)
        Why a descriptor's similarity is undefined on these clips (None where it is not), judged against the
        descriptor over all clips.
    rdms : np.ndarray, shape (m, n_targets), or None
        Condensed descriptor RDMs (absolute differences; Kendall's tau-a only, with at least 4 clips).
    constant : np.ndarray of bool, shape (n_targets,)
        RDMs constant up to float noise (Spearman only).
    pairs : _SortedPairs or None
        The RDMs presorted (Spearman only).
    ranks : np.ndarray, shape (m, n_targets), or None
        Their normalised mid-ranks (Spearman only).
    """

    notes: np.ndarray
    rdms: np.ndarray | None
    constant: np.ndarray | None = None
    pairs: _SortedPairs | None = None
    ranks: np.ndarray | None = None

    @classmethod
    def of(cls, clips: np.ndarray, Y: np.ndarray, method: str) -> _DescriptorSide:
        """Compute the descriptor side of the columns of ``Y`` (n_clips, n_targets) on the clips ``clips``."""
        notes = variation_notes(Y[clips], Y, what="descriptor", min_count=4)
        if len(clips) < 4:
            return cls(notes, None)
        rows, cols = np.triu_indices(len(clips), 1)
        rdms = np.abs(Y[clips][rows] - Y[clips][cols])
        if method != "spearman":
            return cls(notes, rdms)
        pairs = _SortedPairs.of(rdms)
        constant = has_note(variation_notes(rdms, min_count=3))
        return cls(notes, None, constant, pairs, pairs.normalised_ranks())

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held."""
        arrays = (self.rdms, self.constant, self.ranks) + ((self.pairs.order, self.pairs.ends) if self.pairs else ())
        return sum(a.nbytes for a in arrays if a is not None)
