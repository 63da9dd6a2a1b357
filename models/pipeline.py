"""Waveform -> log-mel -> normalisation -> encoder, as one module with named layers."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ParameterError, check_choice
from .frontend import LogMelFrontend, Normalize

__all__ = ["Pipeline", "INPUT_KINDS", "MIN_SAMPLES"]

#: what an encoder takes: the normalised log-mel (B, 1, 64, T) or the 16 kHz waveform (B, n_samples)
INPUT_KINDS = ("logmel", "waveform")
#: BYOL-A's unit of 0.95 s: shorter clips are zero-padded to it (centred), longer ones run whole
MIN_SAMPLES = 15200


class Pipeline(nn.Module):
    """The network as probed: front end, normalisation, encoder.

    Parameters
    ----------
    encoder : nn.Module
        Takes the normalised log-mel (B, 1, 64, T) or, when ``input_kind="waveform"``, the
        waveform (B, n_samples) at 16 kHz.
    norm_mean, norm_std : float
        Normalisation stats of the log-mel (those of the checkpoint).
    input_kind : {"logmel", "waveform"}, keyword-only

    Notes
    -----
    Layer names (:meth:`hookable_modules`): ``logmel`` is the normalised log-mel input
    (layer 0, always available); every other name is a module of the encoder, named as in
    ``encoder.named_modules()`` (e.g. ``features.3``, ``fc.1``).
    """

    def __init__(self, encoder: nn.Module, *, norm_mean: float, norm_std: float, input_kind: str = "logmel"):
        super().__init__()
        check_choice("input_kind", input_kind, INPUT_KINDS)
        self.frontend = LogMelFrontend()
        self.normalize = Normalize(norm_mean, norm_std)
        self.encoder = encoder
        self.input_kind = input_kind

    def hookable_modules(self) -> dict[str, nn.Module]:
        """``{"logmel": normalisation step, **encoder modules}``."""
        return {"logmel": self.normalize, **{n: m for n, m in self.encoder.named_modules() if n}}

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, 1, 64, T) of a waveform batch (B, n_samples)."""
        return self.normalize(self.frontend(waveform))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Run the whole network on a waveform batch (B, n_samples), float32, 16 kHz."""
        if waveform.ndim != 2:
            raise ParameterError(f"waveform must have shape (batch, n_samples), got {tuple(waveform.shape)}")
        x = self.logmel(waveform)
        return self.encoder(waveform if self.input_kind == "waveform" else x)
