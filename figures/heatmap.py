"""Layer x descriptor heat map of probe scores, one panel per model."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParameterError
from .matrix import matrix_heatmap
from .style import MIN_FONTSIZE, domain_label, format_matrix_axes, panel_grid, row_height, styled
from .tables import RunTables, descriptor_order, headline_scores, layer_names, model_order

__all__ = ["NAME", "TITLE", "layer_heatmap", "caption", "from_run"]

NAME = "layer_heatmap"
TITLE = "Layer x descriptor heat map"


@styled
def layer_heatmap(scores: pd.DataFrame, *, metric_label: str = "pooled out-of-fold $R^2$",
                  order: Sequence[str] | None = None, annotate: bool | None = None, ncols: int = 6) -> Figure:
    """Heat map of one score per (descriptor, layer), one panel per model, one shared colour scale.

    Descriptors are rows and layers columns (input on the left), so a corpus with many
    descriptors stays legible; panels of a figure row share the descriptor labels.

    Parameters
    ----------
    scores : pd.DataFrame
        One row per (model, layer, feature) with columns ``model``, ``pretrain_domain``,
        ``seed``, ``layer``, ``layer_index``, ``feature``, ``value`` (e.g. the ridge
        ``r2_pooled`` rows of probes.parquet, see :func:`~audioprobe.figures.tables.headline_scores`).
    metric_label : str, keyword-only
        Colour-bar label.
    order : sequence of str, optional, keyword-only
        Descriptor order (e.g. grouped by family); order of appearance by default.
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
    features = descriptor_order(scores["feature"], order)
    names = layer_names(scores)
    if annotate is None:
        annotate = len(names) * len(features) <= 120
    finite = scores["value"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    vmax = max(0.1, float(finite.max())) if finite.size else 1.0
    label_width = 0.07 * max(len(f) for f in features)
    fig, axes = panel_grid(len(models), ncols=ncols, panel_width=0.4 + 0.36 * len(names),
                           panel_height=1.4 + row_height(len(features)) * len(features),
                           extra_width=1.0 + label_width, extra_height=0.4)
    for ax, model in zip(axes, models):
        rows = scores[scores["model"] == model]
        grid = (rows.pivot_table(index="feature", columns="layer_index", values="value", aggfunc="mean")
                .reindex(index=features, columns=sorted(names)))
        matrix_heatmap(ax, grid.to_numpy(dtype=float), xticklabels=[names[c] for c in grid.columns],
                       yticklabels=features, vmin=0.0, vmax=vmax, cmap="viridis", annot=annotate, fmt=".2f",
                       annot_kws={"fontsize": MIN_FONTSIZE}, linewidths=0.4 if len(features) <= 40 else 0.0)
        first = rows.iloc[0]
        seed = "" if pd.isna(first["seed"]) else f", seed {int(first['seed'])}"
        ax.set_title(f"{model}\n({domain_label(first['pretrain_domain'])}{seed})", fontsize=9,
                     y=1.0)  # a fixed title height: no per-draw search of the axes' decorations (none above)
        format_matrix_axes(ax, xlabel="layer", ylabel="", show_yticklabels=ax.get_subplotspec().is_first_col())
    fig.supylabel("descriptor")
    height = fig.get_figheight()  # a bar about 0.2 in wide however tall the figure
    colorbar = fig.colorbar(axes[0].collections[0], ax=axes, extend="min" if finite.size and finite.min() < 0
                            else "neither", shrink=min(0.6, 8.0 / height), aspect=max(20.0, min(0.6, 8.0 / height)
                                                                                       * height / 0.2))
    colorbar.set_label(metric_label)
    fig.suptitle(f"{TITLE} ({metric_label})")
    return fig


def from_run(tables: RunTables) -> Figure:
    """Return the heat map of ridge ``r2_pooled`` of a run, descriptors in features_meta.csv order."""
    return layer_heatmap(headline_scores(tables.require("probes")), order=tables.descriptor_names())


def caption(tables: RunTables) -> str:
    """Return what the heat map shows and how to read it."""
    scores = headline_scores(tables.require("probes"))
    negative = int((scores["value"] < 0).sum())
    return ("One panel per model (title: model, pretraining domain, seed); a cell is the pooled out-of-fold R^2 "
            "of a ridge probe predicting one descriptor (row) from one layer's pooled activations (column, input "
            "on the left). Pooled: all held-out clips of all clip domains scored together, so a layer that only "
            "tells the clip domains apart scores well on a descriptor that differs between them; the "
            "within-domain score is in the within-domain layer profiles and the report's tables. One colour "
            "scale for all panels, from 0 (no better than the mean) up; "
            + (f"{negative} negative cells (worse than predicting the mean) share the darkest colour. "
               if negative else "no cell is negative. ")
            + "Empty cells: no score (reason in probes.parquet note). Values: probes.parquet, probe 'ridge', "
              "metric 'r2_pooled'.")
