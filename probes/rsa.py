"""Representational similarity analysis: layer RDMs against descriptor RDMs.

* A layer's RDM holds the distance between the activation vectors of every pair of clips
  (correlation distance by default, euclidean on request); a descriptor's RDM holds the absolute
  difference of its values. RDMs are kept condensed (the ``pdist`` order of pairs, shape (m,),
  m = n(n-1)/2).
* They are compared by Spearman's rho (Pearson correlation of the ranks) or Kendall's tau-a,
  as ``rsatoolbox.rdm.compare(method="spearman" | "tau-a")``.
* Inference: a Mantel test that permutes the clip labels of the layer RDM. Ranks are equivariant
  under a permutation of the pairs, so for Spearman the whole null distribution of all
  descriptors is one gather of the layer's rank vector per permutation and one matrix product
  (permutations x pairs) @ (pairs x descriptors). p = (1 + #{null >= observed}) / (1 + n_permutations),
  one-sided (more similar than chance). The test assumes clips are exchangeable under the null.
* Uncertainty: percentile bootstrap over groups (clips of a resampled group enter as often as
  the group is drawn; pairs of a clip with its own copy are left out, as rsatoolbox's
  ``subsample_pattern`` does). A sample is integer weights on the pairs (product of the two clips'
  counts). Its Spearman's rho uses weighted mid-ranks over the RDMs sorted once, which equal the ranks
  of the expanded sample without expanding or re-sorting: one compiled (numba) pass over the sorted
  pairs per descriptor and sample.
* Undefined: a descriptor whose values on the compared clips vary by float noise only (relative to
  its mean square over all clips), or a layer whose activations do (the rule of
  :func:`~audioprobe.probes._targets.variation_notes`), has an RDM of rounding residue whose ranks
  are arbitrary: the similarity, p-value and interval are NaN with the reason in ``note``.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform
from scipy.stats import kendalltau, spearmanr

from ..errors import ParameterError, check_choice
from ..log import logger
from ._targets import as_targets, has_note, variation_note, variation_notes

__all__ = ["RDM_METRICS", "COMPARISONS", "layer_rdm", "descriptor_rdm", "compare_rdms", "kendall_tau_a",
           "condensed_index", "permutation_null", "bootstrap_distribution", "RSAProbe"]

RDM_METRICS: dict[str, str] = {"correlation": "correlation", "euclidean": "euclidean"}


def layer_rdm(X: np.ndarray, *, metric: str = "correlation") -> np.ndarray:
    """Condensed RDM of the rows of ``X``: :func:`scipy.spatial.distance.pdist` with the metric.

    Parameters
    ----------
    X : np.ndarray, shape (n_clips, n_units)
    metric : {"correlation", "euclidean"}
        Correlation distance ``1 - r`` (unitless, 0..2) or euclidean distance (activation units).

    Returns
    -------
    np.ndarray, shape (n_clips * (n_clips - 1) / 2,)
        Pairs in ``pdist`` order; NaN for every pair of a row with a NaN, and for correlation distance of a
        constant row (undefined).
    """
    check_choice("metric", metric, RDM_METRICS)
    return pdist(np.asarray(X, dtype=np.float64), RDM_METRICS[metric])


def descriptor_rdm(y: np.ndarray) -> np.ndarray:
    """Condensed RDM of one descriptor: ``|y_i - y_j|`` for every pair ``i < j`` (descriptor units)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    i, j = np.triu_indices(len(y), 1)
    return np.abs(y[i] - y[j])


def kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a, ``(concordant - discordant) / (m (m - 1) / 2)``; ties count as neither.

    Computed from scipy's O(m log m) tau-b (:func:`scipy.stats.kendalltau`): ``C - D = tau_b sqrt((n0 - n_x)
    (n0 - n_y))``, where n0 = m (m - 1) / 2 and n_x and n_y count the pairs tied in x and in y. Equals
    ``rsatoolbox.rdm.compare(method="tau-a")``.

    Parameters
    ----------
    x, y : np.ndarray, shape (m,)
        Paired values (e.g. two condensed RDMs), finite.

    Returns
    -------
    float
        In [-1, 1]; 0 when either input is constant (every pair tied).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = len(x)
    n0 = m * (m - 1) / 2
    tied = [np.sum(c * (c - 1) / 2) for c in (np.unique(v, return_counts=True)[1].astype(float) for v in (x, y))]
    if tied[0] == n0 or tied[1] == n0:
        return 0.0
    tau_b = kendalltau(x, y).statistic
    return float(tau_b * np.sqrt((n0 - tied[0]) * (n0 - tied[1])) / n0)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two vectors, shape (m,): :func:`scipy.stats.spearmanr` (mid-ranks for ties)."""
    return float(spearmanr(a, b).statistic)


COMPARISONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"spearman": _spearman, "tau-a": kendall_tau_a}


def compare_rdms(a: np.ndarray, b: np.ndarray, *, method: str = "spearman") -> float:
    """Similarity of two condensed RDMs over their pairs where both are finite.

    Parameters
    ----------
    a, b : np.ndarray, shape (m,)
    method : {"spearman", "tau-a"}

    Returns
    -------
    float
        NaN when fewer than 3 pairs are finite or one RDM is constant up to float noise (its variance at most
        :data:`~audioprobe.probes._targets.FLOAT_NOISE_RTOL` of its mean square).
    """
    check_choice("method", method, COMPARISONS)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ParameterError(f"RDMs must have the same number of pairs, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    if has_note(variation_notes(np.c_[a[ok], b[ok]], min_count=3)).any():
        return float("nan")
    return COMPARISONS[method](a[ok], b[ok])


def condensed_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair ``(i, j)`` (i != j, any order) in a condensed RDM of ``n`` items."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return n * lo - lo * (lo + 1) // 2 + hi - lo - 1


def permutation_null(rdm_layer: np.ndarray, rdm_targets: np.ndarray, *, method: str = "spearman",
                     n_permutations: int = 1000, random_state=None, batch: int = 64) -> np.ndarray:
    """Similarities after permuting the clip labels of the layer RDM.

    Parameters
    ----------
    rdm_layer : np.ndarray, shape (m,)
        Condensed, finite.
    rdm_targets : np.ndarray, shape (m, n_targets)
        Condensed descriptor RDMs, finite.
    method : {"spearman", "tau-a"}
    n_permutations : int
    random_state : int, np.random.Generator or None
    batch : int
        Permutations evaluated together (memory ~ batch x m floats).

    Returns
    -------
    np.ndarray, shape (n_permutations, n_targets)
    """
    check_choice("method", method, COMPARISONS)
    rng = np.random.default_rng(random_state)
    rdm_targets = np.asarray(rdm_targets, dtype=np.float64).reshape(len(rdm_layer), -1)
    n = _n_items(len(rdm_layer))
    if method == "spearman":
        ranks_layer = _SortedPairs.of(rdm_layer).normalised_ranks()[:, 0]
        return _spearman_null(ranks_layer, _SortedPairs.of(rdm_targets).normalised_ranks(), n_permutations, rng, batch)
    rows, cols = np.triu_indices(n, 1)
    null = np.empty((n_permutations, rdm_targets.shape[1]))
    for b in range(n_permutations):
        perm = rng.permutation(n)
        shuffled = rdm_layer[condensed_index(perm[rows], perm[cols], n)]
        null[b] = [COMPARISONS[method](shuffled, rdm_targets[:, t]) for t in range(rdm_targets.shape[1])]
    return null


def _spearman_null(ranks_layer: np.ndarray, ranks_targets: np.ndarray, n_permutations: int,
                   rng: np.random.Generator, batch: int = 64) -> np.ndarray:
    """Compute Spearman's rho after permuting clip labels, from normalised ranks.

    The normalised ranks (centred, unit norm) are those of the layer RDM, shape (m,), and of the descriptor
    RDMs, shape (m, n_targets); returns shape (n_permutations, n_targets). A permuted condensed RDM is the
    upper triangle of the square RDM with rows and columns permuted.
    """
    n = _n_items(len(ranks_layer))
    square = squareform(ranks_layer, checks=False)
    null = np.empty((n_permutations, ranks_targets.shape[1]))
    shuffled = np.empty((min(batch, n_permutations), len(ranks_layer)))
    for start in range(0, n_permutations, batch):
        stop = min(start + batch, n_permutations)
        perms = rng.permuted(np.tile(np.arange(n), (stop - start, 1)), axis=1)
        for k, perm in enumerate(perms):
            _permuted_condensed(square, perm, shuffled[k])
        null[start:stop] = shuffled[:stop - start] @ ranks_targets
    return null


@numba.njit(nogil=True, cache=True)
def _permuted_condensed(square, perm, out):
    """``out[pair(i, j)] = square[perm[i], perm[j]]`` for i < j in condensed (``pdist``) order, shape (m,)."""
    k = 0
    for i in range(len(perm)):
        row = square[perm[i]]
        for j in range(i + 1, len(perm)):
            out[k] = row[perm[j]]
            k += 1


def _n_items(m: int) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise ParameterError(f"a condensed RDM has n(n-1)/2 entries; {m} is not such a number")
    return n


@dataclass(frozen=True)
class _SortedPairs:
    """Columns of condensed RDMs presorted once, with the ends of their tie groups.

    Attributes
    ----------
    order : np.ndarray of int32 (int64 beyond 2**31 pairs), shape (n_columns, m)
        Pairs in ascending order of each column (stable).
    ends : np.ndarray of bool, shape (n_columns, m)
        Whether a sorted position is the last of its tie group.
    """

    order: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, V: np.ndarray) -> _SortedPairs:
        """Sort the columns of ``V``, shape (m,) or (m, n_columns)."""
        V = V.reshape(V.shape[0], -1).T  # (t, m)
        order = np.argsort(V, axis=1, kind="stable").astype(np.int32 if V.shape[1] < 2**31 else np.int64)
        sorted_v = np.take_along_axis(V, order, axis=1)
        ends = np.ones(V.shape, dtype=bool)
        ends[:, :-1] = sorted_v[:, 1:] != sorted_v[:, :-1]
        return cls(order, ends)

    @cached_property
    def tied(self) -> bool:
        """Whether any column has ties (columns without take a kernel without tie groups, ~2x faster)."""
        return not self.ends.all()

    def normalised_ranks(self) -> np.ndarray:
        """Compute the mid-ranks of every column, centred and scaled to unit norm, shape (m, n_columns).

        NaN for a constant column. Spearman's rho of two columns is the dot product of theirs.
        """
        ranks = np.empty(self.order.shape[::-1])
        ones, ranks2 = np.ones(self.order.shape[1]), np.empty(self.order.shape[1])
        for k in range(len(self.order)):
            _doubled_midranks(self.order[k], self.ends[k], ones, ranks2)
            ranks[:, k] = ranks2
        ranks -= ranks.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ranks / np.linalg.norm(ranks, axis=0)

    def columns(self, cols: np.ndarray) -> _SortedPairs:
        """Select the presorted columns ``cols``."""
        return _SortedPairs(self.order[cols], self.ends[cols])

    def rank_cross_products(self, wx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compute ``sum_p x_p 2R_p`` and the tie term ``sum(g^3 - g)`` per column, each shape (n_columns,).

        R: mid-ranks of the sample expanded by integer pair weights w; ``wx`` holds w and x side by side,
        shape (m, 2).
        """
        products, ties = np.empty(len(self.order)), np.empty(len(self.order))
        if self.tied:
            _rank_cross_products(self.order, self.ends, wx, products, ties)
            return products, ties
        # without ties 2R_p = 2 (weight sorted before p) + w_p + 1; only the first term depends on the order
        _untied_rank_cross_products(self.order, wx, products)
        w, x = wx[:, 0], wx[:, 1]
        return 2 * products + x @ (w + 1), np.full(len(products), w @ (w * w - 1))


