"""Forward hooks by layer name that keep pooled, detached CPU copies of activations.

Use :class:`LayerHooks` as a context manager around forward passes::

    with LayerHooks(model, layouts, pooling="mean") as hooks:
        model(batch)
        rows = hooks.pop(batch_size=len(batch))   # {layer: np.ndarray (B, width)}

Inside the block the model is in ``eval()`` mode and autograd is off; on exit (also on an
exception) every hook handle is removed and the previous training mode and grad mode are
restored. Pooling happens inside the hook, so an in-place operation later in the network
cannot alter what was stored.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AudioprobeError, ParameterError, check_choice
from .pooling import POOLINGS, Layout, pool

__all__ = ["LayerHooks", "hookable_modules", "resolve_layers"]


def hookable_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The modules a layer name can refer to.

    A model that defines ``hookable_modules()`` (the audioprobe pipeline: ``logmel`` plus
    the encoder's modules) decides itself; any other module offers its named sub-modules.
    """
    own = getattr(model, "hookable_modules", None)
    if callable(own):
        return dict(own())
    return {name: module for name, module in model.named_modules() if name}


def resolve_layers(model: nn.Module, names: list[str] | tuple[str, ...]) -> dict[str, nn.Module]:
    """Map layer names to modules; an unknown name raises an error listing the valid ones."""
    modules = hookable_modules(model)
    unknown = [name for name in names if name not in modules]
    if unknown:
        raise ParameterError(f"unknown layer name(s) {unknown}; valid names: {list(modules)}")
    return {name: modules[name] for name in names}


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

    Attributes
    ----------
    layers : list of str
        The hooked layer names, in the order given.
    """

    def __init__(self, model: nn.Module, layouts: Mapping[str, Layout], *, pooling: str | Mapping[str, str] = "mean"):
        if not layouts:
            raise ParameterError("layouts must name at least one layer")
        self.model = model
        self.layers = list(layouts)
        self._modules = resolve_layers(model, self.layers)
        self._layouts = dict(layouts)
        if isinstance(pooling, str):
            pooling = {name: pooling for name in self.layers}
        missing = [name for name in self.layers if name not in pooling]
        if missing:
            raise ParameterError(f"pooling has no method for layer(s) {missing}")
        self._pooling = {name: check_choice(f"pooling of layer {name!r}", pooling[name], POOLINGS)
                         for name in self.layers}
        self._store: dict[str, list[np.ndarray]] = {}
        self._handles: list[Any] = []
        self._was_training = False
        self._grad_mode = True

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise AudioprobeError(f"layer {name!r} ({type(module).__name__}) outputs a "
                                      f"{type(output).__name__}, not a tensor: hook a module that outputs one")
            pooled = pool(output.detach(), self._layouts[name], self._pooling[name])
            self._store.setdefault(name, []).append(pooled.to("cpu", torch.float32).numpy())
        return hook

    def __enter__(self) -> LayerHooks:
        self._was_training = self.model.training
        self._grad_mode = torch.is_grad_enabled()
        self.model.eval()
        torch.set_grad_enabled(False)
        self._store.clear()
        try:
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
                    raise AudioprobeError(f"layer {name!r} ran {len(stored)} times in one forward pass (expected 1): "
                                          "hook a module that runs exactly once per forward")
                if stored[0].shape[0] != batch_size:
                    raise AudioprobeError(f"layer {name!r} returned {stored[0].shape[0]} rows for a batch of "
                                          f"{batch_size}: its first axis is not the batch")
                out[name] = stored[0]
            return out
        finally:
            self._store.clear()
