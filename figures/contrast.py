"""Domain-contrast map.

The estimated difference between pretraining domains per layer and descriptor, with the cells that survive the
multiple-comparison correction marked.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..errors import ParameterError
from .matrix import matrix_heatmap
from .style import format_matrix_axes, panel_grid, row_height, styled, wrap_to_figure
from .tables import RunTables, descriptor_order, layer_names

__all__ = ["NAME", "TITLE", "contrast_map", "significance_marks", "cell_status", "cannot_reject_statement",
           "caption", "from_run"]

NAME = "domain_contrast"
TITLE = "Pretraining-domain contrasts"

#: Thresholds on the corrected p-value and their marks, strictest first.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))

_ALL = "all"  # column of the contrasts over all layers (layer "all", no layer_index)

#: Mark of a tested cell whose design cannot reach p <= alpha (status ``cannot_reject``).
CANNOT_REJECT_MARK = "\u25cb"

#: How cells that were not tested are drawn: status -> (hatch, face colour, legend label).
UNTESTED = {
    "identical": ("////", "0.85", "not tested: identical for every model by construction (e.g. the input layer)"),
    "not_tested": ("xxxx", "0.7", "not tested: no valid test (reason in stats.parquet note)"),
}


def cell_status(stats: pd.DataFrame) -> pd.Series:
    """Status of each row of stats.parquet.

    Its ``status`` column, or for tables written before it existed ``tested`` where a p-value exists and ``not_tested``
    elsewhere.
    """
    if "status" in stats:
        return stats["status"].fillna("not_tested").astype(str)
    return pd.Series(np.where(stats["p_value"].notna(), "tested", "not_tested"), index=stats.index)


def cannot_reject_statement(stats: pd.DataFrame) -> str:
    """Return a sentence saying how many tested cells cannot reject and why.

    ``""`` when every tested cell can reach p <= alpha.

    Parameters
    ----------
    stats : pd.DataFrame
        stats.parquet with ``status`` (``cannot_reject`` rows) and ``smallest_p``.

    Examples
    --------
    >>> table = pd.DataFrame({"status": ["cannot_reject", "tested"], "smallest_p": [0.1, 0.0],
    ...                       "p_value": [0.1, 0.01]})
    >>> cannot_reject_statement(table)[:62]
    '1 of 2 tested cells CANNOT REJECT (smallest attainable p 0.1):'
    """
    status = cell_status(stats)
    blocked = stats[status == "cannot_reject"]
    if blocked.empty:
        return ""
    tested = int(status.isin(["tested", "cannot_reject"]).sum())
    smallest = blocked["smallest_p"].to_numpy(dtype=float) if "smallest_p" in blocked else np.array([np.nan])
    low, high = np.nanmin(smallest) if np.isfinite(smallest).any() else np.nan, np.nanmax(smallest)
    span = "" if not np.isfinite(low) else (f" (smallest attainable p {low:.3g})" if low == high
                                             else f" (smallest attainable p {low:.3g} to {high:.3g})")
    return (f"{len(blocked)} of {tested} tested cells CANNOT REJECT{span}: their design cannot reach p <= alpha, "
            f"so a cell without a star there is not evidence of no difference ({CANNOT_REJECT_MARK} marks them).")


def significance_marks(p_fdr: np.ndarray | pd.Series) -> np.ndarray:
    """Return the significance marks of corrected p-values.

    ``***``/``**``/``*`` for p at most 0.001/0.01/0.05 (the compare stage's rule: p <= alpha rejects), else
    ``""`` (NaN -> ``""``).

    Parameters
    ----------
    p_fdr : array-like of float, any shape
    """
    p = np.asarray(p_fdr, dtype=float)
    marks = np.full(p.shape, "", dtype=object)
    for threshold, mark in reversed(MARKS):
        marks[p <= threshold] = mark
    return marks


@styled
def contrast_map(stats: pd.DataFrame, *, order: Sequence[str] | None = None, ncols: int = 3) -> Figure:
    """Heat map of each contrast's estimate over descriptors x layers, FDR-significant cells starred.

    One panel per (contrast, probe, metric); rows are descriptors (``feature == "all"`` is the
    last row, "all descriptors"), columns are layers, plus a last column "all layers" for
    contrasts averaged over layers (``layer_index`` missing, e.g. the mixed model). Colours
    are centred on 0 (no difference) with one symmetric scale for all panels; stars mark
    ``p_fdr`` <= 0.05 / 0.01 / 0.001. Cells that were not tested (``status`` ``identical``
    or ``not_tested``) are hatched grey, not coloured as a zero difference; tested cells
    whose design cannot reach alpha (``cannot_reject``) carry a circle, and the figure's
    title says how many there are (:func:`cannot_reject_statement`). The tests, corrections
    and units of inference recorded in the table are under the panels.

    Parameters
    ----------
    stats : pd.DataFrame
        stats.parquet: ``contrast``, ``layer``, ``layer_index``, ``feature``, ``probe``,
        ``metric``, ``estimate``, ``p_fdr``, and optionally ``status``, ``smallest_p``,
        ``test``, ``correction``, ``unit``.
    order : sequence of str, optional, keyword-only
        Descriptor order; order of appearance by default.
    ncols : int, keyword-only
        Panels per row (fewer when the figure would be wider than the report).
    """
    if stats.empty:
        raise ParameterError("stats must have at least one row, got an empty table")
    status = cell_status(stats)
    stats = stats.assign(probe=stats["probe"].fillna(""), metric=stats["metric"].fillna(""), _status=status,
                         _column=stats["layer_index"].astype(object).where(stats["layer_index"].notna(), _ALL),
                         _shown=stats["estimate"].where(status.isin(["tested", "cannot_reject"])))
    panels = list(stats[["contrast", "probe", "metric"]].drop_duplicates().itertuples(index=False, name=None))
    features = descriptor_order(stats["feature"], order)
    names = layer_names(stats[stats["layer_index"].notna()]) if stats["layer_index"].notna().any() else {}
    columns = sorted(names) + ([_ALL] if (stats["_column"] == _ALL).any() else [])
    column_labels = [names[k] if k != _ALL else "all layers" for k in columns]
    estimates = stats["_shown"].to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(estimates))) if np.isfinite(estimates).any() else 1.0
    limit = limit or 1.0
    label_width = 0.07 * max(len(f) for f in features)
    fig, axes = panel_grid(len(panels), ncols=ncols, panel_width=0.4 + 0.36 * len(columns),
                           panel_height=1.6 + row_height(len(features)) * len(features),
                           extra_width=1.0 + label_width, extra_height=1.6)
    for ax, (contrast, probe, metric) in zip(axes, panels):
        rows = stats[(stats["contrast"] == contrast) & (stats["probe"] == probe) & (stats["metric"] == metric)]
        grid = _grid(rows, "_shown", features, columns, "mean")
        marks = significance_marks(_grid(rows, "p_fdr", features, columns, "min").to_numpy(dtype=float))
        marks[_cells(rows, "cannot_reject", features, columns)] = CANNOT_REJECT_MARK
        matrix_heatmap(ax, grid.to_numpy(dtype=float), xticklabels=column_labels,
                       yticklabels=["all descriptors" if f == "all" else f for f in grid.index], vmin=-limit,
                       vmax=limit, cmap="RdBu_r", annot=marks, annot_kws={"fontsize": 8, "fontweight": "bold"},
                       linewidths=0.4 if len(features) <= 40 else 0.0)
        for kind, (hatch, face, _) in UNTESTED.items():
            for i, j in zip(*np.nonzero(_cells(rows, kind, features, columns))):
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="0.45", hatch=hatch, lw=0.0))
        if _ALL in columns and len(columns) > 1:
            ax.axvline(len(columns) - 1, color="0.2", lw=1.2)
        first, _, second = str(contrast).partition("-")
        ax.set_title(f"{contrast}\n{probe} {metric}\n({first} minus {second or 'rest'})", fontsize=9)
        format_matrix_axes(ax, xlabel="layer", ylabel="", show_yticklabels=ax.get_subplotspec().is_first_col())
    fig.supylabel("descriptor")
    colorbar = fig.colorbar(axes[0].collections[0], ax=axes, shrink=0.6, aspect=30)
    colorbar.set_label("estimated difference (first minus second domain)")
    described = []
    for column in ("unit", "test", "correction"):
        if column in stats:
            values = sorted(set(stats[column].dropna().astype(str)) - {""})
            if values:
                described.append(f"{column}: {'; '.join(values)}")
    footer = wrap_to_figure(fig, ".  ".join(described), fontsize=7)
    if footer:
        fig.supxlabel(footer, fontsize=7, ha="center")
    handles = [Patch(facecolor=face, edgecolor="0.45", hatch=hatch, label=label)
               for kind, (hatch, face, label) in UNTESTED.items() if (stats["_status"] == kind).any()]
    if (stats["_status"] == "cannot_reject").any():
        handles.append(Line2D([], [], ls="", marker="$" + CANNOT_REJECT_MARK + "$", color="k", ms=8,
                              label="tested, but cannot reject at alpha (smallest attainable p > alpha)"))
    heading = f"{TITLE} (* p_fdr <= 0.05, ** <= 0.01, *** <= 0.001)"
    statement = cannot_reject_statement(stats)
    title = heading + ("\n" + wrap_to_figure(fig, statement, fontsize=10) if statement else "")
    if handles:  # the legend's title is the figure's title: a suptitle and an outside legend would overlap
        legend = fig.legend(handles=handles, loc="outside upper center", ncols=1, frameon=False, title=title,
                            title_fontsize=10)
        legend.get_title().set_multialignment("center")
        if statement:
            legend.get_title().set_color("#B00000")
    else:
        fig.suptitle(title)
    return fig


def _grid(rows: pd.DataFrame, values: str, features: list[str], columns: list, aggfunc: str) -> pd.DataFrame:
    return (rows.pivot_table(index="feature", columns="_column", values=values, aggfunc=aggfunc, dropna=False)
            .reindex(index=features, columns=columns))


def _cells(rows: pd.DataFrame, status: str, features: list[str], columns: list) -> np.ndarray:
    """Boolean (features x columns): cells whose rows have ``status``."""
    flagged = rows.assign(_hit=(rows["_status"] == status).astype(float))
    return _grid(flagged, "_hit", features, columns, "max").fillna(0.0).to_numpy() > 0


def caption(tables: RunTables) -> str:
    """Return what the contrast map shows and how to read it, with this run's counts."""
    stats = tables.require("stats")
    status = cell_status(stats).value_counts()
    metric = ", ".join(sorted(set(stats["metric"].dropna().astype(str))))
    text = (f"Each panel is one contrast between pretraining domains; a cell is the estimated difference of the "
            f"probe score ({metric}; r2_pooled is the pooled R^2 over all clip domains) between the models of the "
            "first and the second domain, for one descriptor (row) at one layer (column); red: the first domain "
            "scores higher, blue: lower. The last column, 'all layers', holds the mixed-model contrast averaged "
            "over layers, and the last row the contrast across descriptors. Stars mark cells whose "
            "FDR-corrected p (p_fdr) is at most 0.05 / 0.01 / 0.001. No star means the test did not reject; it "
            "is not evidence of no difference: stats.parquet's mde gives the smallest difference each cell "
            "could detect with 80% power.")
    if status.get("identical", 0):
        text += (f" Hatched grey cells ({status['identical']}) are identical for every model by construction "
                 "(the input layer) and were not tested; they are not 'no difference'.")
    if status.get("not_tested", 0):
        text += f" Cross-hatched cells ({status['not_tested']}) had no valid test (the reason is in note)."
    statement = cannot_reject_statement(stats)
    text += (" " + statement) if statement else " Every tested cell's design can reach p <= alpha."
    if "mde" in stats and stats["mde"].notna().any():
        text += f" Median mde over tested cells: {stats['mde'].median():.3g} (score units)."
    return text + " Full table: stats.parquet; summary: stats_summary.txt."


def from_run(tables: RunTables) -> Figure:
    """Return the contrast map of a run's stats.parquet."""
    return contrast_map(tables.require("stats"), order=tables.descriptor_names())
