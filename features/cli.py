"""``audioprobe features``: the descriptor table of a manifest, written to a run folder."""
from __future__ import annotations

import argparse

from .config import DEFAULT_F0_CEILING, DEFAULT_F0_FLOOR, DEFAULT_SR, PITCH_TRACKERS


def _features(args: argparse.Namespace) -> int:
    from ..manifest import default_manifest_path
    from .extract import extract_features

    manifest = args.manifest or default_manifest_path()
    extract_features(manifest, descriptors=args.descriptors, pitch=args.pitch, sr=args.sr, f0_floor=args.f0_floor,
                     f0_ceiling=args.f0_ceiling, n_jobs=args.jobs, scheduler=args.scheduler, run=args.output,
                     force=args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``features`` command."""
    parser = subparsers.add_parser(
        "features", parents=[subparsers.common_parent], help="compute the acoustic descriptors of every clip",
        description="Compute the acoustic descriptors of every clip of a manifest and write features.parquet, "
                    "features_meta.csv, failures.csv and clips.parquet to a run folder (resumable; a stage "
                    "already complete with the same settings is skipped).")
    parser.add_argument("manifest", nargs="?", help="manifest CSV (default: the shipped data_manifest.csv)")
    parser.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder (created when missing)")
    parser.add_argument("--descriptors", nargs="+", metavar="NAME", default=None,
                        help="descriptor or family names (default: all; see features_meta.csv)")
    parser.add_argument("--pitch", choices=PITCH_TRACKERS, default="praat",
                        help="pitch tracker (default: praat, autocorrelation; pyin is ~35x slower)")
    parser.add_argument("--sr", type=int, default=DEFAULT_SR, help=f"analysis rate in Hz (default: {DEFAULT_SR})")
    parser.add_argument("--f0-floor", type=float, default=DEFAULT_F0_FLOOR,
                        help=f"pitch floor in Hz (default: {DEFAULT_F0_FLOOR:g})")
    parser.add_argument("--f0-ceiling", type=float, default=DEFAULT_F0_CEILING,
                        help=f"pitch ceiling in Hz (default: {DEFAULT_F0_CEILING:g})")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="dask scheduler: 'local' or tcp://host:port (default: local processes)")
    parser.add_argument("--force", action="store_true",
                        help="recompute every clip even if the stage is up to date (default: only what is missing)")
    parser.set_defaults(func=_features)
