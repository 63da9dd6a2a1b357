"""``audioprobe figures`` and ``audioprobe report``: figures and the HTML page from a run's saved tables."""
from __future__ import annotations

import argparse


def _figures(args: argparse.Namespace) -> int:
    from .registry import make_all

    make_all(args.run, names=args.only or None, formats=tuple(args.formats), force=args.force, n_jobs=args.jobs)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .run_report import build_report

    build_report(args.run, output=args.output, force=args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``figures`` and ``report`` commands."""
    common = subparsers.common_parent
    figures = subparsers.add_parser(
        "figures", parents=[common], help="regenerate every figure of a run from its saved tables",
        description="Write RUN/figures/<name>.png and .pdf for every figure whose input the run holds "
                    "(byte-identical on a re-run); figures whose input is absent are skipped with a note.")
    figures.add_argument("run", help="run folder")
    figures.add_argument("--only", nargs="+", metavar="NAME", default=None,
                         help="only these figures (layer_heatmap, layer_profiles, layer_profiles_within, "
                              "domain_contrast, rdm_panels, cka_matrix, descriptor_correlations, variance_partition, "
                              "task_profiles, task_transfer)")
    figures.add_argument("--formats", nargs="+", choices=("png", "pdf"), default=["png", "pdf"],
                         help="file formats (default: png pdf)")
    figures.add_argument("--force", action="store_true", help="redraw every figure even if it is up to date")
    figures.add_argument("-j", "--jobs", type=int, default=None,
                         help="worker processes drawing figures (default: all cores; 1: in this process)")
    figures.set_defaults(func=_figures)
    report = subparsers.add_parser(
        "report", parents=[common], help="write the run's self-contained HTML report",
        description="Write one self-contained HTML page (figures embedded, no external resources) with the "
                    "per-layer tables, the statistics, a methods paragraph from the recorded parameters, the "
                    "failures and the provenance.")
    report.add_argument("run", help="run folder")
    report.add_argument("-o", "--output", default=None, help="output file (default: RUN/report.html)")
    report.add_argument("--force", action="store_true", help="rewrite the page even if it is up to date")
    report.set_defaults(func=_report)
