"""The figure registry and :func:`make_all`, which rebuilds every figure of a run from its saved tables."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..errors import check_choice
from ..log import logger
from ..runstore import Run
from . import cka, contrast, descriptors, heatmap, partition, profile, rdm
from .style import save_figure
from .tables import MissingInput, RunTables

__all__ = ["FigureSpec", "FIGURES", "build_figures", "make_all"]


@dataclass(frozen=True)
class FigureSpec:
    """One registered figure: its file name, title, and the function drawing it from a run's tables."""

    name: str
    title: str
    build: Callable[[RunTables], Figure]


#: Every figure, in the order of the report.
FIGURES: dict[str, FigureSpec] = {
    module.NAME: FigureSpec(module.NAME, module.TITLE, module.from_run)
    for module in (heatmap, profile, contrast, rdm, cka, descriptors, partition)
}


def build_figures(run: Run | str | Path | RunTables, *, names: Iterable[str] | None = None
                  ) -> Iterable[tuple[FigureSpec, Figure]]:
    """Yield ``(spec, figure)`` for each registered figure whose input the run holds.

    A figure whose input is absent is skipped with a logged note, not an error.

    Parameters
    ----------
    run : Run, str, Path or RunTables
        The run folder.
    names : iterable of str, optional, keyword-only
        Figures to build (keys of :data:`FIGURES`); all by default.
    """
    tables = run if isinstance(run, RunTables) else RunTables(run)
    selected = list(FIGURES) if names is None else [check_choice("names", n, FIGURES) for n in names]
    for name in selected:
        spec = FIGURES[name]
        try:
            figure = spec.build(tables)
        except MissingInput as exc:
            logger.info("figure %s skipped: %s", name, exc)
            continue
        yield spec, figure


def make_all(run: Run | str | Path, *, names: Iterable[str] | None = None,
             formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Write every figure of a run to ``RUN/figures/<name>.<format>``, byte-identical on a re-run.

    Parameters
    ----------
    run : Run, str or Path
        The run folder (must exist).
    names : iterable of str, optional, keyword-only
        Figures to make (keys of :data:`FIGURES`); all by default.
    formats : tuple of str, keyword-only
        File formats (``png``, ``pdf``).

    Returns
    -------
    list of Path
        The files written, in registry order.

    Examples
    --------
    >>> from audioprobe.figures import make_all
    >>> paths = make_all("my-run")    # doctest: +SKIP
    """
    tables = RunTables(run)
    folder = tables.run.file("figures")
    paths: list[Path] = []
    for spec, figure in build_figures(tables, names=names):
        paths += save_figure(figure, folder, spec.name, formats=formats)
        logger.debug("figure %s written", spec.name)
    logger.info("%d figure files written to %s", len(paths), folder)
    return paths
