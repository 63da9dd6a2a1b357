"""Column-wise scores of held-out predictions (R^2, Pearson r) and the reasons a score is undefined.

Each column is scored over the rows where target and prediction are both finite; a score is NaN, with the
reason from :func:`score_notes`, where the scored targets (or, for Pearson r, the predictions) vary by float
noise only relative to the descriptor's scale (:func:`~audioprobe.probes._targets.variation_notes`).
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError, check_choice
from ._targets import COMPUTED_NOISE_RTOL, has_note, variation_notes

__all__ = ["score_notes", "r2_score_columns", "pearson_columns"]


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
