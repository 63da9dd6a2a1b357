"""audioprobe.figures: one module per figure, regenerate-all, and the HTML report.

Every figure is a function from result tables to a matplotlib Figure (``heatmap``,
``profile``, ``contrast``, ``rdm``, ``cka``, ``descriptors``, ``partition``), listed in
:data:`FIGURES`; :func:`make_all` rebuilds all of them from a run folder, byte-stable;
:func:`build_report` writes the run's self-contained ``report.html``.
"""
from .registry import FIGURES, FigureSpec, build_figures, make_all
from .report import Report
from .run_report import build_report, run_report

__all__ = ["FIGURES", "FigureSpec", "build_figures", "make_all", "Report", "build_report", "run_report"]
