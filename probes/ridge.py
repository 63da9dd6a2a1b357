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

from ..errors import ParameterError, check_choice
from ._targets import COMPUTED_NOISE_RTOL, as_targets, has_note, variation_notes
from .scaling import fit_scaling
from .splitters import GroupFolds, fold_labels

__all__ = ["DEFAULT_RELATIVE_ALPHAS", "decompose", "loo_errors", "fit_predict_ridge", "cross_validate_ridge",
           "RidgeCVResult", "RidgeProbe", "r2_score_columns", "pearson_columns", "score_notes",
           "within_domain_predictions"]

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
    """Column means of ``values`` (n, k) per level (``inverse``: level of each row), shape (n_levels, k)."""
    sums = np.zeros((n_levels, values.shape[1]))
    np.add.at(sums, inverse, values)
    return sums / np.bincount(inverse, minlength=n_levels)[:, None]


def _fit_predict_complete(X_train, Y_train, X_test, alphas, scaling, d_train, d_test):
    """Ridge with one unpenalised intercept per level of ``d_train`` (one level: the usual intercept)."""
    levels, inverse, counts = np.unique(d_train, return_inverse=True, return_counts=True)
    at = np.searchsorted(levels, d_test).clip(0, len(levels) - 1)
    seen = levels[at] == d_test
    x_means, y_means = (_level_means(v, inverse, len(levels)) for v in (X_train, Y_train))
    dec = decompose(X_train - x_means[inverse], scaling=scaling)
    grid = _resolve_alphas(alphas, dec.s2)
    Yc = Y_train - y_means[inverse]
    best = np.argmin(loo_errors(dec, Yc, grid, intercept_leverage=1.0 / counts[inverse]), axis=0)
    chosen = grid[best]
    coef = (np.sqrt(dec.s2)[:, None] / (dec.s2[:, None] + chosen[None, :])) * (dec.U.T @ Yc)
    pred = (dec.transform(X_test - x_means[at]) @ dec.V) @ coef + y_means[at]
    pred[~seen] = np.nan
    return pred, chosen


def fit_predict_ridge(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, *, alphas=None,
                      scaling: str = "center", domains_train=None, domains_test=None) -> tuple[np.ndarray, np.ndarray]:
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
                                                              alphas, scaling, d_train[rows], d_test)
    return Y_pred, chosen


