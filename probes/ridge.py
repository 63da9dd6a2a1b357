"""Cross-validated ridge probes: activations (n_clips, n_units) -> every descriptor at once.

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

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ._targets import as_targets
from .scaling import fit_scaling
from .splitters import GroupFolds, fold_labels

__all__ = ["DEFAULT_RELATIVE_ALPHAS", "decompose", "loo_errors", "fit_predict_ridge", "cross_validate_ridge",
           "RidgeCVResult", "RidgeProbe", "r2_score_columns", "pearson_columns"]

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


def loo_errors(dec: Decomposition, Yc: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Mean squared leave-one-out error of every target at every alpha.

    Parameters
    ----------
    dec : Decomposition
        Of the training rows.
    Yc : np.ndarray, shape (n_train, n_targets)
        Targets centred on their training mean.
    alphas : np.ndarray, shape (n_alphas,)

    Returns
    -------
    np.ndarray, shape (n_alphas, n_targets)
    """
    n = Yc.shape[0]
    UTy = dec.U.T @ Yc
    U2 = dec.U**2
    errors = np.empty((len(alphas), Yc.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        for a, alpha in enumerate(alphas):
            shrink = dec.s2 / (dec.s2 + alpha)
            resid = Yc - dec.U @ (shrink[:, None] * UTy)
            leverage = U2 @ shrink + 1.0 / n
            errors[a] = np.mean((resid / (1.0 - leverage)[:, None]) ** 2, axis=0)
    errors[~np.isfinite(errors)] = np.inf
    return errors


def _fit_predict_complete(X_train, Y_train, X_test, alphas, scaling):
    dec = decompose(X_train, scaling=scaling)
    grid = _resolve_alphas(alphas, dec.s2)
    y_mean = Y_train.mean(axis=0)
    Yc = Y_train - y_mean
    best = np.argmin(loo_errors(dec, Yc, grid), axis=0)
    chosen = grid[best]
    coef = (np.sqrt(dec.s2)[:, None] / (dec.s2[:, None] + chosen[None, :])) * (dec.U.T @ Yc)
    return (dec.transform(X_test) @ dec.V) @ coef + y_mean, chosen


def fit_predict_ridge(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, *, alphas=None,
                      scaling: str = "center") -> tuple[np.ndarray, np.ndarray]:
    """Fit ridge on training rows (alpha per target by leave-one-out) and predict test rows.

    Targets missing (NaN) on some training rows are fit on their finite rows only; targets are
    grouped by their pattern of missing rows so that each pattern costs one decomposition.

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

    Returns
    -------
    Y_pred : np.ndarray, shape (n_test, n_targets)
        NaN for targets with fewer than 3 finite training rows.
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
    Y_pred = np.full((X_test.shape[0], Y_train.shape[1]), np.nan)
    chosen = np.full(Y_train.shape[1], np.nan)
    finite = np.isfinite(Y_train)
    patterns, which = np.unique(finite.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        cols = np.flatnonzero(which.ravel() == k)
        if rows.sum() < 3:
            continue
        Y_pred[:, cols], chosen[cols] = _fit_predict_complete(X_train[rows], Y_train[np.ix_(rows, cols)], X_test,
                                                              alphas, scaling)
    return Y_pred, chosen


def r2_score_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination of every column, ignoring NaN rows per column.

    ``1 - sum((y - yhat)^2) / sum((y - mean(y))^2)``, as scikit-learn's ``r2_score``; NaN for a
    column with fewer than 2 finite rows or no variance.
    """
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    n = ok.sum(axis=0)
    yt = np.where(ok, y_true, 0.0)
    yp = np.where(ok, y_pred, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = yt.sum(axis=0) / n
        ss_res = (((yt - yp) ** 2) * ok).sum(axis=0)
        ss_tot = (((yt - mean) ** 2) * ok).sum(axis=0)
        r2 = 1.0 - ss_res / ss_tot
    r2[(n < 2) | ~(ss_tot > 0)] = np.nan
    return r2


def pearson_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column, ignoring NaN rows per column (NaN when undefined)."""
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ok, y_true - np.where(ok, y_true, 0).sum(axis=0) / n, 0.0)
        b = np.where(ok, y_pred - np.where(ok, y_pred, 0).sum(axis=0) / n, 0.0)
        r = (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    r[n < 3] = np.nan
    return r


@dataclass
class RidgeCVResult:
    """Outcome of :func:`cross_validate_ridge` (``n_folds`` folds, ``n_targets`` targets).

    Attributes
    ----------
    y_pred : np.ndarray, shape (n_clips, n_targets)
        Out-of-fold predictions (NaN where the target is missing).
    folds : np.ndarray of int, shape (n_clips,)
    alpha, r2, pearson_r, n_test : np.ndarray, shape (n_folds, n_targets)
        Per fold: chosen alpha, held-out R^2, held-out Pearson r, held-out clips with the target.
    r2_pooled, pearson_r_pooled : np.ndarray, shape (n_targets,)
        Over all held-out predictions together.
    n_clips, n_dropped : np.ndarray of int, shape (n_targets,)
        Clips used and clips dropped because the target is missing.
    """

    y_pred: np.ndarray
    folds: np.ndarray
    alpha: np.ndarray
    r2: np.ndarray
    pearson_r: np.ndarray
    n_test: np.ndarray
    r2_pooled: np.ndarray
    pearson_r_pooled: np.ndarray
    n_clips: np.ndarray
    n_dropped: np.ndarray


def cross_validate_ridge(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, *, alphas=None,
                         scaling: str = "center") -> RidgeCVResult:
    """Out-of-fold ridge scores of every target for given fold labels.

    Parameters
    ----------
    X : np.ndarray, shape (n_clips, n_units)
        Finite activations.
    Y : np.ndarray, shape (n_clips, n_targets)
        Targets; NaN = missing (dropped for that target only).
    folds : np.ndarray of int, shape (n_clips,)
        Test fold of every clip, 0..n_folds-1 (see :func:`~audioprobe.probes.splitters.fold_labels`).
    alphas, scaling
        As in :func:`fit_predict_ridge`; alpha selection and scaling see the training rows only.

    Returns
    -------
    RidgeCVResult
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    folds = np.asarray(folds)
    if not (len(X) == len(Y) == len(folds)):
        raise ParameterError(f"X, Y and folds must have one row per clip, got {len(X)}, {len(Y)}, {len(folds)}")
    if not np.all(np.isfinite(X)):
        raise ParameterError("X has non-finite values: drop the clips whose activations failed first")
    n_folds = int(folds.max()) + 1
    shape = (n_folds, Y.shape[1])
    y_pred = np.full(Y.shape, np.nan)
    alpha, r2, r, n_test = (np.full(shape, np.nan) for _ in range(4))
    for f in range(n_folds):
        test = folds == f
        pred, alpha[f] = fit_predict_ridge(X[~test], Y[~test], X[test], alphas=alphas, scaling=scaling)
        pred[~np.isfinite(Y[test])] = np.nan
        y_pred[test] = pred
        r2[f] = r2_score_columns(Y[test], pred)
        r[f] = pearson_columns(Y[test], pred)
        n_test[f] = np.isfinite(pred).sum(axis=0)
    finite = np.isfinite(Y)
    return RidgeCVResult(y_pred=y_pred, folds=folds, alpha=alpha, r2=r2, pearson_r=r, n_test=n_test.astype(int),
                         r2_pooled=r2_score_columns(Y, y_pred), pearson_r_pooled=pearson_columns(Y, y_pred),
                         n_clips=finite.sum(axis=0), n_dropped=(~finite).sum(axis=0))


class RidgeProbe:
    """Grouped K-fold ridge probe of every descriptor from one layer's activations.

    Parameters
    ----------
    cv : int, default 5
        Number of grouped folds (:class:`~audioprobe.probes.splitters.GroupFolds`).
    alphas : array-like of float, optional
        Absolute alpha grid; default a relative log grid (see :func:`fit_predict_ridge`).
    scaling : {"center", "standard"}, keyword-only, default "center"
        Activation scaling fit on the training folds.

    Attributes
    ----------
    result_ : RidgeCVResult
    feature_names_ : list of str
    folds_ : np.ndarray of int, shape (n_clips,)

    Examples
    --------
    >>> probe = RidgeProbe(cv=5).fit(activations, descriptors, groups=clips["group"])  # doctest: +SKIP
    >>> probe.to_frame().query("metric == 'r2_pooled'")                                 # doctest: +SKIP
    """

    def __init__(self, cv: int = 5, *, alphas=None, scaling: str = "center"):
        self.cv = cv
        self.alphas = alphas
        self.scaling = scaling

    def fit(self, X, Y, groups) -> RidgeProbe:
        """Cross-validate.

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
        Y : DataFrame or array-like, shape (n_clips, n_targets)
            Targets (NaN = missing); a DataFrame's columns name the features.
        groups : array-like, shape (n_clips,)
        """
        Yv, self.feature_names_ = as_targets(Y)
        self.folds_ = fold_labels(GroupFolds(self.cv), groups)
        self.result_ = cross_validate_ridge(np.asarray(X, dtype=np.float64), Yv, self.folds_, alphas=self.alphas,
                                            scaling=self.scaling)
        return self

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``feature, metric, fold, value, n_clips`` (metrics of docs/run-folder.md)."""
        res = self.result_
        rows = []
        for j, name in enumerate(self.feature_names_):
            for f in range(res.r2.shape[0]):
                for metric, values in (("r2", res.r2), ("pearson_r", res.pearson_r), ("alpha", res.alpha)):
                    rows.append((name, metric, f, values[f, j], res.n_test[f, j]))
            rows.append((name, "r2_pooled", pd.NA, res.r2_pooled[j], res.n_clips[j]))
            rows.append((name, "pearson_r_pooled", pd.NA, res.pearson_r_pooled[j], res.n_clips[j]))
            rows.append((name, "n_dropped", pd.NA, float(res.n_dropped[j]), res.n_clips[j]))
        table = pd.DataFrame(rows, columns=["feature", "metric", "fold", "value", "n_clips"])
        table["fold"] = table["fold"].astype("Int64")
        return table
