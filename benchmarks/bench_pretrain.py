"""Throughput of one full BYOL-A training step, before and after the fast loop (issue 16).

The step: cut a batch of crops from the pool's log-mels, make two augmented views (mixup with
the memory, random resize crop, linear fader), standardise them, forward the online and target
networks, back-propagate the symmetric BYOL loss, Adam, EMA of the target.

- **before**: the loop as it was: the resize crop interpolated one example at a time, the
  mixup memory re-concatenated every step, fp32, channels-first, Adam with its default
  (for-each) kernel, the EMA one parameter at a time.
- **after**: :func:`audioprobe.pretrain.byol.byol_step` with batched augmentations, bf16
  autocast, channels-last, fused Adam and EMA; then each part of that step timed alone.

Both run on the same synthetic log-mel pool, batch and model (BYOL-A v1 d = 512 with the
shipped recipe's projector), in one process, interleaved, so that the machine's load affects
both alike. Prints samples/s (crops per second) and the ratio.

Usage::

    python benchmarks/bench_pretrain.py [--batch-size 32] [--steps 6] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from audioprobe.models.byola import AudioNTT2020
from audioprobe.pretrain.augment import BYOLAugment, log_mixup_exp, standardize_batch
from audioprobe.pretrain.byol import BYOL, byol_step, make_optimizer
from audioprobe.pretrain.recipe import SHIPPED_RECIPE


class _Pool:
    """Random log-mels of ``n_clips`` clips of 2-4 s; crops cut as :meth:`LogMelPool.crops` cuts them."""

    def __init__(self, n_clips: int, rng: np.random.Generator):
        lengths = rng.integers(200, 400, size=n_clips)
        self.log_mels = [torch.from_numpy(rng.standard_normal((64, n)).astype(np.float32)) for n in lengths]
        self.room = lengths - 96

    def plan(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        clips = rng.integers(0, len(self.log_mels), size=batch)
        return clips, (rng.random(batch) * (self.room[clips] + 1)).astype(int)

    def crops(self, clips: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        return torch.stack([self.log_mels[c][:, s:s + 96] for c, s in zip(clips, starts)]).unsqueeze(1)


class _PreviousAugment:
    """The augmentation chain as it was: same random boxes, but a loop over examples and a concatenated memory."""

    def __init__(self, fast: BYOLAugment):
        self.fast = fast  # borrows its parameters and generator
        self.memory = torch.empty(0)

    def _one_view(self, x: torch.Tensor) -> torch.Tensor:
        mixup, crop, rng = self.fast.mixup, self.fast.crop, self.fast.mixup.rng
        if self.memory.numel():
            alpha = torch.as_tensor(mixup.ratio * rng.random(len(x)), dtype=x.dtype).view(-1, 1, 1, 1)
            background = self.memory[torch.as_tensor(rng.integers(0, len(self.memory), size=len(x)))]
            x = log_mixup_exp(x, background, 1.0 - alpha)
        n_f, n_t = x.shape[-2:]
        canvas_t = int(n_t * crop.virtual_crop_scale[1])
        canvas = F.pad(x, ((canvas_t - n_t) // 2, canvas_t - n_t - (canvas_t - n_t) // 2))
        out = torch.empty_like(x)
        for i, (top, left, h, w) in enumerate(crop.crop_boxes(len(x), (n_f, canvas_t), (n_f, n_t))):
            out[i] = F.interpolate(canvas[i:i + 1, :, top:top + h, left:left + w], size=(n_f, n_t), mode="bicubic",
                                   align_corners=True)[0]
        return self.fast.fader(out)

    def views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        views = self._one_view(x), self._one_view(x)
        self.memory = torch.cat([self.memory, x])[-self.fast.mixup.n_memory:] if self.memory.numel() else x
        return views


def _previous_step(learner: BYOL, optimizer: torch.optim.Optimizer, augment: _PreviousAugment,
                   crops: torch.Tensor) -> None:
    batch = crops.shape[0]
    views = standardize_batch(torch.cat(augment.views(crops)))
    loss = learner.loss(views[:batch], views[batch:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        online = torch.nn.Sequential(learner.online.encoder, learner.online.projector)
        for t, o in zip(learner.target.parameters(), online.parameters()):
            t.mul_(learner.ema_decay).add_(o.detach(), alpha=1.0 - learner.ema_decay)


def _seconds(func: Callable[[], object], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        func()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=SHIPPED_RECIPE["batch_size"])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="before/after alternations")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pool = _Pool(200, rng)
    torch.manual_seed(0)
    base = BYOL(AudioNTT2020(d=SHIPPED_RECIPE["d"]), SHIPPED_RECIPE["d"], proj_hidden=SHIPPED_RECIPE["proj_hidden"],
                proj_dim=SHIPPED_RECIPE["proj_dim"], ema_decay=SHIPPED_RECIPE["ema_decay"])
    before_learner, after_learner = copy.deepcopy(base), copy.deepcopy(base)
    after_learner.to(memory_format=torch.channels_last)
    before_opt = torch.optim.Adam(before_learner.online.parameters(), lr=SHIPPED_RECIPE["lr"])
    after_opt = make_optimizer(after_learner, SHIPPED_RECIPE["lr"])
    after_aug = BYOLAugment(n_memory=SHIPPED_RECIPE["n_memory"], random_state=1)
    before_aug = _PreviousAugment(BYOLAugment(n_memory=SHIPPED_RECIPE["n_memory"], random_state=1))
    batch = args.batch_size

    def before() -> None:
        _previous_step(before_learner, before_opt, before_aug, pool.crops(*pool.plan(batch, rng)))

    def after() -> None:
        byol_step(after_learner, after_opt, after_aug, pool.crops(*pool.plan(batch, rng)),
                  precision="bf16", channels_last=True)

    for func in (before, after):  # warm-up: oneDNN primitives, memory filled
        for _ in range(2):
            func()
    times = {"before": [], "after": []}
    for _ in range(args.rounds):
        times["before"].append(_seconds(before, args.steps))
        times["after"].append(_seconds(after, args.steps))
    rate = {name: batch / float(np.mean(values)) for name, values in times.items()}
    print(f"BYOL-A v1 d={SHIPPED_RECIPE['d']}, projector {SHIPPED_RECIPE['proj_hidden']}, batch {batch} crops "
          f"(2 x {batch} views), {torch.get_num_threads()} thread(s), {args.rounds} x {args.steps} steps each")
    print(f"before (fp32, per-example augmentation): {rate['before']:7.1f} samples/s")
    print(f"after  (bf16 + channels_last, batched):  {rate['after']:7.1f} samples/s")
    print(f"ratio after / before: {rate['after'] / rate['before']:.2f}x")

    # where the time of the fast step goes
    crops = pool.crops(*pool.plan(batch, rng))
    views = standardize_batch(torch.cat(after_aug.views(crops))).contiguous(memory_format=torch.channels_last)

    def forward_backward() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = after_learner.loss(views[:batch], views[batch:])
        after_opt.zero_grad(set_to_none=True)
        loss.backward()

    parts = {
        "crops (views stacked)": lambda: pool.crops(*pool.plan(batch, rng)),
        "two views (batched)": lambda: after_aug.views(crops),
        "two views (per example, before)": lambda: before_aug.views(crops),
        "forward + backward (bf16, channels_last)": forward_backward,
        "Adam (fused)": after_opt.step,
        "EMA (one foreach lerp)": after_learner.update_target,
    }
    print("\nparts of one step (ms):")
    for name, func in parts.items():
        print(f"  {name:42s} {1000 * _seconds(func, args.steps):8.2f}")


if __name__ == "__main__":
    main()
