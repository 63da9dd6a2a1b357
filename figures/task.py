"""Task read-out by layer (``task_profiles``) and the task data the transfer matrix and the report share.

The figure shows the pooled balanced accuracy of each task against depth, one line per pretraining domain,
with the random-weight control and chance; the data functions are shared with the transfer matrix
(:mod:`.task_transfer`) and the report.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.transfer import CONTROL_DOMAIN, normalised_accuracy, task_clip_domains
from ..errors import ParameterError
from .style import DOMAIN_ORDER, domain_color, domain_label, panel_grid, styled
from .tables import MissingInput, RunTables, layer_names

__all__ = [
    "NAME",
    "TITLE",
    "caption",
    "domain_columns",
    "from_run",
    "task_domains",
    "task_label",
    "task_profile",
    "task_profiles",
    "task_scores",
    "task_summary",
]

NAME = "task_profiles"
TITLE = "Task read-out by layer and pretraining domain"


def task_scores(tables: RunTables) -> pd.DataFrame:
    """Collect the pooled balanced accuracy, chance and chance-normalised score of every (model, layer, task).

    The scores are :func:`~audioprobe.analysis.transfer.normalised_accuracy`'s; raises MissingInput without
    task rows.
    """
    scores = normalised_accuracy(tables.require("probes"))
    if scores.empty:
        raise MissingInput("probes.parquet has no task rows (balanced_accuracy_pooled over all folds)")
    return scores


def task_domains(tables: RunTables) -> dict[str, tuple[str, ...]]:
    """Map each task to the clip domains of its labelled clips.

    From the probe stage's recorded tasks (run.json) and clips.parquet; tasks not recorded or without their
    label column are left out (domain unknown).
    """
    config = (tables.info.get("stages", {}).get("probe") or {}).get("config") or {}
    tasks = config.get("tasks") if isinstance(config.get("tasks"), list) else []
    clips = tables.get("clips")
    return {} if clips is None else {t: d for t, d in task_clip_domains(clips, tasks).items() if d}


def task_label(task: str, domains: dict[str, tuple[str, ...]]) -> str:
    """``"<task> (<clip domains> clips)"``, or ``domain unknown``."""
    clip = domains.get(task)
    return f"{task} ({'+'.join(clip) if clip else 'domain unknown'} clips)"


def task_profile(scores: pd.DataFrame, *, column: str = "accuracy") -> pd.DataFrame:
    """Mean, minimum and maximum over each pretraining domain's models (seeds) per (task, layer).

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`task_scores` output.
    column : str, keyword-only
        Score column (``accuracy``: pooled balanced accuracy; ``value``: chance-normalised).

    Returns
    -------
    pd.DataFrame
        Columns ``pretrain_domain``, ``feature``, ``layer_index``, ``mean``, ``low``, ``high`` (range over
        seeds), ``n_models``.
    """
    grouped = scores.dropna(subset=[column]).groupby(["pretrain_domain", "feature", "layer_index"])
    table = grouped[column].agg(mean="mean", low="min", high="max")
    table["n_models"] = grouped["model"].nunique()
    return table.reset_index()


def domain_columns(table: pd.DataFrame) -> list[str]:
    """List the pretraining domains of a table in :data:`~.style.DOMAIN_ORDER`, unknown ones last."""
    present = set(table["pretrain_domain"].astype(str))
    return [d for d in DOMAIN_ORDER if d in present] + sorted(present - set(DOMAIN_ORDER))


@styled
def task_profiles(scores: pd.DataFrame, *, domains: dict[str, tuple[str, ...]] | None = None, ncols: int = 4
                  ) -> Figure:
    """Pooled balanced accuracy against layer, one panel per task, one line per pretraining domain.

    Each line is the mean over the domain's models with a band from the lowest to the highest seed; the
    random-weight control (``none``) is the dashed grey line, the task's chance level the dotted black
    line; the first point (layer 0) is the log-mel input, the same for every model.

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`task_scores` output.
    domains : dict, optional, keyword-only
        Task -> clip domains (:func:`task_domains`), named in the panel titles.
    ncols : int, keyword-only
        Panels per row (fewer when the figure would be wider than the report).
    """
    if scores.empty:
        raise ParameterError("scores must have at least one row, got an empty table")
    profile = task_profile(scores)
    names = layer_names(scores)
    position = {index: i for i, index in enumerate(sorted(names))}
    profile["x"] = profile["layer_index"].map(position)
    tasks = list(dict.fromkeys(scores["feature"].astype(str)))
    chance = scores.groupby("feature")["chance"].mean()
    n_models = scores.groupby("pretrain_domain")["model"].nunique()
    fig, axes = panel_grid(len(tasks), ncols=ncols, panel_width=3.0, panel_height=2.6, extra_height=0.9,
                           sharex=True, sharey=True)
    for ax, task in zip(axes, tasks):
        for domain in domain_columns(profile):
            line = profile[(profile["pretrain_domain"] == domain) & (profile["feature"] == task)]
            if line.empty:
                continue
            color = domain_color(domain)
            ax.fill_between(line["x"], line["low"], line["high"], color=color, alpha=0.18, lw=0)
            ax.plot(line["x"], line["mean"], color=color, marker="o", ms=3.0, lw=1.4,
                    ls="--" if domain == CONTROL_DOMAIN else "-",
                    label=f"{domain_label(domain)} (n={n_models[domain]})")
        ax.axhline(chance.get(task, np.nan), color="black", lw=1.0, ls=":", label="chance (1 / classes)")
        ax.set_title(task_label(task, domains or {}), fontsize=9)
        ax.set_xticks(range(len(names)), [names[k] for k in sorted(names)], rotation=45, ha="right",
                      rotation_mode="anchor", fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0].set_ylim(0.0, 1.02)
    fig.supxlabel("layer (first point: the log-mel input, the same for every model)")
    fig.supylabel("pooled balanced accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    legend = fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 5), frameon=False,
                        title=f"{TITLE}\npretraining domain (n = models); band: lowest to highest seed",
                        title_fontsize=10)
    legend.get_title().set_multialignment("center")
    return fig


def task_summary(scores: pd.DataFrame) -> str:
    """Summarise the task read-out in one paragraph.

    Per task: the log-mel input's score, the best trained domain and layer, and the random-weight control,
    with the layers where the trained models' mean exceeds the control's.

    Parameters
    ----------
    scores : pd.DataFrame
        :func:`task_scores` output (pooled balanced accuracy in ``accuracy``).
    """
    names = layer_names(scores)
    profile = task_profile(scores)
    parts = []
    for task in dict.fromkeys(scores["feature"].astype(str)):
        rows = profile[profile["feature"] == task]
        chance = scores.loc[scores["feature"] == task, "chance"].mean()
        logmel = rows.loc[rows["layer_index"] == 0, "mean"].mean()
        control = rows[rows["pretrain_domain"] == CONTROL_DOMAIN].set_index("layer_index")["mean"]
        trained = scores[(scores["feature"] == task) & (scores["pretrain_domain"] != CONTROL_DOMAIN)]
        text = f"{task} (chance {chance:.2f}): log-mel input {logmel:.2f}"
        if not trained.dropna(subset=["accuracy"]).empty:
            means = trained.groupby(["pretrain_domain", "layer_index"])["accuracy"].mean()
            domain, index = means.idxmax()
            text += f"; best trained domain {domain} at {names[index]} ({means.max():.2f})"
            overall = trained.groupby("layer_index")["accuracy"].mean()
            if len(control):
                deep = [i for i in overall.index if i != 0 and i in control.index]
                above = [names[i] for i in deep if overall[i] > control[i]]
                text += (f"; random-weight control best {control.max():.2f} at {names[control.idxmax()]}; the "
                         f"trained models' mean exceeds the control at {len(above)} of {len(deep)} layers after "
                         "the input" + (f" ({', '.join(above)})" if above else ""))
        if len(control) == 0:
            text += "; no random-weight control in this run"
        parts.append(text)
    return ("Task scores (pooled balanced accuracy, means over each domain's models) against the log-mel input and "
            "the random-weight control: " + "; ".join(parts) + ".")


def caption(tables: RunTables) -> str:
    """Say what the task profiles show and how to read them."""
    scores = task_scores(tables)
    n_models = scores.groupby("pretrain_domain")["model"].nunique()
    return ("One panel per task (its clip domains in the title): the pooled balanced accuracy (y; out-of-fold "
            "predictions of all folds, the mean of the per-class recalls) of a grouped, cross-validated logistic "
            "read-out of the task's labels at each layer (x, the log-mel input on the left, layers in forward "
            "order), one line per pretraining domain: the mean over its models ("
            + ", ".join(f"{domain_label(d)} {n}" for d, n in n_models.items())
            + "). The band spans the lowest to the highest seed (no band with one model). The dashed grey line is "
              "the random-weight control (pretrain_domain 'none'): what the architecture reads out without "
              "training; the dotted black line is chance (1 / number of classes), which any read-out that "
              "ignores its input scores. A line above the control at a layer means training added task "
              "information there; above the input point, the network added it over the log-mel spectrogram. "
              "Values: probes.parquet, probe 'task', metric 'balanced_accuracy_pooled' (per fold and macro-F1 "
              "there too).")


def from_run(tables: RunTables) -> Figure:
    """Draw the task profiles of a run (raises MissingInput without task rows)."""
    return task_profiles(task_scores(tables), domains=task_domains(tables))
