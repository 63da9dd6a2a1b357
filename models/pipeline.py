"""Waveform -> log-mel -> normalisation -> encoder, as one module with named layers."""
from __future__ import annotations

from numbers import Integral

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
    ``encoder.named_modules()`` (e.g. ``features.3``, ``fc.1``). A module that runs several
    times per forward pass (a shared ``nn.ReLU``, a weight-tied block in a loop) has one
    layer per call, ``name#0``, ``name#1``, ... in call order (:mod:`.layers`).

    Frame-folding encoders (a pitch CNN on 1024-sample frames, VGGish-style patches) run
    all frames of all clips as one batch, so their layers return (B x N, ...) rows. Such an
    encoder declares it with a method ``frames_per_clip(n_samples) -> int``: the number N of
    frames (patches) it folds into the batch axis for each clip of ``n_samples`` samples at
    16 kHz (the waveform the pipeline receives), rows clip-major (the N frames of clip 0,
    then those of clip 1, ...). Its layers are then unfolded to (B, N, ...) and pooled over
    the N frames like any time axis; a layer that returns B rows (after the frames were
    pooled back into clips) is a clip-level layer as usual. Example, 1024-sample frames at a
    10 ms hop: ``def frames_per_clip(self, n_samples): return 1 + (n_samples - 1024) // 160``.
    """

    def __init__(self, encoder: nn.Module, *, norm_mean: float, norm_std: float, input_kind: str = "logmel"):
        super().__init__()
        check_choice("input_kind", input_kind, INPUT_KINDS)
        declared = getattr(encoder, "frames_per_clip", None)
        if declared is not None and not callable(declared):
            raise ParameterError(f"{type(encoder).__name__}.frames_per_clip must be a method "
                                 f"frames_per_clip(n_samples) -> int (frames folded into the batch axis per clip), "
                                 f"got {declared!r}")
        self.frontend = LogMelFrontend()
        self.normalize = Normalize(norm_mean, norm_std)
        self.encoder = encoder
        self.input_kind = input_kind

    def hookable_modules(self) -> dict[str, nn.Module]:
        """``{"logmel": normalisation step, **encoder modules}``."""
        return {"logmel": self.normalize, **{n: m for n, m in self.encoder.named_modules() if n}}

    def frames_per_clip(self, n_samples: int) -> int | None:
        """Frames the encoder folds into the batch axis per clip of ``n_samples`` samples; None if it does not fold.

        Raises
        ------
        ParameterError
            If the encoder's ``frames_per_clip`` returns anything but a positive integer.
        """
        declared = getattr(self.encoder, "frames_per_clip", None)
        if declared is None:
            return None
        n_frames = declared(int(n_samples))
        if isinstance(n_frames, bool) or not isinstance(n_frames, Integral) or n_frames < 1:
            raise ParameterError(f"{type(self.encoder).__name__}.frames_per_clip({int(n_samples)}) must return a "
                                 f"positive integer, got {n_frames!r}")
        return int(n_frames)

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, 1, 64, T) of a waveform batch (B, n_samples)."""
        return self.normalize(self.frontend(waveform))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Run the whole network on a waveform batch (B, n_samples), float32, 16 kHz."""
        if waveform.ndim != 2:
            raise ParameterError(f"waveform must have shape (batch, n_samples), got {tuple(waveform.shape)}")
        x = self.logmel(waveform)
        return self.encoder(waveform if self.input_kind == "waveform" else x)