@numba.njit(nogil=True, cache=True)
def _doubled_midranks(order, ends, w, ranks2):
    """Twice the mid-rank of every pair in the sample expanded by integer weights ``w``.

    Mid-rank of a tie group of total weight g (every copy of its pairs) after pairs of total weight
    ``below``: ``below + (g + 1) / 2``, so twice it is an integer. Writes ``ranks2`` (m,) in pair
    order and returns the tie term ``sum(g^3 - g)``.
    """
    below = 0.0
    ties = 0.0
    g = 0.0
    start = 0
    for i in range(order.shape[0]):
        g += w[order[i]]
        if ends[i]:
            rank2 = 2.0 * below + g + 1.0
            for k in range(start, i + 1):
                ranks2[order[k]] = rank2
            below += g
            ties += g * (g * g - 1.0)
            g = 0.0
            start = i + 1
    return ties


@numba.njit(nogil=True, cache=True)
def _rank_cross_products(order, ends, wx, products, ties):
    """Compute ``sum_p x_p 2R_p`` and the tie term per presorted row k.

    R: mid-ranks of the sample expanded by w; ``wx[:, 0]`` = w, ``wx[:, 1]`` = x. One pass over the sorted
    pairs; a tie group's ranks are fixed at its end, so its pairs enter through the sum of their ``x``.
    """
    for k in range(order.shape[0]):
        below = 0.0
        g = 0.0
        gx = 0.0
        acc = 0.0
        tie = 0.0
        for i in range(order.shape[1]):
            p = order[k, i]
            g += wx[p, 0]
            gx += wx[p, 1]
            if ends[k, i]:
                acc += gx * (2.0 * below + g + 1.0)
                below += g
                tie += g * (g * g - 1.0)
                g = 0.0
                gx = 0.0
        products[k] = acc
        ties[k] = tie


@numba.njit(nogil=True, cache=True)
def _untied_rank_cross_products(order, wx, products):
    """Compute ``sum_i x_(i) * (w of the pairs sorted before i)`` per presorted row k without ties.

    ``wx`` as in :func:`_rank_cross_products` (w and x of a pair side by side: one cache line per pair).
    """
    for k in range(order.shape[0]):
        below = 0.0
        acc = 0.0
        for i in range(order.shape[1]):
            p = order[k, i]
            acc += wx[p, 1] * below
            below += wx[p, 0]
        products[k] = acc