def _scored(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both arrays as (n, n_targets) with NaN wherever either is missing, and the mask of scored rows."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true, y_pred = (v[:, None] if v.ndim == 1 else v for v in (y_true, y_pred))
    if y_true.shape != y_pred.shape:
        raise ParameterError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    return np.where(ok, y_true, np.nan), np.where(ok, y_pred, np.nan), ok


def score_notes(y_true: np.ndarray, y_pred: np.ndarray, *, metric: str = "r2", reference=None,
                what: str = "target") -> np.ndarray:
    """Why R^2 or Pearson r of each column is undefined (``None`` where it is defined).

    The rule is :func:`~audioprobe.probes._targets.variation_notes`: the scored targets' variance (rows where
    target and prediction are both finite) must exceed float noise relative to the mean square of
    ``reference``; Pearson r also needs at least 3 rows and predictions that vary beyond float64 rounding
    (:data:`~audioprobe.probes._targets.COMPUTED_NOISE_RTOL` of the same reference's mean square: predictions
    are computed, so a heavily shrunk probe's tiny but genuine variation keeps its r, while a probe fit to
    float noise, whose predictions are float noise too, does not).

    Parameters
    ----------
    y_true, y_pred : np.ndarray, shape (n, n_targets) or (n,)
    metric : {"r2", "pearson_r"}
    reference : np.ndarray, shape (n_ref, n_targets), optional
        The descriptor over all clips of the run, which sets its scale; pass it when scoring a subset (a fold,
        a domain). Default: the scored targets and the predictions together (a probe's predictions carry the
        level of its training clips through the intercept, so they show the descriptor's scale even when the
        targets are a subset; only an R^2 below about ``-1 / FLOAT_NOISE_RTOL`` = -7e13 can be affected).
    what : str
        The subject of the note.

    Returns
    -------
    np.ndarray of object, shape (n_targets,)
    """
    check_choice("metric", metric, ("r2", "pearson_r"))
    yt, yp, _ = _scored(y_true, y_pred)
    if reference is None:
        reference = np.vstack([yt, yp])
    notes = variation_notes(yt, reference, what=what, min_count=2 if metric == "r2" else 3)
    if metric == "pearson_r":
        pred_notes = variation_notes(yp, reference, what="prediction", min_count=3, rtol=COMPUTED_NOISE_RTOL)
        notes = np.array([t if t is not None else p for t, p in zip(notes, pred_notes)], dtype=object)
    return notes


def r2_score_columns(y_true: np.ndarray, y_pred: np.ndarray, *, reference=None) -> np.ndarray:
    """Coefficient of determination of every column, ignoring NaN rows per column.

    ``1 - sum((y - yhat)^2) / sum((y - mean(y))^2)``, as scikit-learn's ``r2_score``; NaN where
    :func:`score_notes` gives a reason: fewer than 2 finite rows, or a target variance that is zero or float
    noise relative to the scale of ``reference`` (default: targets and predictions). Without that rule a
    target of 1e-10 .. 2e-9 (a modulation band that is filter residue on one domain) scored against
    predictions of ~0.03 gives -3.8e15.

    Parameters
    ----------
    y_true, y_pred : np.ndarray, shape (n, n_targets) or (n,)
    reference : np.ndarray, shape (n_ref, n_targets), optional
        See :func:`score_notes`.

    Returns
    -------
    np.ndarray, shape (n_targets,)
    """
    yt, yp, ok = _scored(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(ok, yt, 0.0).sum(axis=0) / ok.sum(axis=0)
        ss_res = np.where(ok, (yt - yp) ** 2, 0.0).sum(axis=0)
        ss_tot = np.where(ok, (yt - mean) ** 2, 0.0).sum(axis=0)
        r2 = 1.0 - ss_res / ss_tot
    r2[has_note(score_notes(yt, yp, metric="r2", reference=reference))] = np.nan
    return r2


def pearson_columns(y_true: np.ndarray, y_pred: np.ndarray, *, reference=None) -> np.ndarray:
    """Pearson correlation of every column, ignoring NaN rows per column.

    NaN where :func:`score_notes` (``metric="pearson_r"``) gives a reason: fewer than 3 rows, or targets or
    predictions whose variance is zero or float noise relative to the scale of ``reference``.

    Parameters
    ----------
    y_true, y_pred : np.ndarray, shape (n, n_targets) or (n,)
    reference : np.ndarray, shape (n_ref, n_targets), optional

    Returns
    -------
    np.ndarray, shape (n_targets,)
    """
    yt, yp, ok = _scored(y_true, y_pred)
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ok, yt - np.where(ok, yt, 0).sum(axis=0) / n, 0.0)
        b = np.where(ok, yp - np.where(ok, yp, 0).sum(axis=0) / n, 0.0)
        r = (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    r[has_note(score_notes(yt, yp, metric="pearson_r", reference=reference))] = np.nan
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
    notes : dict of str -> np.ndarray of object
        Why a score is NaN (``None`` where it is defined), per metric name (``r2``, ``pearson_r``: shape
        (n_folds, n_targets); ``r2_pooled``, ``pearson_r_pooled``, ``r2_within``, ``pearson_r_within``:
        shape (n_targets,)).
    y_within, y_pred_within : np.ndarray, shape (n_clips, n_targets), or None
        With ``domains``: held-out deviations of the targets from their training-fold domain means, and their
        out-of-fold predictions (see :func:`within_domain_predictions`).
    r2_within, pearson_r_within : np.ndarray, shape (n_targets,), or None
        With ``domains``: R^2 and Pearson r over all held-out deviations together.
    n_within : np.ndarray of int, shape (n_targets,), or None
        Clips scored within domains.
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
    notes: dict[str, np.ndarray]
    y_within: np.ndarray | None = None
    y_pred_within: np.ndarray | None = None
    r2_within: np.ndarray | None = None
    pearson_r_within: np.ndarray | None = None
    n_within: np.ndarray | None = None


def _check_inputs(X, Y, folds, domains=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    folds = np.asarray(folds)
    sizes = [len(X), len(Y), len(folds)] + ([] if domains is None else [len(domains)])
    if len(set(sizes)) != 1:
        raise ParameterError(f"X, Y, folds{'' if domains is None else ' and domains'} must have one row per clip, "
                             f"got {', '.join(map(str, sizes))}")
    if not np.all(np.isfinite(X)):
        raise ParameterError("X has non-finite values: drop the clips whose activations failed first")
    return X, Y, folds


def _domain_means(values: np.ndarray, domains: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Column means of ``values[rows]`` per domain, over the finite entries (NaN where a domain has none)."""
    means = {}
    for d in np.unique(domains[rows]):
        sub = values[rows & (domains == d)]
        count = np.isfinite(sub).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[d] = np.where(count > 0, np.where(np.isfinite(sub), sub, 0.0).sum(axis=0) / count, np.nan)
    return means


def within_domain_predictions(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, domains, *, alphas=None,
                              scaling: str = "center") -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ridge predictions of the targets' within-domain variation.

    For every fold, ridge with one unpenalised intercept per domain (:func:`fit_predict_ridge` with
    domains) is fit on the training rows: activations and each target are centred on their domain's
    training mean (over the target's finite training rows), alpha is chosen by the exact leave-one-out
    error of that model, and the held-out rows are predicted. Scored are the held-out deviations from the
    training domain means, ``y - m_d``, against the predicted deviations, ``yhat - m_d``. Domain effects
    are thus removed with training-fold statistics only: a layer that merely tells the domains apart
    predicts nothing here, and a descriptor that differs only between domains has no within-domain
    variation to predict (its deviations are zero or float noise; its within-domain R^2 is NaN with that
    reason, see :func:`~audioprobe.probes._targets.variation_notes`).

    Parameters
    ----------
    X : np.ndarray, shape (n_clips, n_units)
        Finite activations.
    Y : np.ndarray, shape (n_clips, n_targets)
        NaN = missing.
    folds : np.ndarray of int, shape (n_clips,)
    domains : array-like, shape (n_clips,)
        Domain of every clip (the manifest's ``domain``).
    alphas, scaling
        As in :func:`fit_predict_ridge`.

    Returns
    -------
    y_within : np.ndarray, shape (n_clips, n_targets)
        Targets minus their training-fold domain mean (NaN where the target is missing, or the clip's domain
        has no training clip with the target in that fold).
    y_pred_within : np.ndarray, shape (n_clips, n_targets)
        Their out-of-fold predictions (NaN where ``y_within`` is).
    """
    domains = np.asarray(domains).astype(str)
    X, Y, folds = _check_inputs(X, Y, folds, domains)
    y_within = np.full(Y.shape, np.nan)
    y_pred = np.full(Y.shape, np.nan)
    nan = np.full(Y.shape[1], np.nan)
    for f in range(int(folds.max()) + 1):
        train, test = folds != f, folds == f
        pred, _ = fit_predict_ridge(X[train], Y[train], X[test], alphas=alphas, scaling=scaling,
                                    domains_train=domains[train], domains_test=domains[test])
        means = _domain_means(Y, domains, train)
        offset = np.array([means.get(d, nan) for d in domains[test]]).reshape(pred.shape)
        y_within[test] = Y[test] - offset
        y_pred[test] = np.where(np.isfinite(y_within[test]), pred - offset, np.nan)
    return y_within, y_pred


def cross_validate_ridge(X: np.ndarray, Y: np.ndarray, folds: np.ndarray, *, alphas=None,
                         scaling: str = "center", domains=None, reference=None) -> RidgeCVResult:
    """Out-of-fold ridge scores of every target for given fold labels.

    Scores of a fold (and of the within-domain deviations) are judged against each target's scale over all
    clips (:func:`score_notes` with ``reference``, default ``Y``): a fold or domain where the target varies by
    float noise only gets NaN and a note, not -1e16.

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
    domains : array-like, shape (n_clips,), optional
        Domain of every clip: adds the within-domain scores (:func:`within_domain_predictions`).
    reference : np.ndarray, shape (n_ref, n_targets), optional
        The targets over all clips of the run when ``Y`` is a subset of them (e.g. one domain's clips);
        default ``Y``.

    Returns
    -------
    RidgeCVResult
    """
    X, Y, folds = _check_inputs(X, Y, folds, domains)
    Y_all = Y if reference is None else np.asarray(reference, dtype=np.float64).reshape(-1, Y.shape[1])
    n_folds = int(folds.max()) + 1
    shape = (n_folds, Y.shape[1])
    y_pred = np.full(Y.shape, np.nan)
    alpha, r2, r, n_test = (np.full(shape, np.nan) for _ in range(4))
    notes = {"r2": np.full(shape, None, dtype=object), "pearson_r": np.full(shape, None, dtype=object)}
    for f in range(n_folds):
        test = folds == f
        pred, alpha[f] = fit_predict_ridge(X[~test], Y[~test], X[test], alphas=alphas, scaling=scaling)
        pred[~np.isfinite(Y[test])] = np.nan
        y_pred[test] = pred
        r2[f] = r2_score_columns(Y[test], pred, reference=Y_all)
        r[f] = pearson_columns(Y[test], pred, reference=Y_all)
        notes["r2"][f] = score_notes(Y[test], pred, metric="r2", reference=Y_all)
        notes["pearson_r"][f] = score_notes(Y[test], pred, metric="pearson_r", reference=Y_all)
        n_test[f] = np.isfinite(pred).sum(axis=0)
    finite = np.isfinite(Y)
    res = RidgeCVResult(y_pred=y_pred, folds=folds, alpha=alpha, r2=r2, pearson_r=r, n_test=n_test.astype(int),
                        r2_pooled=r2_score_columns(Y, y_pred, reference=Y_all),
                        pearson_r_pooled=pearson_columns(Y, y_pred, reference=Y_all),
                        n_clips=finite.sum(axis=0), n_dropped=(~finite).sum(axis=0), notes=notes)
    notes["r2_pooled"] = score_notes(Y, y_pred, metric="r2", reference=Y_all)
    notes["pearson_r_pooled"] = score_notes(Y, y_pred, metric="pearson_r", reference=Y_all)
    if domains is not None:
        res.y_within, res.y_pred_within = within_domain_predictions(X, Y, folds, domains, alphas=alphas,
                                                                    scaling=scaling)
        res.r2_within = r2_score_columns(res.y_within, res.y_pred_within, reference=Y_all)
        res.pearson_r_within = pearson_columns(res.y_within, res.y_pred_within, reference=Y_all)
        res.n_within = np.isfinite(res.y_pred_within).sum(axis=0)
        for metric in ("r2", "pearson_r"):
            notes[f"{metric}_within"] = score_notes(res.y_within, res.y_pred_within, metric=metric, reference=Y_all,
                                                    what="within-domain deviation")
    return res


def _note(value) -> object:
    return pd.NA if value is None else value


class RidgeProbe:
    """Grouped K-fold ridge probe of every descriptor from one layer's activations.

    With ``domains``, a within-domain score sits beside the pooled one: the pooled R^2 mixes between-domain and
    within-domain variance (a layer that only separates speech, music and environmental sounds scores well on
    any descriptor that differs by domain), while ``r2_within`` scores the descriptor's variation around its
    domain mean, with domain means of activations and targets removed inside the training folds
    (:func:`within_domain_predictions`).

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
    domains_ : np.ndarray of str, shape (n_clips,), or None

    Examples
    --------
    >>> probe = RidgeProbe(cv=5).fit(activations, descriptors, groups=clips["group"],
    ...                              domains=clips["domain"])                              # doctest: +SKIP
    >>> probe.to_frame().query("metric in ['r2_pooled', 'r2_within']")                     # doctest: +SKIP
    """

    def __init__(self, cv: int = 5, *, alphas=None, scaling: str = "center"):
        self.cv = cv
        self.alphas = alphas
        self.scaling = scaling

    def fit(self, X, Y, groups, domains=None) -> RidgeProbe:
        """Cross-validate.

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
        Y : DataFrame or array-like, shape (n_clips, n_targets)
            Targets (NaN = missing); a DataFrame's columns name the features.
        groups : array-like, shape (n_clips,)
        domains : array-like, shape (n_clips,), optional
            Domain of every clip: adds the within-domain scores and enables :meth:`domain_frame`.
        """
        Yv, self.feature_names_ = as_targets(Y)
        self.folds_ = fold_labels(GroupFolds(self.cv), groups)
        self.domains_ = None if domains is None else np.asarray(domains).astype(str)
        self._Y = Yv
        self.result_ = cross_validate_ridge(np.asarray(X, dtype=np.float64), Yv, self.folds_, alphas=self.alphas,
                                            scaling=self.scaling, domains=self.domains_)
        return self

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``feature, metric, fold, value, n_clips, note`` (metrics of docs/run-folder.md).

        Per fold: ``r2``, ``pearson_r``, ``alpha``; over all folds (fold <NA>): ``r2_pooled``,
        ``pearson_r_pooled``, ``n_dropped`` and, when fit with ``domains``, ``r2_within`` and
        ``pearson_r_within``. ``note`` says why a value is NaN (<NA> otherwise).
        """
        res = self.result_
        rows = []
        for j, name in enumerate(self.feature_names_):
            for f in range(res.r2.shape[0]):
                for metric, values in (("r2", res.r2), ("pearson_r", res.pearson_r), ("alpha", res.alpha)):
                    note = res.notes[metric][f, j] if metric in res.notes else None
                    rows.append((name, metric, f, values[f, j], res.n_test[f, j], _note(note)))
            for metric in ("r2_pooled", "pearson_r_pooled"):
                rows.append((name, metric, pd.NA, getattr(res, metric)[j], res.n_clips[j],
                             _note(res.notes[metric][j])))
            rows.append((name, "n_dropped", pd.NA, float(res.n_dropped[j]), res.n_clips[j], pd.NA))
            if res.r2_within is not None:
                for metric in ("r2_within", "pearson_r_within"):
                    rows.append((name, metric, pd.NA, getattr(res, metric)[j], res.n_within[j],
                                 _note(res.notes[metric][j])))
        table = pd.DataFrame(rows, columns=["feature", "metric", "fold", "value", "n_clips", "note"])
        table["fold"] = table["fold"].astype("Int64")
        table["note"] = table["note"].astype("string")
        return table

    def domain_frame(self) -> pd.DataFrame:
        """Pooled out-of-fold scores per evaluation domain (needs ``domains`` in :meth:`fit`).

        The out-of-fold predictions of each domain's clips scored together (``r2_pooled``, ``pearson_r_pooled``),
        judged against each descriptor's scale over all clips, so a domain where a descriptor varies by float
        noise only gets NaN and a note.

        Returns
        -------
        pd.DataFrame
            ``feature, metric, value, n_clips, eval_domain, note``.
        """
        if self.domains_ is None:
            raise ParameterError("domain_frame needs the clips' domains: call fit(X, Y, groups, domains=...)")
        res, Y = self.result_, self._Y
        rows = []
        for domain in pd.unique(self.domains_):
            sel = self.domains_ == domain
            n = np.isfinite(res.y_pred[sel]).sum(axis=0)
            for metric, score in (("r2_pooled", r2_score_columns), ("pearson_r_pooled", pearson_columns)):
                values = score(Y[sel], res.y_pred[sel], reference=Y)
                notes = score_notes(Y[sel], res.y_pred[sel], metric=metric.removesuffix("_pooled"), reference=Y)
                rows += [(name, metric, values[j], n[j], domain, _note(notes[j]))
                         for j, name in enumerate(self.feature_names_)]
        table = pd.DataFrame(rows, columns=["feature", "metric", "value", "n_clips", "eval_domain", "note"])
        table["note"] = table["note"].astype("string")
        return table
