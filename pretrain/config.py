"""What defines a BYOL-A pretraining run: the pretrainable architectures and :class:`PretrainConfig`.

The configuration is recorded in the checkpoint's sidecar and in the training state, and a run
resumes only from a state made with the same configuration (``epochs`` aside).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from ..errors import ParameterError, check_choice
from ..models.byola import AudioNTT2020, AudioNTT2022
from .data import UNIT_S
from .recipe import TRAINABLE_DOMAINS

__all__ = ["ARCHS", "PRECISIONS", "PretrainConfig"]

#: Arithmetic of the forward and backward passes: ``fp32``, or ``bf16`` autocast (weights,
#: optimiser state, augmentations and the loss itself stay float32).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class _Arch:
    factory: Callable[[int], nn.Module]
    d: int
    mixup_ratio: float
    lr: float


#: Pretrainable architectures: encoder factory and BYOL-A's defaults for each (d, mixup ratio, Adam lr).
ARCHS = {
    "byola-v1": _Arch(lambda d: AudioNTT2020(d=d), d=512, mixup_ratio=0.4, lr=3e-4),
    "byola-v2": _Arch(lambda d: AudioNTT2022(d=d), d=3072, mixup_ratio=0.2, lr=1e-4),
}


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pretraining run (recorded in the sidecar and checked on resume).

    Attributes
    ----------
    domain : {'speech', 'nonspeech', 'mixed'}
    arch : {'byola-v1', 'byola-v2'}
    d : int
        Encoder embedding width.
    epochs : int
        Passes over the pool (an epoch = one 0.95 s crop per 0.95 s of pool audio).
    seed : int
        Initialisation, data order, augmentations and dropout.
    batch_size : int
        Crops per process and step.
    lr : float
        Adam learning rate.
    ema_decay : float
        Target network decay per step.
    proj_hidden, proj_dim : int
        Hidden and output width of the projector and predictor MLPs (BYOL-A: 4096, 256).
    mixup_ratio, n_memory, fader_gain : float, int, float
        Augmentation parameters (:class:`.augment.BYOLAugment`).
    total_s : float or None
        Seconds of audio in the pool (None: the largest total matched across domains).
    selection_seed : int
        Seed of the pool's clip selection (kept fixed across model seeds).
    unit_s : float
        Crop duration (s).
    precision : {'fp32', 'bf16'}
        ``bf16``: the networks' forward and backward passes under ``torch.autocast`` with
        bfloat16 (see :func:`.byol.byol_step`).
    channels_last : bool
        Convolution weights and inputs in the channels-last memory format (same numbers, faster
        convolutions with oneDNN / cuDNN).
    init_sha256 : str or None
        sha256 of the encoder ``state_dict`` the online encoder started from (continued
        pretraining), None for a random initialisation.
    """

    domain: str
    arch: str = "byola-v1"
    d: int = 512
    epochs: int = 100
    seed: int = 0
    batch_size: int = 64
    lr: float = 3e-4
    ema_decay: float = 0.99
    proj_hidden: int = 4096
    proj_dim: int = 256
    mixup_ratio: float = 0.4
    n_memory: int = 2048
    fader_gain: float = 1.0
    total_s: float | None = None
    selection_seed: int = 0
    unit_s: float = UNIT_S
    precision: str = "bf16"
    channels_last: bool = True
    init_sha256: str | None = None

    def __post_init__(self) -> None:
        check_choice("domain", self.domain, TRAINABLE_DOMAINS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("arch", self.arch, list(ARCHS))
        for name in ("d", "epochs", "batch_size", "proj_hidden", "proj_dim", "n_memory"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ParameterError(f"batch_size must be >= 2 (batch normalisation), got {self.batch_size!r}")
        if not self.lr > 0:
            raise ParameterError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ParameterError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")

    def resumable_with(self, other: PretrainConfig) -> bool:
        """Whether a run with ``other`` may continue this one's state (only ``epochs`` may differ)."""
        return dataclasses.replace(self, epochs=other.epochs) == other
