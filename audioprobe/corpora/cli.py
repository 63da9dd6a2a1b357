"""``audioprobe corpus ...`` commands: check a manifest, build the default corpus and the pools, adapt datasets."""
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


def _build_pools(args: argparse.Namespace) -> int:
    from .pools import build_pools

    build_pools(args.output, minutes=args.minutes, crop_s=args.crop_seconds, min_crop_s=args.min_crop_seconds,
                n_jobs=args.jobs)
    return 0


def _build_default(args: argparse.Namespace) -> int:
    import time

    from ..log import logger
    from .default import build_default

    t0 = time.perf_counter()
    build_default(args.output, manifest=args.manifest, n_jobs=args.jobs)
    logger.info("built in %.1f s", time.perf_counter() - t0)
    return 0


def _from_dataset(args: argparse.Namespace) -> int:
    from .adapters import from_dataset

    from_dataset(args.kind, args.root, args.output, n_jobs=args.jobs)
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

    default = sub.add_parser(
        "build-default", parents=[common], help="rebuild the default corpus from the installed Debian packages",
        description="Rebuild the default corpus (100 speech, 100 music, 100 environmental clips of 2.0 s, 16 kHz "
                    "FLAC) from the installed Debian packages: OUT/clips/, OUT/licenses/ and the manifest. The "
                    "shipped corpus is `audioprobe corpus build-default -o corpus --manifest data_manifest.csv` "
                    "run in the repository root.")
    default.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder for clips/ and licenses/")
    default.add_argument("--manifest", default=None, help="manifest path (default: OUT/data_manifest.csv)")
    default.add_argument("-j", "--jobs", type=int, default=None, help="decoding threads (default: all cores)")
    default.set_defaults(func=_build_default)

    pools = sub.add_parser(
        "build-pools", parents=[common], help="build speech / non-speech / mixed pretraining pools",
        description="Build a speech pool and a non-speech pool (environmental + music) of N minutes each from "
                    "the installed Debian packages, disjoint by source from the default corpus, plus mixed.csv "
                    "(N/2 minutes of each). Writes OUT/speech.csv, OUT/nonspeech.csv, OUT/mixed.csv and the "
                    "FLAC crops they name.")
    pools.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    pools.add_argument("--minutes", type=float, required=True, help="minutes of audio per pool")
    pools.add_argument("--crop-seconds", type=float, default=2.0, help="longest crop (s, default 2.0)")
    pools.add_argument("--min-crop-seconds", type=float, default=0.5, help="shortest crop (s, default 0.5)")
    pools.add_argument("-j", "--jobs", type=int, default=None, help="decoding threads (default: all cores)")
    pools.set_defaults(func=_build_pools)

    adapt = sub.add_parser(
        "from-dataset", parents=[common], help="write a manifest for a dataset in its own layout",
        description="Write a manifest for LibriSpeech, VCTK, ESC-50, UrbanSound8K, FSD50K, AudioSet, NSynth or a "
                    "folder-per-domain tree (ROOT/speech, ROOT/music, ROOT/environmental), with groups and splits "
                    "as the dataset's authors intend. Paths are written relative to the manifest's folder.")
    adapt.add_argument("kind", help="dataset layout: librispeech, vctk, esc50, urbansound8k, fsd50k, audioset, "
                                    "nsynth or folders")
    adapt.add_argument("root", help="the dataset's top folder")
    adapt.add_argument("-o", "--output", required=True, help="manifest CSV to write")
    adapt.add_argument("-j", "--jobs", type=int, default=None, help="threads for hashing (default: all cores)")
    adapt.set_defaults(func=_from_dataset)
