"""The ridge solver: one decomposition per fold, alpha per target by exact leave-one-out, held-out predictions.

The work is one decomposition of the centred training activations per fold (and per pattern
of missing targets), shared by every target and every alpha of the grid:

* ``X_c = U S V^T`` (thin SVD when n_units < n_train, else the eigendecomposition of the
  Gram matrix ``X_c X_c^T``; components with a negligible singular value are dropped);
* the exact leave-one-out error of every target at every alpha follows from the hat matrix
  ``H = U diag(s^2 / (s^2 + alpha)) U^T + 11^T / n`` (the intercept is not penalised, as in
  scikit-learn's ``RidgeCV``): ``e_i = (y_i - yhat_i) / (1 - H_ii)``;
* each target takes the alpha of smallest mean squared leave-one-out error (the first on ties,
  as ``RidgeCV(alpha_per_target=True)``), chosen on the training rows only;
* held-out predictions use ``beta = V diag(s / (s^2 + alpha)) U^T y_c``.

Predictions at the chosen alpha equal scikit-learn's ``Ridge(alpha)`` fit on the same training
rows (with ``fit_intercept=True``), and the chosen alphas equal ``RidgeCV``'s; the tests check both.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..errors import ParameterError
from .scaling import fit_scaling
from .shared import SharedCache, digest

__all__ = ["DEFAULT_RELATIVE_ALPHAS", "decompose", "loo_errors", "fit_predict_ridge"]

#: The default alpha grid, relative to the mean non-zero eigenvalue of ``X_c^T X_c`` of the training rows,
#: so that one grid suits layers whose activations differ in magnitude by orders of magnitude.
DEFAULT_RELATIVE_ALPHAS = np.logspace(-4, 5, 19)


@dataclass
class Decomposition:
    """Thin decomposition of centred (and scaled) training rows: ``X_c = U diag(s) V^T``.

    Attributes
    ----------
    U : np.ndarray, shape (n_train, k)
    s2 : np.ndarray, shape (k,)
        Squared singular values (> 0).
    V : np.ndarray, shape (n_units, k)
    mean, scale : np.ndarray, shape (n_units,)
        The training-row scaling applied before the decomposition.
    """

    U: np.ndarray
    s2: np.ndarray
    V: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale new rows like the training rows; shape (n, n_units)."""
        return (X - self.mean) / self.scale

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held."""
        return sum(a.nbytes for a in (self.U, self.s2, self.V, self.mean, self.scale))


def decompose(X_train: np.ndarray, *, scaling: str = "center") -> Decomposition:
    """Scale the training rows (statistics from these rows only) and decompose them.

    Parameters
    ----------
    X_train : np.ndarray, shape (n_train, n_units)
        Finite values.
    scaling : {"center", "standard"}

    Returns
    -------
    Decomposition
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    mean, scale = fit_scaling(X_train, scaling)
    Xc = (X_train - mean) / scale
    n, p = Xc.shape
    if p >= n:
        s2, U = np.linalg.eigh(Xc @ Xc.T)
        s2, U = s2[::-1], U[:, ::-1]
    else:
        U, s, _ = np.linalg.svd(Xc, full_matrices=False)
        s2 = s**2
    tol = (s2[0] if len(s2) else 0.0) * max(n, p) * np.finfo(float).eps
    keep = s2 > tol
    U, s2 = U[:, keep], s2[keep]
    V = (Xc.T @ U) / np.sqrt(s2)
    return Decomposition(U=U, s2=s2, V=V, mean=mean, scale=scale)


def _resolve_alphas(alphas, s2: np.ndarray) -> np.ndarray:
    if alphas is None:
        return DEFAULT_RELATIVE_ALPHAS * (s2.mean() if len(s2) else 1.0)
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or not len(alphas) or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ParameterError(f"alphas must be a non-empty 1-D sequence of positive numbers, got {alphas!r}")
    return alphas


def loo_errors(dec: Decomposition, Yc: np.ndarray, alphas: np.ndarray, *,
               intercept_leverage: np.ndarray | None = None) -> np.ndarray:
    """Mean squared leave-one-out error of every target at every alpha.

    Parameters
    ----------
    dec : Decomposition
        Of the training rows (centred on their intercept's rows: the global mean, or each domain's mean).
    Yc : np.ndarray, shape (n_train, n_targets)
        Targets centred the same way.
    alphas : np.ndarray, shape (n_alphas,)
    intercept_leverage : np.ndarray, shape (n_train,), optional
        Each row's leverage on its unpenalised intercept: ``1 / n_train`` for one intercept (the default),
        ``1 / n_domain`` for one intercept per domain. Rows alone in their domain (leverage 1) are fit
        exactly by their intercept, say nothing about alpha and are left out of the mean.

    Returns
    -------
    np.ndarray, shape (n_alphas, n_targets)
    """
    n = Yc.shape[0]
    intercept_leverage = np.full(n, 1.0 / n) if intercept_leverage is None else intercept_leverage
    informative = intercept_leverage < 1.0
    UTy = dec.U.T @ Yc
    U2 = dec.U**2
    errors = np.zeros((len(alphas), Yc.shape[1]))
    if not informative.any():
        return errors
    with np.errstate(divide="ignore", invalid="ignore"):
        for a, alpha in enumerate(alphas):
            shrink = dec.s2 / (dec.s2 + alpha)
            resid = Yc - dec.U @ (shrink[:, None] * UTy)
            leverage = U2 @ shrink + intercept_leverage
            errors[a] = np.mean((resid / (1.0 - leverage)[:, None])[informative] ** 2, axis=0)
    errors[~np.isfinite(errors)] = np.inf
    return errors


