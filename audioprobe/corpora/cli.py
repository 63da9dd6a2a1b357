"""``audioprobe corpus ...`` commands."""
from __future__ import annotations

import argparse


def _check(args: argparse.Namespace) -> int:
    from ..log import logger
    from ..manifest import check_manifest, default_manifest_path

    path = args.manifest or default_manifest_path()
    problems = check_manifest(path, n_jobs=args.jobs)
    for line in problems:
        print(line)
    if problems:
        logger.error("%s: %d problem(s)", path, len(problems))
        return 1
    logger.info("%s: all clips present, decodable and consistent with the manifest", path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``corpus`` command group."""
    common = subparsers.common_parent
    corpus = subparsers.add_parser("corpus", help="check, build and adapt clip manifests",
                                   description="Check, build and adapt clip manifests.")
    sub = corpus.add_subparsers(dest="corpus_command", metavar="<corpus command>", required=True)
    check = sub.add_parser("check", parents=[common], help="validate a manifest and every file it names")
    check.add_argument("manifest", nargs="?", help="manifest CSV (default: the shipped data_manifest.csv)")
    check.add_argument("-j", "--jobs", type=int, default=None, help="threads (default: all cores)")
    check.set_defaults(func=_check)
