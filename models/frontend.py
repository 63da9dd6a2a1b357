"""BYOL-A's log-mel front end, in torch (torchaudio has no build for torch 2.13).

The settings are those BYOL-A v1/v2 were pretrained with (``config.yaml`` of
nttcslab/byol-a, computed there by ``torchaudio.transforms.MelSpectrogram``): 16 kHz,
n_fft = win_length = 1024 (a periodic Hann window), hop 160 samples (10 ms), frames
centred on their sample by reflection padding of n_fft // 2 at both ends, power 2,
64 HTK mel bands between 60 and 7800 Hz without filter normalisation, then
``log(mel + eps)`` with eps = float32 machine epsilon, then ``(x - mean) / std`` with
stats that belong to the checkpoint.
"""
from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = ["LogMelFrontend", "Normalize", "BYOLA_V1_NORM", "SAMPLE_RATE", "HOP_LENGTH", "N_MELS",
           "frames_for_samples", "mel_band_edges_hz"]

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 60.0
F_MAX = 7800.0
LOG_EPS = float(torch.finfo(torch.float32).eps)
#: The normalisation stats published with the official v1 checkpoints (mean, std of log-mel on AudioSet).
BYOLA_V1_NORM = (-5.4919195, 5.0389895)


def frames_for_samples(n_samples: int, *, hop_length: int = HOP_LENGTH) -> int:
    """Return the number of centred frames the front end makes of ``n_samples`` samples: ``1 + n_samples // hop``."""
    return 1 + int(n_samples) // hop_length


def mel_band_edges_hz(*, n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """Return the ``n_mels + 2`` HTK mel points (Hz): band ``k`` spans ``edges[k]`` to ``edges[k + 2]``."""
    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=f_min, fmax=f_max, htk=True)


class LogMelFrontend(nn.Module):
    """Waveform -> un-normalised log-mel spectrogram, as BYOL-A computes it.

    Parameters
    ----------
    sample_rate : int
        Hz; the waveform must already be at this rate.
    n_fft, win_length, hop_length : int
        Samples.
    n_mels : int
    f_min, f_max : float
        Hz, edges of the mel filterbank (HTK scale, no area normalisation).
    eps : float
        Added to the mel power before the log.

    Notes
    -----
    The filterbank is ``librosa.filters.mel(htk=True, norm=None)``, kept as the buffer
    ``mel_basis`` of shape (n_mels, n_fft // 2 + 1).
    """

    def __init__(self, *, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, win_length: int = WIN_LENGTH,
                 hop_length: int = HOP_LENGTH, n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX,
                 eps: float = LOG_EPS):
        super().__init__()
        if win_length > n_fft:
            raise ParameterError(f"win_length must be <= n_fft ({n_fft}), got {win_length!r}")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ParameterError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min!r}, "
                                 f"f_max={f_max!r}, sample_rate={sample_rate!r}")
        self.sample_rate, self.n_fft, self.win_length, self.hop_length = sample_rate, n_fft, win_length, hop_length
        self.n_mels, self.f_min, self.f_max, self.eps = n_mels, f_min, f_max, eps
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                                    htk=True, norm=None)
        self.register_buffer("mel_basis", torch.from_numpy(basis.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length, periodic=True), persistent=False)

    def mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram (before the log).

        Parameters
        ----------
        waveform : torch.Tensor, shape (B, n_samples), float32
            At ``sample_rate``; ``n_samples`` must exceed ``n_fft // 2`` (reflection padding).

        Returns
        -------
        torch.Tensor, shape (B, n_mels, 1 + n_samples // hop_length)
        """
        if waveform.ndim != 2:
            raise ParameterError(f"waveform must have shape (batch, n_samples), got shape {tuple(waveform.shape)}")
        if waveform.shape[-1] <= self.n_fft // 2:
            raise ParameterError(f"waveform must be longer than n_fft // 2 = {self.n_fft // 2} samples "
                                 f"(reflection padding), got {waveform.shape[-1]}")
        spec = torch.stft(waveform, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return torch.matmul(self.mel_basis, power)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram.

        Parameters
        ----------
        waveform : torch.Tensor, shape (B, n_samples), float32

        Returns
        -------
        torch.Tensor, shape (B, 1, n_mels, T), T = 1 + n_samples // hop_length
            ``log(mel power + eps)``, not normalised.
        """
        return torch.log(self.mel_power(waveform) + self.eps).unsqueeze(1)


class Normalize(nn.Module):
    """``(x - mean) / std`` with scalar stats (those of the checkpoint's pretraining corpus).

    Parameters
    ----------
    mean, std : float
        Defaults: the published BYOL-A v1 stats, :data:`BYOLA_V1_NORM`.
    """

    def __init__(self, mean: float = BYOLA_V1_NORM[0], std: float = BYOLA_V1_NORM[1]):
        super().__init__()
        if not np.isfinite(mean) or not np.isfinite(std) or std <= 0:
            raise ParameterError(f"norm stats must be finite with std > 0, got mean={mean!r}, std={std!r}")
        self.mean, self.std = float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - mean) / std``, same shape as ``x``."""
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        """Return the statistics shown in the module's repr."""
        return f"mean={self.mean}, std={self.std}"
