"""Centred kernel alignment (Kornblith et al. 2019) with linear kernels, plain and debiased.

``CKA(X, Y) = <K_c, L_c>_F / (||K_c||_F ||L_c||_F)`` with ``K = X X^T`` and ``L = Y Y^T`` (clips x clips
Gram matrices) centred by ``H = I - 11^T/n``; the debiased version replaces that centring by
U-centring (Szekely & Rizzo 2014), which makes ``<K_u, L_u> / (n (n - 3))`` the unbiased HSIC
estimator of Song et al. (2012), so that the index of independent representations is 0 on
average instead of growing with the ratio of units to clips. Both are invariant to orthogonal
transforms and isotropic scaling of either representation. Working with Gram matrices makes
one (n x n) matrix per layer the only thing kept to compare layers and models.

A representation whose variation across clips is float noise relative to its scale (the rule of
:func:`~audioprobe.probes._targets.variation_note`: total variance at most
:data:`~audioprobe.probes._targets.FLOAT_NOISE_RTOL` of the total mean square) is constant:
:func:`gram_linear` returns its centred Gram matrix as exact zeros, so that CKA is NaN instead of an
alignment of rounding residue; ``variation_note(X)`` gives the reason.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ._targets import variation_note

__all__ = ["gram_linear", "center_gram", "cka_from_grams", "cka_from_centred", "linear_cka"]


def gram_linear(X: np.ndarray) -> np.ndarray:
    """Linear-kernel Gram matrix ``X X^T`` of the rows, shape (n_clips, n_clips).

    The columns are centred first (this leaves the centred Gram matrix unchanged and avoids
    cancellation for activations with large means). A representation that varies across clips by float
    noise only (:func:`~audioprobe.probes._targets.variation_note`) is constant: its Gram matrix is 0.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"X must be (n_clips, n_units), got shape {X.shape}")
    if variation_note(X, what="representation") is not None:
        return np.zeros((len(X), len(X)))
    X = X - X.mean(axis=0)
    return X @ X.T


def center_gram(K: np.ndarray, *, debiased: bool = False) -> np.ndarray:
    """Centred copy of a symmetric Gram matrix: double centring, or U-centring when ``debiased``.

    Parameters
    ----------
    K : np.ndarray, shape (n, n)
    debiased : bool
        U-centring (needs n >= 4): zero diagonal, row means over n - 2, grand mean over 2(n - 1).
    """
    K = np.array(K, dtype=np.float64)
    n = K.shape[0]
    if K.shape != (n, n):
        raise ParameterError(f"a Gram matrix must be square, got shape {K.shape}")
    if not debiased:
        K -= K.mean(axis=0)
        K -= K.mean(axis=1, keepdims=True)
        return K
    if n < 4:
        raise ParameterError(f"debiased CKA needs at least 4 clips, got {n}")
    np.fill_diagonal(K, 0.0)
    means = K.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    K -= means[:, None]
    K -= means[None, :]
    np.fill_diagonal(K, 0.0)
    return K


def cka_from_grams(K: np.ndarray, L: np.ndarray, *, debiased: bool = False) -> float:
    """CKA of two (uncentred or centred) Gram matrices over the same clips.

    Returns
    -------
    float
        In [0, 1] for plain CKA (debiased CKA can be slightly negative); NaN when one
        representation is constant (a zero centred Gram matrix).
    """
    if np.shape(K) != np.shape(L):
        raise ParameterError(f"Gram matrices must describe the same clips, got shapes {np.shape(K)} and "
                             f"{np.shape(L)}")
    Kc, Lc = center_gram(K, debiased=debiased), center_gram(L, debiased=debiased)
    return cka_from_centred(Kc, Lc, np.vdot(Kc, Kc), np.vdot(Lc, Lc))


def cka_from_centred(Kc: np.ndarray, Lc: np.ndarray, kk: float, ll: float) -> float:
    """CKA of two centred Gram matrices (:func:`center_gram`) given their squared norms ``kk``, ``ll``.

    Lets a Gram matrix compared with many others be centred once; NaN when a norm is 0.
    """
    denom = np.sqrt(kk * ll)
    return float(np.vdot(Kc, Lc) / denom) if denom > 0 else float("nan")


def linear_cka(X: np.ndarray, Y: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same clips.

    Parameters
    ----------
    X : np.ndarray, shape (n_clips, n_units_x)
    Y : np.ndarray, shape (n_clips, n_units_y)
    debiased : bool, keyword-only
        Use the unbiased HSIC estimator.

    Returns
    -------
    float
        NaN when ``X`` or ``Y`` varies by float noise only (or not at all) across the clips;
        :func:`~audioprobe.probes._targets.variation_note` of each says why.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.shape[0] != Y.shape[0]:
        raise ParameterError(f"X and Y must have one row per clip, got {X.shape[0]} and {Y.shape[0]} rows")
    return cka_from_grams(gram_linear(X), gram_linear(Y), debiased=debiased)
