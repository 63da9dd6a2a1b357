"""The one figure style of audioprobe, and byte-stable saving.

Every figure is drawn inside :func:`figure_style` (fixed rcParams, a bundled font, a fixed
SVG hash salt) and written by :func:`save_figure`, which strips the time stamps and
software strings matplotlib would otherwise write, so regenerating a figure from the same
tables gives the same bytes.
"""
from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..contract import PRETRAIN_DOMAINS
from ..errors import check_choice
from ..runstore import atomic_path

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = ["STYLE", "DOMAIN_COLORS", "DOMAIN_LABELS", "DOMAIN_ORDER", "CLIP_DOMAIN_COLORS", "figure_style",
           "styled", "new_figure", "panel_grid", "REPORT_WIDTH", "MIN_FONTSIZE", "columns_that_fit",
           "wrap_to_figure", "row_height", "tick_fontsize", "format_matrix_axes", "domain_color", "domain_label",
           "save_figure", "figure_bytes", "FORMATS"]

#: rcParams of every audioprobe figure (the font is bundled with matplotlib, so output does not
#: depend on the fonts of the machine).
STYLE: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "figure.titlesize": 11.0,
    "figure.dpi": 100.0,
    "figure.autolayout": False,
    "figure.constrained_layout.use": False,
    "savefig.dpi": 150.0,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "image.cmap": "viridis",
    "svg.hashsalt": "audioprobe",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "path.simplify": True,
}

#: Widest figure, in inches: the report shows figures at most ~1170 px wide, so a figure of 12 in
#: (1800 px at 150 dpi) is shown at 0.65 of its size and 7-point text stays ~9.5 px high on screen
#: (a 19 in figure showed its 5.5-point labels at ~4 px).
REPORT_WIDTH: float = 12.0

#: Smallest font size (points) of any label of a figure.
MIN_FONTSIZE: float = 7.0

#: Order in which pretraining domains are listed: trained domains first, then the control.
DOMAIN_ORDER: tuple[str, ...] = PRETRAIN_DOMAINS

#: Colour of each pretraining domain (Okabe-Ito, colour-blind safe); ``none`` is the
#: random-weight control and unknown models.
DOMAIN_COLORS: dict[str, str] = {
    "speech": "#0072B2",
    "nonspeech": "#D55E00",
    "mixed": "#009E73",
    "none": "#7F7F7F",
}

DOMAIN_LABELS: dict[str, str] = {
    "speech": "speech",
    "nonspeech": "non-speech",
    "mixed": "mixed",
    "none": "random weights / none",
}

#: Colour of each clip domain (the manifest's ``domain``), used to mark clip blocks.
CLIP_DOMAIN_COLORS: dict[str, str] = {
    "speech": "#0072B2",
    "music": "#CC79A7",
    "environmental": "#E69F00",
}

#: File formats written for every figure, with their byte-stable metadata.
FORMATS: dict[str, dict[str, object]] = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def domain_color(domain: str) -> str:
    """Colour of a pretraining domain (grey for an unknown one)."""
    return DOMAIN_COLORS.get(str(domain), DOMAIN_COLORS["none"])


def domain_label(domain: str) -> str:
    """Legend label of a pretraining domain."""
    return DOMAIN_LABELS.get(str(domain), str(domain))


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context in which figures are drawn and saved with the audioprobe style."""
    with matplotlib.rc_context(STYLE):
        yield


def styled(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run the decorated plotting function inside :func:`figure_style` (artists take the style when created)."""
    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with figure_style():
            return func(*args, **kwargs)
    return wrapper


def new_figure(*, width: float, height: float, layout: str = "constrained") -> Figure:
    """Return a figure of ``width`` x ``height`` inches, not registered with pyplot.

    No global state, no backend switch: saving picks the canvas from the file format.

    Parameters
    ----------
    width, height : float, keyword-only
        Size in inches.
    layout : str, keyword-only
        matplotlib layout engine (``constrained`` by default, so labels do not overlap).
    """
    with figure_style():
        fig = Figure(figsize=(width, height), layout=layout)
    # An Agg canvas caches its renderer: text extents measured before saving (the layout in save_figure, a
    # caller's get_window_extent) cost microseconds instead of a full-size renderer per label.
    FigureCanvasAgg(fig)
    return fig


