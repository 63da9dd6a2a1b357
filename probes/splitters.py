"""Cross-validation splitters that keep every group (speaker, recording, sound event) inside one fold.

The unit that must not straddle folds is the manifest's ``group`` column (docs/run-folder.md, ``clips.parquet``):
two clips of one speaker in the training and the test fold would let a probe score by
recognising the speaker. :class:`GroupFolds` wraps scikit-learn's ``GroupKFold`` and refuses a
split that cannot keep that promise (fewer groups than folds).
"""
from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_consistent_length, check_scalar, column_or_1d

from ..errors import ParameterError

__all__ = ["GroupFolds", "check_groups", "fold_labels"]


def check_groups(groups, n_splits: int) -> np.ndarray:
    """Validate a group vector for ``n_splits`` grouped folds.

    Parameters
    ----------
    groups : array-like, shape (n_clips,)
        One label per clip; clips sharing a label are kept in the same fold.
    n_splits : int
        Number of folds (>= 2).

    Returns
    -------
    groups : np.ndarray, shape (n_clips,)

    Raises
    ------
    ParameterError
        When ``n_splits`` < 2, a group label is missing, or there are fewer groups than folds.
    """
    try:  # scikit-learn's own validation; its errors are re-raised naming audioprobe's parameters
        check_scalar(n_splits, "cv", Integral, min_val=2)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"cv (number of folds) must be an integer >= 2, got {n_splits!r}") from exc
    try:
        groups = column_or_1d(groups, dtype=None, input_name="groups")
    except ValueError as exc:
        raise ParameterError(f"groups must be one label per clip (1-D), got shape {np.shape(groups)}") from exc
    missing = np.flatnonzero(pd.isna(groups))
    if missing.size:
        raise ParameterError(f"groups has {missing.size} missing label(s) (first at row {missing[0]}); "
                             "every clip needs a group")
    n_groups = len(np.unique(groups.astype(str)))
    if n_groups < n_splits:
        raise ParameterError(f"cv={n_splits} folds need at least {n_splits} distinct groups, got {n_groups} "
                             f"group(s) among {len(groups)} clips: lower cv or add groups")
    return groups


class GroupFolds:
    """K folds over groups: no group has clips in both the training and the test part of a fold.

    A scikit-learn splitter (``split(X, y, groups)``, ``get_n_splits``), usable as ``cv=`` in
    scikit-learn's model-selection functions.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds; at least this many distinct groups are required.
    shuffle : bool, keyword-only, default False
        Shuffle the groups before assigning them to folds (scikit-learn's ``GroupKFold(shuffle=True)``);
        the default assignment balances fold sizes deterministically.
    random_state : int or None, keyword-only
        Seed of the shuffle.
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = False, random_state: int | None = None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"GroupFolds(n_splits={self.n_splits}, shuffle={self.shuffle}, random_state={self.random_state})"

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Return the number of folds (scikit-learn's splitter API; the arguments are ignored)."""
        return self.n_splits

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_index, test_index)`` for each fold.

        Parameters
        ----------
        X : array-like, shape (n_clips, ...)
        y : ignored
        groups : array-like, shape (n_clips,)
        """
        if groups is None:
            raise ParameterError("GroupFolds.split needs groups (one label per clip), got None")
        groups = check_groups(groups, self.n_splits)
        try:
            check_consistent_length(X, groups)
        except ValueError as exc:
            raise ParameterError(f"groups has {len(groups)} labels but X has {len(X)} rows") from exc
        splitter = GroupKFold(self.n_splits, shuffle=self.shuffle,
                              random_state=self.random_state if self.shuffle else None)
        yield from splitter.split(np.zeros((len(groups), 1)), groups=groups.astype(str))


def fold_labels(splitter: GroupFolds, groups) -> np.ndarray:
    """Return the test fold of every clip.

    Parameters
    ----------
    splitter : GroupFolds
    groups : array-like, shape (n_clips,)

    Returns
    -------
    folds : np.ndarray of int, shape (n_clips,)
        ``folds[i] == f`` when clip ``i`` is in the test part of fold ``f``.
    """
    groups = np.asarray(groups)
    folds = np.full(len(groups), -1, dtype=int)
    for f, (_, test) in enumerate(splitter.split(groups, groups=groups)):
        folds[test] = f
    return folds
