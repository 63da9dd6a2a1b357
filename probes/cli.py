"""``audioprobe probe RUN`` : the probe stage."""
from __future__ import annotations

import argparse


def _probe(args: argparse.Namespace) -> int:
    from .driver import run_probes

    run_probes(args.run, probes=args.probes, cv=args.cv, n_permutations=args.permutations,
               n_bootstraps=args.bootstraps, random_state=args.random_state, models=args.models, layers=args.layers,
               scaling=args.scaling, rdm_metric=args.rdm_metric, rsa_method=args.rsa_method,
               partition_by=args.partition_by, tasks=args.tasks, task_permutations=args.task_permutations,
               n_jobs=args.jobs, force=args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``probe`` command."""
    names = ("ridge", "rsa", "cka", "partition", "transfer", "task")
    probe = subparsers.add_parser(
        "probe", parents=[subparsers.common_parent], help="probe every layer for every descriptor",
        description="Cross-validated ridge, RSA, CKA, variance partitioning and cross-domain transfer of every "
                    "extracted layer against the descriptors, and label read-out tasks (--tasks); writes "
                    "probes.parquet and oof.parquet.")
    probe.add_argument("run", help="run folder with features.parquet and activations/")
    probe.add_argument("--probes", nargs="+", choices=names, default=["ridge", "rsa", "cka"], metavar="PROBE",
                       help=f"probes to run, among {', '.join(names)} (default: ridge rsa cka)")
    probe.add_argument("--cv", type=int, default=5, metavar="K", help="grouped cross-validation folds (default 5)")
    probe.add_argument("--permutations", type=int, default=1999, metavar="N",
                       help="RSA permutations for p-values (default 1999: the smallest p, 1/2000, passes "
                            "Benjamini-Hochberg at q = 0.05 over up to 100 descriptors per layer)")
    probe.add_argument("--bootstraps", type=int, default=500, metavar="N",
                       help="RSA group-bootstrap samples for 95%% CIs (default 500: coverage 95 +- 1 point of "
                            "Monte Carlo error)")
    probe.add_argument("--random-state", type=int, default=0, metavar="N",
                       help="seed of the RSA permutations and bootstraps (default 0)")
    probe.add_argument("--tasks", nargs="+", default=None, metavar="NAME=COLUMN[:GROUP]",
                       help="label read-out tasks on clip columns, grouped by GROUP (default column: group), e.g. "
                            "domain=domain speaker=speaker:chapter; adds the task probe (which without --tasks runs "
                            "the default tasks whose columns the clips have)")
    probe.add_argument("--task-permutations", type=int, default=199, metavar="N",
                       help="permutations of the task p-values, each a whole cross-validation (default 199: "
                            "p down to 0.005, enough for FDR over up to 10 tasks per layer)")
    probe.add_argument("--models", nargs="+", default=None, help="model folders under activations/ (default: all)")
    probe.add_argument("--layers", nargs="+", default=None, help="layer names (default: all)")
    probe.add_argument("--scaling", choices=("center", "standard"), default="center",
                       help="activation scaling of the ridge probes (default: center)")
    probe.add_argument("--rdm-metric", choices=("correlation", "euclidean"), default="correlation",
                       help="RSA: distance between two clips' activation vectors (default: correlation)")
    probe.add_argument("--rsa-method", choices=("spearman", "tau-a"), default="spearman",
                       help="RSA: comparison of the layer and descriptor RDMs, Spearman's rho or Kendall's tau-a "
                            "(default: spearman)")
    probe.add_argument("--partition-by", choices=("family", "descriptor"), default="family",
                       help="descriptor sets of the variance partition (default: family)")
    probe.add_argument("-j", "--jobs", type=int, default=None, help="layers probed at once (default: all cores)")
    probe.add_argument("--force", action="store_true",
                       help="recompute every layer even if it is up to date (default: only new or changed layers)")
    probe.set_defaults(func=_probe)