def panel_grid(n_panels: int, *, ncols: int, panel_width: float, panel_height: float,
               extra_width: float = 0.0, extra_height: float = 0.0, sharex: bool = False, sharey: bool = False
               ) -> tuple[Figure, list]:
    """Return a figure with ``n_panels`` axes on a grid of at most ``ncols`` columns; unused cells are removed.

    Parameters
    ----------
    n_panels : int
        Number of axes wanted (at least 1).
    ncols : int, keyword-only
        Maximum number of columns, lowered so the figure fits :data:`REPORT_WIDTH` (one column
        at least); rows are then balanced (7 panels, at most 6 a row: 4 + 3).
    panel_width, panel_height : float, keyword-only
        Size of one panel in inches.
    extra_width, extra_height : float, keyword-only
        Inches added for a shared legend or colour bar.
    sharex, sharey : bool, keyword-only
        Share axes between panels.

    Returns
    -------
    fig : Figure
    axes : list of Axes
        The ``n_panels`` axes in reading order.
    """
    ncols = columns_that_fit(ncols, panel_width=panel_width, extra_width=extra_width)
    nrows = -(-n_panels // max(1, min(ncols, n_panels)))
    ncols = -(-n_panels // nrows)  # balanced rows: 7 panels at most 6 a row -> 4 + 3, not 6 + 1
    fig = new_figure(width=ncols * panel_width + extra_width, height=nrows * panel_height + extra_height)
    with figure_style():
        grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[n_panels:]:
        ax.remove()
    return fig, axes[:n_panels]


def columns_that_fit(ncols: int, *, panel_width: float, extra_width: float = 0.0) -> int:
    """Return the most panels (at least 1, at most ``ncols``) a row of a figure :data:`REPORT_WIDTH` wide can hold.

    Parameters
    ----------
    ncols : int
        Columns wanted.
    panel_width, extra_width : float, keyword-only
        Inches per panel and inches added once (labels, colour bar).
    """
    fit = int((REPORT_WIDTH - extra_width) // panel_width) if panel_width > 0 else ncols
    return max(1, min(ncols, fit))


def row_height(n_rows: int) -> float:
    """Inches per heat-map row (or column) for a matrix of ``n_rows``.

    Roomy for a few, compact for many, always room for a :data:`MIN_FONTSIZE` label (0.1 in).
    """
    return 0.3 if n_rows <= 20 else 0.17


def tick_fontsize(n_ticks: int) -> float:
    """Return the tick-label size in points that keeps ``n_ticks`` labels of a heat map apart.

    Never below :data:`MIN_FONTSIZE`.
    """
    return 8.0 if n_ticks <= 20 else MIN_FONTSIZE


def format_matrix_axes(ax, *, xlabel: str, ylabel: str, show_yticklabels: bool = True) -> None:
    """Label a heat-map axes.

    X tick labels slanted and anchored, y tick labels level, y labels hidden on panels that repeat the first panel's
    rows.
    """
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=45, labelsize=tick_fontsize(len(ax.get_xticks())))
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.tick_params(axis="y", labelrotation=0, labelsize=tick_fontsize(len(ax.get_yticks())),
                   labelleft=show_yticklabels)


def wrap_to_figure(fig: Figure, text: str, *, fontsize: float = 9.0) -> str:
    """``text`` broken into lines that fit the width of ``fig`` at ``fontsize`` points."""
    import textwrap

    characters = max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.wrap(text, characters)) if text else ""


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """Return the bytes of ``fig`` saved as ``fmt`` (``png`` or ``pdf``), without time stamps."""
    check_choice("fmt", fmt, FORMATS)
    buffer = io.BytesIO()
    with figure_style():
        fig.savefig(buffer, format=fmt, metadata=FORMATS[fmt])
    return buffer.getvalue()


def save_figure(fig: Figure, folder: str | Path, name: str, *, formats: tuple[str, ...] = ("png", "pdf")
                ) -> list[Path]:
    """Atomically write ``fig`` to ``folder/name.<fmt>`` for each format; returns the paths.

    The figure's layout (constrained layout) is computed once, at the resolution of the PNG, and serves every
    format: the files show the same arrangement, and a figure of 60 panels is laid out once instead of once per
    format, without the extra full draw ``savefig`` makes to lay a figure out (~1.3 s each at the demo's size).
    Files are rewritten only when their bytes change, so an unchanged figure keeps its
    modification time.
    """
    paths = []
    engine = _lay_out(fig)
    try:
        for fmt in formats:
            data = figure_bytes(fig, fmt)
            target = Path(folder) / f"{name}.{fmt}"
            if not (target.is_file() and target.read_bytes() == data):
                with atomic_path(target) as tmp:
                    tmp.write_bytes(data)
            paths.append(target)
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
    return paths


def _lay_out(fig: Figure):
    """Run ``fig``'s layout engine once at the saving resolution, then detach it; returns it (None without one).

    The axes keep the positions it computed until the engine is set again.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return None
    dpi = fig.get_dpi()
    with figure_style():
        fig.set_dpi(matplotlib.rcParams["savefig.dpi"])
        try:
            engine.execute(fig)
        finally:
            fig.set_dpi(dpi)
        fig.set_layout_engine(None)  # "none" would keep a placeholder engine, and savefig would still pre-draw
    return engine
