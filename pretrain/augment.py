"""BYOL-A augmentations of normalised log-mel crops (Niizumi et al. 2021, 2023).

Every augmentation takes a batch ``x`` of shape ``(B, 1, F, T)`` (float32, log-mel, already
standardised with the corpus statistics) and returns a tensor of the same shape. Random
parameters are drawn per example from a :class:`numpy.random.Generator` given as
``random_state`` (int, Generator or None), so a run is reproducible from its seed.

- :class:`MixupMemory`: mix each example, in the linear-power domain, with a random earlier
  example kept in a FIFO memory ("background sound"), with weight ``ratio * U(0, 1)``.
- :class:`RandomResizeCrop`: place the spectrogram at the centre of a larger zero canvas, crop
  a random region whose size is a random fraction of the input's in each axis, and resize it
  back to the input size (bicubic): a random pitch shift and time stretch.
- :class:`RandomLinearFader`: add a linear ramp in time to the log-mel values (a fade in or
  out), ends drawn from ``gain * U(-1, 1)`` (v2).
- :class:`BYOLAugment`: the chain above, producing the two views BYOL learns from.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError

__all__ = ["log_mixup_exp", "MixupMemory", "RandomResizeCrop", "RandomLinearFader", "BYOLAugment",
           "standardize_batch", "check_random_state"]


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed, a Generator (returned as is) or None (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise ParameterError(f"random_state must be an int, a numpy Generator or None, got {random_state!r}")


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"x must be a tensor of shape (batch, 1, n_mels, n_frames), got {shape}")


def log_mixup_exp(xa: torch.Tensor, xb: torch.Tensor, weight_a: torch.Tensor | float) -> torch.Tensor:
    """Mix two log-power spectrograms in the power domain: ``log(w e^xa + (1 - w) e^xb + eps)``.

    Parameters
    ----------
    xa, xb : torch.Tensor
        Log-mel values, same (or broadcastable) shapes.
    weight_a : float or torch.Tensor
        Weight of ``xa`` in [0, 1], broadcastable to ``xa``.
    """
    mixed = weight_a * xa.exp() + (1.0 - weight_a) * xb.exp()
    return torch.log(mixed + torch.finfo(mixed.dtype).eps)


class MixupMemory:
    """Mix each example with a random earlier example from a FIFO memory (BYOL-A's mixup).

    Parameters
    ----------
    ratio : float, keyword-only
        Maximum weight of the background: each example draws ``alpha = ratio * U(0, 1)`` and
        becomes ``log((1 - alpha) e^x + alpha e^z)``, ``z`` drawn uniformly from the memory.
        BYOL-A v1 uses 0.4, v2 0.2.
    n_memory : int, keyword-only
        Examples kept in the memory (oldest dropped first). BYOL-A: 2048.
    random_state : int, Generator or None, keyword-only

    Attributes
    ----------
    memory_ : torch.Tensor, shape (n_kept, 1, F, T)
        The remembered examples (empty before the first :meth:`remember`).

    Notes
    -----
    :meth:`__call__` only reads the memory; :meth:`remember` appends a batch. An example is
    therefore never mixed with itself when a batch is mixed before it is remembered.
    """

    def __init__(self, *, ratio: float = 0.4, n_memory: int = 2048,
                 random_state: int | np.random.Generator | None = None):
        if not 0.0 <= ratio <= 1.0:
            raise ParameterError(f"ratio must be in [0, 1], got {ratio!r}")
        if int(n_memory) < 1:
            raise ParameterError(f"n_memory must be a positive integer, got {n_memory!r}")
        self.ratio = float(ratio)
        self.n_memory = int(n_memory)
        self.rng = check_random_state(random_state)
        self.memory_ = torch.empty(0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        if self.memory_.numel() == 0 or self.ratio == 0.0:
            return x
        batch = x.shape[0]
        alpha = torch.as_tensor(self.ratio * self.rng.random(batch), dtype=x.dtype).view(batch, 1, 1, 1)
        picks = torch.as_tensor(self.rng.integers(0, self.memory_.shape[0], size=batch))
        background = self.memory_[picks].to(x.device)
        return log_mixup_exp(x, background, 1.0 - alpha.to(x.device))

    def remember(self, x: torch.Tensor) -> None:
        """Append the batch ``x`` (B, 1, F, T) to the memory, dropping the oldest beyond ``n_memory``."""
        _check_batch(x)
        x = x.detach().to("cpu", torch.float32)
        if self.memory_.numel() and self.memory_.shape[1:] != x.shape[1:]:
            raise ParameterError(f"x has example shape {tuple(x.shape[1:])} but the memory holds "
                                 f"{tuple(self.memory_.shape[1:])}")
        self.memory_ = torch.cat([self.memory_, x])[-self.n_memory:] if self.memory_.numel() else x[-self.n_memory:]

    def state_dict(self) -> dict[str, Any]:
        """The memory, for resuming a run."""
        return {"memory": self.memory_.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory_ = state["memory"].to(torch.float32)[-self.n_memory:]


class RandomResizeCrop:
    """Random crop of a zero-padded canvas, resized back to the input size (BYOL-A's RRC).

    Parameters
    ----------
    virtual_crop_scale : (float, float), keyword-only
        Canvas size relative to the input, (frequency, time); the input sits at its centre.
    freq_scale, time_scale : (float, float), keyword-only
        Range of the crop's height / width relative to the input's (clipped to the canvas).
    random_state : int, Generator or None, keyword-only
    """

    def __init__(self, *, virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
                 freq_scale: tuple[float, float] = (0.6, 1.5), time_scale: tuple[float, float] = (0.6, 1.5),
                 random_state: int | np.random.Generator | None = None):
        for name, value in (("virtual_crop_scale", virtual_crop_scale), ("freq_scale", freq_scale),
                            ("time_scale", time_scale)):
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ParameterError(f"{name} must be a pair (low, high) with 0 < low <= high, got {value!r}")
        if min(virtual_crop_scale) < 1.0:
            raise ParameterError(f"virtual_crop_scale must be >= 1 in both axes, got {virtual_crop_scale!r}")
        self.virtual_crop_scale = tuple(virtual_crop_scale)
        self.freq_scale = tuple(freq_scale)
        self.time_scale = tuple(time_scale)
        self.rng = check_random_state(random_state)

    def _crop_box(self, canvas: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
        h = int(np.clip(int(self.rng.uniform(*self.freq_scale) * size[0]), 1, canvas[0]))
        w = int(np.clip(int(self.rng.uniform(*self.time_scale) * size[1]), 1, canvas[1]))
        top = int(self.rng.integers(0, canvas[0] - h + 1))
        left = int(self.rng.integers(0, canvas[1] - w + 1))
        return top, left, h, w

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        n_f, n_t = x.shape[-2:]
        canvas_f, canvas_t = int(n_f * self.virtual_crop_scale[0]), int(n_t * self.virtual_crop_scale[1])
        canvas = x.new_zeros((x.shape[0], 1, canvas_f, canvas_t))
        top0, left0 = (canvas_f - n_f) // 2, (canvas_t - n_t) // 2
        canvas[:, :, top0:top0 + n_f, left0:left0 + n_t] = x
        out = torch.empty_like(x)
        for i in range(x.shape[0]):
            top, left, h, w = self._crop_box((canvas_f, canvas_t), (n_f, n_t))
            crop = canvas[i:i + 1, :, top:top + h, left:left + w]
            out[i] = F.interpolate(crop, size=(n_f, n_t), mode="bicubic", align_corners=True)[0]
        return out


class RandomLinearFader:
    """Add a linear ramp over time to log-mel values: a random fade in or out (BYOL-A v2).

    Parameters
    ----------
    gain : float, keyword-only
        The ramp's two ends are drawn from ``gain * U(-1, 1)`` (log-mel units).
    random_state : int, Generator or None, keyword-only
    """

    def __init__(self, *, gain: float = 1.0, random_state: int | np.random.Generator | None = None):
        if gain < 0:
            raise ParameterError(f"gain must be >= 0, got {gain!r}")
        self.gain = float(gain)
        self.rng = check_random_state(random_state)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        ends = torch.as_tensor(self.gain * (2.0 * self.rng.random((x.shape[0], 2)) - 1.0), dtype=x.dtype)
        t = torch.linspace(0.0, 1.0, x.shape[-1], dtype=x.dtype)
        ramp = ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * t  # (B, T)
        return x + ramp.to(x.device).view(x.shape[0], 1, 1, -1)


def standardize_batch(x: torch.Tensor) -> torch.Tensor:
    """Standardise a batch by its own mean and standard deviation (BYOL-A's post-normalisation)."""
    std = x.std().clamp_min(torch.finfo(x.dtype).eps)
    return (x - x.mean()) / std


class BYOLAugment:
    """The two augmented views of a batch of crops: mixup, random resize crop, linear fader.

    Parameters
    ----------
    mixup_ratio : float, keyword-only
        See :class:`MixupMemory` (0 disables mixup).
    n_memory : int, keyword-only
        Size of the mixup memory.
    fader_gain : float, keyword-only
        See :class:`RandomLinearFader` (0 disables the fader, as in BYOL-A v1).
    virtual_crop_scale, freq_scale, time_scale : (float, float), keyword-only
        See :class:`RandomResizeCrop`.
    random_state : int, Generator or None, keyword-only
        One generator shared by the three augmentations.

    Examples
    --------
    >>> aug = BYOLAugment(random_state=0)
    >>> v1, v2 = aug.views(torch.randn(8, 1, 64, 96))
    >>> v1.shape
    torch.Size([8, 1, 64, 96])
    """

    def __init__(self, *, mixup_ratio: float = 0.4, n_memory: int = 2048, fader_gain: float = 1.0,
                 virtual_crop_scale: tuple[float, float] = (1.0, 1.5), freq_scale: tuple[float, float] = (0.6, 1.5),
                 time_scale: tuple[float, float] = (0.6, 1.5),
                 random_state: int | np.random.Generator | None = None):
        rng = check_random_state(random_state)
        self.mixup = MixupMemory(ratio=mixup_ratio, n_memory=n_memory, random_state=rng)
        self.crop = RandomResizeCrop(virtual_crop_scale=virtual_crop_scale, freq_scale=freq_scale,
                                     time_scale=time_scale, random_state=rng)
        self.fader = RandomLinearFader(gain=fader_gain, random_state=rng)

    def reseed(self, random_state: int | np.random.Generator | None) -> None:
        """Give the three augmentations one new generator (e.g. one per epoch, for exact resumes)."""
        rng = check_random_state(random_state)
        self.mixup.rng = self.crop.rng = self.fader.rng = rng

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``x`` (B, 1, F, T); the memory is not updated."""
        return self.fader(self.crop(self.mixup(x)))

    def views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of ``x``, then ``x`` joins the mixup memory."""
        first, second = self(x), self(x)
        self.mixup.remember(x)
        return first, second

    def config(self) -> dict[str, Any]:
        """The parameters, for the checkpoint's sidecar."""
        return {"mixup_ratio": self.mixup.ratio, "n_memory": self.mixup.n_memory, "fader_gain": self.fader.gain,
                "virtual_crop_scale": list(self.crop.virtual_crop_scale), "freq_scale": list(self.crop.freq_scale),
                "time_scale": list(self.crop.time_scale)}
