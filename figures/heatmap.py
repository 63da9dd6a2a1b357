"""Layer x descriptor heat map of probe scores, one panel per model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import domain_label, panel_grid, styled
from .tables import RunTables, headline_scores, layer_names, model_order

__all__ = ["NAME", "layer_heatmap", "from_run"]

NAME = "layer_heatmap"
TITLE = "Layer x descriptor heat map"


@styled
def layer_heatmap(scores: pd.DataFrame, *, metric_label: str = "pooled out-of-fold $R^2$",
                  annotate: bool | None = None, ncols: int = 4) -> Figure:
    """Heat map of one score per (layer, descriptor), one panel per model, one shared colour scale.

    Parameters
    ----------
    scores : pd.DataFrame
        One row per (model, layer, feature) with columns ``model``, ``pretrain_domain``,
        ``seed``, ``layer``, ``layer_index``, ``feature``, ``value`` (e.g. the ridge
        ``r2_pooled`` rows of probes.parquet, see :func:`~audioprobe.figures.tables.headline_scores`).
    metric_label : str, keyword-only
        Colour-bar label.
    annotate : bool, optional, keyword-only
        Write the value in each cell; by default when a panel has at most 120 cells.
    ncols : int, keyword-only
        Panels per row.

    Returns
    -------
    Figure
        Negative scores (worse than predicting the mean) share the lowest colour; the colour
        bar says so with its pointed end.
    """
    if scores.empty:
        raise ParameterError("scores must have at least one row, got an empty table")
    models = model_order(scores)
    features = list(dict.fromkeys(scores["feature"].astype(str)))
    names = layer_names(scores)
    n_layers = len(names)
    if annotate is None:
        annotate = n_layers * len(features) <= 120
    finite = scores["value"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    vmax = max(0.1, float(finite.max())) if finite.size else 1.0
    panel_w = 1.2 + 0.55 * len(features)
    panel_h = 1.0 + 0.32 * n_layers
    fig, axes = panel_grid(len(models), ncols=ncols, panel_width=panel_w, panel_height=panel_h,
                           extra_width=0.9, extra_height=0.5)
    mappable = None
    for ax, model in zip(axes, models):
        rows = scores[scores["model"] == model]
        grid = (rows.pivot_table(index="layer_index", columns="feature", values="value", aggfunc="mean")
                .reindex(index=sorted(names), columns=features))
        grid.index = [names[i] for i in grid.index]
        sns.heatmap(grid, ax=ax, vmin=0.0, vmax=vmax, cmap="viridis", cbar=False, annot=annotate, fmt=".2f",
                    annot_kws={"fontsize": 6.5}, linewidths=0.5, linecolor="white", square=False)
        mappable = ax.collections[0]
        first = rows.iloc[0]
        seed = "" if pd.isna(first["seed"]) else f", seed {int(first['seed'])}"
        ax.set_title(f"{model}\n({domain_label(first['pretrain_domain'])}{seed})", fontsize=9)
        ax.set_xlabel("descriptor")
        ax.set_ylabel("layer")
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        ax.tick_params(axis="y", labelrotation=0)
    colorbar = fig.colorbar(mappable, ax=axes, extend="min" if finite.size and finite.min() < 0 else "neither",
                            shrink=0.8, aspect=30)
    colorbar.set_label(metric_label)
    fig.suptitle(f"{TITLE} ({metric_label})")
    return fig


def from_run(tables: RunTables) -> Figure:
    """The heat map of ridge ``r2_pooled`` of a run."""
    return layer_heatmap(headline_scores(tables.require("probes")))
