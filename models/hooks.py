"""Forward hooks by layer name that keep pooled, detached CPU copies of activations.

Use :class:`LayerHooks` as a context manager around forward passes::

    with LayerHooks(model, layouts, pooling="mean") as hooks:
        model(batch)
        rows = hooks.pop(batch_size=len(batch))   # {layer: np.ndarray (B, width)}

Inside the block the model is in ``eval()`` mode and autograd is off; on exit (also on an
exception) every hook handle is removed and the previous training mode and grad mode are
restored. Pooling happens inside the hook, so an in-place operation later in the network
cannot alter what was stored.

Layer names are module names (:func:`hookable_modules`); a module that runs several times
per forward pass (a shared ``nn.ReLU``, a weight-tied block in a loop) is named per call,
``name#k`` for its k-th call (from 0) in each forward pass (:func:`split_call`). Layers of
frame-folding encoders (``Layout.frames_folded``) are unfolded to (B, N, ...) before pooling,
N from the model's ``frames_per_clip`` (see :class:`.pipeline.Pipeline`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AudioprobeError, ParameterError, check_choice
from .pooling import POOLINGS, Layout, pool, unfold_frames

__all__ = ["LayerHooks", "hookable_modules", "resolve_layers", "split_call", "call_name"]

#: what a network's forward pass raises when it cannot run an input (shape, dtype, device, assertions)
MODEL_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)
#: the fix named wherever a layer's first axis is not the batch
FOLDING_HINT = ("If the encoder folds frames or patches into the batch axis, give it a method "
                "frames_per_clip(n_samples) -> int (README: Bring your own, models)")
_CALL = re.compile(r"^(?P<module>.+)#(?P<call>\d+)$")


def hookable_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Return the modules a layer name can refer to.

    A model that defines ``hookable_modules()`` (the audioprobe pipeline: ``logmel`` plus
    the encoder's modules) decides itself; any other module offers its named sub-modules.
    """
    own = getattr(model, "hookable_modules", None)
    if callable(own):
        return dict(own())
    return {name: module for name, module in model.named_modules() if name}


def split_call(layer: str) -> tuple[str, int | None]:
    """``"relu#1"`` -> ``("relu", 1)``; a plain module name -> ``(name, None)``."""
    match = _CALL.match(layer)
    return (match["module"], int(match["call"])) if match else (layer, None)


def call_name(module: str, call: int, n_calls: int) -> str:
    """Return the layer name of the ``call``-th call of a module that runs ``n_calls`` times per forward pass."""
    return module if n_calls == 1 else f"{module}#{call}"


def resolve_layers(model: nn.Module, names: list[str] | tuple[str, ...]) -> dict[str, nn.Module]:
    """Map layer names (``module`` or ``module#k``) to modules; an unknown module raises, listing the valid ones.

    Whether call ``k`` exists is only known by running the model (:func:`.layers.describe_layers`
    checks it).
    """
    modules = hookable_modules(model)
    unknown = [name for name in names if split_call(name)[0] not in modules]
    if unknown:
        raise ParameterError(f"unknown layer name(s) {unknown}; valid names: {list(modules)} (a module that runs "
                             "several times per forward pass: name#0, name#1, ... for each call)")
    return {name: modules[split_call(name)[0]] for name in names}


