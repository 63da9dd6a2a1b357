"""The periodogram used for temporal and spectral modulation, and the power in a band of it.

:func:`modulation_spectrum` is what ``scipy.signal.periodogram(x, fs, window="hann", nfft,
detrend, scaling="density")`` computes (checked against it in ``tests/test_features.py``), without
its short-time FFT machinery; :func:`band_power` integrates such a density over a band.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .dsp import hann

__all__ = ["modulation_spectrum", "band_power"]


def modulation_spectrum(x: np.ndarray, *, fs: float, detrend: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Periodogram (Hann window, zero-padded to at least 4x the length, density scaling).

    What ``scipy.signal.periodogram(x, fs, window="hann", nfft, detrend, scaling="density")``
    computes, without its short-time FFT machinery: ``|rfft(detrended x * w, nfft)|^2 / (fs sum w^2)``,
    doubled except at 0 Hz and the Nyquist frequency.

    Parameters
    ----------
    x : np.ndarray
    fs : float
        Sample rate along ``axis``.
    detrend : {"constant", "linear"}
        Remove the mean, or the least-squares line, first.
    axis : int

    Returns
    -------
    freqs : np.ndarray, shape (n_freqs,)
    power : np.ndarray
        ``x``'s shape with ``axis`` replaced by n_freqs; ``power.sum(axis) * df`` is the
        variance of the detrended signal.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    nfft = 1 << int(np.ceil(np.log2(4 * n)))
    x = x - x.mean(axis=-1, keepdims=True)
    if detrend == "linear" and n > 1:
        t = np.arange(n) - (n - 1) / 2.0
        x = x - (x @ t / (t @ t))[..., None] * t
    window = hann(n)
    power = np.abs(scipy.fft.rfft(x * window, nfft, axis=-1)) ** 2 / (fs * np.sum(window ** 2))
    power[..., 1: power.shape[-1] - (nfft % 2 == 0)] *= 2.0
    return np.fft.rfftfreq(nfft, 1.0 / fs), np.moveaxis(power, -1, axis)


def band_power(freqs: np.ndarray, power: np.ndarray, lo: float, hi: float) -> float:
    df = freqs[1] - freqs[0]
    return float(power[(freqs >= lo) & (freqs < hi)].sum() * df)
