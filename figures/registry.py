"""The figure registry and :func:`make_all`, which rebuilds every figure of a run from its saved tables."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..contract import FIGURES as FIGURES_DIR
from ..errors import StageError, check_choice
from ..log import logger
from ..runstore import Run, fingerprint
from . import (
    cka,
    contrast,
    descriptors,
    heatmap,
    partition,
    profile,
    rdm,
    task,
    task_transfer,
    within,
)
from .style import save_figure
from .tables import MissingInput, RunTables

__all__ = ["FigureSpec", "FIGURES", "STAGE", "build_figures", "drawn_file", "make_all"]

STAGE = "figures"


@dataclass(frozen=True)
class FigureSpec:
    """One registered figure.

    Its file name, title, the function drawing it from a run's tables, and the function writing its caption (what it
    shows and how to read it) from the same tables.
    """

    name: str
    title: str
    build: Callable[[RunTables], Figure]
    caption: Callable[[RunTables], str]


#: Every figure, in the order of the report.
FIGURES: dict[str, FigureSpec] = {
    module.NAME: FigureSpec(module.NAME, module.TITLE, module.from_run, module.caption)
    for module in (heatmap, profile, within, contrast, rdm, cka, descriptors, partition, task, task_transfer)
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


def _unit_key(name: str, formats: Iterable[str]) -> str:
    return f"{name}[{','.join(formats)}]"


def _state(tables: RunTables) -> str:
    return fingerprint(tables.state())


def drawn_file(tables: RunTables, name: str, fmt: str = "png") -> Path | None:
    """Return the file of figure ``name`` in format ``fmt`` when :func:`make_all` drew it from the current state.

    Such a file need not be drawn again (e.g. for the report); None otherwise.
    """
    units = tables.run.stage_record(STAGE).get("units", {})
    state = _state(tables)
    path = tables.run.file(FIGURES_DIR) / f"{name}.{fmt}"
    drawn = any(key.startswith(f"{name}[") and fmt in key[len(name) + 1:-1].split(",") and value == state
                for key, value in units.items())
    return path if drawn and path.is_file() else None


def make_all(run: Run | str | Path, *, names: Iterable[str] | None = None,
             formats: tuple[str, ...] = ("png", "pdf"), force: bool = False) -> list[Path]:
    """Write every figure of a run to ``RUN/figures/<name>.<format>``, byte-identical on a re-run.

    The ``figures`` stage's unit is one figure: a figure whose files exist and whose inputs (the
    run's tables, activations and stage settings, :meth:`RunTables.state`) have not changed since
    it was drawn is not drawn again; new results redraw every figure.

    Parameters
    ----------
    run : Run, str or Path
        The run folder (must exist).
    names : iterable of str, optional, keyword-only
        Figures to make (keys of :data:`FIGURES`); all by default.
    formats : tuple of str, keyword-only
        File formats (``png``, ``pdf``).
    force : bool, keyword-only
        Redraw every figure, even those up to date.

    Returns
    -------
    list of Path
        The figure files of the run's current state (written now or up to date), in registry order.

    Raises
    ------
    StageError
        The run holds the input of no selected figure.

    Examples
    --------
    >>> from audioprobe.figures import make_all
    >>> paths = make_all("my-run")    # doctest: +SKIP
    """
    tables = RunTables(run)
    run = tables.run
    folder = run.file(FIGURES_DIR)
    selected = list(FIGURES) if names is None else [check_choice("names", n, FIGURES) for n in names]
    state = _state(tables)
    paths: list[Path] = []
    with run.stage(STAGE, config={"names": selected, "formats": list(formats)}, inputs={"state": state},
                   force=force, computes=False) as stage:
        n_drawn = 0
        for name in selected:
            files = [folder / f"{name}.{fmt}" for fmt in formats]
            key = _unit_key(name, formats)
            if stage.unit_done(key, state) and all(f.exists() for f in files):
                paths += files
                continue
            built = list(build_figures(tables, names=[name]))
            if not built:
                continue
            paths += save_figure(built[0][1], folder, name, formats=formats)
            stage.finish_unit(key, state)
            n_drawn += 1
        if not paths:
            raise StageError(f"figures: the run {str(run.path)!r} holds the input of none of {selected}; run the "
                             "probe (and compare) stages first")
        stage.complete(n_files=len(paths), n_drawn=n_drawn)
    logger.info("%d figure files in %s (%d figure(s) drawn now, the rest up to date)", len(paths), folder, n_drawn)
    return paths
