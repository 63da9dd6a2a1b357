"""Within- vs out-of-domain contrast of task read-out scores (the transfer half of the study).

A task's *domain* is the set of clip domains of its labelled clips (clips.parquet). Clip domains map
to pretraining domains (:data:`PRETRAIN_OF_CLIP_DOMAIN`: speech -> speech, music and environmental
-> nonspeech); a model is *in-domain* for a task when its pretraining domain is one of the task's
mapped domains, or ``mixed`` (trained on both); the random-weight control (``none``) is neither side.

Per task, the scores are chance-normalised balanced accuracies ``(BA - chance) / (1 - chance)``
(0 at chance, 1 perfect) at one layer per model (its best layer, or a fixed layer), and the contrast
is ``mean(in-domain seeds) - mean(out-of-domain seeds)`` tested with the seed (model) as the unit:
the compare stage's Student two-sample t-test (:func:`~.seed_unit.student_t`), its t interval and
power (:func:`~.power.minimum_detectable_effect`).

Across tasks the contrast is pooled **paired over tasks**: each testable task gives one difference
of seed means, and a one-sample Student t-test over tasks (df = n_tasks - 1) tests their mean, with
the t interval of the same statistic and the MDE of :func:`~.power.mde_from_se`. Why not a mixed
model of all seeds x tasks: the same models are in-domain for one task and out-of-domain for
another (the in/out label is crossed with model and task), so a seed-level mixed model would need
random model and task slopes that 3-4 tasks cannot estimate; the paired test makes the task the
unit, which is what a claim "in-domain models do better on tasks" generalises over, and it is exact
under normal task differences. With fewer than 2 testable tasks the pooled contrast is not tested
and says so.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ParameterError
from .power import mde_from_se, minimum_detectable_effect
from .seed_unit import student_t

__all__ = [
    "CONTROL_DOMAIN",
    "MIXED_DOMAIN",
    "PRETRAIN_OF_CLIP_DOMAIN",
    "in_domain_side",
    "layer_scores",
    "normalised_accuracy",
    "paired_task_contrast",
    "pooled_contrast",
    "task_clip_domains",
    "task_contrasts",
]

#: Pretraining domain that covers each clip domain of the manifest.
PRETRAIN_OF_CLIP_DOMAIN: dict[str, str] = {"speech": "speech", "music": "nonspeech", "environmental": "nonspeech"}
#: The random-weight control's pretraining domain: on neither side of the contrast.
CONTROL_DOMAIN = "none"
#: Pretraining on both speech and non-speech: in-domain for every task.
MIXED_DOMAIN = "mixed"


def task_clip_domains(clips: pd.DataFrame, tasks: list[dict]) -> dict[str, tuple[str, ...]]:
    """Collect the clip domains of each task's labelled clips.

    Parameters
    ----------
    clips : pd.DataFrame
        clips.parquet: ``domain`` and the tasks' label columns.
    tasks : list of dict
        The probe stage's recorded tasks (run.json), each with ``name`` and ``column``.

    Returns
    -------
    dict of str to tuple of str
        Task name -> sorted clip domains with a label; ``()`` when the label column is absent.
    """
    out = {}
    for task in tasks:
        column = task.get("column")
        if column not in clips:
            out[str(task.get("name"))] = ()
            continue
        labelled = clips.loc[clips[column].notna(), "domain"].dropna().astype(str)
        out[str(task.get("name"))] = tuple(sorted(set(labelled)))
    return out


def in_domain_side(pretrain_domain: str, clip_domains: tuple[str, ...]) -> str:
    """``"in"``, ``"out"`` or ``"control"`` (the random-weight control, or a task of unknown domain).

    Raises
    ------
    ParameterError
        For a clip domain without a pretraining domain in :data:`PRETRAIN_OF_CLIP_DOMAIN`.
    """
    unknown = set(clip_domains) - set(PRETRAIN_OF_CLIP_DOMAIN)
    if unknown:
        raise ParameterError(f"clip domains must be among {sorted(PRETRAIN_OF_CLIP_DOMAIN)}, got {sorted(unknown)}")
    if pretrain_domain == CONTROL_DOMAIN or not clip_domains:
        return "control"
    covered = {PRETRAIN_OF_CLIP_DOMAIN[d] for d in clip_domains}
    return "in" if pretrain_domain == MIXED_DOMAIN or pretrain_domain in covered else "out"


def normalised_accuracy(probes: pd.DataFrame) -> pd.DataFrame:
    """Chance-normalised pooled balanced accuracy ``(BA - chance) / (1 - chance)`` of every task row.

    Parameters
    ----------
    probes : pd.DataFrame
        probes.parquet (rows of probe ``task``: ``balanced_accuracy_pooled`` and ``chance`` over all folds).

    Returns
    -------
    pd.DataFrame
        One row per (model, layer, task): ``model``, ``pretrain_domain``, ``seed``, ``layer``,
        ``layer_index``, ``feature`` (the task), ``accuracy``, ``chance``, ``value`` (normalised;
        NaN where the accuracy or chance is NaN or chance is 1).
    """
    rows = probes[(probes["probe"] == "task") & probes["fold"].isna()]
    keys = ["model", "pretrain_domain", "seed", "layer", "layer_index", "feature"]
    accuracy = rows[rows["metric"] == "balanced_accuracy_pooled"].set_index(keys)["value"].astype(float)
    chance = rows[rows["metric"] == "chance"].set_index(keys)["value"].astype(float)
    table = pd.DataFrame({"accuracy": accuracy, "chance": chance.reindex(accuracy.index)})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["value"] = np.where(table["chance"] < 1, (table["accuracy"] - table["chance"]) / (1 - table["chance"]),
                                  np.nan)
    return table.reset_index()


def layer_scores(scores: pd.DataFrame, layer: str | None = None) -> pd.DataFrame:
    """One score per (model, task): at ``layer``, or at the model's best layer for the task (``None``).

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`normalised_accuracy` output (or any table with ``model``, ``feature``, ``layer``, ``value``).
    layer : str, optional
        A layer name; ``None`` takes each model's best layer per task (highest ``value``).

    Returns
    -------
    pd.DataFrame
        The selected rows (a model without a finite score there has none).
    """
    scores = scores.dropna(subset=["value"])
    if layer is not None:
        return scores[scores["layer"] == layer].reset_index(drop=True)
    return scores.loc[scores.groupby(["model", "feature"], sort=False)["value"].idxmax()].reset_index(drop=True)


def task_contrasts(scores: pd.DataFrame, clip_domains: dict[str, tuple[str, ...]], *, alpha: float = 0.05
                   ) -> pd.DataFrame:
    """Per task: in-domain minus out-of-domain mean score, Student t-test with the seed as the unit.

    Parameters
    ----------
    scores : pd.DataFrame
        One score per (model, task): ``model``, ``pretrain_domain``, ``feature`` (task), ``value``
        (e.g. :func:`layer_scores`).
    clip_domains : dict of str to tuple of str
        :func:`task_clip_domains`; a task missing here has an unknown domain and is not tested.
    alpha : float
        Level of the test, 1 - confidence of the interval.

    Returns
    -------
    pd.DataFrame
        One row per task: ``task``, ``clip_domains``, ``n_in``, ``n_out``, ``mean_in``, ``mean_out``,
        ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``seed_sd``, ``mde`` (80 % power),
        ``status`` (``tested``/``not_tested``), ``note`` (why not tested).
    """
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be in (0, 1), got {alpha!r}")
    rows = []
    for task, group in scores.dropna(subset=["value"]).groupby("feature", sort=False):
        domains = clip_domains.get(str(task), ())
        side = np.array([in_domain_side(str(d), domains) for d in group["pretrain_domain"]])
        a = group.loc[side == "in", "value"].to_numpy(float)
        b = group.loc[side == "out", "value"].to_numpy(float)
        row = {"task": task, "clip_domains": "+".join(domains) or "unknown", "n_in": a.size, "n_out": b.size,
               "mean_in": a.mean() if a.size else np.nan, "mean_out": b.mean() if b.size else np.nan,
               "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "seed_sd": np.nan,
               "mde": np.nan, "status": "not_tested", "note": ""}
        if not domains:
            row["note"] = "not tested: the task's domain is unknown (its label column is not in clips.parquet)"
        elif a.size < 2 or b.size < 2:
            row["note"] = (f"cannot be tested: {a.size} in-domain and {b.size} out-of-domain models; the seed test "
                           "needs at least 2 per side" + (" (every trained model is in-domain for this task)"
                                                          if b.size == 0 else ""))
        else:
            p, low, high, sd = student_t(a[:, None], b[:, None], alpha=alpha)
            row.update(estimate=a.mean() - b.mean(), ci_low=low[0], ci_high=high[0], p_value=p[0], seed_sd=sd[0],
                       mde=float(minimum_detectable_effect(sd, a.size, b.size, alpha=alpha)[0]), status="tested")
        rows.append(row)
    return pd.DataFrame(rows)


def paired_task_contrast(differences: np.ndarray, *, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """One-sample Student t-test of the mean per-task difference, per column.

    Parameters
    ----------
    differences : ndarray, shape (n_tasks, n_columns)
        In-domain minus out-of-domain mean score of each testable task (columns: e.g. simulations).
    alpha : float
        Level, 1 - confidence of the interval.

    Returns
    -------
    dict of str to ndarray, shape (n_columns,)
        ``estimate`` (mean difference), ``ci_low``, ``ci_high`` (t interval), ``p_value`` (two-sided),
        ``se``, ``df``; NaN with fewer than 2 tasks.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    n = d.shape[0]
    estimate = d.mean(axis=0) if n else np.full(d.shape[1], np.nan)
    if n < 2:
        nan = np.full(d.shape[1], np.nan)
        return {"estimate": estimate, "ci_low": nan, "ci_high": nan, "p_value": nan, "se": nan,
                "df": np.full(d.shape[1], n - 1.0)}
    se = d.std(axis=0, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = estimate / se
    # scipy's t interval needs scale > 0: equal differences over the tasks give a zero-width interval
    low, high = stats.t.interval(1 - alpha, n - 1, loc=estimate, scale=np.where(se > 0, se, 1.0))
    return {"estimate": estimate, "ci_low": np.where(se > 0, low, estimate),
            "ci_high": np.where(se > 0, high, estimate), "p_value": 2 * stats.t.sf(np.abs(t), n - 1), "se": se,
            "df": np.full(d.shape[1], n - 1.0)}


def pooled_contrast(contrasts: pd.DataFrame, *, alpha: float = 0.05) -> dict[str, object]:
    """Pool the in- vs out-of-domain contrast over the tested tasks (paired over tasks, see module docstring).

    Parameters
    ----------
    contrasts : pd.DataFrame
        :func:`task_contrasts` output.
    alpha : float
        Level, 1 - confidence of the interval.

    Returns
    -------
    dict
        ``n_tasks``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``df``, ``mde`` (80 % power),
        ``status`` and ``note`` (``not_tested`` with the reason below 2 testable tasks), ``test``.
    """
    tested = contrasts[contrasts["status"] == "tested"] if len(contrasts) else contrasts
    n = len(tested)
    result = paired_task_contrast(tested["estimate"].to_numpy(float) if n else np.zeros((0, 1)), alpha=alpha)
    out: dict[str, object] = {key: float(value[0]) for key, value in result.items()}
    out.update(n_tasks=n, test=f"one-sample Student t over tasks of the per-task in - out difference, df = {n - 1}; "
                               "CI: its t interval", status="tested", note="")
    out["mde"] = mde_from_se(out["se"], out["df"], alpha=alpha) if n >= 2 else np.nan
    if n < 2:
        out.update(status="not_tested", p_value=np.nan,
                   note=f"cannot be tested: {n} task(s) with a tested in- vs out-of-domain contrast; pooling over "
                        "tasks needs at least 2")
    return out
