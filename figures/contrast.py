"""Domain-contrast map: the estimated difference between pretraining domains per layer and
descriptor, with the cells that survive the multiple-comparison correction marked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import panel_grid, styled, wrap_to_figure
from .tables import RunTables, layer_names

__all__ = ["NAME", "contrast_map", "significance_marks", "from_run"]

NAME = "domain_contrast"
TITLE = "Pretraining-domain contrasts"

#: Thresholds on the corrected p-value and their marks, strictest first.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))

_ALL = "all"  # row of the contrasts over all layers (layer "all", no layer_index)


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

    One panel per (contrast, probe, metric); rows are layers, plus a last row "all layers" for
    contrasts averaged over layers (``layer_index`` missing, e.g. the mixed model), and
    ``feature == "all"`` is the column "all descriptors". Colours are centred on 0 (no difference) with one
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
    stats = stats.assign(probe=stats["probe"].fillna(""), metric=stats["metric"].fillna(""),
                         _row=stats["layer_index"].astype(object).where(stats["layer_index"].notna(), _ALL))
    panels = list(stats[["contrast", "probe", "metric"]].drop_duplicates().itertuples(index=False, name=None))
    features = list(dict.fromkeys(stats["feature"].astype(str)))
    names = layer_names(stats[stats["layer_index"].notna()]) if stats["layer_index"].notna().any() else {}
    row_keys = sorted(names) + ([_ALL] if (stats["_row"] == _ALL).any() else [])
    row_labels = [names[k] if k != _ALL else "all layers" for k in row_keys]
    estimates = stats["estimate"].to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(estimates))) if np.isfinite(estimates).any() else 1.0
    limit = limit or 1.0
    fig, axes = panel_grid(len(panels), ncols=ncols, panel_width=1.6 + 0.55 * len(features),
                           panel_height=1.2 + 0.32 * len(row_keys), extra_width=0.9, extra_height=0.9)
    for ax, (contrast, probe, metric) in zip(axes, panels):
        rows = stats[(stats["contrast"] == contrast) & (stats["probe"] == probe) & (stats["metric"] == metric)]
        grid = (rows.pivot_table(index="_row", columns="feature", values="estimate", aggfunc="mean")
                .reindex(index=row_keys, columns=features))
        p_grid = (rows.pivot_table(index="_row", columns="feature", values="p_fdr", aggfunc="min")
                  .reindex(index=row_keys, columns=features))
        marks = significance_marks(p_grid.to_numpy(dtype=float))
        grid.index = row_labels
        grid.columns = ["all descriptors" if c == "all" else c for c in grid.columns]
        sns.heatmap(grid.astype(float), ax=ax, vmin=-limit, vmax=limit, center=0.0, cmap="RdBu_r", cbar=False,
                    annot=marks, fmt="", annot_kws={"fontsize": 8, "fontweight": "bold"}, linewidths=0.5,
                    linecolor="white")
        if _ALL in row_keys and len(row_keys) > 1:
            ax.axhline(len(row_keys) - 1, color="0.2", lw=1.2)
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
    footer = wrap_to_figure(fig, "   ".join(described), fontsize=8)
    fig.suptitle(f"{TITLE} (* p_fdr < 0.05, ** < 0.01, *** < 0.001)\n{footer}", fontsize=9)
    return fig


def from_run(tables: RunTables) -> Figure:
    """The contrast map of a run's stats.parquet."""
    return contrast_map(tables.require("stats"))
