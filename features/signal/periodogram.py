"""The periodogram used for temporal and spectral modulation, and the power in a band of it.

:func:`modulation_spectrum` is what ``scipy.signal.periodogram(x, fs, window="hann", nfft,
detrend, scaling="density")`` computes (checked against it in ``tests/test_features.py``), without
its short-time FFT machinery; :func:`band_power` integrates such a density over a band.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from ...errors import check_choice
from .dsp import hann

__all__ = ["modulation_spectrum", "band_power"]


def modulation_spectrum(x: np.ndarray, *, fs: float, detrend: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Compute the one-sided periodogram (Hann window, zero-padded to at least 4x the length, density scaling).

    What ``scipy.signal.periodogram(x, fs, window="hann", nfft, detrend, scaling="density")``
    computes (checked against scipy in ``tests/test_features.py``),
    without its short-time FFT machinery: ``|rfft(detrended x * w, nfft)|^2 / (fs sum w^2)``,
    doubled except at 0 Hz and the Nyquist frequency, with ``w`` the periodic Hann window
    (:func:`features.signal.dsp.hann`) and ``nfft`` the power of two at or above ``4 n``.

    Parameters
    ----------
    x : np.ndarray, shape (..., n, ...)
        Signal, ``n`` samples along ``axis`` (any unit U: envelope amplitude, dB...).
    fs : float
        Sample rate along ``axis``: Hz for a time axis, bins per octave for a log-frequency axis.
    detrend : {"constant", "linear"}
        Remove the mean, or the least-squares line, along ``axis`` first.
    axis : int
        The axis along which the periodogram is taken.

    Returns
    -------
    freqs : np.ndarray, shape (nfft // 2 + 1,)
        Frequencies, in cycles per unit of ``1 / fs`` (Hz, or cycles per octave).
    power : np.ndarray, shape of ``x`` with ``axis`` of length ``nfft // 2 + 1``
        Power density, U^2 per frequency unit; ``power.sum(axis) * (freqs[1] - freqs[0])`` is the
        Hann-weighted mean square ``sum (w x)^2 / sum w^2`` of the detrended signal (Parseval).

    Raises
    ------
    ParameterError
        ``detrend`` is neither ``"constant"`` nor ``"linear"``.
    """
    check_choice("detrend", detrend, ("constant", "linear"))
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
    """Integrate a one-sided power density over the band ``[lo, hi)`` (rectangle rule).

    ``sum(power[lo <= freqs < hi]) * df`` on the uniform grid of :func:`modulation_spectrum`
    (``df = freqs[1] - freqs[0]``): the band's share of the mean square that the periodogram's
    Parseval sum distributes over frequency.

    Parameters
    ----------
    freqs : np.ndarray, shape (n_freqs,)
        Uniformly spaced frequencies (at least two), in the unit of ``lo`` and ``hi``.
    power : np.ndarray, shape (n_freqs,)
        Power density at ``freqs`` (U^2 per frequency unit).
    lo, hi : float
        Band edges; ``lo`` included, ``hi`` excluded.

    Returns
    -------
    float
        Band power, U^2; 0 when no frequency lies in the band.
    """
    df = freqs[1] - freqs[0]
    return float(power[(freqs >= lo) & (freqs < hi)].sum() * df)
