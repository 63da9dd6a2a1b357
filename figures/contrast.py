"""Domain-contrast map: the estimated difference between pretraining domains per layer and
descriptor, with the cells that survive the multiple-comparison correction marked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import panel_grid, styled
from .tables import RunTables, layer_names

__all__ = ["NAME", "contrast_map", "significance_marks", "from_run"]

NAME = "domain_contrast"
TITLE = "Pretraining-domain contrasts"

#: Thresholds on the corrected p-value and their marks, strictest first.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


def significance_marks(p_fdr: np.ndarray | pd.Series) -> np.ndarray:
    """``***``/``**``/``*`` for corrected p-values below 0.001/0.01/0.05, else ``""`` (NaN -> ``""``).

    Parameters
    ----------
    p_fdr : array-like of float, any shape
    """
    p = np.asarray(p_fdr, dtype=float)
    marks = np.full(p.shape, "", dtype=object)
    for threshold, mark in reversed(MARKS):
        marks[p < threshold] = mark
    return marks


@styled
def contrast_map(stats: pd.DataFrame, *, ncols: int = 3) -> Figure:
    """Heat map of each contrast's estimate over layers x descriptors, FDR-significant cells starred.

    One panel per (contrast, probe, metric). Colours are centred on 0 (no difference) with one
    symmetric scale for all panels; stars mark ``p_fdr`` < 0.05 / 0.01 / 0.001. The test, the
    correction and the unit of inference recorded in the table are in the title.

    Parameters
    ----------
    stats : pd.DataFrame
        stats.parquet: ``contrast``, ``layer``, ``layer_index``, ``feature``, ``probe``,
        ``metric``, ``estimate``, ``p_fdr``, ``test``, ``correction``, ``unit``.
    ncols : int, keyword-only
        Panels per row.
    """
    if stats.empty:
        raise ParameterError("stats must have at least one row, got an empty table")
    panels = list(stats[["contrast", "probe", "metric"]].drop_duplicates().itertuples(index=False, name=None))
    features = list(dict.fromkeys(stats["feature"].astype(str)))
    names = layer_names(stats)
    estimates = stats["estimate"].to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(estimates))) if np.isfinite(estimates).any() else 1.0
    limit = limit or 1.0
    fig, axes = panel_grid(len(panels), ncols=ncols, panel_width=1.4 + 0.55 * len(features),
                           panel_height=1.2 + 0.32 * len(names), extra_width=0.9, extra_height=0.7)
    for ax, (contrast, probe, metric) in zip(axes, panels):
        rows = stats[(stats["contrast"] == contrast) & (stats["probe"] == probe) & (stats["metric"] == metric)]
        grid = rows.pivot_table(index="layer_index", columns="feature", values="estimate", aggfunc="mean")
        p_grid = rows.pivot_table(index="layer_index", columns="feature", values="p_fdr", aggfunc="min",
                                  dropna=False)
        grid = grid.reindex(index=sorted(names), columns=features)
        p_grid = p_grid.reindex(index=sorted(names), columns=features)
        marks = significance_marks(p_grid.to_numpy())
        grid.index = [names[i] for i in grid.index]
        sns.heatmap(grid, ax=ax, vmin=-limit, vmax=limit, center=0.0, cmap="RdBu_r", cbar=False,
                    annot=marks, fmt="", annot_kws={"fontsize": 8, "fontweight": "bold"}, linewidths=0.5,
                    linecolor="white")
        first, _, second = str(contrast).partition("-")
        ax.set_title(f"{contrast}\n{probe} {metric} ({first} minus {second or 'rest'})", fontsize=9)
        ax.set_xlabel("descriptor")
        ax.set_ylabel("layer")
        ax.tick_params(axis="y", labelrotation=0)
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    colorbar = fig.colorbar(axes[0].collections[0], ax=axes, shrink=0.8, aspect=30)
    colorbar.set_label("estimated difference")
    described = []
    for column in ("test", "correction", "unit"):
        if column in stats:
            values = sorted(set(stats[column].dropna().astype(str)))
            if values:
                described.append(f"{column}: {'; '.join(values)}")
    footer = "   ".join(described)
    fig.suptitle(f"{TITLE} (* p_fdr < 0.05, ** < 0.01, *** < 0.001)\n{footer}", fontsize=10)
    return fig


def from_run(tables: RunTables) -> Figure:
    """The contrast map of a run's stats.parquet."""
    return contrast_map(tables.require("stats"))