class LayerHooks:
    """Register forward hooks on named layers and collect their pooled outputs.

    Parameters
    ----------
    model : nn.Module
        The network that is called inside the block.
    layouts : mapping of str to Layout
        The layers to hook (names as in :func:`hookable_modules`) and their output layouts.
    pooling : str or mapping of str to str, keyword-only
        One of ``POOLINGS`` for every layer, or one per layer.
    frames_per_clip : callable, optional, keyword-only
        ``frames_per_clip(n) -> int``: frames per clip folded into the batch axis, for a model
        input whose last axis has length ``n``; needed when a layout is ``frames_folded``.
        Default: the model's own ``frames_per_clip`` (:class:`.pipeline.Pipeline` has one).

    Attributes
    ----------
    layers : list of str
        The hooked layer names, in the order given.
    """

    def __init__(self, model: nn.Module, layouts: Mapping[str, Layout], *, pooling: str | Mapping[str, str] = "mean",
                 frames_per_clip: Callable[[int], int | None] | None = None):
        if not layouts:
            raise ParameterError("layouts must name at least one layer")
        self.model = model
        self.layers = list(layouts)
        modules = resolve_layers(model, self.layers)
        self._modules = {split_call(name)[0]: module for name, module in modules.items()}
        self._layouts = dict(layouts)
        self._frames_per_clip = frames_per_clip or getattr(model, "frames_per_clip", None)
        folded = [name for name, layout in self._layouts.items() if layout.frames_folded]
        if folded and not callable(self._frames_per_clip):
            raise ParameterError(f"layer(s) {folded} fold frames into the batch axis but the model has no "
                                 "frames_per_clip(n_samples) method and none was passed")
        if isinstance(pooling, str):
            pooling = {name: pooling for name in self.layers}
        missing = [name for name in self.layers if name not in pooling]
        if missing:
            raise ParameterError(f"pooling has no method for layer(s) {missing}")
        self._pooling = {name: check_choice(f"pooling of layer {name!r}", pooling[name], POOLINGS)
                         for name in self.layers}
        self._store: dict[str, list[np.ndarray]] = {}
        self._calls: dict[str, int] = {}
        self._input_shape: tuple[int, ...] = ()
        self._handles: list[Any] = []
        self._was_training = False
        self._grad_mode = True

    def _begin(self, model: nn.Module, inputs: tuple) -> None:
        """Forward pre-hook of the model: a new forward pass starts counting calls from 0."""
        self._calls.clear()
        self._input_shape = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else ()

    def _hook(self, module_name: str):
        wanted = [name for name in self.layers if split_call(name)[0] == module_name]

        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            call = self._calls.get(module_name, 0)
            self._calls[module_name] = call + 1
            for name in wanted:
                if name in (module_name, f"{module_name}#{call}"):
                    self._keep(name, module, output)
        return hook

    def _keep(self, name: str, module: nn.Module, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            raise AudioprobeError(f"layer {name!r} ({type(module).__name__}) outputs a "
                                  f"{type(output).__name__}, not a tensor: hook a module that outputs one")
        layout = self._layouts[name]
        output = output.detach()
        if layout.frames_folded:
            if not self._input_shape:
                raise AudioprobeError(f"layer {name!r} folds frames into the batch axis but the model was not "
                                      "called with a tensor, so the batch size is unknown")
            n_frames = self._frames_per_clip(self._input_shape[-1])
            output = unfold_frames(output, self._input_shape[0], n_frames, name=name)
        pooled = pool(output, layout, self._pooling[name])
        self._store.setdefault(name, []).append(pooled.to("cpu", torch.float32).numpy())

    def __enter__(self) -> LayerHooks:
        self._was_training = self.model.training
        self._grad_mode = torch.is_grad_enabled()
        self.model.eval()
        torch.set_grad_enabled(False)
        self._store.clear()
        self._calls.clear()
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._begin))
            for name, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        torch.set_grad_enabled(self._grad_mode)
        self.model.train(self._was_training)

    def __exit__(self, *exc: Any) -> None:
        self._remove()
        self._store.clear()

    def clear(self) -> None:
        """Drop what the hooks stored (after a forward pass that failed half-way)."""
        self._store.clear()
        self._calls.clear()

    def pop(self, *, batch_size: int) -> dict[str, np.ndarray]:
        """Return and clear what the hooks stored during one forward pass.

        Parameters
        ----------
        batch_size : int
            The number of items of that forward pass: every layer must have fired exactly
            once with this many rows.

        Returns
        -------
        dict of str to np.ndarray, shape (batch_size, width), float32
        """
        try:
            out = {}
            for name in self.layers:
                stored = self._store.get(name, [])
                if len(stored) != 1:
                    module, call = split_call(name)
                    n_calls = self._calls.get(module, 0)
                    hint = (f"; it ran {n_calls} times: name each call as a layer, {module}#0 ... "
                            f"{module}#{n_calls - 1}" if call is None and n_calls > 1 else "")
                    raise AudioprobeError(f"layer {name!r} ran {len(stored)} times in one forward pass (expected 1)"
                                          f"{hint}")
                if stored[0].shape[0] != batch_size:
                    raise AudioprobeError(f"layer {name!r} returned {stored[0].shape[0]} rows for a batch of "
                                          f"{batch_size}: its first axis is not the batch. {FOLDING_HINT}")
                out[name] = stored[0]
            return out
        finally:
            self._store.clear()
            self._calls.clear()
