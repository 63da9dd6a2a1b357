"""``audioprobe run STUDY.toml`` and ``audioprobe demo``."""
from __future__ import annotations

import argparse
import time


def _scale_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="dask scheduler for per-clip work: 'local' or tcp://host:port")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="where networks run (default: the study's extract.device, auto = CUDA when present)")


def _run(args: argparse.Namespace) -> int:
    from .log import logger
    from .study import run_study

    start = time.perf_counter()
    folder = run_study(args.study, output=args.output, n_jobs=args.jobs, scheduler=args.scheduler, device=args.device)
    logger.info("study finished in %.0f s: %s (open %s)", time.perf_counter() - start, folder,
                folder / "report.html")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .log import logger
    from .study import demo_study, run_study

    start = time.perf_counter()
    folder = run_study(demo_study(), output=args.output, n_jobs=args.jobs, scheduler=args.scheduler,
                       device=args.device)
    logger.info("demo finished in %.0f s: open %s", time.perf_counter() - start, folder / "report.html")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``demo`` commands."""
    common = subparsers.common_parent
    run = subparsers.add_parser("run", parents=[common], help="run a whole study from a TOML file",
                                description="Run descriptors, activations, probes, statistics, figures and the "
                                            "report of a study file into one run folder; re-running resumes.")
    run.add_argument("study", help="study file (see study.example.toml)")
    run.add_argument("-o", "--output", default=None, metavar="RUN", help="run folder (default: study.output)")
    _scale_args(run)
    run.set_defaults(func=_run)
    demo = subparsers.add_parser("demo", parents=[common], help="the whole pipeline on the shipped corpus and models",
                                 description="Probe the shipped speech, non-speech and mixed BYOL-A models and a "
                                             "random-weight control on the shipped corpus, compare the domains, "
                                             "and write figures and report.html.")
    demo.add_argument("-o", "--output", default="demo-run", metavar="RUN", help="run folder (default: demo-run)")
    _scale_args(demo)
    demo.set_defaults(func=_demo)
