"""Pooling of a layer's output over time (and frequency) to one row per clip.

A layer's output is described by a :class:`Layout`: which axis is time and which (if any)
is frequency, found by running the network on two input lengths (see :mod:`.layers`).
Methods (``POOLINGS``):

* ``mean`` (default): mean over time. A conv map (B, C, F, T) keeps C x F units
  (row-major: unit ``c * F + f``); a frame sequence (B, T, D) keeps D.
* ``meanmax``: mean over time plus max over time (BYOL-A's clip pooling; same width).
* ``tf-mean``: mean over time and frequency: a conv map keeps its C channels. On a layer
  without a frequency axis it is the time mean and is recorded as ``mean``.
* ``none``: the whole output flattened, for small layers; its width grows with the clip
  length, so every clip of a run must then have the same length.

A layer without a time axis (a clip-level output (B, D)) is never pooled: ``none``.

Frame-folding encoders (a pitch CNN on 1024-sample frames, VGGish-style 0.96 s patches)
put the frames of all clips on the batch axis: a layer returns (B x N, ...) rows, clip-major
(the N frames of clip 0, then those of clip 1, ...). :func:`unfold_frames` turns them into
(B, N, ...), whose frame axis is then the time axis and is pooled like any other; the
layer's :class:`Layout` says so (``frames_folded``). The encoder declares N (see
:class:`.pipeline.Pipeline`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import AudioprobeError, ParameterError, check_choice

__all__ = ["POOLINGS", "Layout", "infer_layout", "effective_pooling", "pool", "pooled_width", "unfold_frames",
           "mean_max_pool"]

POOLINGS = ("mean", "meanmax", "tf-mean", "none")


@dataclass(frozen=True)
class Layout:
    """The axes of a layer's output, batch axis 0 included.

    Attributes
    ----------
    ndim : int
        Number of axes, batch included.
    time_axis : int or None
        The axis whose size follows the input length; None for clip-level outputs.
    freq_axis : int or None
        The frequency axis of a conv map (B, C, F, T): the non-channel, non-time axis of a
        4-D output; None otherwise.
    frames_folded : bool
        The module returns (B x N, ...) rows of a frame-folding encoder; ``ndim`` and the
        axes describe the unfolded output (B, N, ...) (:func:`unfold_frames`).
    """

    ndim: int
    time_axis: int | None
    freq_axis: int | None
    frames_folded: bool = False


def infer_layout(shape_short: Sequence[int], shape_long: Sequence[int], *, name: str = "layer",
                 frames_folded: bool = False) -> Layout:
    """Find the time (and frequency) axis from a layer's output shapes at two input lengths.

    Parameters
    ----------
    shape_short, shape_long : sequence of int
        Output shapes (batch first) for a shorter and a longer input; unfolded shapes
        (B, N, ...) for a frame-folded layer.
    name : str
        The layer, named in errors.
    frames_folded : bool, keyword-only
        Recorded in the layout (the shapes are then the unfolded ones).

    Returns
    -------
    Layout
    """
    if len(shape_short) != len(shape_long) or len(shape_short) < 2:
        raise ParameterError(f"{name}: output shapes {tuple(shape_short)} and {tuple(shape_long)} for two input "
                             "lengths must have the same number of axes (>= 2, batch first)")
    changed = [axis for axis in range(1, len(shape_short)) if shape_short[axis] != shape_long[axis]]
    if len(changed) > 1:
        raise ParameterError(f"{name}: more than one axis of the output changes with the input length "
                             f"({tuple(shape_short)} vs {tuple(shape_long)}); cannot tell which is time")
    time_axis = changed[0] if changed else None
    freq_axis = None
    if len(shape_short) == 4 and time_axis in (2, 3):
        freq_axis = 5 - time_axis
    return Layout(ndim=len(shape_short), time_axis=time_axis, freq_axis=freq_axis, frames_folded=frames_folded)


def unfold_frames(output: torch.Tensor, batch_size: int, n_frames: int, *, name: str = "layer") -> torch.Tensor:
    """Split the batch axis of a frame-folding encoder's output into clips and frames.

    Parameters
    ----------
    output : torch.Tensor, shape (batch_size * n_frames, ...)
        Rows clip-major: the ``n_frames`` frames of clip 0, then those of clip 1, ...
    batch_size : int
        Clips in the forward pass.
    n_frames : int
        Frames per clip, as the encoder declares them.
    name : str, keyword-only
        The layer, named in errors.

    Returns
    -------
    torch.Tensor, shape (batch_size, n_frames, ...)
        A view of ``output``.

    Raises
    ------
    AudioprobeError
        If the output does not have ``batch_size * n_frames`` rows.
    """
    if output.ndim < 1 or output.shape[0] != batch_size * n_frames:
        rows = output.shape[0] if output.ndim else 0
        raise AudioprobeError(f"layer {name!r} returned {rows} rows for a batch of {batch_size} clips of "
                             f"{n_frames} frames each (the encoder's frames_per_clip): expected "
                             f"{batch_size * n_frames}; fix frames_per_clip or hook another layer")
    return output.reshape(batch_size, n_frames, *output.shape[1:])


def effective_pooling(layout: Layout, method: str) -> str:
    """Return the pooling actually applied to a layer of this layout (and recorded in ``layers.csv``)."""
    check_choice("pooling", method, POOLINGS)
    if layout.time_axis is None:
        return "none"
    if method == "tf-mean" and layout.freq_axis is None:
        return "mean"
    return method


def _reduced_axes(layout: Layout, method: str) -> tuple[int, ...]:
    method = effective_pooling(layout, method)
    if method == "none":
        return ()
    if method == "tf-mean":
        return (layout.time_axis, layout.freq_axis)
    return (layout.time_axis,)


def pooled_width(shape: Sequence[int], layout: Layout, method: str) -> int:
    """Width of the pooled row for an output of ``shape`` (batch first)."""
    reduced = _reduced_axes(layout, method)
    return int(np.prod([size for axis, size in enumerate(shape) if axis > 0 and axis not in reduced]))


def mean_max_pool(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean plus max over axis ``dim``: BYOL-A's clip embedding (Niizumi et al. 2021, nttcslab/byol-a).

    Parameters
    ----------
    x : torch.Tensor, shape (..., T, ...)
        E.g. frame features (B, T, D) with ``dim=1``.
    dim : int
        The time axis.

    Returns
    -------
    torch.Tensor
        ``x`` without axis ``dim``, e.g. (B, D).
    """
    return x.mean(dim=dim) + x.amax(dim=dim)


def pool(output: torch.Tensor, layout: Layout, method: str) -> torch.Tensor:
    """Pool one layer's output to one row per batch item.

    Parameters
    ----------
    output : torch.Tensor, shape (B, ...)
        The layer's output, laid out as ``layout``.
    layout : Layout
    method : {"mean", "meanmax", "tf-mean", "none"}

    Returns
    -------
    torch.Tensor, shape (B, width)
        A new tensor (never a view of ``output``), in the output's dtype and device.
    """
    if output.ndim != layout.ndim:
        raise ParameterError(f"output has {output.ndim} axes but its layout has {layout.ndim}")
    method = effective_pooling(layout, method)
    batch = output.shape[0]
    if method == "none":
        return output.reshape(batch, -1).clone()
    if method == "meanmax":
        pooled = mean_max_pool(output, dim=layout.time_axis)
    else:
        pooled = output.mean(dim=_reduced_axes(layout, method))
    return pooled.reshape(batch, -1)
