"""Permutation tests, vectorised over many cells at once (thin layers over :func:`scipy.stats.permutation_test`).

Two designs are covered:

* :func:`label_permutation_test`: two independent samples of models (seeds) per cell; the null
  distribution comes from relabelling which models belong to which domain. Exact enumeration of
  every relabelling when there are at most ``n_permutations`` of them, Monte Carlo otherwise.
* :func:`sign_flip_test`: one paired difference per unit (clip or group of clips) per cell; the
  null distribution comes from flipping the sign of each unit's difference. Exact (all ``2**G``
  flips) when ``2**G <= n_permutations``, Monte Carlo otherwise.

Every cell of a call sees the same relabellings (or flips), which keeps the p-values of one cell
exact or Monte-Carlo valid while preserving the dependence between cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import ParameterError

__all__ = ["PermutationResult", "label_permutation_test", "sign_flip_test", "smallest_p_value"]

_BATCH_FLOATS = 4_000_000  # values held at once while building a null distribution (32 MB)


@dataclass(frozen=True)
class PermutationResult:
    """Result of a vectorised permutation test.

    Attributes
    ----------
    statistic : ndarray, shape (n_cells,)
        The observed statistic of each cell.
    pvalue : ndarray, shape (n_cells,)
        Two-sided p-values (scipy's convention: twice the smaller tail, at most 1; Monte-Carlo
        p-values include the observed arrangement, ``(k + 1) / (n + 1)``).
    exact : bool
        Whether every rearrangement was enumerated.
    n_resamples : int
        Rearrangements used (all of them when ``exact``).
    smallest_p : float
        The smallest two-sided p-value this design can produce.
    rearrangement : str
        What one resample is: ``"relabellings"`` or ``"sign flips"``.
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    exact: bool
    n_resamples: int
    smallest_p: float
    rearrangement: str

    def describe(self, what: str) -> str:
        """Return a short name of the test, e.g. ``"<what> (exact, 252 relabellings)"``."""
        how = "exact" if self.exact else "Monte Carlo"
        return f"{what} ({how}, {self.n_resamples} {self.rearrangement})"


def smallest_p_value(n_arrangements: int | float, *, exact: bool, n_permutations: int) -> float:
    """Return the smallest two-sided p-value a permutation test can return.

    Parameters
    ----------
    n_arrangements : int or float
        Number of distinct rearrangements of the design (relabellings or sign patterns).
    exact : bool
        Whether they are all enumerated.
    n_permutations : int
        Monte-Carlo resamples when not exact.
    """
    if exact:
        return min(1.0, 2.0 / n_arrangements)
    return min(1.0, 2.0 / (n_permutations + 1))


def _check_n_permutations(n_permutations: int) -> int:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ParameterError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    return int(n_permutations)


def _batch(n_values_per_resample: int) -> int:
    return max(1, _BATCH_FLOATS // max(1, n_values_per_resample))


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _total(d: np.ndarray, axis: int) -> np.ndarray:
    return np.sum(d, axis=axis)


def label_permutation_test(a: np.ndarray, b: np.ndarray, *, n_permutations: int = 10000,
                           random_state: int | np.random.Generator | None = 0) -> PermutationResult:
    """Two-sample permutation test of ``mean(a) - mean(b)``, one test per column.

    Parameters
    ----------
    a : array_like, shape (n_a, n_cells)
        Scores of the ``n_a`` models of the first domain (rows), one column per cell
        (layer x feature). A 1-D input is one cell.
    b : array_like, shape (n_b, n_cells)
        Scores of the second domain's models.
    n_permutations : int
        Maximum number of relabellings. When ``comb(n_a + n_b, n_a) <= n_permutations`` every
        relabelling is enumerated (exact test); otherwise this many random ones are drawn.
    random_state : int, Generator or None
        Seed of the Monte-Carlo relabellings.

    Returns
    -------
    PermutationResult
        ``statistic`` is the difference of means (units of the scores).
    """
    n_permutations = _check_n_permutations(n_permutations)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ParameterError(f"a label permutation test needs at least 2 models per domain, "
                             f"got {a.shape[0]} and {b.shape[0]}")
    n_arrangements = math.comb(a.shape[0] + b.shape[0], a.shape[0])
    exact = n_arrangements <= n_permutations
    res = stats.permutation_test((a, b), _mean_difference, permutation_type="independent", vectorized=True,
                                 n_resamples=n_permutations, alternative="two-sided", axis=0,
                                 batch=_batch(a.size + b.size), rng=np.random.default_rng(random_state))
    n_used = n_arrangements if exact else n_permutations
    return PermutationResult(np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue), exact, n_used,
                             smallest_p_value(n_arrangements, exact=exact, n_permutations=n_permutations),
                             "relabellings")


def sign_flip_test(d: np.ndarray, *, n_permutations: int = 10000,
                   random_state: int | np.random.Generator | None = 0) -> PermutationResult:
    """Sign-flip permutation test of ``sum(d) = 0`` along the last axis, one test per row.

    Parameters
    ----------
    d : array_like, shape (n_cells, n_units)
        Paired differences, one per unit (clip or group of clips). A 1-D input is one cell.
    n_permutations : int
        Maximum number of sign patterns. Exact (all ``2**n_units``) when that is at most
        ``n_permutations``; otherwise this many random patterns.
    random_state : int, Generator or None
        Seed of the Monte-Carlo sign patterns.

    Returns
    -------
    PermutationResult
        ``statistic`` is the sum of the differences.
    """
    n_permutations = _check_n_permutations(n_permutations)
    d = np.atleast_2d(np.asarray(d, dtype=float))
    n_units = d.shape[-1]
    if n_units < 2:
        raise ParameterError(f"a sign-flip test needs at least 2 units (clips or groups), got {n_units}")
    n_arrangements = 2 ** n_units
    exact = n_arrangements <= n_permutations
    res = stats.permutation_test((d,), _total, permutation_type="samples", vectorized=True,
                                 n_resamples=n_permutations, alternative="two-sided", axis=-1,
                                 batch=_batch(2 * d.size), rng=np.random.default_rng(random_state))
    n_used = n_arrangements if exact else n_permutations
    return PermutationResult(np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue), exact, n_used,
                             smallest_p_value(n_arrangements, exact=exact, n_permutations=n_permutations),
                             "sign flips")
