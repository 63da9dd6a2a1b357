"""Tiny hand-weighted encoders for the kinds of network issue 18 handed in (every activation known by hand).

Importable as ``module:handed_nets:<factory>`` while ``tests/`` is on ``sys.path`` (pytest puts it there).

* :class:`BasicBlockNet` - one ``nn.ReLU`` used twice, as in torchvision's BasicBlock.
* :class:`TiedLoopNet` - one weight-tied block applied three times in a loop.
* :class:`FrameNet` - CREPE-style: waveform frames of 8 samples at a hop of 4 folded into the batch axis.
* :class:`PatchNet` - VGGish-style: 96-frame log-mel patches (0.96 s) folded into the batch axis.
"""
from __future__ import annotations

import torch
from torch import nn

from audioprobe.models.frontend import frames_for_samples

FRAME, HOP = 8, 4
PATCH = 96


def _set(module: nn.Module, weight, bias) -> None:
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight, dtype=torch.float32).reshape(module.weight.shape))
        module.bias.copy_(torch.tensor(bias, dtype=torch.float32))


class BasicBlockNet(nn.Module):
    """(B, 1, F, T) -> relu#0 = [relu(x), relu(-x)]; conv2 = |x| - 0.5; relu#1 = relu(|x| - 0.5 + x)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, kernel_size=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 1, kernel_size=1)
        _set(self.conv1, [1.0, -1.0], [0.0, 0.0])
        _set(self.conv2, [1.0, 1.0], [-0.5])

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        return self.relu(out + x)


class TiedLoopNet(nn.Module):
    """Mel bands 0 and 1 as a (B, T, 2) sequence (a, b), then ``block`` three times.

    Each ``block``: (a, b) -> (relu(2a - 1), relu(1 - b)).
    """

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        _set(self.block[0], [[2.0, 0.0], [0.0, -1.0]], [-1.0, 1.0])

    def forward(self, x):
        h = x[:, 0, :2, :].transpose(1, 2)
        for _ in range(3):
            h = self.block(h)
        return h


class ClipMean(nn.Module):
    """Mean over the frames of each clip: (B x N, D) -> (B, D)."""

    def forward(self, h, batch_size: int):
        return h.reshape(batch_size, -1, h.shape[-1]).mean(dim=1)


class FrameNet(nn.Module):
    """Waveform (B, n) -> frames (B x N, 8) -> ``frame_fc`` [frame mean, y0 - y1] -> ``relu`` -> ``clip_mean``.

    The output is (B, 2).
    """

    input_kind = "waveform"

    def __init__(self):
        super().__init__()
        self.frame_fc = nn.Linear(FRAME, 2)
        self.relu = nn.ReLU()
        self.clip_mean = ClipMean()
        _set(self.frame_fc, [[1.0 / FRAME] * FRAME, [1.0, -1.0] + [0.0] * (FRAME - 2)], [0.0, 0.0])

    def frames_per_clip(self, n_samples: int) -> int:
        return 1 + (n_samples - FRAME) // HOP

    def forward(self, waveform):
        frames = waveform.unfold(-1, FRAME, HOP).reshape(-1, FRAME)
        return self.clip_mean(self.relu(self.frame_fc(frames)), waveform.shape[0])


class UndeclaredFrameNet(FrameNet):
    """:class:`FrameNet` that does not say it folds frames (the input issue 18 handed in)."""

    frames_per_clip = None


class PatchNet(nn.Module):
    """Log-mel (B, 1, 64, T) -> patches (B x N, 1, 64, 96), N = T // 96 -> ``conv`` 2x + 1 -> ``patch_mean``.

    ``patch_mean`` is (B x N, 1, 1, 1).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, kernel_size=1)
        self.patch_mean = nn.AdaptiveAvgPool2d(1)
        _set(self.conv, [2.0], [1.0])

    def frames_per_clip(self, n_samples: int) -> int:
        return frames_for_samples(n_samples) // PATCH

    def forward(self, x):
        b, _, n_mels, t = x.shape
        n = t // PATCH
        patches = x[..., :n * PATCH].reshape(b, 1, n_mels, n, PATCH).permute(0, 3, 1, 2, 4)
        return self.patch_mean(self.conv(patches.reshape(b * n, 1, n_mels, PATCH)))


def basic_block() -> nn.Module:
    return BasicBlockNet()


def tied_loop() -> nn.Module:
    return TiedLoopNet()


def frame_net() -> nn.Module:
    return FrameNet()


def undeclared_frame_net() -> nn.Module:
    return UndeclaredFrameNet()


def patch_net() -> nn.Module:
    return PatchNet()


class PositionalNet(nn.Module):
    """Mean log-mel per frame plus a learned positional table of 256 frames (2.56 s): longer clips cannot run."""

    def __init__(self):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, 256))
        self.out = nn.Identity()

    def forward(self, x):
        h = x.mean(dim=(1, 2))
        return self.out(h + self.position[:, :min(h.shape[-1], 256)])


def positional_net() -> nn.Module:
    return PositionalNet()
