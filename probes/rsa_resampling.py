"""Inference on RDM comparisons: the permutation null and the group bootstrap, with their compiled kernels.

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

RDMs are condensed (:mod:`.rdm`); the comparisons are :data:`~audioprobe.probes.rdm.COMPARISONS`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from scipy.spatial.distance import squareform

from ..errors import ParameterError, check_choice
from .rdm import COMPARISONS, compare_rdms, condensed_index

__all__ = ["permutation_null", "bootstrap_distribution"]


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
