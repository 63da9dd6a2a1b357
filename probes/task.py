"""Task probes: a label column of the clips -> a per-layer linear classifier, cross-validated over groups.

The transfer-learning half of the study (Ogg 2025): how well a layer's activations read out a task's labels
(sound domain, speaker, language, instrument, sound class), in a cross-validation whose groups suit the task.

* **Task**: its labels, groups, scored classes, grouped outer folds and label permutations are
  :mod:`.task_design`'s (:class:`~.task_design.TaskSpec`, :func:`~.task_design.task_folds`,
  :func:`~.task_design.permute_labels`). Classes in fewer than :data:`~.task_design.MIN_GROUPS_PER_CLASS`
  groups are left out and reported (``n_left_out`` row and note); a fold whose test clips hold a class without
  training clips is noted.
* **Classifier**: multinomial logistic regression (scikit-learn ``LogisticRegression``, lbfgs, L2 penalty,
  unpenalised intercept). Activation scaling (``center`` or ``standard``, :mod:`.scaling`) is fit on the
  training rows only. ``C`` is chosen per outer fold on its training rows only, by inner grouped folds
  (:func:`~.task_design.task_folds`, ``min(3, groups)`` folds): the value of ``Cs`` with the highest pooled
  inner balanced accuracy (the smallest such C on ties); a single value of ``Cs`` is used as is. ``Cs`` are
  relative to the scale of the training activations: ``C = C_rel / v`` with ``v`` the mean per-unit variance
  of the scaled training rows, so that with ``scaling="standard"`` (``v = 1``) they are scikit-learn's ``C`` on
  standardised activations, and one grid suits layers whose activations differ in magnitude by orders of
  magnitude.
* **Computation**: the penalised fit depends on the training rows only through their span (representer
  theorem; the unpenalised intercept absorbs the centring), so a layer wider than its training rows is fit in
  the exact coordinates of its scaled training rows (eigendecomposition of their centred Gram matrix), with
  one Gram matrix per layer for ``center`` scaling. Predictions equal the fit on the full activations
  (the tests check scikit-learn's ``cross_val_score`` on the same folds).
* **Metrics**: per fold and pooled over all held-out predictions: balanced accuracy (mean per-class recall)
  and macro-F1 (unweighted mean of per-class F1 over the classes present). ``chance`` = 1 / n_classes: the
  expected balanced accuracy of any classifier that ignores its input, whatever the class sizes (its
  per-class recalls are its prediction frequencies, which sum to 1). Macro-F1 has no such constant.
* **Permutation p-value** of the pooled balanced accuracy, with the labels permuted within the CV design and
  the whole procedure (outer folds, C selection, fits) repeated on every permutation: whole groups' labels
  permuted among the groups when labels are constant within every group, else labels permuted among the clips
  of each group (:func:`~.task_design.permutation_scheme`).

  ``p = (1 + #{null >= observed}) / (1 + n_permutations)``; the probe's ``random_state`` draws the permutations.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score

from ..errors import ParameterError, check_choice
from ..log import logger
from .scaling import SCALINGS, fit_scaling
from .shared import ONCE
from .task_design import MIN_GROUPS_PER_CLASS, permutation_scheme, permute_labels, small_classes, task_folds

__all__ = ["DEFAULT_CS", "TaskProbe"]

#: Relative C grid of the task probes (see the module docstring).
DEFAULT_CS = (0.001, 0.01, 0.1)
#: Most inner folds of the C selection.
INNER_CV = 3
MAX_ITER = 1000
_TIE_TOL = 1e-12


class _Design:
    """Exact low-dimensional coordinates of scaled activations for any (training rows, test rows) split.

    ``center`` scaling: one Gram matrix per layer, centred per split. ``standard``: scaled per split (with
    fewer units than training rows, the scaled activations themselves are the coordinates).
    """

    def __init__(self, X: np.ndarray, scaling: str):
        self.X = X
        self.scaling = scaling
        self.gram = X @ X.T if scaling == "center" and X.shape[1] > X.shape[0] else None

    def coordinates(self, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``(Z_train, Z_test, v)``: coordinates with the same penalised fit, and the mean per-unit variance."""
        n_units = self.X.shape[1]
        if self.gram is not None:
            g = self.gram[np.ix_(train, train)]
            rows = g.mean(axis=1)
            total = rows.mean()
            K = g - rows[:, None] - rows[None, :] + total
            cross = self.gram[np.ix_(test, train)]
            K_test = cross - cross.mean(axis=1, keepdims=True) - rows[None, :] + total
        else:
            mean, scale = fit_scaling(self.X[train], self.scaling)
            Xtr, Xte = (self.X[train] - mean) / scale, (self.X[test] - mean) / scale
            if n_units <= len(train):
                return Xtr, Xte, float(np.mean(Xtr**2))
            K, K_test = Xtr @ Xtr.T, Xte @ Xtr.T
        variance = float(np.trace(K)) / (len(train) * n_units)
        w, U = np.linalg.eigh(K)
        keep = w > max(w.max(initial=0.0), 0.0) * len(train) * np.finfo(float).eps
        U, root = U[:, keep], np.sqrt(w[keep])
        return U * root, (K_test @ U) / root, variance


