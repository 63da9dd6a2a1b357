"""Cross-validated ridge probes: activations (n_clips, n_units) -> every descriptor at once.

:func:`cross_validate_ridge` fits :func:`~audioprobe.probes.ridge_solver.fit_predict_ridge` (one decomposition of
the training rows per fold, shared by every target and alpha; its docstring gives the method) on each fold and
scores the held-out predictions (:mod:`audioprobe.probes.scores`); with domains it adds the within-domain scores
(:func:`within_domain_predictions`). :class:`RidgeProbe` is the grouped K-fold estimator over a layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ._targets import as_targets
from .ridge_solver import fit_predict_ridge
from .scores import pearson_columns, r2_score_columns, score_notes
from .splitters import GroupFolds, fold_labels

__all__ = ["cross_validate_ridge", "RidgeCVResult", "RidgeProbe", "within_domain_predictions"]


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

    For every fold, ridge with one unpenalised intercept per domain
    (:func:`~audioprobe.probes.ridge_solver.fit_predict_ridge` with domains) is fit on the training rows:
    activations and each target are centred on their domain's training mean (over the target's finite
    training rows), alpha is chosen by the exact leave-one-out error of that model, and the held-out rows
    are predicted. Scored are the held-out deviations from the
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
        As in :func:`~audioprobe.probes.ridge_solver.fit_predict_ridge`.

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
    clips (:func:`~audioprobe.probes.scores.score_notes` with ``reference``, default ``Y``): a fold or domain
    where the target varies by float noise only gets NaN and a note, not -1e16.

    Parameters
    ----------
    X : np.ndarray, shape (n_clips, n_units)
        Finite activations.
    Y : np.ndarray, shape (n_clips, n_targets)
        Targets; NaN = missing (dropped for that target only).
    folds : np.ndarray of int, shape (n_clips,)
        Test fold of every clip, 0..n_folds-1 (see :func:`~audioprobe.probes.splitters.fold_labels`).
    alphas, scaling
        As in :func:`~audioprobe.probes.ridge_solver.fit_predict_ridge`; alpha selection and scaling see the
        training rows only.
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
        Absolute alpha grid; default a relative log grid
        (see :func:`~audioprobe.probes.ridge_solver.fit_predict_ridge`).
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
