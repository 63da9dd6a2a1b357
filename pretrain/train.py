"""BYOL-A pretraining of a BYOL-A encoder on one pretraining domain (design.md section 6).

The BYOL loop over a domain's pool: the learner, its loss and step are in :mod:`.byol`, the
run's configuration in :mod:`.config`; this module selects the pool, drives the epochs (alone or
data-parallel), and writes the checkpoint and the training state.

Outputs in ``out_dir``: ``seed<k>.pt``, the online encoder's plain ``state_dict`` (official
parameter names), and ``seed<k>.json``, its sidecar (architecture, d, norm stats, domain,
seed, epochs, pool hashes, loss per epoch and per step, wall time, every training parameter). Training
state (networks, optimiser, loss history, mixup memory) is written atomically after every
epoch to ``state_dir`` (default ``out_dir/seed<k>.state``); a re-run with the same settings
resumes from it, and a re-run with more epochs continues the loss curve.

Run it with ``torchrun --nproc_per_node=N`` for data-parallel training (DDP: NCCL on CUDA,
gloo on CPU): every process takes its share of each global batch, ``batch_size`` being the
batch of one process. Random numbers are derived from ``(seed, epoch)`` (data order) and
``(seed, rank, epoch)`` (augmentations, dropout), so a resumed run repeats the uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import ParameterError, check_choice
from ..log import logger, progress
from ..manifest import sha256_file
from ..models.device import resolve_device
from ..provenance import git_hash
from ..runstore import atomic_path
from .augment import BYOLAugment
from .byol import BYOL, byol_step, make_optimizer
from .config import ARCHS, PretrainConfig
from .data import LogMelPool, pool_sha256, read_manifests, select_pool

__all__ = ["PretrainResult", "pretrain"]

SIDECAR_FORMAT = "audioprobe-byola-pretrain/1"


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes
    ----------
    encoder : nn.Module
        The trained online encoder (on the CPU).
    sidecar : dict
        The content of ``seed<k>.json``.
    weights_path : Path
        ``seed<k>.pt``.
    """

    encoder: nn.Module
    sidecar: dict
    weights_path: Path


