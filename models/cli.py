"""``audioprobe`` commands of audioprobe.models: ``models``, ``layers``, ``extract``."""
from __future__ import annotations

import argparse

SPEC_HELP = ("model spec: byola-v1:PATH.pth, byola-v2:PATH.pth, byola-v1:random, byola-v2:random, "
             "module:pkg.mod:factory[:CKPT], or a shipped name such as speech/seed0 (`audioprobe models`)")


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=SPEC_HELP)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of random weights (byola-v*:random) and the recorded model seed")
    parser.add_argument("--domain", default=None, choices=["speech", "nonspeech", "mixed", "none"],
                        help="pretraining domain to record (default: from the checkpoint's sidecar or known "
                             "official checkpoints, else none)")
    parser.add_argument("--norm", nargs=2, type=float, default=None, metavar=("MEAN", "STD"),
                        help="log-mel normalisation stats (default: the checkpoint's sidecar, else the published "
                             "BYOL-A v1 stats -5.4919195 5.0389895)")


def _load(args: argparse.Namespace):
    from .specs import load_model

    norm = args.norm or (None, None)
    return load_model(args.model, random_state=0 if args.seed is None else args.seed, seed=args.seed,
                      pretrain_domain=args.domain, norm_mean=norm[0], norm_std=norm[1],
                      name=getattr(args, "name", None))


def _parse_pooling(items: list[str]) -> str | dict[str, str]:
    from ..errors import ParameterError

    if len(items) == 1 and "=" not in items[0]:
        return items[0]
    pooling: dict[str, str] = {}
    for item in items:
        layer, sep, method = item.rpartition("=")
        if not sep and "*" in pooling:
            raise ParameterError(f"--pooling takes one default method and LAYER=METHOD items, got {items}")
        pooling[layer if sep else "*"] = method
    return pooling


def _models(args: argparse.Namespace) -> int:
    from .specs import shipped_models

    names = shipped_models()
    print("shipped models:", " ".join(names) if names else "(none yet)")
    print("other specs:", SPEC_HELP.split(": ", 1)[1])
    return 0


def _layers(args: argparse.Namespace) -> int:
    import pandas as pd

    from .layers import describe_layers

    loaded = _load(args)
    table = describe_layers(loaded.pipeline, pooling=args.pooling)
    table = table.rename(columns={"receptive_field_ms": "rf_ms", "receptive_field_hz": "rf_hz"})
    columns = ["layer_index", "layer", "kind", "output_shape", "pooled_width", "rf_ms", "rf_hz"]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(f"{loaded.name} ({loaded.spec}); output shape for a 1 s input without the batch axis; "
              f"pooled width with pooling={args.pooling!r}")
        print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.1f}" if abs(v) < 10 else f"{v:.0f}"))
    folded = list(table.loc[table["frames_folded"], "layer"])
    if folded:
        print(f"frames folded into the batch axis (frames_per_clip), unfolded and pooled over frames: {folded}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from .extract import extract_activations

    loaded = _load(args)
    extract_activations(loaded, args.manifest, run=args.output, layers=args.layers,
                        pooling=_parse_pooling(args.pooling), device=args.device, batch_size=args.batch_size,
                        n_jobs=args.jobs, chunk_clips=args.chunk_clips,
                        random_state=0 if args.seed is None else args.seed, force=args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models``, ``layers`` and ``extract`` commands."""
    common = subparsers.common_parent
    models = subparsers.add_parser("models", parents=[common], help="list shipped models and the spec forms")
    models.set_defaults(func=_models)

    layers = subparsers.add_parser(
        "layers", parents=[common], help="list a model's hookable layers",
        description="List the hookable layers of a model: name, kind, output shape for a 1 s input, pooled width, "
                    "receptive field in ms and Hz. Layer 0 (logmel) is the normalised log-mel input.")
    _model_args(layers)
    layers.add_argument("--pooling", default="mean", choices=["mean", "meanmax", "tf-mean", "none"],
                        help="pooling for the pooled-width column (default mean)")
    layers.set_defaults(func=_layers)

    extract = subparsers.add_parser(
        "extract", parents=[common], help="extract pooled activations of a model to RUN/activations/",
        description="Run a model on every clip and write one zarr array per layer under "
                    "RUN/activations/<name>/ (rows in clips.parquet order), layers.csv and model.json. "
                    "Clips shorter than 0.95 s are zero-padded to it; longer clips run whole. A killed run "
                    "resumes from its last completed chunk.")
    _model_args(extract)
    extract.add_argument("manifest", nargs="?", default=None,
                         help="manifest CSV (default: the run's clips, else the shipped data_manifest.csv)")
    extract.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder")
    extract.add_argument("--name", default=None, help="folder name under activations/ (default: from the spec)")
    extract.add_argument("--layers", nargs="+", default=None,
                         help="layer names (default: the model's default layers; see `audioprobe layers`)")
    extract.add_argument("--pooling", nargs="+", default=["mean"],
                         help="mean (default), meanmax, tf-mean or none for all layers, and/or LAYER=METHOD items")
    extract.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                         help="auto (default): CUDA when present")
    extract.add_argument("--batch-size", type=int, default=None, help="clips per batch (default 32 CPU, 128 CUDA)")
    extract.add_argument("--chunk-clips", type=int, default=64,
                         help="rows per zarr chunk and per completed-chunk record (default 64)")
    extract.add_argument("-j", "--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    extract.add_argument("--force", action="store_true",
                         help="extract every clip again even if the model's activations are up to date")
    extract.set_defaults(func=_extract)
