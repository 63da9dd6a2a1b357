"""A log-frequency filterbank on STFT power: the axis along which spectral modulation is measured."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["LOGFREQ_FMIN_HZ", "logfreq_filterbank"]

#: Centre of the lowest log-frequency band, Hz.
LOGFREQ_FMIN_HZ = 125.0


@lru_cache(maxsize=8)
def logfreq_filterbank(*, sr: int, n_fft: int, bins_per_octave: int) -> np.ndarray:
    """Triangular filters on a log2 frequency axis, applied to STFT power.

    Centres at ``125 Hz * 2 ** (k / bins_per_octave)`` up to 0.475 ``sr``; each triangle spans the
    neighbouring centres, widened to at least one STFT bin each side, and sums to 1.

    Parameters
    ----------
    sr : int
        Sample rate, Hz.
    n_fft : int
        STFT length, samples.
    bins_per_octave : int
        Log-frequency bins per octave.

    Returns
    -------
    np.ndarray, shape (n_logbins, 1 + n_fft // 2)
        Weights per STFT bin; ``n_logbins = floor(log2(0.475 sr / 125) bins_per_octave) + 1`` (72 at 16 kHz
        and 12 per octave).
    """
    n_octaves = np.log2(0.475 * sr / LOGFREQ_FMIN_HZ)
    n_bins = int(np.floor(n_octaves * bins_per_octave)) + 1
    centres = LOGFREQ_FMIN_HZ * 2.0 ** (np.arange(-1, n_bins + 1) / bins_per_octave)
    fft_freqs = np.arange(1 + n_fft // 2) * sr / n_fft
    spacing = sr / n_fft
    weights = np.zeros((n_bins, fft_freqs.size))
    for k in range(n_bins):
        lower, centre, upper = centres[k], centres[k + 1], centres[k + 2]
        lower, upper = min(lower, centre - spacing), max(upper, centre + spacing)
        rising = (fft_freqs - lower) / (centre - lower)
        falling = (upper - fft_freqs) / (upper - centre)
        weights[k] = np.maximum(0.0, np.minimum(rising, falling))
    return weights / weights.sum(axis=1, keepdims=True)
