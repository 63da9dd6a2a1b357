"""The hookable layers of a network: order, kind, output shape, layout and receptive field.

Everything is measured, not declared, so it holds for any torch module:

* forward order and output shapes from one pass on a 1 s input;
* the time (and frequency) axis from a second pass on a 2 s input (:func:`.pooling.infer_layout`);
* the receptive field of the unit at the centre of the output (centre time frame and,
  for conv maps, centre frequency row) as the extent of the input positions with a
  non-zero gradient, united over a few random inputs (so that ReLUs and max-pools that
  route the gradient differently per input still reveal the whole field). In time it is
  reported in ms of audio (``(frames - 1) * hop + win_length`` samples), in frequency in
  Hz: from the lower edge of the lowest mel band to the upper edge of the highest band it
  covers. Layer 0 (``logmel``) is one frame of one band: 64 ms, and the bandwidth of the
  centre band. Encoders that take the waveform report the time field in samples and no
  frequency field (NaN).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..errors import AudioprobeError, ParameterError
from .frontend import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, frames_for_samples, mel_band_edges_hz
from .hooks import hookable_modules, resolve_layers
from .pipeline import Pipeline
from .pooling import POOLINGS, Layout, effective_pooling, infer_layout, pooled_width

__all__ = ["describe_layers", "layouts_of", "LAYER_COLUMNS"]

LAYER_COLUMNS = ["layer", "layer_index", "kind", "output_shape", "time_axis", "freq_axis",
                 "receptive_field_ms", "receptive_field_hz", "pooling", "pooled_width"]
_N_PROBES = 3


def _input(pipeline: Pipeline, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """A random encoder input for ``n_samples`` of audio (normalised log-mel ~ N(0, 1), or a waveform)."""
    device = next(iter(pipeline.buffers())).device
    if pipeline.input_kind == "waveform":
        shape = (1, n_samples)
    else:
        shape = (1, 1, pipeline.frontend.n_mels, frames_for_samples(n_samples))
    return torch.randn(shape, generator=generator).to(device)


def _run_capturing(pipeline: Pipeline, x: torch.Tensor, modules: dict) -> tuple[dict, list[str], set[str]]:
    """Encoder outputs of the named modules (``logmel`` = the input), the order they ran in, and
    the names of modules that ran more than once."""
    outputs: dict[str, torch.Tensor] = {}
    order: list[str] = []
    repeated: set[str] = set()

    def make_hook(name):
        def hook(module, inputs, output):
            if name in outputs:
                repeated.add(name)
            elif isinstance(output, torch.Tensor):
                outputs[name] = output
                order.append(name)
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items() if n != "logmel"]
    try:
        pipeline.encoder(x)
    finally:
        for handle in handles:
            handle.remove()
    if "logmel" in modules:
        outputs["logmel"] = x if pipeline.input_kind == "logmel" else pipeline.logmel(x)
        order.insert(0, "logmel")
    return outputs, order, repeated


def _extent(grad: torch.Tensor, axis: int) -> tuple[int, int] | None:
    """First and last index along ``axis`` with a non-zero gradient (None if none)."""
    other = tuple(a for a in range(grad.ndim) if a != axis)
    hits = torch.nonzero(grad.abs().amax(dim=other) > 0).flatten()
    return (int(hits[0]), int(hits[-1])) if len(hits) else None


def _receptive_field(pipeline: Pipeline, name: str, probes: list[tuple[torch.Tensor, dict]],
                     layout: Layout) -> tuple[float, float]:
    """(ms, Hz) receptive field of the centre unit of ``name``."""
    waveform = pipeline.input_kind == "waveform"
    t_span: list[int] = []
    f_span: list[int] = []
    for x, outputs in probes:
        out = outputs[name]
        unit = out[0]
        if layout.time_axis is not None:
            unit = out.select(layout.time_axis, out.shape[layout.time_axis] // 2)
            if layout.freq_axis is not None:
                axis = layout.freq_axis - (layout.freq_axis > layout.time_axis)
                unit = unit.select(axis, unit.shape[axis] // 2)
        (grad,) = torch.autograd.grad(unit.sum(), x, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        time = _extent(grad, grad.ndim - 1)
        if time:
            t_span += list(time)
        if not waveform:
            freq = _extent(grad, 2)
            if freq:
                f_span += list(freq)
    if not t_span:
        return float("nan"), float("nan")
    n_time = max(t_span) - min(t_span) + 1
    if waveform:
        return 1000.0 * n_time / SAMPLE_RATE, float("nan")
    ms = 1000.0 * ((n_time - 1) * HOP_LENGTH + WIN_LENGTH) / SAMPLE_RATE
    edges = mel_band_edges_hz(n_mels=pipeline.frontend.n_mels, f_min=pipeline.frontend.f_min,
                              f_max=pipeline.frontend.f_max)
    hz = float(edges[max(f_span) + 2] - edges[min(f_span)]) if f_span else float("nan")
    return ms, hz


def describe_layers(pipeline: Pipeline, *, layers: list[str] | None = None, pooling: str = "mean",
                    duration_s: float = 1.0, random_state: int = 0) -> pd.DataFrame:
    """Measure the layers of a network.

    Parameters
    ----------
    pipeline : Pipeline
        The network (e.g. ``load_model(spec).pipeline``).
    layers : list of str, optional
        Layer names to describe; default every leaf module (plus ``logmel``). Any name of
        :func:`.hooks.hookable_modules` is accepted, containers included.
    pooling : {"mean", "meanmax", "tf-mean", "none"}, keyword-only
        For the ``pooling`` and ``pooled_width`` columns.
    duration_s : float
        Input duration (s) for ``output_shape``; the layout is found against twice this.
    random_state : int
        Seed of the random probe inputs.

    Returns
    -------
    pd.DataFrame
        One row per layer in forward order, columns ``LAYER_COLUMNS``: ``layer_index`` 0
        is ``logmel``; ``output_shape`` is "AxBxC" without the batch axis;
        ``receptive_field_ms`` / ``receptive_field_hz`` as in the module docstring.
    """
    if pooling not in POOLINGS:
        raise ParameterError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    if not duration_s > 0:
        raise ParameterError(f"duration_s must be > 0, got {duration_s!r}")
    available = hookable_modules(pipeline)
    if layers is None:
        names = [n for n, m in available.items() if n == "logmel" or not any(True for _ in m.children())]
    else:
        names = list(dict.fromkeys(layers))
    resolve_layers(pipeline, names)
    n_short = max(int(round(duration_s * SAMPLE_RATE)), 2 * HOP_LENGTH * 8)
    generator = torch.Generator().manual_seed(random_state)
    was_training = pipeline.training
    pipeline.eval()
    try:
        with torch.no_grad():
            long_outputs = _run_capturing(pipeline, _input(pipeline, 2 * n_short, generator), available)[0]
        probes = []
        with torch.enable_grad():
            for _ in range(_N_PROBES):
                x = _input(pipeline, n_short, generator).requires_grad_(True)
                outputs, order, repeated = _run_capturing(pipeline, x, available)
                probes.append((x, outputs))
            bad = [n for n in names if n in repeated or n not in order]
            if bad:
                raise AudioprobeError(f"layer(s) {bad} do not run exactly once per forward pass (or do not output "
                                      "a tensor) and cannot be probed")
            leaves = [n for n in order if n == "logmel" or not any(True for _ in available[n].children())]
            rows = []
            for name in names:
                # leaves are numbered in forward order; a container shares the number of its last leaf
                index = max(i for i, leaf in enumerate(leaves) if order.index(leaf) <= order.index(name))
                shape = tuple(probes[0][1][name].shape)
                layout = infer_layout(shape, tuple(long_outputs[name].shape), name=name)
                if name == "logmel":
                    edges = mel_band_edges_hz(n_mels=pipeline.frontend.n_mels, f_min=pipeline.frontend.f_min,
                                              f_max=pipeline.frontend.f_max)
                    mid = pipeline.frontend.n_mels // 2
                    ms, hz = 1000.0 * WIN_LENGTH / SAMPLE_RATE, float(edges[mid + 2] - edges[mid])
                else:
                    ms, hz = _receptive_field(pipeline, name, probes, layout)
                rows.append({
                    "layer": name, "layer_index": index,
                    "kind": "input" if name == "logmel" else type(available[name]).__name__,
                    "output_shape": "x".join(str(s) for s in shape[1:]), "time_axis": layout.time_axis,
                    "freq_axis": layout.freq_axis, "receptive_field_ms": ms, "receptive_field_hz": hz,
                    "pooling": effective_pooling(layout, pooling), "pooled_width": pooled_width(shape, layout, pooling),
                })
    finally:
        pipeline.train(was_training)
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS).sort_values("layer_index", ignore_index=True)
    table["time_axis"] = table["time_axis"].astype("Int64")
    table["freq_axis"] = table["freq_axis"].astype("Int64")
    return table


def layouts_of(table: pd.DataFrame) -> dict[str, Layout]:
    """The :class:`Layout` of each layer of a :func:`describe_layers` table."""
    return {row.layer: Layout(ndim=len(row.output_shape.split("x")) + 1,
                              time_axis=None if pd.isna(row.time_axis) else int(row.time_axis),
                              freq_axis=None if pd.isna(row.freq_axis) else int(row.freq_axis))
            for row in table.itertuples()}
