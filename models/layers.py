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

A module that runs several times per forward pass (one ``nn.ReLU`` after two convs as in
torchvision's BasicBlock, a weight-tied block applied in a loop) is one layer per call,
``name#0``, ``name#1``, ... (its plain name is then refused, with the call names listed);
``layer_index`` numbers the calls in forward order. Layers of a frame-folding encoder
(``frames_per_clip``, see :class:`.pipeline.Pipeline`) are described unfolded: their
``output_shape`` starts with the frames of one clip, which are their time axis.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..errors import AudioprobeError, ParameterError
from ..log import logger
from .frontend import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, frames_for_samples, mel_band_edges_hz
from .hooks import FOLDING_HINT, MODEL_ERRORS, call_name, hookable_modules, resolve_layers, split_call
from .pipeline import Pipeline
from .pooling import POOLINGS, Layout, effective_pooling, infer_layout, pooled_width, unfold_frames

__all__ = ["describe_layers", "layouts_of", "LAYER_COLUMNS"]

LAYER_COLUMNS = ["layer", "layer_index", "kind", "output_shape", "time_axis", "freq_axis",
                 "receptive_field_ms", "receptive_field_hz", "pooling", "pooled_width", "frames_folded"]
_N_PROBES = 3


def _input(pipeline: Pipeline, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Return a random encoder input for ``n_samples`` of audio (normalised log-mel ~ N(0, 1), or a waveform)."""
    device = next(iter(pipeline.buffers())).device
    if pipeline.input_kind == "waveform":
        shape = (1, n_samples)
    else:
        shape = (1, 1, pipeline.frontend.n_mels, frames_for_samples(n_samples))
    return torch.randn(shape, generator=generator).to(device)


@dataclass
class _Pass:
    """What one forward pass of the encoder showed.

    ``outputs`` maps layer names (``module``, or ``module#k`` for the k-th call of a module
    that ran several times) to raw outputs, ``order`` lists them in the order the calls
    finished (``logmel`` first), ``calls`` counts the calls of each module, ``non_tensor``
    names the calls whose output is not a tensor.
    """

    outputs: dict[str, torch.Tensor]
    order: list[str]
    calls: Counter
    non_tensor: set[str]


def _run_capturing(pipeline: Pipeline, x: torch.Tensor, modules: dict[str, nn.Module]) -> _Pass:
    """Run the encoder on ``x`` (its input) and keep every call of the named modules (``logmel`` = the input)."""
    finished: list[tuple[str, object]] = []
    handles = [m.register_forward_hook(lambda module, inputs, output, n=n: finished.append((n, output)))
               for n, m in modules.items() if n != "logmel"]
    try:
        pipeline.encoder(x)
    except MODEL_ERRORS as exc:
        what = ("the normalised log-mel (batch, 1, 64, frames)" if pipeline.input_kind == "logmel"
                else "the 16 kHz waveform (batch, n_samples)")
        raise AudioprobeError(f"the encoder fails on a random input of shape {tuple(x.shape)} "
                              f"({x.shape[-1]} {'frames' if pipeline.input_kind == 'logmel' else 'samples'}); it is "
                              f"given {what} (input_kind {pipeline.input_kind!r}; set input_kind = 'waveform' on the "
                              f"encoder for waveform input): {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        for handle in handles:
            handle.remove()
    calls = Counter(name for name, _ in finished)
    seen: Counter = Counter()
    result = _Pass(outputs={}, order=[], calls=calls, non_tensor=set())
    for module, output in finished:
        name = call_name(module, seen[module], calls[module])
        seen[module] += 1
        if isinstance(output, torch.Tensor):
            result.outputs[name] = output
            result.order.append(name)
        else:
            result.non_tensor.add(name)
    if "logmel" in modules:
        result.outputs["logmel"] = x if pipeline.input_kind == "logmel" else pipeline.logmel(x)
        result.order.insert(0, "logmel")
    return result


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


def _check_names(names: list[str], seen: _Pass) -> None:
    """Raise one error naming every layer that cannot be probed as asked, and the names to use instead."""
    problems = []
    for name in names:
        if name in seen.outputs:
            continue
        module = split_call(name)[0]
        n_calls = seen.calls.get(module, 0)
        if name in seen.non_tensor:
            problems.append(f"{name!r} outputs no tensor")
        elif n_calls == 0:
            problems.append(f"{name!r} does not run in a forward pass")
        elif n_calls == 1:
            problems.append(f"{name!r}: {module} runs once per forward pass, name it {module!r}")
        else:
            problems.append(f"{name!r}: {module} runs {n_calls} times per forward pass, name one call: "
                            f"{', '.join(call_name(module, k, n_calls) for k in range(n_calls))}")
    if problems:
        raise AudioprobeError(f"layer(s) cannot be probed: {'; '.join(problems)}")


def _folded_layers(names: list[str], seen: _Pass, n_frames: int | None, n_samples: int) -> set[str]:
    """Return the layers whose first axis holds the frames of a frame-folding encoder (checked on a one-clip pass).

    Raises
    ------
    AudioprobeError
        A layer whose first axis is neither the batch (1) nor the declared frames.
    """
    folded = set()
    for name in names:
        rows = seen.outputs[name].shape[0] if seen.outputs[name].ndim else 0
        if name != "logmel" and n_frames is not None and n_frames > 1 and rows == n_frames:
            folded.add(name)
        elif rows != 1:
            declared = ("" if n_frames is None else
                        f" nor the {n_frames} frames the encoder's frames_per_clip({n_samples}) declares")
            raise AudioprobeError(f"layer {name!r} returned {rows} rows for one clip of {n_samples / SAMPLE_RATE:g} s: "
                                  f"its first axis is not the batch{declared}. {FOLDING_HINT}")
    return folded


def _per_clip(seen: _Pass, names: list[str], folded: set[str], n_frames: int | None) -> dict[str, torch.Tensor]:
    """Return the one-clip outputs of ``names``, frame-folded layers unfolded to (1, N, ...)."""
    out = {}
    for name in names:
        output = seen.outputs[name]
        if name in folded:
            out[name] = unfold_frames(output, 1, n_frames, name=name)
        elif output.shape[0] != 1:
            raise AudioprobeError(f"layer {name!r} returned {output.shape[0]} rows for one clip: its first axis "
                                  f"is not the batch. {FOLDING_HINT}")
        else:
            out[name] = output
    return out


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
        Layer names to describe; default every call of every leaf module (plus ``logmel``).
        Any name of :func:`.hooks.hookable_modules` is accepted, containers included; a
        module that runs several times per forward pass is named per call, ``name#k``.
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
        ``receptive_field_ms`` / ``receptive_field_hz`` as in the module docstring;
        ``frames_folded`` True for layers whose batch axis holds frames of a frame-folding encoder.

    Raises
    ------
    AudioprobeError
        A layer that does not run, outputs no tensor, is a repeated module named without its
        call, or whose first axis is neither the batch nor the declared frames.
    """
    if pooling not in POOLINGS:
        raise ParameterError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    if not duration_s > 0:
        raise ParameterError(f"duration_s must be > 0, got {duration_s!r}")
    available = hookable_modules(pipeline)
    if layers is not None:
        resolve_layers(pipeline, list(layers))
    n_short = max(int(round(duration_s * SAMPLE_RATE)), 2 * HOP_LENGTH * 8)
    generator = torch.Generator().manual_seed(random_state)
    was_training = pipeline.training
    pipeline.eval()
    try:
        with torch.no_grad():
            long_pass = _run_capturing(pipeline, _input(pipeline, 2 * n_short, generator), available)
        probes = []
        with torch.enable_grad():
            for _ in range(_N_PROBES):
                x = _input(pipeline, n_short, generator).requires_grad_(True)
                probes.append((x, _run_capturing(pipeline, x, available)))
            first = probes[0][1]
            names = _default_layers(first, available) if layers is None else list(dict.fromkeys(layers))
            _check_names(names, first)
            missing = [n for n in names if n not in long_pass.outputs]
            if missing:
                raise AudioprobeError(f"layer(s) {missing} run a different number of times for a "
                                      f"{n_short / SAMPLE_RATE:g} s and a {2 * n_short / SAMPLE_RATE:g} s input: "
                                      "their calls cannot be matched across clips of different lengths")
            frames_long = pipeline.frames_per_clip(2 * n_short)
            folded = _folded_layers(names, long_pass, frames_long, 2 * n_short)
            long_outputs = _per_clip(long_pass, names, folded, frames_long)
            frames_short = pipeline.frames_per_clip(n_short)
            probes = [(x, _per_clip(seen, names, folded, frames_short)) for x, seen in probes]
            order = first.order
            position = {name: i for i, name in enumerate(order)}
            leaves = [n for n in order if _is_leaf(n, available)]
            rows = []
            for name in names:
                # leaf calls are numbered in forward order; a container shares the number of its last leaf call
                index = max(i for i, leaf in enumerate(leaves) if position[leaf] <= position[name])
                shape = tuple(probes[0][1][name].shape)
                layout = infer_layout(shape, tuple(long_outputs[name].shape), name=name,
                                      frames_folded=name in folded)
                if name == "logmel":
                    edges = mel_band_edges_hz(n_mels=pipeline.frontend.n_mels, f_min=pipeline.frontend.f_min,
                                              f_max=pipeline.frontend.f_max)
                    mid = pipeline.frontend.n_mels // 2
                    ms, hz = 1000.0 * WIN_LENGTH / SAMPLE_RATE, float(edges[mid + 2] - edges[mid])
                else:
                    ms, hz = _receptive_field(pipeline, name, probes, layout)
                rows.append({
                    "layer": name, "layer_index": index,
                    "kind": "input" if name == "logmel" else type(available[split_call(name)[0]]).__name__,
                    "output_shape": "x".join(str(s) for s in shape[1:]), "time_axis": layout.time_axis,
                    "freq_axis": layout.freq_axis, "receptive_field_ms": ms, "receptive_field_hz": hz,
                    "pooling": effective_pooling(layout, pooling), "pooled_width": pooled_width(shape, layout, pooling),
                    "frames_folded": name in folded,
                })
    finally:
        pipeline.train(was_training)
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS).sort_values("layer_index", ignore_index=True)
    table["time_axis"] = table["time_axis"].astype("Int64")
    table["freq_axis"] = table["freq_axis"].astype("Int64")
    return table


def _is_leaf(name: str, available: dict[str, nn.Module]) -> bool:
    """Whether a layer is ``logmel`` or a call of a module without sub-modules."""
    return name == "logmel" or not any(True for _ in available[split_call(name)[0]].children())


def _default_layers(seen: _Pass, available: dict[str, nn.Module]) -> list[str]:
    """Every call of every leaf module that outputs a tensor, in forward order (``logmel`` first).

    Leaf modules that do not run, or output no tensor, cannot be probed: they are named in a warning.
    """
    names = [n for n in seen.order if _is_leaf(n, available)]
    ran = {split_call(n)[0] for n in names}
    left_out = [n for n in available if n != "logmel" and _is_leaf(n, available) and n not in ran]
    if left_out:
        logger.warning("layers %s are left out: they do not run in a forward pass or output no tensor", left_out)
    return names


def layouts_of(table: pd.DataFrame) -> dict[str, Layout]:
    """Return the :class:`Layout` of each layer of a :func:`describe_layers` table."""
    return {row.layer: Layout(ndim=len(row.output_shape.split("x")) + 1,
                              time_axis=None if pd.isna(row.time_axis) else int(row.time_axis),
                              freq_axis=None if pd.isna(row.freq_axis) else int(row.freq_axis),
                              frames_folded=bool(row.frames_folded))
            for row in table.itertuples()}
