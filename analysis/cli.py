"""``audioprobe compare RUN``: the domain-comparison stage (writes stats.parquet and stats_summary.txt)."""
from __future__ import annotations

import argparse


def _compare(args: argparse.Namespace) -> int:
    from .stage import compare_run

    compare_run(args.run, unit=args.unit, contrasts=args.contrast, alpha=args.alpha,
                n_permutations=args.permutations, n_bootstraps=args.bootstraps, metric=args.metric, probe=args.probe,
                mixed=not args.no_mixed, random_state=args.random_state, seed_test=args.seed_test,
                power_delta=args.power, force=args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` command."""
    parser = subparsers.add_parser(
        "compare", parents=[subparsers.common_parent],
        help="compare layers' encoding between pretraining domains (calibrated tests, FDR)",
        description="Test whether models pretrained on speech, nonspeech and mixed audio differ in how well each "
                    "layer encodes each descriptor. Several seeds per domain: Student t-tests of the seeds' scores "
                    "(or permutation of domain labels) and mixed-effects models (seed as unit), with the smallest "
                    "difference detectable at 80%% power. One model per domain: paired wild cluster bootstrap of "
                    "the R^2 difference over groups of clips (inference limited to those models). "
                    "Benjamini-Hochberg FDR within each contrast. Writes stats.parquet and stats_summary.txt.")
    parser.add_argument("run", metavar="RUN", help="run folder with probes.parquet (and oof.parquet for --unit clip)")
    parser.add_argument("--unit", choices=("seed", "clip", "auto"), default="auto",
                        help="unit of inference: seed, clip, or auto = seed with 2+ models per domain, else clip "
                             "(default auto)")
    parser.add_argument("--contrast", action="append", default=None, metavar="A-B",
                        help="domain contrast such as speech-nonspeech (repeatable; default: every pair present)")
    parser.add_argument("--seed-test", choices=("t", "permutation"), default="t",
                        help="per-cell test across seeds: t = Student t (can reject with 3 vs 3 seeds), permutation = "
                             "exact/Monte-Carlo label permutation (smallest p 0.1 with 3 vs 3) (default t)")
    parser.add_argument("--permutations", type=int, default=10000, metavar="N",
                        help="maximum permutations per test of --seed-test permutation; exact enumeration when fewer "
                             "exist (default 10000)")
    parser.add_argument("--power", type=float, default=None, metavar="DELTA",
                        help="power analysis: seeds per domain needed to detect a difference DELTA (score units) "
                             "with 80%% power, per cell (column seeds_needed, summary)")
    parser.add_argument("--bootstraps", type=int, default=9999, metavar="N",
                        help="bootstrap resamples for --unit clip intervals (default 9999)")
    parser.add_argument("--alpha", type=float, default=0.05, metavar="A",
                        help="interval level 1-A and FDR level for the summary (default 0.05)")
    parser.add_argument("--metric", default="r2_pooled", help="probe metric compared (default r2_pooled)")
    parser.add_argument("--probe", default="ridge", help="probe compared (default ridge)")
    parser.add_argument("--no-mixed", action="store_true", help="skip the mixed-effects models (--unit seed)")
    parser.add_argument("--random-state", type=int, default=0, metavar="N",
                        help="seed of the permutations and bootstraps (default 0)")
    parser.add_argument("--force", action="store_true", help="recompute even if the stage is up to date")
    parser.set_defaults(func=_compare)