def _bootstrap_spearman(layer: _SortedPairs, targets: _SortedPairs, w: np.ndarray) -> np.ndarray:
    """Spearman's rho of the layer with every target over the pairs expanded by integer weights ``w``.

    Equals :func:`scipy.stats.spearmanr` of ``np.repeat(layer, w)`` and ``np.repeat(target, w)``. The mean of
    mid-ranks of W items is (W + 1) / 2 and their variance (W^2 - 1) / 12 - ties / (12 W), so only the cross
    products ``sum_p w_p R_p R'_p`` need the ranks themselves (computed in exact integer steps, float64).
    """
    total = w.sum()
    wx = np.empty((len(w), 2))
    wx[:, 0] = w
    ties_l = _doubled_midranks(layer.order[0], layer.ends[0], w, wx[:, 1])
    wx[:, 1] *= w
    products, ties_t = targets.rank_cross_products(wx)
    mean = (total + 1) / 2
    cov = products / (4 * total) - mean**2
    var = (total**2 - 1) / 12
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.sqrt((var - ties_l / (12 * total)) * (var - ties_t / (12 * total)))


def bootstrap_distribution(rdm_layer: np.ndarray, rdm_targets: np.ndarray, groups, *, method: str = "spearman",
                           n_bootstraps: int = 1000, random_state=None) -> np.ndarray:
    """Similarities over bootstrap samples of groups.

    Parameters
    ----------
    rdm_layer : np.ndarray, shape (m,)
    rdm_targets : np.ndarray, shape (m, n_targets)
    groups : array-like, shape (n_clips,)
        Group of every clip (m = n_clips (n_clips - 1) / 2).
    method : {"spearman", "tau-a"}
    n_bootstraps : int
    random_state : int, np.random.Generator or None

    Returns
    -------
    np.ndarray, shape (n_bootstraps, n_targets)
        NaN for a sample with a constant RDM (e.g. a single group drawn every time).
    """
    check_choice("method", method, COMPARISONS)
    rng = np.random.default_rng(random_state)
    rdm_targets = np.asarray(rdm_targets, dtype=np.float64).reshape(len(rdm_layer), -1)
    n = _n_items(len(rdm_layer))
    weights = _pair_weights(_group_index(groups, n), n_bootstraps, rng)
    if method == "spearman":
        return _spearman_bootstrap(_SortedPairs.of(rdm_layer), _SortedPairs.of(rdm_targets), weights)
    out = np.empty((n_bootstraps, rdm_targets.shape[1]))
    for b, w in enumerate(weights):
        reps = w.astype(int)
        layer = np.repeat(rdm_layer, reps)
        out[b] = [compare_rdms(layer, np.repeat(col, reps), method=method) for col in rdm_targets.T]
    return out


def _group_index(groups, n: int) -> np.ndarray:
    """Group index 0..G-1 of each of ``n`` clips, shape (n,); ParameterError for another number of labels."""
    _, group_of = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if len(group_of) != n:
        raise ParameterError(f"groups has {len(group_of)} labels but the RDMs describe {n} clips")
    return group_of.ravel()


def _pair_weights(group_of: np.ndarray, n_bootstraps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield, per bootstrap sample of the groups, how often each pair of clips occurs in it.

    ``group_of`` is the group index 0..G-1 of each clip, shape (n,). A pair's weight is the product of the two
    clips' counts; each sample yields shape (m,), condensed order.
    """
    n_groups = group_of.max() + 1
    rows, cols = np.triu_indices(len(group_of), 1)
    for _ in range(n_bootstraps):
        drawn = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        count = drawn[group_of].astype(float)
        yield count[rows] * count[cols]


def _spearman_bootstrap(layer: _SortedPairs, targets: _SortedPairs, weights: Iterable[np.ndarray]) -> np.ndarray:
    """Compute Spearman's rho of the presorted layer RDM with every presorted descriptor RDM per weight sample.

    Returns shape (n_samples, n_targets); descriptors without ties take the faster kernel.
    """
    tied = ~targets.ends.all(axis=1)
    column_sets = [(cols, targets.columns(cols)) for cols in (np.flatnonzero(tied), np.flatnonzero(~tied)) if len(cols)]
    rows = []
    for w in weights:
        row = np.empty(len(tied))
        for cols, part in column_sets:
            row[cols] = _bootstrap_spearman(layer, part, w)
        rows.append(row)
    return np.array(rows).reshape(-1, len(tied))


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
