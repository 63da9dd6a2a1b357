"""The task transfer matrix (``task_transfer``) with the within- vs out-of-domain contrast.

Rows = tasks with their clip domains, columns = pretraining domains, cells = chance-normalised balanced
accuracy at each model's best layer and at a fixed layer; the contrast is
:mod:`audioprobe.analysis.transfer`'s.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..analysis.transfer import (
    in_domain_side,
    layer_scores,
    pooled_contrast,
    task_contrasts,
)
from .style import (
    MIN_FONTSIZE,
    REPORT_WIDTH,
    domain_label,
    format_matrix_axes,
    new_figure,
    styled,
)
from .tables import MissingInput, RunTables
from .task import domain_columns, task_domains, task_label, task_scores

__all__ = [
    "FIXED_LAYER",
    "NAME",
    "TITLE",
    "caption",
    "contrast_table",
    "fixed_layer",
    "from_run",
    "task_transfer",
    "transfer_matrix",
    "transfer_results",
]

NAME = "task_transfer"
TITLE = "Task transfer: in- vs out-of-domain pretraining"
#: The fixed layer of the transfer matrix: BYOL-A v1's last conv block, when the run has it.
FIXED_LAYER = "features.11"


def fixed_layer(scores: pd.DataFrame) -> tuple[str, str]:
    """Choose the fixed layer of the transfer matrix and say why.

    :data:`FIXED_LAYER` when every model has it, else the deepest layer (highest ``layer_index``) that every
    model has a score at.

    Raises
    ------
    MissingInput
        When the models share no layer.
    """
    per_model = [set(group.astype(str)) for _, group in scores.dropna(subset=["value"]).groupby("model")["layer"]]
    common = set.intersection(*per_model) if per_model else set()
    if FIXED_LAYER in common:
        return FIXED_LAYER, f"{FIXED_LAYER}, the last conv block of BYOL-A v1"
    if not common:
        raise MissingInput("the task scores' models share no layer")
    depth = scores[scores["layer"].isin(common)].groupby("layer")["layer_index"].max()
    layer = str(depth.idxmax())
    return layer, f"{layer}, the deepest layer every model has ({FIXED_LAYER} is not in this run)"


def transfer_matrix(selected: pd.DataFrame) -> pd.DataFrame:
    """Mean chance-normalised score over each pretraining domain's models: rows = tasks, columns = domains."""
    table = selected.pivot_table(index="feature", columns="pretrain_domain", values="value", aggfunc="mean")
    table = table.reindex(index=list(dict.fromkeys(selected["feature"].astype(str))),
                          columns=domain_columns(selected))
    table.index.name, table.columns.name = "task", None
    return table


def transfer_results(tables: RunTables, *, alpha: float = 0.05) -> list[dict]:
    """Compute the two views of the transfer matrix: each model's best layer, and the fixed layer.

    Each view is a dict with ``view``, ``layer_note``, ``matrix`` (:func:`transfer_matrix`), ``contrasts``
    (:func:`~audioprobe.analysis.transfer.task_contrasts`) and ``pooled``
    (:func:`~audioprobe.analysis.transfer.pooled_contrast`).
    """
    scores, domains = task_scores(tables), task_domains(tables)
    layer, why = fixed_layer(scores)
    views = []
    for view, chosen, note in (("best layer", None, "each model's best layer per task"), ("fixed layer", layer, why)):
        selected = layer_scores(scores, chosen)
        contrasts = task_contrasts(selected, domains, alpha=alpha)
        views.append({"view": view, "layer_note": note, "matrix": transfer_matrix(selected),
                      "contrasts": contrasts, "pooled": pooled_contrast(contrasts, alpha=alpha)})
    return views


def _contrast_text(row: pd.Series | dict) -> str:
    """``"in - out +0.12 [+0.05, +0.19], p = 0.003"``, or ``not testable``."""
    if row["status"] != "tested":
        return "in - out: not testable"
    return f"in - out {row['estimate']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}], p = {row['p_value']:.2g}"


def contrast_table(views: list[dict]) -> pd.DataFrame:
    """Put the per-task and pooled contrasts of both views (:func:`transfer_results`) in one table.

    Returns
    -------
    pd.DataFrame
        One row per view and task, then a ``pooled over tasks`` row per view: ``view``, ``layer``,
        ``task``, ``clip domains``, ``n in``, ``n out``, ``in-domain mean``, ``out-of-domain mean``,
        ``in - out``, ``ci_low``, ``ci_high``, ``p_value``, ``mde``, ``test``, ``note``.
    """
    rows = []
    for view in views:
        for row in view["contrasts"].to_dict("records"):
            rows.append({"view": view["view"], "layer": view["layer_note"], "task": row["task"],
                         "clip domains": row["clip_domains"], "n in": row["n_in"], "n out": row["n_out"],
                         "in-domain mean": row["mean_in"], "out-of-domain mean": row["mean_out"],
                         "in - out": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                         "p_value": row["p_value"], "mde": row["mde"],
                         "test": "Student two-sample t, seeds as unit" if row["status"] == "tested" else "",
                         "note": row["note"]})
        pooled = view["pooled"]
        rows.append({"view": view["view"], "layer": view["layer_note"], "task": "pooled over tasks",
                     "clip domains": "", "n in": pooled["n_tasks"], "n out": pooled["n_tasks"],
                     "in-domain mean": np.nan, "out-of-domain mean": np.nan, "in - out": pooled["estimate"],
                     "ci_low": pooled["ci_low"], "ci_high": pooled["ci_high"], "p_value": pooled["p_value"],
                     "mde": pooled["mde"], "test": pooled["test"] if pooled["status"] == "tested" else "",
                     "note": pooled["note"]})
    return pd.DataFrame(rows)


