"""A task's design: its labels and groups, the classes it scores, its grouped folds and its label permutations.

* **Task.** A name, a label column of the clips and a group column (:class:`TaskSpec`). The group is the unit
  that must not straddle folds *for this task*: a sound-class task is grouped by source recording (the
  manifest's ``group``), a speaker task cannot be grouped by speaker (the test speakers would be unseen) and is
  grouped by chapter, session or utterance within speaker. Clips without a label (empty or NaN) are not part of
  the task.
* **Classes too small for the folds** are left out, never silently: a class needs clips in at least
  :data:`MIN_GROUPS_PER_CLASS` (2) groups, so that one of its groups can be trained on while another is tested.
  The left-out classes, with their clip and group counts, are logged and reported (``n_left_out`` row and note).
* **Outer folds** (:func:`task_folds`): grouped folds that deal each class's groups over the folds: no group
  in both the training and the test part of a fold, and each class's groups spread over the folds (a
  speaker's chapters go to different folds). A fold whose test clips hold a class without training clips is
  noted.
* **Label permutations** (:func:`permute_labels`), within the CV design:

  - labels constant within every group (a sound class per recording, a speaker per chapter): the groups'
    labels are permuted among the groups (whole-block permutation; Winkler et al. 2014, NeuroImage 92:381).
    Clips of a group stay together, as the CV keeps them; the null is that a group's label is exchangeable
    with the other groups' (independent of its activations and its size);
  - labels that vary within some group (e.g. a speech-material task grouped by speaker): the labels are
    permuted among the clips of each group (within-block permutation); groups whose labels are constant add
    nothing to the null, so the test is conservative when few groups vary.

The classifier read-out of a task from a layer is :class:`~audioprobe.probes.task.TaskProbe`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError, check_choice

__all__ = ["TaskSpec", "parse_task", "DEFAULT_TASKS", "MIN_GROUPS_PER_CLASS", "PERMUTATION_SCHEMES", "task_labels",
           "small_classes", "permutation_scheme", "permute_labels", "task_folds"]

#: A class needs clips in at least this many groups to be trained on in one fold and tested in another.
MIN_GROUPS_PER_CLASS = 2
PERMUTATION_SCHEMES = ("groups", "within-groups")


@dataclass(frozen=True)
class TaskSpec:
    """A task: its ``name`` (the ``feature`` of its rows), the label ``column`` and the ``group`` column."""

    name: str
    column: str
    group: str = "group"

    def as_dict(self) -> dict:
        """Return the task as recorded in ``run.json``: ``{"name", "column", "group"}``."""
        return {"name": self.name, "column": self.column, "group": self.group}


#: Tasks on the columns the adapters and the shipped corpus write; used when the task probe runs without tasks
#: (each only where its columns exist and hold at least two labels).
DEFAULT_TASKS = (
    TaskSpec("domain", "domain", "group"),            # speech / music / environmental, by source recording
    TaskSpec("label", "label", "group"),              # ESC-50, UrbanSound8K, FSD50K, AudioSet class
    TaskSpec("speaker", "speaker", "speaker_group"),  # LibriSpeech (chapter groups), VCTK (utterance groups)
    TaskSpec("instrument_family", "instrument_family", "group"),  # NSynth, grouped by instrument
    TaskSpec("instrument_source", "instrument_source", "group"),  # NSynth acoustic / electronic / synthetic
    # not `language`: on the shipped corpus each language has one voice per source package, so a read-out
    # grouped by voice learns the package (0.00-0.03 balanced accuracy against chance 0.053); declare it to run it
    TaskSpec("instrument", "instrument", "clip_id"),  # shipped corpus: GM instrument of the melody clips
    TaskSpec("source_category", "source_category", "group"),  # shipped corpus: environmental sound kind
)


def parse_task(text: str | dict | TaskSpec) -> TaskSpec:
    """Parse a task from ``"NAME=COLUMN[:GROUP_COLUMN]"``, a dict (``name``, ``column``, ``group``) or a TaskSpec.

    The group column defaults to ``group`` (the manifest's unit that must not straddle folds).

    Raises
    ------
    ParameterError
        A malformed text, or an empty name or column.
    """
    if isinstance(text, TaskSpec):
        return text
    if isinstance(text, dict):
        unknown = sorted(set(text) - {"name", "column", "group"})
        if unknown or not text.get("name") or not text.get("column"):
            raise ParameterError(f"a task needs 'name' and 'column' (and optionally 'group'), got {text!r}")
        return TaskSpec(str(text["name"]), str(text["column"]), str(text.get("group") or "group"))
    name, sep, rest = str(text).partition("=")
    column, _, group = rest.partition(":")
    if not sep or not name.strip() or not column.strip():
        raise ParameterError(f"a task must be NAME=COLUMN[:GROUP_COLUMN], e.g. speaker=speaker:chapter, got {text!r}")
    return TaskSpec(name.strip(), column.strip(), group.strip() or "group")


def task_labels(clips: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """Read the task's label and group of every clip.

    Parameters
    ----------
    clips : pd.DataFrame
        The run's clip table (``clips.parquet``: the manifest's columns).
    task : TaskSpec

    Returns
    -------
    labels : np.ndarray of object, shape (n_clips,)
        Label text; None where the clip has no label (empty or missing): not part of the task.
    groups : np.ndarray of str, shape (n_clips,)

    Raises
    ------
    ParameterError
        A column the clips do not have, or a labelled clip without a group.
    """
    missing = [c for c in (task.column, task.group) if c not in clips.columns]
    if missing:
        raise ParameterError(f"task {task.name!r}: the clips have no column(s) {missing}; columns: "
                             f"{sorted(clips.columns)}")
    labels = np.array([None if pd.isna(v) or str(v).strip() == "" else str(v) for v in clips[task.column]],
                      dtype=object)
    group_values = clips[task.group]
    no_group = group_values.isna().to_numpy() & np.array([v is not None for v in labels], dtype=bool)
    if no_group.any():
        raise ParameterError(f"task {task.name!r}: {int(no_group.sum())} labelled clip(s) have no {task.group!r} "
                             f"(first: row {int(np.flatnonzero(no_group)[0])}); every clip of a task needs a group")
    return labels, group_values.astype(str).to_numpy()


def small_classes(labels: np.ndarray, groups: np.ndarray, *,
                  min_groups: int = MIN_GROUPS_PER_CLASS) -> dict[str, tuple[int, int]]:
    """Classes with clips in fewer than ``min_groups`` groups: class -> (n_clips, n_groups)."""
    table = pd.DataFrame({"label": labels, "group": groups})
    counts = table.groupby("label").agg(n_clips=("group", "size"), n_groups=("group", "nunique"))
    small = counts[counts["n_groups"] < min_groups]
    return {str(c): (int(r.n_clips), int(r.n_groups)) for c, r in small.iterrows()}


def permutation_scheme(labels: np.ndarray, groups: np.ndarray) -> str:
    """Choose the label permutation: ``"groups"`` when every group holds one label, else ``"within-groups"``.

    ``"groups"`` permutes whole groups' labels; ``"within-groups"`` permutes labels inside each group.
    """
    per_group = pd.Series(labels).groupby(groups).nunique()
    return "groups" if (per_group <= 1).all() else "within-groups"


def permute_labels(labels: np.ndarray, groups: np.ndarray, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """One permutation of ``labels`` that respects the groups (see the module docstring).

    Parameters
    ----------
    labels, groups : np.ndarray, shape (n_clips,)
    scheme : {"groups", "within-groups"}
    rng : np.random.Generator

    Returns
    -------
    np.ndarray, shape (n_clips,)
    """
    check_choice("scheme", scheme, PERMUTATION_SCHEMES)
    uniq, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    if scheme == "groups":  # the label of each group (its first clip's), shuffled among the groups
        return labels[first][rng.permutation(len(uniq))][inverse]
    out = labels.copy()
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    for block in np.split(order, bounds):
        out[block] = labels[block][rng.permutation(len(block))]
    return out


def task_folds(labels: np.ndarray, groups: np.ndarray, n_splits: int) -> np.ndarray:
    """Test fold of every clip: grouped folds that spread each class's groups over the folds.

    Each group goes to one fold with its class (its most frequent label, the first in sorted order on ties).
    Class by class (sorted), its groups (largest first, then by name) are dealt to the folds that hold the
    fewest groups of that class, and among those to the fold with the fewest clips (the first on ties). So no
    group straddles folds, a class with groups in at least two folds always has training clips when it is
    tested (for labels constant within groups), fold sizes stay balanced, and the split depends only on the
    labels and groups (deterministic, no random state). scikit-learn's ``StratifiedGroupKFold`` aims at the
    same, but refuses classes smaller than the folds and gives no such guarantee.

    Parameters
    ----------
    labels, groups : np.ndarray, shape (n_clips,)
    n_splits : int
        Folds; at least this many groups are needed for every fold to hold one.

    Returns
    -------
    folds : np.ndarray of int, shape (n_clips,)
    """
    group_names, group_of = np.unique(groups, return_inverse=True)
    _, label_of = np.unique(labels.astype(str), return_inverse=True)
    counts = np.zeros((len(group_names), label_of.max() + 1), dtype=int)
    np.add.at(counts, (group_of, label_of), 1)
    group_label, group_size = counts.argmax(axis=1), counts.sum(axis=1)  # argmax: the first label on ties
    order = np.lexsort((np.arange(len(group_names)), -group_size, group_label))
    fold_of, sizes, held = np.zeros(len(group_names), dtype=int), np.zeros(n_splits), np.zeros(n_splits)
    for k, gi in enumerate(order):
        if k and group_label[gi] != group_label[order[k - 1]]:
            held[:] = 0
        candidates = np.flatnonzero(held == held.min())
        f = candidates[np.argmin(sizes[candidates])]
        fold_of[gi], held[f], sizes[f] = f, held[f] + 1, sizes[f] + group_size[gi]
    return fold_of[group_of]
