"""Representational dissimilarity matrices (RDMs) and their comparison.

* A layer's RDM holds the distance between the activation vectors of every pair of clips
  (correlation distance by default, euclidean on request); a descriptor's RDM holds the absolute
  difference of its values. RDMs are kept condensed (the ``pdist`` order of pairs, shape (m,),
  m = n(n-1)/2).
* They are compared by Spearman's rho (Pearson correlation of the ranks) or Kendall's tau-a,
  as ``rsatoolbox.rdm.compare(method="spearman" | "tau-a")``.

The permutation null and the group bootstrap of a comparison are :mod:`.rsa_resampling`'s; the RSA probe of a
layer against every descriptor is :class:`~audioprobe.probes.rsa.RSAProbe`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import kendalltau, spearmanr

from ..errors import ParameterError, check_choice
from ._targets import has_note, variation_notes

__all__ = ["RDM_METRICS", "COMPARISONS", "layer_rdm", "descriptor_rdm", "compare_rdms", "kendall_tau_a",
           "condensed_index"]

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