@dataclass(frozen=True)
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> _Distributed:
        """Read torchrun's environment; start the process group when there are several processes."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        context = cls(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", 0)))
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        return context

    def mean(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise mean of ``values`` over the processes."""
        if self.world_size == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def _sidecar(config: PretrainConfig, *, pool, data: LogMelPool, augment: BYOLAugment, manifests: Sequence[Path],
             history: dict, world: _Distributed, device: torch.device, steps_per_epoch: int) -> dict[str, Any]:
    hashes = [sha256_file(p) for p in manifests]
    return {
        "format": SIDECAR_FORMAT,
        "arch": config.arch,
        "d": int(config.d),
        "norm_mean": data.mean_,
        "norm_std": data.std_,
        "domain": config.domain,
        "seed": int(config.seed),
        "epochs": len(history["loss_per_epoch"]),
        "loss_per_epoch": history["loss_per_epoch"],
        "loss_per_step": [round(v, 5) for v in history["loss_per_step"]],
        "wall_time_s": round(history["wall_time_s"], 3),
        "pool_manifest_sha256": hashes[0] if len(hashes) == 1 else hashes,
        "pool_selection_sha256": pool_sha256(pool),
        "pool_manifests": [p.name for p in manifests],
        "total_audio_s": float(pool["take_s"].sum()),
        "total_audio_minutes": float(pool["take_s"].sum()) / 60.0,
        "n_clips": int(len(pool)),
        "clips_per_domain_label": {k: int(v) for k, v in pool["domain"].value_counts().sort_index().items()},
        "seconds_per_domain_label": {k: float(v) for k, v in pool.groupby("domain")["take_s"].sum().items()},
        "steps": int(steps_per_epoch * len(history["loss_per_epoch"])),
        "steps_per_epoch": int(steps_per_epoch),
        "global_batch_size": int(config.batch_size * world.world_size),
        "world_size": world.world_size,
        "device": device.type,
        "config": dataclasses.asdict(config),
        "augment": augment.config(),
        "optimizer": "Adam",
        "loss": "symmetric BYOL loss, 2 - 2 cos per ordering, summed (0..8)",
        "torch": torch.__version__,
        "audioprobe_git": git_hash(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def pretrain(manifests: str | Path | Sequence[str | Path], out_dir: str | Path, *, domain: str,
             arch: str = "byola-v1", d: int | None = None, epochs: int = 100, seed: int = 0,
             batch_size: int = 64, lr: float | None = None, ema_decay: float = 0.99, proj_hidden: int = 4096,
             proj_dim: int = 256, mixup_ratio: float | None = None, n_memory: int = 2048,
             fader_gain: float = 1.0, total_s: float | None = None, selection_seed: int = 0,
             precision: str = "bf16", channels_last: bool = True, init_weights: str | Path | None = None,
             device: str = "auto", state_dir: str | Path | None = None) -> PretrainResult:
    """Pretrain a BYOL-A encoder on one domain of a manifest; resume if a state is found.

    Parameters
    ----------
    manifests : path or sequence of paths
        Manifest CSV(s) of the pretraining pool(s); rows are selected by domain (see
        :func:`.data.select_pool`).
    out_dir : str or Path
        Receives ``seed<k>.pt`` and ``seed<k>.json``.
    domain : {'speech', 'nonspeech', 'mixed'}, keyword-only
    arch : {'byola-v1', 'byola-v2'}, keyword-only
    d : int, optional, keyword-only
        Embedding width; default the architecture's (512 for v1, 3072 for v2).
    epochs : int, keyword-only
        Total epochs (a resumed run trains the missing ones).
    seed : int, keyword-only
    batch_size : int, keyword-only
        Crops per process and step.
    lr : float, optional, keyword-only
        Adam learning rate; default BYOL-A's for the architecture (3e-4 v1, 1e-4 v2).
    ema_decay : float, keyword-only
    proj_hidden, proj_dim : int, keyword-only
        Projector / predictor MLP widths (BYOL-A: 4096, 256).
    mixup_ratio : float, optional, keyword-only
        Default BYOL-A's for the architecture (0.4 v1, 0.2 v2).
    n_memory : int, keyword-only
        Mixup memory size.
    fader_gain : float, keyword-only
        Random linear fader gain (0 = off, as in BYOL-A v1).
    total_s : float, optional, keyword-only
        Pool duration (s); default the largest duration matched across the three domains.
    selection_seed : int, keyword-only
        Seed of the pool's clip selection.
    precision : {'fp32', 'bf16'}, keyword-only
        See :func:`.byol.byol_step`; the checkpoint is float32 either way.
    channels_last : bool, keyword-only
        Channels-last memory format for the convolutions.
    init_weights : str or Path, optional, keyword-only
        An encoder ``state_dict`` (``seed<k>.pt`` of an earlier run, same architecture and ``d``)
        to start the online encoder from, for continued pretraining; projector and predictor
        start fresh and the target starts as a copy. Its sha256 is part of the configuration.
    device : str, keyword-only
        ``'auto'`` (CUDA when present), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
    state_dir : str or Path, optional, keyword-only
        Training state folder; default ``out_dir/seed<k>.state``.

    Returns
    -------
    PretrainResult
    """
    spec = ARCHS[check_choice("arch", arch, list(ARCHS))]
    config = PretrainConfig(domain=domain, arch=arch, d=spec.d if d is None else d, epochs=epochs, seed=seed,
                            batch_size=batch_size, lr=spec.lr if lr is None else lr, ema_decay=ema_decay,
                            proj_hidden=proj_hidden, proj_dim=proj_dim,
                            mixup_ratio=spec.mixup_ratio if mixup_ratio is None else mixup_ratio,
                            n_memory=n_memory, fader_gain=fader_gain, total_s=total_s,
                            selection_seed=selection_seed, precision=precision, channels_last=channels_last,
                            init_sha256=None if init_weights is None else sha256_file(init_weights))
    world = _Distributed.from_env()
    device = resolve_device(device, local_rank=world.local_rank)
    out_dir = Path(out_dir)
    state_dir = Path(state_dir) if state_dir is not None else out_dir / f"seed{seed}.state"
    manifest_paths = [Path(manifests)] if isinstance(manifests, (str, Path)) else [Path(p) for p in manifests]

    pool = select_pool(read_manifests(manifest_paths), domain, total_s=total_s, random_state=selection_seed)
    data = LogMelPool(pool, unit_s=config.unit_s, quiet=world.rank != 0).to(device)
    torch.manual_seed(seed)
    encoder = spec.factory(config.d)
    if init_weights is not None:
        encoder.load_state_dict(torch.load(init_weights, map_location="cpu", weights_only=True), strict=True)
    learner = BYOL(encoder, config.d, proj_hidden=proj_hidden, proj_dim=proj_dim, ema_decay=ema_decay).to(device)
    if channels_last:
        learner.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(learner, config.lr)
    augment = BYOLAugment(mixup_ratio=config.mixup_ratio, n_memory=n_memory, fader_gain=fader_gain)
    augment.mixup.to(device)
    history = {"loss_per_epoch": [], "loss_per_step": [], "wall_time_s": 0.0}
    _resume(state_dir, config, learner, optimizer, augment, history, world, device)

    online = learner.online
    if world.world_size > 1:
        online = nn.parallel.DistributedDataParallel(
            learner.online, device_ids=[device.index] if device.type == "cuda" else None)
    learner.train()
    steps_per_epoch = 0
    for epoch in range(len(history["loss_per_epoch"]), config.epochs):
        started = time.perf_counter()
        augment.reseed(np.random.default_rng([seed, world.rank, epoch]))
        torch.manual_seed(int(np.random.default_rng([seed, world.rank, epoch, 1]).integers(2 ** 62)))
        clips, starts = data.epoch_plan([seed, epoch], batch_size=batch_size, world_size=world.world_size)
        steps_per_epoch = len(clips)
        losses = []
        bar = progress(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
                       disable=None if world.rank == 0 else True)
        for step in bar:
            crops = data.crops(clips[step, world.rank], starts[step, world.rank])
            losses.append(byol_step(learner, optimizer, augment, crops, online=online, precision=precision,
                                    channels_last=channels_last))
            if step % 20 == 19:  # reading the loss synchronises a GPU: not every step
                bar.set_postfix(loss=f"{float(torch.stack(losses[-20:]).mean()):.4f}")
        losses = world.mean(torch.stack(losses).tolist(), device)
        elapsed = time.perf_counter() - started
        history["loss_per_step"] += losses
        history["loss_per_epoch"].append(float(np.mean(losses)))
        history["wall_time_s"] += elapsed
        _save_state(state_dir, config, learner, optimizer, augment, history, world)
        logger.info("epoch %d/%d: loss %.4f, %.1f samples/s, %.1f s", epoch + 1, config.epochs,
                    history["loss_per_epoch"][-1], steps_per_epoch * batch_size * world.world_size / elapsed,
                    elapsed)

    encoder = learner.online.encoder
    if steps_per_epoch == 0:  # nothing left to train: the count is still recorded
        steps_per_epoch = len(data.epoch_plan([seed, 0], batch_size=batch_size, world_size=world.world_size)[0])
    sidecar = _sidecar(config, pool=pool, data=data, augment=augment, manifests=manifest_paths, history=history,
                       world=world, device=device, steps_per_epoch=steps_per_epoch)
    weights_path = out_dir / f"seed{seed}.pt"
    if world.rank == 0:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in encoder.state_dict().items()}
        with atomic_path(weights_path) as tmp:
            torch.save(state, tmp)
        sidecar["weights_sha256"] = sha256_file(weights_path)
        with atomic_path(out_dir / f"seed{seed}.json") as tmp:
            tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
        logger.info("wrote %s (%d epochs, final loss %.4f, %.0f s)", weights_path, sidecar["epochs"],
                    history["loss_per_epoch"][-1] if history["loss_per_epoch"] else float("nan"),
                    history["wall_time_s"])
    world.barrier()
    return PretrainResult(encoder=encoder.cpu(), sidecar=sidecar, weights_path=weights_path)


def _save_state(state_dir: Path, config: PretrainConfig, learner: BYOL, optimizer: torch.optim.Optimizer,
                augment: BYOLAugment, history: dict, world: _Distributed) -> None:
    """Each process writes its mixup memory, then process 0 writes networks, optimiser and history."""
    epochs_done = len(history["loss_per_epoch"])
    with atomic_path(state_dir / f"augment.rank{world.rank}.pt") as tmp:
        torch.save({"epochs_done": epochs_done, **augment.mixup.state_dict()}, tmp)
    world.barrier()
    if world.rank == 0:
        with atomic_path(state_dir / "checkpoint.pt") as tmp:
            torch.save({"config": dataclasses.asdict(config), "world_size": world.world_size,
                        "online": learner.online.state_dict(), "target": learner.target.state_dict(),
                        "optimizer": optimizer.state_dict(), "loss_per_epoch": list(history["loss_per_epoch"]),
                        "loss_per_step": list(history["loss_per_step"]),
                        "wall_time_s": history["wall_time_s"]}, tmp)
    world.barrier()


def _resume(state_dir: Path, config: PretrainConfig, learner: BYOL, optimizer: torch.optim.Optimizer,
            augment: BYOLAugment, history: dict, world: _Distributed, device: torch.device) -> None:
    path = state_dir / "checkpoint.pt"
    if not path.is_file():
        return
    state = torch.load(path, map_location=device, weights_only=True)
    saved = PretrainConfig(**state["config"])
    if not saved.resumable_with(config):
        changed = {k: (v, getattr(config, k)) for k, v in dataclasses.asdict(saved).items()
                   if k != "epochs" and getattr(config, k) != v}
        raise ParameterError(f"the training state in {str(state_dir)!r} was made with other settings "
                             f"(saved, asked): {changed}; remove that folder or pass another state_dir")
    learner.online.load_state_dict(state["online"])
    learner.target.load_state_dict(state["target"])
    optimizer.load_state_dict(state["optimizer"])
    history["loss_per_epoch"] = [float(v) for v in state["loss_per_epoch"]]
    history["loss_per_step"] = [float(v) for v in state["loss_per_step"]]
    history["wall_time_s"] = float(state["wall_time_s"])
    aux_path = state_dir / f"augment.rank{world.rank}.pt"
    aux = torch.load(aux_path, weights_only=True) if aux_path.is_file() else None
    if aux is not None and aux["epochs_done"] == len(history["loss_per_epoch"]) \
            and state["world_size"] == world.world_size:
        augment.mixup.load_state_dict(aux)
    else:
        logger.warning("no matching mixup memory for process %d in %s: it restarts empty", world.rank, state_dir)
    logger.info("resuming from %s after %d epoch(s)", path, len(history["loss_per_epoch"]))
