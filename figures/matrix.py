"""One heat-map cell grid drawn with matplotlib's ``pcolormesh``, for every matrix figure of audioprobe.

It draws what ``seaborn.heatmap`` drew (cells at integer coordinates, row 0 at the top, tick labels at cell
centres, masked and NaN cells left blank, values or marks written in the cells in a colour readable on their
fill) without seaborn's full-figure draw per call, which it makes to check tick-label overlap: at the demo's
size (10 panels of 60 x 6 cells) those draws took ~12 s of the heat map's ~15 s.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.collections import QuadMesh
from matplotlib.colors import to_rgb

from ..errors import ParameterError

__all__ = ["matrix_heatmap", "text_color"]

#: Relative luminance above which a cell's text is dark (seaborn's rule: ".15" on light cells, white on dark).
LIGHT_CELL = 0.408


def text_color(rgba: Sequence[float]) -> str:
    """Colour of text written on a cell of colour ``rgba``: dark grey on a light cell, white on a dark one.

    Parameters
    ----------
    rgba : sequence of float
        The cell's colour, RGB(A) in [0, 1].

    Notes
    -----
    Relative luminance of sRGB (WCAG 2.0), the rule ``seaborn.heatmap`` uses.
    """
    rgb = np.asarray(to_rgb(tuple(rgba[:3])), dtype=float)
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return ".15" if float(linear @ [0.2126, 0.7152, 0.0722]) > LIGHT_CELL else "w"


def matrix_heatmap(ax, values, *, xticklabels: Sequence[str], yticklabels: Sequence[str], vmin: float,
                   vmax: float, cmap: str = "viridis", mask: np.ndarray | None = None, annot=None, fmt: str = "",
                   annot_kws: dict | None = None, linewidths: float = 0.0, linecolor: str = "white",
                   square: bool = False) -> QuadMesh:
    """Draw ``values`` on ``ax`` as a grid of coloured cells, row 0 at the top; returns the mesh.

    Cell ``(i, j)`` spans ``[j, j + 1] x [i, i + 1]`` in data coordinates (as in ``seaborn.heatmap``), so
    patches and lines can be added on cell boundaries.

    Parameters
    ----------
    ax : matplotlib Axes
    values : array-like of float, shape (n_rows, n_columns)
        Cell values; NaN cells are left blank.
    xticklabels, yticklabels : sequence of str, keyword-only
        One label per column (below) and per row (left), at the cell centres.
    vmin, vmax : float, keyword-only
        Colour limits.
    cmap : str, keyword-only
        matplotlib colormap name.
    mask : array of bool, shape (n_rows, n_columns), optional, keyword-only
        True where a cell is left blank (besides NaN cells).
    annot : bool or array-like, shape (n_rows, n_columns), optional, keyword-only
        True writes each value with ``fmt``; an array writes its entries (empty strings write nothing); nothing
        is written in a blank cell.
    fmt : str, keyword-only
        Format specification of the written entries (e.g. ``".2f"``).
    annot_kws : dict, optional, keyword-only
        Text properties of the written entries (e.g. ``fontsize``).
    linewidths : float, keyword-only
        Width (points) of the lines between cells.
    linecolor : str, keyword-only
        Colour of those lines.
    square : bool, keyword-only
        Square cells.

    Returns
    -------
    QuadMesh
        Its array holds the (masked) values, row by row.

    Raises
    ------
    ParameterError
        ``values`` is not 2-D, or the labels, mask or annotations do not match its shape.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 2:
        raise ParameterError(f"values must have shape (n_rows, n_columns), got shape {data.shape}")
    n_rows, n_columns = data.shape
    if len(xticklabels) != n_columns or len(yticklabels) != n_rows:
        raise ParameterError(f"xticklabels and yticklabels must have {n_columns} and {n_rows} entries (the "
                             f"columns and rows of values), got {len(xticklabels)} and {len(yticklabels)}")
    blank = ~np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ParameterError(f"mask must have the shape of values {data.shape}, got {mask.shape}")
        blank |= mask
    shown = np.ma.masked_where(blank, data)
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
    mesh = ax.pcolormesh(shown, cmap=cmap, vmin=vmin, vmax=vmax, linewidths=linewidths, edgecolor=linecolor)
    ax.set_xlim(0, n_columns)
    ax.set_ylim(n_rows, 0)
    ax.set_xticks(np.arange(n_columns) + 0.5, [str(label) for label in xticklabels])
    ax.set_yticks(np.arange(n_rows) + 0.5, [str(label) for label in yticklabels], va="center")
    if square:
        ax.set_aspect("equal")
    if annot is not None and annot is not False:
        _annotate(ax, mesh, data if annot is True else annot, blank, fmt, annot_kws or {})
    return mesh


def _annotate(ax, mesh: QuadMesh, entries, blank: np.ndarray, fmt: str, annot_kws: dict) -> None:
    """Write ``entries`` (formatted with ``fmt``) at the centre of every non-blank cell, readable on its colour."""
    entries = np.asarray(entries, dtype=object)
    if entries.shape != blank.shape:
        raise ParameterError(f"annot must have the shape of values {blank.shape}, got {entries.shape}")
    colors = mesh.to_rgba(np.ma.getdata(mesh.get_array()).reshape(blank.shape))
    for i, j in zip(*np.nonzero(~blank)):
        text = format(entries[i, j], fmt)
        if text:
            ax.text(j + 0.5, i + 0.5, text, **{"color": text_color(colors[i, j]), "ha": "center",
                                                "va": "center", **annot_kws})