def _level_means(values: np.ndarray, inverse: np.ndarray, n_levels: int) -> np.ndarray:
    """Column means of ``values`` (n, k) per level (``inverse``: level of each row), shape (n_levels, k).

    The sums are ``np.add.at``'s (rows added in row order from 0), at a tenth of its cost.
    """
    sums = _level_sums(np.ascontiguousarray(values, dtype=np.float64), np.asarray(inverse, dtype=np.int64), n_levels)
    return sums / np.bincount(inverse, minlength=n_levels)[:, None]


@numba.njit(nogil=True, cache=True)
def _level_sums(values, inverse, n_levels):
    """Sum the rows of ``values`` (n, k) per level in row order, shape (n_levels, k)."""
    sums = np.zeros((n_levels, values.shape[1]))
    for i in range(values.shape[0]):
        row = sums[inverse[i]]
        for j in range(values.shape[1]):
            row[j] += values[i, j]
    return sums


def _fit_predict_complete(X_train, Y_train, X_test, alphas, scaling, d_train, d_test, cache):
    """Ridge with one unpenalised intercept per level of ``d_train`` (one level: the usual intercept)."""
    levels, inverse, counts = np.unique(d_train, return_inverse=True, return_counts=True)
    at = np.searchsorted(levels, d_test).clip(0, len(levels) - 1)
    seen = levels[at] == d_test
    x_means, y_means = (_level_means(v, inverse, len(levels)) for v in (X_train, Y_train))
    Xc = X_train - x_means[inverse]
    dec = (decompose(Xc, scaling=scaling) if cache is None
           else cache.get(("ridge-decomposition", scaling, digest(Xc)), lambda: decompose(Xc, scaling=scaling)))
    grid = _resolve_alphas(alphas, dec.s2)
    Yc = Y_train - y_means[inverse]
    best = np.argmin(loo_errors(dec, Yc, grid, intercept_leverage=1.0 / counts[inverse]), axis=0)
    chosen = grid[best]
    coef = (np.sqrt(dec.s2)[:, None] / (dec.s2[:, None] + chosen[None, :])) * (dec.U.T @ Yc)
    pred = (dec.transform(X_test - x_means[at]) @ dec.V) @ coef + y_means[at]
    pred[~seen] = np.nan
    return pred, chosen


def fit_predict_ridge(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, *, alphas=None,
                      scaling: str = "center", domains_train=None, domains_test=None,
                      cache: SharedCache | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit ridge on training rows (alpha per target by leave-one-out) and predict test rows.

    Targets missing (NaN) on some training rows are fit on their finite rows only; targets are
    grouped by their pattern of missing rows so that each pattern costs one decomposition.

    With domains, the model has one unpenalised intercept per domain (domain fixed effects): activations and
    targets are centred on each domain's training mean before the fit (equivalent by the Frisch-Waugh-Lovell
    theorem), the leave-one-out leverage of a row's intercept is ``1 / n_domain`` (so alpha selection also
    refits the domain means without the left-out row), and a test row is predicted as its domain's training
    mean plus ``(x - domain mean of x) beta``: the slope sees within-domain variation only.

    Parameters
    ----------
    X_train : np.ndarray, shape (n_train, n_units)
    Y_train : np.ndarray, shape (n_train, n_targets)
        NaN = missing.
    X_test : np.ndarray, shape (n_test, n_units)
    alphas : array-like of float, optional
        The grid; default: :data:`DEFAULT_RELATIVE_ALPHAS` times the mean non-zero eigenvalue of
        the scaled training Gram matrix.
    scaling : {"center", "standard"}
        Column scaling fit on the training rows.
    domains_train, domains_test : array-like of str, shape (n_train,) and (n_test,), optional
        Domain of every row (both or neither).
    cache : SharedCache, optional
        Keeps the decomposition of the (centred) training rows, keyed by their content and the scaling, for
        other calls on the same training rows: the descriptor-side fits of the variance partition are the same
        for every layer. The results are the same with or without it.

    Returns
    -------
    Y_pred : np.ndarray, shape (n_test, n_targets)
        NaN for targets with fewer than 3 finite training rows, and for test rows of a domain without
        training rows with the target.
    alpha : np.ndarray, shape (n_targets,)
        The chosen alpha of every target (NaN where not fit).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    Y_train = np.asarray(Y_train, dtype=np.float64)
    if Y_train.ndim == 1:
        Y_train = Y_train[:, None]
    if X_train.shape[0] != Y_train.shape[0]:
        raise ParameterError(f"X_train has {X_train.shape[0]} rows but Y_train has {Y_train.shape[0]}")
    if (domains_train is None) != (domains_test is None):
        raise ParameterError("fit_predict_ridge needs both domains_train and domains_test, or neither")
    d_train = np.zeros(len(X_train), dtype=str) if domains_train is None else np.asarray(domains_train).astype(str)
    d_test = np.zeros(len(X_test), dtype=str) if domains_test is None else np.asarray(domains_test).astype(str)
    if len(d_train) != len(X_train) or len(d_test) != len(X_test):
        raise ParameterError(f"domains_train / domains_test need one label per row of X_train / X_test, got "
                             f"{len(d_train)} for {len(X_train)} and {len(d_test)} for {len(X_test)}")
    Y_pred = np.full((X_test.shape[0], Y_train.shape[1]), np.nan)
    chosen = np.full(Y_train.shape[1], np.nan)
    finite = np.isfinite(Y_train)
    patterns, which = np.unique(finite.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        cols = np.flatnonzero(which.ravel() == k)
        if rows.sum() < 3:
            continue
        Y_pred[:, cols], chosen[cols] = _fit_predict_complete(X_train[rows], Y_train[np.ix_(rows, cols)], X_test,
                                                              alphas, scaling, d_train[rows], d_test, cache)
    return Y_pred, chosen
