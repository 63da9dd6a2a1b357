"""The figure registry and :func:`make_all`, which rebuilds every figure of a run from its saved tables."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..contract import FIGURES as FIGURES_DIR
from ..errors import StageError, check_choice
from ..log import logger
from ..runner import resolve_n_jobs
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


#: Seconds each figure took to draw and save at the demo's size (2-core machine): figures are dispatched to the
#: worker processes heaviest first, so that the last one to finish is a light one. Unlisted figures count 1 s.
_DRAW_SECONDS: dict[str, float] = {"layer_profiles_within": 5.5, "layer_profiles": 5.3, "layer_heatmap": 3.3,
                                   "cka_matrix": 2.7, "domain_contrast": 2.1}


#: The run tables a worker process read last, keyed by (run folder, state): the figures of one run that a worker draws
#: share one read of its tables (probes.parquet: ~0.25 s at the demo's size); new results have a new state.
_WORKER_TABLES: dict[tuple[str, str], RunTables] = {}


def _worker_tables(folder: Path, state: str) -> RunTables:
    """Return the tables of the run in ``folder`` in ``state``, read once per worker process."""
    key = (str(folder), state)
    if key not in _WORKER_TABLES:
        _WORKER_TABLES.clear()
        _WORKER_TABLES[key] = RunTables(folder)
    return _WORKER_TABLES[key]


def _draw(tables: RunTables | tuple[Path, str], name: str, formats: tuple[str, ...]
          ) -> tuple[str, list[Path] | str]:
    """Draw figure ``name`` of a run and write its files.

    Run in a worker process, ``tables`` is the run folder and its state, whose tables the worker reads itself.

    Returns
    -------
    name : str
    drawn : list of Path or str
        The files written, or why the figure's input is absent (the caller logs it).

    Raises
    ------
    StageError
        Drawing or saving the figure failed; the message names the figure and the original error.
    """
    tables = tables if isinstance(tables, RunTables) else _worker_tables(*tables)
    try:
        figure = FIGURES[name].build(tables)
        return name, save_figure(figure, tables.run.file(FIGURES_DIR), name, formats=formats)
    except MissingInput as exc:
        return name, str(exc)
    except Exception as exc:
        raise StageError(f"figures: drawing figure {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _draw_all(tables: RunTables, state: str, names: list[str], formats: tuple[str, ...], n_jobs: int
              ) -> Iterator[tuple[str, list[Path] | str]]:
    """:func:`_draw` for each of ``names``, heaviest first, yielded as each finishes.

    In this process when ``n_jobs`` is 1 or there is one figure, else in ``n_jobs`` worker processes (joblib's loky),
    each drawing and saving whole figures, one figure a task.
    """
    names = sorted(names, key=lambda name: -_DRAW_SECONDS.get(name, 1.0))
    if n_jobs == 1 or len(names) < 2:
        yield from (_draw(tables, name, formats) for name in names)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=min(n_jobs, len(names)), backend="loky", batch_size=1,
                        return_as="generator_unordered")
    yield from parallel(delayed(_draw)((tables.run.path, state), name, formats) for name in names)


def make_all(run: Run | str | Path, *, names: Iterable[str] | None = None,
             formats: tuple[str, ...] = ("png", "pdf"), force: bool = False, n_jobs: int | None = None
             ) -> list[Path]:
    """Write every figure of a run to ``RUN/figures/<name>.<format>``, byte-identical on a re-run.

    The ``figures`` stage's unit is one figure: a figure whose files exist and whose inputs (the
    run's tables, activations and stage settings, :meth:`RunTables.state`) have not changed since
    it was drawn is not drawn again; new results redraw every figure. The figures to draw are drawn in
    ``n_jobs`` worker processes (joblib's loky), one whole figure (drawn and saved) a task, the heaviest
    first; each is recorded in ``run.json`` as it finishes.

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
    n_jobs : int, optional, keyword-only
        Worker processes drawing figures: all cores by default (None or -1); 1 draws in this process.

    Returns
    -------
    list of Path
        The figure files of the run's current state (written now or up to date), in registry order.

    Raises
    ------
    StageError
        The run holds the input of no selected figure, or drawing a figure failed (the message names it).
    ParameterError
        An unknown figure name, or ``n_jobs`` not a positive integer, -1 or None.

    Examples
    --------
    >>> from audioprobe.figures import make_all
    >>> paths = make_all("my-run")    # doctest: +SKIP
    """
    tables = RunTables(run)
    run = tables.run
    folder = run.file(FIGURES_DIR)
    selected = list(FIGURES) if names is None else [check_choice("names", n, FIGURES) for n in names]
    n_jobs = resolve_n_jobs(n_jobs)
    formats = tuple(formats)
    state = _state(tables)
    with run.stage(STAGE, config={"names": selected, "formats": list(formats)}, inputs={"state": state},
                   force=force, computes=False) as stage:
        files = {name: [folder / f"{name}.{fmt}" for fmt in formats] for name in selected}
        todo = [name for name in selected if not (stage.unit_done(_unit_key(name, formats), state)
                                                  and all(f.exists() for f in files[name]))]
        for name, drawn in _draw_all(tables, state, todo, formats, n_jobs):
            if isinstance(drawn, str):
                logger.info("figure %s skipped: %s", name, drawn)
                files[name] = []
                continue
            stage.finish_unit(_unit_key(name, formats), state)
        paths = [path for name in selected for path in files[name]]
        n_drawn = sum(bool(files[name]) for name in todo)
        if not paths:
            raise StageError(f"figures: the run {str(run.path)!r} holds the input of none of {selected}; run the "
                             "probe (and compare) stages first")
        stage.complete(n_files=len(paths), n_drawn=n_drawn)
    n_figures = sum(bool(files[name]) for name in selected)
    logger.info("%d figure(s) in %s (%d files): %d drawn now, %d up to date", n_figures, folder, len(paths), n_drawn,
                n_figures - n_drawn)
    return paths
