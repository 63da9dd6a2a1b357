"""Descriptor correlation matrix: Spearman correlation between descriptors across clips."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParameterError
from .matrix import matrix_heatmap
from .style import format_matrix_axes, new_figure, styled
from .tables import RunTables, descriptor_columns

__all__ = ["NAME", "TITLE", "caption", "descriptor_correlations", "descriptor_correlation_plot", "from_run"]

NAME = "descriptor_correlations"
TITLE = "Descriptor correlations across clips (Spearman)"


def descriptor_correlations(features: pd.DataFrame, *, min_periods: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman correlation between every pair of descriptors, over the clips where both are defined.

    Parameters
    ----------
    features : pd.DataFrame
        features.parquet (descriptor columns are the float columns besides ``clip_id`` and
        the frame counts).
    min_periods : int, keyword-only
        Minimum number of clips with both values; fewer gives NaN.

    Returns
    -------
    rho : pd.DataFrame, shape (n_descriptors, n_descriptors)
    n : pd.DataFrame, shape (n_descriptors, n_descriptors)
        Number of clips behind each coefficient.
    """
    columns = descriptor_columns(features)
    if len(columns) < 2:
        raise ParameterError(f"features must hold at least two descriptor columns, got {columns}")
    values = features[columns].astype(float)
    rho = values.corr(method="spearman", min_periods=min_periods)
    defined = values.notna().to_numpy(dtype=float)
    n = pd.DataFrame(defined.T @ defined, index=columns, columns=columns).astype(int)
    return rho, n


@styled
def descriptor_correlation_plot(features: pd.DataFrame, *, order: list[str] | None = None) -> Figure:
    """Heat map of the Spearman correlations between descriptors (lower triangle, annotated).

    Parameters
    ----------
    features : pd.DataFrame
        features.parquet.
    order : list of str, optional, keyword-only
        Descriptor order (e.g. grouped by family); the table's column order by default.
    """
    rho, n = descriptor_correlations(features)
    if order is not None:
        order = [c for c in order if c in rho.index] + [c for c in rho.index if c not in order]
        rho = rho.loc[order, order]
        n = n.loc[order, order]
    k = len(rho)
    label_width = 0.07 * max(len(c) for c in rho.index)
    size = 1.0 + (0.5 if k <= 20 else 0.15) * k
    fig = new_figure(width=size + label_width + 1.6, height=size + label_width + 0.8)
    ax = fig.add_subplot()
    mask = np.triu(np.ones((k, k), dtype=bool), k=1)
    mesh = matrix_heatmap(ax, rho.to_numpy(dtype=float), xticklabels=list(rho.columns), yticklabels=list(rho.index),
                          mask=mask, vmin=-1, vmax=1, cmap="RdBu_r", square=True, annot=k <= 20, fmt=".2f",
                          annot_kws={"fontsize": 7}, linewidths=0.5 if k <= 40 else 0.0)
    colorbar = fig.colorbar(mesh, ax=ax, shrink=0.6)
    colorbar.set_label("Spearman rho")
    colorbar.outline.set_linewidth(0)
    format_matrix_axes(ax, xlabel="descriptor", ylabel="descriptor")
    off = n.to_numpy()[~np.eye(k, dtype=bool)]
    ax.set_title(f"{TITLE}\npairwise complete clips: {off.min()}-{off.max()} of {len(features)}")
    return fig


def from_run(tables: RunTables) -> Figure:
    """Return the descriptor correlation matrix of a run, descriptors in features_meta.csv order."""
    features = tables.require("features")
    return descriptor_correlation_plot(features, order=tables.descriptor_names())


def caption(tables: RunTables) -> str:
    """Return what the descriptor correlation matrix shows and how to read it."""
    n = len(tables.require("features"))
    return (f"Spearman correlation between every pair of descriptors across the run's {n} clips with descriptors "
            "(lower triangle; red positive, blue negative), each over the clips where both are defined (the "
            "title gives the range of those counts). Strongly correlated descriptors cannot be told apart by "
            "the probes: a layer that encodes one scores on the other too (see the variance partition).")
