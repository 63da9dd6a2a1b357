"""``audioprobe pretrain`` and ``audioprobe pretrain-shipped``: BYOL-A pretraining from the command line.

Run either under ``torchrun --nproc_per_node=N -m audioprobe pretrain ...`` for data-parallel
training. On a CUDA device, ``audioprobe pretrain-shipped POOLS/speech.csv POOLS/nonspeech.csv
--work WORK --device cuda`` trains all nine shipped models in one command, in bf16 autocast, with
the pool's log-mels, the crops, the augmentations and the mixup memory on the device.
"""
from __future__ import annotations

import argparse


def _pretrain(args: argparse.Namespace) -> int:
    from .train import pretrain

    pretrain(args.manifests, args.output, domain=args.domain, arch=args.arch, d=args.d, epochs=args.epochs,
             seed=args.seed, batch_size=args.batch_size, lr=args.lr, ema_decay=args.ema_decay,
             proj_hidden=args.proj_hidden, proj_dim=args.proj_dim, mixup_ratio=args.mixup_ratio,
             n_memory=args.n_memory, fader_gain=args.fader_gain,
             total_s=None if args.minutes is None else 60.0 * args.minutes, selection_seed=args.selection_random_state,
             precision=args.precision, channels_last=args.channels_last, init_weights=args.init,
             device=args.device, state_dir=args.state_dir)
    return 0


def _pretrain_shipped(args: argparse.Namespace) -> int:
    from .shipped import pretrain_shipped

    pretrain_shipped(args.manifests, out_dir=args.output, work_dir=args.work, domains=args.domains, seeds=args.seeds,
                     init_dir=args.init, device=args.device)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``pretrain`` and ``pretrain-shipped``."""
    from .recipe import SHIPPED_DOMAINS, SHIPPED_SEEDS, TRAINABLE_DOMAINS

    common = subparsers.common_parent
    p = subparsers.add_parser(
        "pretrain", parents=[common], help="pretrain a BYOL-A encoder on speech, non-speech or mixed audio",
        description="Pretrain a BYOL-A encoder (BYOL on two augmented views of 0.95 s log-mel crops) on the "
                    "rows of one pretraining domain. Writes DIR/seed<k>.pt (encoder state_dict) and "
                    "DIR/seed<k>.json (sidecar); a re-run resumes from DIR/seed<k>.state. Under torchrun it "
                    "trains data-parallel.")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST", help="manifest CSV(s) of the pretraining pool")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--domain", required=True, choices=TRAINABLE_DOMAINS,
                   help="speech; nonspeech (half music, half environmental); mixed (half speech)")
    p.add_argument("--arch", default="byola-v1", choices=["byola-v1", "byola-v2"], help="encoder (default %(default)s)")
    p.add_argument("--d", type=int, default=None, help="embedding width (default: 512 for v1, 3072 for v2)")
    p.add_argument("--epochs", type=int, default=100, help="total epochs (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="model seed (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="crops per process and step (default %(default)s)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 3e-4 v1, 1e-4 v2)")
    p.add_argument("--ema-decay", type=float, default=0.99, help="target EMA decay (default %(default)s)")
    p.add_argument("--proj-hidden", type=int, default=4096, help="projector/predictor hidden width "
                   "(default %(default)s)")
    p.add_argument("--proj-dim", type=int, default=256, help="projection width (default %(default)s)")
    p.add_argument("--mixup-ratio", type=float, default=None, help="mixup ratio (default: 0.4 v1, 0.2 v2)")
    p.add_argument("--n-memory", type=int, default=2048, help="mixup memory size (default %(default)s)")
    p.add_argument("--fader-gain", type=float, default=1.0, help="random linear fader gain, 0 = off "
                   "(default %(default)s)")
    p.add_argument("--minutes", type=float, default=None,
                   help="pool duration in minutes (default: the largest matched across the three domains)")
    p.add_argument("--selection-random-state", type=int, default=0, help="seed of the pool's clip selection "
                   "(default %(default)s)")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"],
                   help="bf16: forward and backward under bfloat16 autocast (default %(default)s)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="channels-last memory format for the convolutions (default: on)")
    p.add_argument("--init", default=None, metavar="PT", help="continue pretraining from this encoder state_dict")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--state-dir", default=None, help="training state folder (default DIR/seed<k>.state)")
    p.set_defaults(func=_pretrain)

    s = subparsers.add_parser(
        "pretrain-shipped", parents=[common], help="reproduce the shipped speech/nonspeech/mixed BYOL-A models",
        description="Train the shipped models (every domain x seed) with the shipped recipe "
                    "(audioprobe.pretrain.recipe.SHIPPED_RECIPE) on the pools' manifests.")
    s.add_argument("manifests", nargs="+", metavar="MANIFEST", help="pool manifest CSV(s), e.g. from "
                   "`audioprobe corpus build-pools`")
    s.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="weights folder (default: the package's models/weights)")
    s.add_argument("--work", required=True, metavar="DIR", help="training state folder (a re-run resumes from it)")
    s.add_argument("--domains", nargs="+", default=list(SHIPPED_DOMAINS), choices=TRAINABLE_DOMAINS)
    s.add_argument("--seeds", nargs="+", type=int, default=list(SHIPPED_SEEDS))
    s.add_argument("--init", default=None, metavar="DIR",
                   help="continue pretraining from DIR/<domain>/seed<k>.pt (e.g. a copy of earlier weights)")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    s.set_defaults(func=_pretrain_shipped)
