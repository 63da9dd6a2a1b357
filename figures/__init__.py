"""audioprobe.figures: one module per figure, regenerate-all, and the HTML report.

Every figure is a function from result tables to a matplotlib Figure (``heatmap``,
``profile``, ``contrast``, ``rdm``, ``cka``, ``descriptors``, ``partition``), listed in
:data:`FIGURES`; :func:`make_all` rebuilds all of them from a run folder, byte-stable;
:func:`build_report` writes the run's self-contained ``report.html``.

Names are imported on first use, so that ``audioprobe --help`` does not load matplotlib.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {"FIGURES": "registry", "FigureSpec": "registry", "build_figures": "registry", "make_all": "registry",
          "Report": "report", "build_report": "run_report", "run_report": "run_report"}

__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
