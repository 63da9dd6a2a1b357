"""BYOL-A encoders, v1 (AudioNTT2020) and v2 (AudioNTT2022), with the official parameter names.

Written from the architecture description of nttcslab/byol-a (Niizumi et al. 2021, 2023),
so that the official checkpoints load with ``load_state_dict(strict=True)``:

* v1: three blocks Conv3x3(64)-BN-ReLU-MaxPool2 (``features.0`` .. ``features.11``),
  (B, 64, F/8, T/8) -> (B, T/8, 64 * F/8) with the frequency-major, channel-minor order of
  the original (``permute(0, 3, 2, 1)``), then ``fc`` = Linear(512, d)-ReLU-Dropout(0.3)-
  Linear(d, d)-ReLU, frame features (B, T/8, d); the clip embedding is mean + max over time.
* v2: two conv blocks (``features.0`` .. ``features.7``), fc = Linear(1024, 2048)-ReLU-
  Dropout-Linear(2048, d - 1024)-ReLU, frame features = concat(conv 1024, fc d - 1024).

Both take the normalised log-mel spectrogram (B, 1, 64, T) of :mod:`.frontend`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ParameterError
from .pooling import mean_max_pool

__all__ = ["AudioNTT2020", "AudioNTT2022"]


def _conv_blocks(n_blocks: int, channels: int = 64) -> nn.Sequential:
    """Conv3x3-BN-ReLU-MaxPool2 blocks with channels-last weights.

    Channels-last (NHWC) convolution weights make oneDNN run the whole block in NHWC: the forward pass
    of the v1 encoder takes 0.7x the time on CPU (``benchmarks/bench_extract.py``), with outputs equal
    to float32 rounding (2e-6 of values of order 1); ``load_state_dict`` keeps the layout.
    """
    layers: list[nn.Module] = []
    for block in range(n_blocks):
        layers += [nn.Conv2d(1 if block == 0 else channels, channels, 3, stride=1, padding=1),
                   nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2, stride=2)]
    return nn.Sequential(*layers).to(memory_format=torch.channels_last)


def _flatten_conv(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, T, F * C), frequency-major like the original (permute(0, 3, 2, 1))."""
    x = x.permute(0, 3, 2, 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


class _BYOLAEncoder(nn.Module):
    """Shared checks and the clip embedding of both versions."""

    #: hooked by default when no layers are asked for: the input, each block's output, each fc ReLU
    default_layers: tuple[str, ...] = ()

    def __init__(self, n_mels: int, n_blocks: int):
        super().__init__()
        if not isinstance(n_mels, int) or n_mels < 2 ** n_blocks or n_mels % 2 ** n_blocks:
            raise ParameterError(f"n_mels must be a positive multiple of {2 ** n_blocks}, got {n_mels!r}")
        self.n_mels = n_mels

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ParameterError(f"input must have shape (batch, 1, {self.n_mels}, frames), "
                                 f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip embedding (B, d): mean + max over time of :meth:`frames`."""
        return mean_max_pool(self.frames(x))


class AudioNTT2020(_BYOLAEncoder):
    """BYOL-A v1 encoder (AudioNTT2020).

    Parameters
    ----------
    d : int
        Embedding width: 512, 1024 or 2048 for the official checkpoints.
    n_mels : int
        Mel bands of the input (64).
    """

    default_layers = ("logmel", "features.3", "features.7", "features.11", "fc.1", "fc.4")

    def __init__(self, d: int = 512, *, n_mels: int = 64):
        super().__init__(n_mels, 3)
        if not isinstance(d, int) or d < 1:
            raise ParameterError(f"d must be a positive integer, got {d!r}")
        self.d = d
        self.features = _conv_blocks(3)
        self.fc = nn.Sequential(nn.Linear(64 * (n_mels // 8), d), nn.ReLU(), nn.Dropout(p=0.3),
                                nn.Linear(d, d), nn.ReLU())

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-level features.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, n_mels, T)
            Normalised log-mel spectrogram.

        Returns
        -------
        torch.Tensor, shape (B, T // 8, d)
        """
        self._check_input(x)
        return self.fc(_flatten_conv(self.features(x)))


class AudioNTT2022(_BYOLAEncoder):
    """BYOL-A v2 encoder (AudioNTT2022).

    Parameters
    ----------
    d : int
        Frame feature width = conv width (64 * n_mels / 4 = 1024) + fc output width; 3072 officially.
    mlp_hidden_d : int
        Width of the first fc layer (2048).
    n_mels : int
        Mel bands of the input (64).
    """

    default_layers = ("logmel", "features.3", "features.7", "fc.1", "fc.4")

    def __init__(self, d: int = 3072, *, mlp_hidden_d: int = 2048, n_mels: int = 64):
        super().__init__(n_mels, 2)
        self.conv_d = 64 * (n_mels // 4)
        if not isinstance(d, int) or d <= self.conv_d:
            raise ParameterError(f"d must be an integer > the conv width {self.conv_d}, got {d!r}")
        self.d = d
        self.features = _conv_blocks(2)
        self.fc = nn.Sequential(nn.Linear(self.conv_d, mlp_hidden_d), nn.ReLU(), nn.Dropout(p=0.3),
                                nn.Linear(mlp_hidden_d, d - self.conv_d), nn.ReLU())

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-level features: concat(conv features, fc features).

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, n_mels, T)

        Returns
        -------
        torch.Tensor, shape (B, T // 4, d)
        """
        self._check_input(x)
        conv = _flatten_conv(self.features(x))
        return torch.cat([conv, self.fc(conv)], dim=-1)
