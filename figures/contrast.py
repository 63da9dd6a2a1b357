"""Domain-contrast map: the estimated difference between pretraining domains per layer and
descriptor, with the cells that survive the multiple-comparison correction marked."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import format_matrix_axes, panel_grid, row_height, styled, wrap_to_figure
from .tables import RunTables, descriptor_order, layer_names

__all__ = ["NAME", "contrast_map", "significance_marks", "from_run"]

NAME = "domain_contrast"
TITLE = "Pretraining-domain contrasts"

#: Thresholds on the corrected p-value and their marks, strictest first.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))

_ALL = "all"  # column of the contrasts over all layers (layer "all", no layer_index)


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
def contrast_map(stats: pd.DataFrame, *, order: Sequence[str] | None = None, ncols: int = 3) -> Figure:
    """Heat map of each contrast's estimate over descriptors x layers, FDR-significant cells starred.

    One panel per (contrast, probe, metric); rows are descriptors (``feature == "all"`` is the
    last row, "all descriptors"), columns are layers, plus a last column "all layers" for
    contrasts averaged over layers (``layer_index`` missing, e.g. the mixed model). Colours
    are centred on 0 (no difference) with one symmetric scale for all panels; stars mark
    ``p_fdr`` < 0.05 / 0.01 / 0.001. The tests, corrections and units of inference recorded
    in the table are under the title.

    Parameters
    ----------
    stats : pd.DataFrame
        stats.parquet: ``contrast``, ``layer``, ``layer_index``, ``feature``, ``probe``,
        ``metric``, ``estimate``, ``p_fdr``, and optionally ``test``, ``correction``, ``unit``.
    order : sequence of str, optional, keyword-only
        Descriptor order; order of appearance by default.
    ncols : int, keyword-only
        Panels per row.
    """
    if stats.empty:
        raise ParameterError("stats must have at least one row, got an empty table")
    stats = stats.assign(probe=stats["probe"].fillna(""), metric=stats["metric"].fillna(""),
                         _column=stats["layer_index"].astype(object).where(stats["layer_index"].notna(), _ALL))
    panels = list(stats[["contrast", "probe", "metric"]].drop_duplicates().itertuples(index=False, name=None))
    features = descriptor_order(stats["feature"], order)
    names = layer_names(stats[stats["layer_index"].notna()]) if stats["layer_index"].notna().any() else {}
    columns = sorted(names) + ([_ALL] if (stats["_column"] == _ALL).any() else [])
    column_labels = [names[k] if k != _ALL else "all layers" for k in columns]
    estimates = stats["estimate"].to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(estimates))) if np.isfinite(estimates).any() else 1.0
    limit = limit or 1.0
    label_width = 0.07 * max(len(f) for f in features)
    fig, axes = panel_grid(len(panels), ncols=ncols, panel_width=0.8 + 0.5 * len(columns),
                           panel_height=1.6 + row_height(len(features)) * len(features),
                           extra_width=1.0 + label_width, extra_height=1.0)
    for ax, (contrast, probe, metric) in zip(axes, panels):
        rows = stats[(stats["contrast"] == contrast) & (stats["probe"] == probe) & (stats["metric"] == metric)]
        grid = (rows.pivot_table(index="feature", columns="_column", values="estimate", aggfunc="mean")
                .reindex(index=features, columns=columns))
        p_grid = (rows.pivot_table(index="feature", columns="_column", values="p_fdr", aggfunc="min")
                  .reindex(index=features, columns=columns))
        marks = significance_marks(p_grid.to_numpy(dtype=float))
        grid.columns = column_labels
        grid.index = ["all descriptors" if f == "all" else f for f in grid.index]
        sns.heatmap(grid.astype(float), ax=ax, vmin=-limit, vmax=limit, center=0.0, cmap="RdBu_r", cbar=False,
                    annot=marks, fmt="", annot_kws={"fontsize": 7, "fontweight": "bold"},
                    linewidths=0.4 if len(features) <= 40 else 0.0, linecolor="white", xticklabels=True,
                    yticklabels=True)
        if _ALL in columns and len(columns) > 1:
            ax.axvline(len(columns) - 1, color="0.2", lw=1.2)
        first, _, second = str(contrast).partition("-")
        ax.set_title(f"{contrast}\n{probe} {metric}\n({first} minus {second or 'rest'})", fontsize=9)
        format_matrix_axes(ax, xlabel="layer", ylabel="", show_yticklabels=ax.get_subplotspec().is_first_col())
    fig.supylabel("descriptor")
    colorbar = fig.colorbar(axes[0].collections[0], ax=axes, shrink=0.6, aspect=30)
    colorbar.set_label("estimated difference")
    described = []
    for column in ("unit", "test", "correction"):
        if column in stats:
            values = sorted(set(stats[column].dropna().astype(str)) - {""})
            if values:
                described.append(f"{column}: {'; '.join(values)}")
    footer = wrap_to_figure(fig, ".  ".join(described), fontsize=7)
    fig.suptitle(f"{TITLE} (* p_fdr < 0.05, ** < 0.01, *** < 0.001)")
    if footer:
        fig.supxlabel(footer, fontsize=7, ha="center")
    return fig


def from_run(tables: RunTables) -> Figure:
    """The contrast map of a run's stats.parquet."""
    return contrast_map(tables.require("stats"), order=tables.descriptor_names())