def _fit_predict(Z_train, y_train, Z_test, C_rel: float, variance: float) -> tuple[np.ndarray, bool]:
    """Logistic regression at ``C = C_rel / variance``; predictions and whether lbfgs converged."""
    classes = np.unique(y_train)
    if len(classes) == 1 or Z_train.shape[1] == 0 or variance <= 0:
        counts = pd.Series(y_train).value_counts()
        return np.full(len(Z_test), counts.index[0], dtype=object), True
    model = LogisticRegression(C=C_rel / variance, max_iter=MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Z_train, y_train)
    return model.predict(Z_test).astype(object), bool(np.all(model.n_iter_ < MAX_ITER))


def _balanced_accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": a fold without some class
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, y_pred.astype(str)))


@dataclass
class _Result:
    """Out-of-fold predictions of one run of the procedure: shape (n,) predictions and folds, (cv,) chosen C."""

    y_pred: np.ndarray
    folds: np.ndarray
    C: np.ndarray
    n_unconverged: int


class TaskProbe:
    """Grouped K-fold multinomial logistic-regression read-out of one task's labels from one layer.

    Parameters
    ----------
    cv : int, default 5
        Outer folds (:func:`~.task_design.task_folds` over the task's groups).
    Cs : sequence of float, keyword-only, default :data:`DEFAULT_CS`
        Relative inverse regularisation strengths (see the module docstring); one value: no inner selection.
    scaling : {"center", "standard"}, keyword-only, default "center"
        Activation scaling fit on the training rows.
    n_permutations : int, keyword-only, default 0
        Permutations of the p-value of the pooled balanced accuracy (0: no p-value).
    min_groups : int, keyword-only, default :data:`~.task_design.MIN_GROUPS_PER_CLASS`
    random_state : int, Generator or None, keyword-only
        Draws the permutations.

    Attributes
    ----------
    classes_ : np.ndarray of str
        The classes scored (sorted).
    left_out_ : dict of str -> (n_clips, n_groups)
        Classes with clips in fewer than ``min_groups`` groups, left out.
    used_ : np.ndarray of bool, shape (n_clips,)
        Clips scored (labelled, of a kept class).
    folds_ : np.ndarray of int, shape (n_used,)
    y_true_, y_pred_ : np.ndarray of object, shape (n_used,)
        Labels and out-of-fold predictions of the scored clips.
    C_ : np.ndarray, shape (cv,)
        Relative C chosen in each fold.
    scores_ : dict
        ``balanced_accuracy``, ``macro_f1`` (shape (cv,)), ``balanced_accuracy_pooled``, ``macro_f1_pooled``,
        ``chance``.
    null_ : np.ndarray, shape (n_permutations,)
        Pooled balanced accuracy under the permutations.
    p_value_ : float
        NaN without permutations.
    scheme_ : str
        The permutation scheme (:data:`~.task_design.PERMUTATION_SCHEMES`).
    notes_ : dict of str -> str
        Why a score is NaN, or what to know about it, per metric (``fold:<f>`` for fold notes).

    Examples
    --------
    >>> probe = TaskProbe(cv=5, n_permutations=200, random_state=0).fit(X, clips["speaker"],
    ...                                                                 clips["chapter"])   # doctest: +SKIP
    >>> probe.to_frame("speaker")                                                          # doctest: +SKIP
    """

    def __init__(self, cv: int = 5, *, Cs=DEFAULT_CS, scaling: str = "center", n_permutations: int = 0,
                 min_groups: int = MIN_GROUPS_PER_CLASS, random_state=None):
        self.cv = cv
        self.Cs = Cs
        self.scaling = scaling
        self.n_permutations = n_permutations
        self.min_groups = min_groups
        self.random_state = random_state

    def _check(self) -> np.ndarray:
        check_choice("scaling", self.scaling, SCALINGS)
        if not isinstance(self.cv, (int, np.integer)) or isinstance(self.cv, bool) or self.cv < 2:
            raise ParameterError(f"cv (number of folds) must be an integer >= 2, got {self.cv!r}")
        Cs = np.atleast_1d(np.asarray(self.Cs, dtype=np.float64))
        if Cs.ndim != 1 or not len(Cs) or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
            raise ParameterError(f"Cs must be a non-empty sequence of positive numbers, got {self.Cs!r}")
        if not isinstance(self.n_permutations, (int, np.integer)) or self.n_permutations < 0:
            raise ParameterError(f"n_permutations must be a non-negative integer, got {self.n_permutations!r}")
        if not isinstance(self.min_groups, (int, np.integer)) or self.min_groups < 2:
            raise ParameterError(f"min_groups must be an integer >= 2, got {self.min_groups!r}")
        return np.sort(Cs)

    def fit(self, X, labels, groups) -> TaskProbe:
        """Cross-validate (and permute).

        Parameters
        ----------
        X : array-like, shape (n_clips, n_units)
            Finite activations.
        labels : array-like, shape (n_clips,)
            Class of every clip; None, NaN or empty = not part of the task.
        groups : array-like, shape (n_clips,)
            The task's group of every clip.

        Raises
        ------
        ParameterError
            Bad settings or shapes. (Fewer than 2 classes or fewer groups than folds among the scored clips is a
            property of the data: the scores are NaN with the reason in ``notes_``.)
        """
        Cs = self._check()
        X = np.asarray(X, dtype=np.float64)
        labels = np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                           else str(v) for v in np.asarray(labels, dtype=object)], dtype=object)
        groups = np.asarray(groups).astype(str)
        if not (len(X) == len(labels) == len(groups)) or X.ndim != 2:
            raise ParameterError(f"X (2-D), labels and groups need one row per clip, got shapes {X.shape}, "
                                 f"{labels.shape}, {groups.shape}")
        if not np.all(np.isfinite(X)):
            raise ParameterError("X has non-finite values: drop the clips whose activations failed first")
        labelled = np.array([v is not None for v in labels], dtype=bool)
        self.left_out_ = small_classes(labels[labelled], groups[labelled], min_groups=self.min_groups)
        self.used_ = labelled & np.array([v not in self.left_out_ for v in labels])
        y, g = labels[self.used_].astype(str), groups[self.used_]
        self.classes_ = np.unique(y)
        self.notes_ = {}
        if self.left_out_:
            logger.info("task probe: class(es) in fewer than %d groups left out: %s", self.min_groups,
                        self._left_out_text(), extra=ONCE)
        if len(self.classes_) < 2:
            self._undefined(f"fewer than 2 classes with clips in at least {self.min_groups} groups "
                            f"({len(self.classes_)} left)")
            return self
        if len(np.unique(g)) < self.cv:
            self._undefined(f"{len(np.unique(g))} group(s) among the scored clips, fewer than cv={self.cv} folds")
            return self
        design = _Design(X[self.used_], self.scaling)
        res = self._cross_validate(design, y, g, Cs)
        self.folds_, self.y_true_, self.y_pred_, self.C_ = res.folds, y, res.y_pred, res.C
        self.scores_ = self._scores(y, res.y_pred, res.folds, self.cv)
        self._fold_notes(y, res.folds)
        if res.n_unconverged:
            self.notes_["balanced_accuracy_pooled"] = (f"{res.n_unconverged} logistic fit(s) stopped at "
                                                       f"max_iter={MAX_ITER} before convergence")
        self.scheme_ = permutation_scheme(y, g)
        rng = np.random.default_rng(self.random_state)
        self.null_ = np.array([self._null_score(design, permute_labels(y, g, self.scheme_, rng), g, Cs)
                               for _ in range(self.n_permutations)])
        observed = self.scores_["balanced_accuracy_pooled"]
        self.p_value_ = (float((1 + np.sum(self.null_ >= observed - _TIE_TOL)) / (1 + self.n_permutations))
                         if self.n_permutations else np.nan)
        return self

    def _null_score(self, design: _Design, y: np.ndarray, g: np.ndarray, Cs: np.ndarray) -> float:
        return _balanced_accuracy(y, self._cross_validate(design, y, g, Cs).y_pred)

    def _cross_validate(self, design: _Design, y: np.ndarray, g: np.ndarray, Cs: np.ndarray) -> _Result:
        folds = task_folds(y, g, self.cv)
        y_pred = np.empty(len(y), dtype=object)
        chosen = np.zeros(self.cv)
        unconverged = 0
        for f in range(self.cv):
            train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            if not len(test):
                chosen[f] = np.nan
                continue
            chosen[f], bad = self._select_C(design, train, y, g, Cs)
            Z_tr, Z_te, v = design.coordinates(train, test)
            y_pred[test], ok = _fit_predict(Z_tr, y[train], Z_te, chosen[f], v)
            unconverged += bad + (not ok)
        return _Result(y_pred, folds, chosen, unconverged)

    def _select_C(self, design: _Design, train: np.ndarray, y: np.ndarray, g: np.ndarray,
                  Cs: np.ndarray) -> tuple[float, int]:
        """Select the C of highest pooled inner balanced accuracy on the training rows (smallest C on ties)."""
        n_inner = min(INNER_CV, len(np.unique(g[train])))
        if len(Cs) == 1 or n_inner < 2 or len(np.unique(y[train])) < 2:
            return float(Cs[0]), 0
        inner = task_folds(y[train], g[train], n_inner)
        pred = np.empty((len(Cs), len(train)), dtype=object)
        unconverged = 0
        for f in range(n_inner):
            tr, te = train[inner != f], train[inner == f]
            Z_tr, Z_te, v = design.coordinates(tr, te)
            for k, C in enumerate(Cs):
                pred[k, inner == f], ok = _fit_predict(Z_tr, y[tr], Z_te, C, v)
                unconverged += not ok
        scores = [_balanced_accuracy(y[train], p) for p in pred]
        return float(Cs[int(np.argmax(np.asarray(scores) > max(scores) - _TIE_TOL))]), unconverged

    @staticmethod
    def _scores(y: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, n_folds: int) -> dict:
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true": a fold without some class
            warnings.simplefilter("ignore", UserWarning)
            return TaskProbe._score_table(y, y_pred.astype(str), folds, n_folds)

    @staticmethod
    def _score_table(y: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, n_folds: int) -> dict:
        per_fold = {"balanced_accuracy": [], "macro_f1": []}
        for f in range(n_folds):
            t = folds == f
            if not t.any():
                for values in per_fold.values():
                    values.append(np.nan)
                continue
            per_fold["balanced_accuracy"].append(balanced_accuracy_score(y[t], y_pred[t]))
            per_fold["macro_f1"].append(f1_score(y[t], y_pred[t], labels=np.unique(y[t]), average="macro",
                                                 zero_division=0.0))
        classes = np.unique(y)
        return {**{k: np.asarray(v) for k, v in per_fold.items()},
                "balanced_accuracy_pooled": balanced_accuracy_score(y, y_pred),
                "macro_f1_pooled": f1_score(y, y_pred, labels=classes, average="macro", zero_division=0.0),
                "chance": 1.0 / len(classes)}

    def _fold_notes(self, y: np.ndarray, folds: np.ndarray) -> None:
        for f in range(self.cv):
            unseen = sorted(set(y[folds == f]) - set(y[folds != f]))
            if not (folds == f).any():
                self.notes_[f"fold:{f}"] = "no test clips in this fold"
            elif unseen:
                self.notes_[f"fold:{f}"] = f"class(es) {unseen} have test clips but no training clips in this fold"

    def _left_out_text(self) -> str:
        return "; ".join(f"{c} ({n} clip(s), {k} group(s))" for c, (n, k) in sorted(self.left_out_.items()))

    def _undefined(self, reason: str) -> None:
        self.folds_ = np.zeros(0, dtype=int)
        self.y_true_ = self.y_pred_ = np.zeros(0, dtype=object)
        self.C_ = np.full(self.cv, np.nan)
        nan = np.full(self.cv, np.nan)
        self.scores_ = {"balanced_accuracy": nan, "macro_f1": nan, "balanced_accuracy_pooled": np.nan,
                        "macro_f1_pooled": np.nan, "chance": np.nan}
        self.null_, self.p_value_, self.scheme_ = np.zeros(0), np.nan, ""
        self.notes_ = {m: reason for m in ("balanced_accuracy_pooled", "macro_f1_pooled", "chance")}
        for f in range(self.cv):
            self.notes_[f"fold:{f}"] = reason

    def to_frame(self, name: str) -> pd.DataFrame:
        """Return the long rows of docs/run-folder.md.

        Columns ``feature`` (= ``name``), ``metric``, ``fold``, ``value``, ``n_clips``, ``p_value``, ``note``.
        Per fold (0..cv-1): ``balanced_accuracy``, ``macro_f1``, ``C`` (relative C chosen). Over all folds
        (fold <NA>): ``balanced_accuracy_pooled`` (with ``p_value``), ``macro_f1_pooled``, ``chance``
        (1 / n_classes), ``n_classes``, ``n_left_out`` (labelled clips of the classes left out; the note names
        them). ``note`` says why a value is NaN or what limits it.
        """
        n = int(self.used_.sum())
        rows = []
        for f in range(self.cv):
            n_test = int(np.sum(self.folds_ == f))
            note = self.notes_.get(f"fold:{f}", pd.NA)
            for metric in ("balanced_accuracy", "macro_f1"):
                rows.append((metric, f, self.scores_[metric][f], n_test, np.nan, note))
            rows.append(("C", f, self.C_[f], n_test, np.nan, pd.NA))
        for metric in ("balanced_accuracy_pooled", "macro_f1_pooled", "chance"):
            p = self.p_value_ if metric == "balanced_accuracy_pooled" else np.nan
            rows.append((metric, pd.NA, self.scores_[metric], n, p, self.notes_.get(metric, pd.NA)))
        rows.append(("n_classes", pd.NA, float(len(self.classes_)), n, np.nan, pd.NA))
        left = (f"left out: classes with clips in fewer than {self.min_groups} groups: {self._left_out_text()}"
                if self.left_out_ else pd.NA)
        rows.append(("n_left_out", pd.NA, float(sum(c for c, _ in self.left_out_.values())), n, np.nan, left))
        table = pd.DataFrame(rows, columns=["metric", "fold", "value", "n_clips", "p_value", "note"])
        table.insert(0, "feature", name)
        table["fold"] = table["fold"].astype("Int64")
        table["note"] = table["note"].astype("string")
        return table
