"""BYOL-A augmentations of normalised log-mel crops (Niizumi et al. 2021, 2023).

Every augmentation takes a batch ``x`` of shape ``(B, 1, F, T)`` (float32, log-mel, already
standardised with the corpus statistics) and returns a tensor of the same shape, on the same
device. Random parameters are drawn per example, all at once for the batch, from a
:class:`numpy.random.Generator` given as ``random_state`` (int, Generator or None), so a run
is reproducible from its seed; the arithmetic is batched on ``x``'s device (no loop over examples).

- :class:`MixupMemory`: mix each example, in the linear-power domain, with a random earlier
  example kept in a FIFO memory ("background sound"), with weight ``ratio * U(0, 1)``.
- :class:`RandomResizeCrop`: place the spectrogram at the centre of a larger zero canvas, crop
  a random region whose size is a random fraction of the input's in each axis, and resize it
  back to the input size (bicubic): a random pitch shift and time stretch. The whole batch is
  resampled by one :func:`torch.nn.functional.grid_sample`.
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
           "standardize_batch"]


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
        The remembered examples, oldest first (empty before the first :meth:`remember`).

    Notes
    -----
    :meth:`__call__` only reads the memory; :meth:`remember` appends a batch. An example is
    therefore never mixed with itself when a batch is mixed before it is remembered. The
    memory is a ring buffer on the device of the remembered batches (no copy of the whole
    memory per step).
    """

    def __init__(self, *, ratio: float = 0.4, n_memory: int = 2048,
                 random_state: int | np.random.Generator | None = None):
        if not 0.0 <= ratio <= 1.0:
            raise ParameterError(f"ratio must be in [0, 1], got {ratio!r}")
        if int(n_memory) < 1:
            raise ParameterError(f"n_memory must be a positive integer, got {n_memory!r}")
        self.ratio = float(ratio)
        self.n_memory = int(n_memory)
        self.rng = np.random.default_rng(random_state)
        self._ring = torch.empty(0)
        self._n_kept = 0
        self._next = 0  # ring slot that the next remembered example overwrites

    @property
    def memory_(self) -> torch.Tensor:
        """The remembered examples, oldest first, shape (n_kept, 1, F, T)."""
        if self._n_kept < self.n_memory:
            return self._ring[:self._n_kept]
        return torch.cat([self._ring[self._next:], self._ring[:self._next]])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 1, F, T) mixed with memory examples (``x`` itself while the memory is empty)."""
        _check_batch(x)
        if self._n_kept == 0 or self.ratio == 0.0:
            return x
        batch = x.shape[0]
        alpha = torch.as_tensor(self.ratio * self.rng.random(batch), dtype=x.dtype).view(batch, 1, 1, 1)
        # index j of the oldest-first memory lives in ring slot (oldest + j) mod size
        oldest = self._next if self._n_kept == self.n_memory else 0
        picks = (oldest + self.rng.integers(0, self._n_kept, size=batch)) % self.n_memory
        background = self._ring[torch.as_tensor(picks, device=self._ring.device)].to(x.device)
        return log_mixup_exp(x, background, 1.0 - alpha.to(x.device))

    def remember(self, x: torch.Tensor) -> None:
        """Append the batch ``x`` (B, 1, F, T) to the memory, dropping the oldest beyond ``n_memory``."""
        _check_batch(x)
        x = x.detach().to(torch.float32)[-self.n_memory:]
        if self._ring.numel() == 0:
            self._ring = x.new_empty((self.n_memory, *x.shape[1:]))
        elif self._ring.shape[1:] != x.shape[1:]:
            raise ParameterError(f"x has example shape {tuple(x.shape[1:])} but the memory holds "
                                 f"{tuple(self._ring.shape[1:])}")
        slots = (self._next + torch.arange(x.shape[0], device=self._ring.device)) % self.n_memory
        self._ring[slots] = x.to(self._ring.device)
        self._next = (self._next + x.shape[0]) % self.n_memory
        self._n_kept = min(self.n_memory, self._n_kept + x.shape[0])

    def to(self, device: torch.device | str) -> MixupMemory:
        """Hold the memory on ``device`` (returns self)."""
        self._ring = self._ring.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Return the memory (oldest first, on the CPU), for resuming a run."""
        return {"memory": self.memory_.to("cpu", copy=True)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the memory of :meth:`state_dict` (on the device the memory is held on)."""
        device = self._ring.device
        self._ring, self._n_kept, self._next = torch.empty(0), 0, 0
        if state["memory"].numel():
            self.remember(state["memory"].to(device, torch.float32))


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
        self.rng = np.random.default_rng(random_state)

    def crop_boxes(self, batch: int, canvas: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """Random crop boxes of a batch, shape (batch, 4): ``top, left, height, width`` in canvas pixels.

        Height and width are ``int(U(*scale) * size)`` clipped to [1, canvas]; the corner is
        uniform over the positions that keep the box inside the canvas.
        """
        h = np.clip((self.rng.uniform(*self.freq_scale, size=batch) * size[0]).astype(int), 1, canvas[0])
        w = np.clip((self.rng.uniform(*self.time_scale, size=batch) * size[1]).astype(int), 1, canvas[1])
        top = self.rng.integers(0, canvas[0] - h + 1)
        left = self.rng.integers(0, canvas[1] - w + 1)
        return np.stack([top, left, h, w], axis=1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Each example of ``x`` (B, 1, F, T) cropped from its canvas and resized back to (F, T).

        Output pixel ``i`` of a box of height ``h`` samples the canvas at ``top + i (h - 1) / (F - 1)``
        (the sampling of ``F.interpolate(crop, align_corners=True)``) with bicubic weights; a pixel
        whose 4 x 4 neighbourhood lies inside the box equals that of the per-example
        ``F.interpolate`` of the crop; at the box's edges the canvas pixels beyond it are used
        instead of repeating the box's edge (the canvas's own edge is repeated).
        """
        _check_batch(x)
        batch, (n_f, n_t) = x.shape[0], x.shape[-2:]
        canvas_f, canvas_t = int(n_f * self.virtual_crop_scale[0]), int(n_t * self.virtual_crop_scale[1])
        canvas = x.new_zeros((batch, 1, canvas_f, canvas_t))
        top0, left0 = (canvas_f - n_f) // 2, (canvas_t - n_t) // 2
        canvas[:, :, top0:top0 + n_f, left0:left0 + n_t] = x
        boxes = torch.as_tensor(self.crop_boxes(batch, (canvas_f, canvas_t), (n_f, n_t)), dtype=x.dtype,
                                device=x.device)
        top, left, h, w = boxes.unbind(1)
        rows = top[:, None] + (h - 1)[:, None] * torch.linspace(0, 1, n_f, dtype=x.dtype, device=x.device)
        cols = left[:, None] + (w - 1)[:, None] * torch.linspace(0, 1, n_t, dtype=x.dtype, device=x.device)
        # grid_sample's normalised coordinates (align_corners=True): -1 = first pixel, 1 = last pixel
        gy = 2 * rows / max(canvas_f - 1, 1) - 1
        gx = 2 * cols / max(canvas_t - 1, 1) - 1
        grid = torch.stack([gx[:, None, :].expand(batch, n_f, n_t), gy[:, :, None].expand(batch, n_f, n_t)], dim=-1)
        return F.grid_sample(canvas, grid, mode="bicubic", padding_mode="border", align_corners=True)


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
        self.rng = np.random.default_rng(random_state)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 1, F, T) plus one random linear ramp over time per example."""
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
        rng = np.random.default_rng(random_state)
        self.mixup = MixupMemory(ratio=mixup_ratio, n_memory=n_memory, random_state=rng)
        self.crop = RandomResizeCrop(virtual_crop_scale=virtual_crop_scale, freq_scale=freq_scale,
                                     time_scale=time_scale, random_state=rng)
        self.fader = RandomLinearFader(gain=fader_gain, random_state=rng)

    def reseed(self, random_state: int | np.random.Generator | None) -> None:
        """Give the three augmentations one new generator (e.g. one per epoch, for exact resumes)."""
        rng = np.random.default_rng(random_state)
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
        """Return the parameters, for the checkpoint's sidecar."""
        return {"mixup_ratio": self.mixup.ratio, "n_memory": self.mixup.n_memory, "fader_gain": self.fader.gain,
                "virtual_crop_scale": list(self.crop.virtual_crop_scale), "freq_scale": list(self.crop.freq_scale),
                "time_scale": list(self.crop.time_scale)}