@styled
def task_transfer(views: list[dict], domains: dict[str, tuple[str, ...]]) -> Figure:
    """Draw heat maps of the transfer matrix, one panel per view.

    In-domain cells are outlined, each task's contrast is under its name, the pooled contrast in the panel
    title.
    """
    n_tasks = len(views[0]["matrix"])
    n_cols = max(len(v["matrix"].columns) for v in views)
    panel_width = min(1.1 * n_cols + 2.6, (REPORT_WIDTH - 0.8) / len(views))
    fig = new_figure(width=panel_width * len(views) + 0.8, height=0.75 * n_tasks + 2.4)
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    values = np.concatenate([v["matrix"].to_numpy(float).ravel() for v in views])
    finite = values[np.isfinite(values)]
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    image = None
    for ax, view in zip(axes, views):
        matrix = view["matrix"]
        image = ax.imshow(matrix.to_numpy(float), cmap="viridis", vmin=vmin, vmax=1.0, aspect="auto")
        contrasts = view["contrasts"].set_index("task") if len(view["contrasts"]) else pd.DataFrame()
        rows = [f"{task_label(t, domains)}\n" + (_contrast_text(contrasts.loc[t]) if t in contrasts.index else "")
                for t in matrix.index]
        ax.set_xticks(range(len(matrix.columns)), [domain_label(d) for d in matrix.columns])
        ax.set_yticks(range(n_tasks), rows)
        format_matrix_axes(ax, xlabel="pretraining domain", ylabel="task (clip domains); in-domain - out-of-domain")
        for r, task in enumerate(matrix.index):
            for c, domain in enumerate(matrix.columns):
                value = matrix.iloc[r, c]
                if np.isfinite(value):
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if value < vmin + 0.6 * (1.0 - vmin) else "black")
                if in_domain_side(str(domain), domains.get(task, ())) == "in":
                    ax.add_patch(_outline(c, r))
        pooled = view["pooled"]
        ax.set_title(f"{view['view']}: {view['layer_note']}\npooled over tasks: "
                     + (_contrast_text(pooled) if pooled["status"] == "tested" else "not testable "
                        f"({pooled['n_tasks']} testable task(s))"), fontsize=9)
    colorbar = fig.colorbar(image, ax=list(axes), shrink=0.8)
    colorbar.set_label("(balanced accuracy - chance) / (1 - chance)", fontsize=MIN_FONTSIZE + 1)
    fig.suptitle(TITLE)
    return fig


def _outline(column: int, row: int) -> Rectangle:
    """Frame an in-domain cell in white."""
    return Rectangle((column - 0.48, row - 0.48), 0.96, 0.96, fill=False, edgecolor="white", lw=2.0)


def from_run(tables: RunTables) -> Figure:
    """Draw the transfer matrix of a run (raises MissingInput without task rows)."""
    return task_transfer(transfer_results(tables), task_domains(tables))


def caption(tables: RunTables) -> str:
    """Say what the transfer matrix shows, how to read it, and which layers it uses."""
    views = transfer_results(tables)
    return ("Rows: tasks (the clip domains of their labelled clips); columns: pretraining domains; each cell "
            "the chance-normalised balanced accuracy (BA - chance) / (1 - chance) (0 = chance, 1 = perfect), "
            "the mean over the domain's models (seeds), left at each model's best layer for the task, right "
            f"at a fixed layer ({views[1]['layer_note']}). Outlined cells are in-domain: the pretraining "
            "domain covers the task's clips (speech -> speech; music, environmental -> non-speech; mixed "
            "covers all); the random-weight control ('none') is on neither side. Under each task: in-domain "
            "minus out-of-domain mean with its 95% interval and p, a Student two-sample t-test with the "
            "seed as the unit (the compare stage's test); a task whose clips every trained domain covers, or "
            "with fewer than 2 models a side, is not testable. Panel titles: the contrast pooled over the "
            "testable tasks (one-sample t over the per-task differences). The full table with power (mde) is "
            "in the report's Task read-out section.")
