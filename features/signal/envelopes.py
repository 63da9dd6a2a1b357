"""Octave-band Hilbert envelopes at a low rate: the input of temporal modulation and roughness.

The analysis signal is split into octave bands (4th-order Butterworth band-passes, centres
:data:`ENVELOPE_BAND_CENTRES_HZ` below 0.45 sr, ``scipy.signal.sosfilt``), each band's Hilbert
envelope (``abs(scipy.signal.hilbert)``) is resampled to ``env_rate`` (``scipy.signal.resample_poly``
with its default anti-alias filter), and the edges, where the filters ring up
(:func:`envelope_edge_s`), are dropped. ``tests/test_features.py`` checks :func:`band_envelopes`
against those scipy calls on the same input.
"""
from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
import scipy.fft
import scipy.signal

__all__ = ["ENVELOPE_BAND_CENTRES_HZ", "SETTLED_ENERGY", "octave_bands", "envelope_edge_s", "band_envelopes"]

#: Centres of the octave bands whose envelopes are taken, Hz.
ENVELOPE_BAND_CENTRES_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
#: Share of a band filter's impulse-response energy after which it has settled (:func:`envelope_edge_s`).
SETTLED_ENERGY = 0.999


def octave_bands(sr: int) -> list[tuple[float, float]]:
    """Edges of the envelope octave bands that fit below 0.45 ``sr``.

    Parameters
    ----------
    sr : int
        Sample rate, Hz.

    Returns
    -------
    list of (float, float), length n_bands
        ``(centre / sqrt 2, centre * sqrt 2)`` in Hz for each centre of :data:`ENVELOPE_BAND_CENTRES_HZ`
        whose upper edge lies below 0.45 ``sr`` (all 6 at 16 kHz, 5 at 8 kHz).
    """
    edges = [(c / np.sqrt(2), c * np.sqrt(2)) for c in ENVELOPE_BAND_CENTRES_HZ]
    return [(lo, hi) for lo, hi in edges if hi < 0.45 * sr]


@lru_cache(maxsize=8)
def _band_filters(sr: int) -> tuple[np.ndarray, ...]:
    return tuple(scipy.signal.butter(4, band, btype="bandpass", fs=sr, output="sos") for band in octave_bands(sr))


@lru_cache(maxsize=8)
def envelope_edge_s(sr: int, env_rate: int) -> float:
    """Time dropped at each end of the band envelopes, s.

    The slowest band filter's settling time (until ``SETTLED_ENERGY`` of its impulse response energy
    has passed: 44 ms for the 125 Hz octave) plus the half-length of ``resample_poly``'s
    anti-alias filter (``10 max(up, down)`` taps at ``up * sr``): envelope samples nearer an
    edge hold the filters' ring-up and the Hilbert transform's edge ripple, a spurious modulation
    that dominates a short steady tone.

    Parameters
    ----------
    sr : int
        Sample rate of the signal, Hz.
    env_rate : int
        Sample rate of the envelopes, Hz.

    Returns
    -------
    float
        Seconds (54 ms at 16 kHz and 1 kHz).
    """
    impulse = np.zeros(sr)
    impulse[0] = 1.0
    settle = 0
    for sos in _band_filters(sr):
        energy = np.cumsum(scipy.signal.sosfilt(sos, impulse) ** 2)
        settle = max(settle, int(np.searchsorted(energy / energy[-1], SETTLED_ENERGY)))
    common = gcd(env_rate, sr)
    up, down = env_rate // common, sr // common
    return settle / sr + 10 * max(up, down) / (up * sr)


@lru_cache(maxsize=8)
def _antialias_filter(up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly``'s default FIR (Kaiser beta 5, ``10 max(up, down)`` taps each side), built once."""
    max_rate = max(up, down)
    taps = scipy.signal.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    taps.setflags(write=False)
    return taps


def _analytic_magnitude(bands: np.ndarray) -> np.ndarray:
    """``abs(scipy.signal.hilbert(bands, N=next_fast_len))`` cut to the input length, with real FFTs only.

    The analytic signal's real part is the input itself, and its imaginary part, the Hilbert transform,
    is the inverse real FFT of ``-1j * rfft(bands)`` with the DC and Nyquist terms zeroed (what
    ``scipy.signal.hilbert``'s complex inverse FFT of the one-sided spectrum amounts to, at half its cost).

    Parameters
    ----------
    bands : np.ndarray, shape (..., n_samples)

    Returns
    -------
    np.ndarray, shape (..., n_samples)
    """
    n = bands.shape[-1]
    n_fast = scipy.fft.next_fast_len(n)
    spectrum = scipy.fft.rfft(bands, n_fast, axis=-1)
    spectrum *= -1j
    spectrum[..., 0] = 0.0
    if n_fast % 2 == 0:
        spectrum[..., -1] = 0.0
    quadrature = scipy.fft.irfft(spectrum, n_fast, axis=-1, overwrite_x=True)[..., :n]
    return np.sqrt(bands * bands + quadrature * quadrature)  # np.hypot is 6x slower; no overflow at these levels


def _resample(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, axis=-1)``; for ``up == 1`` as one matrix product.

    With ``up == 1`` resample_poly's output sample k is the dot product of its anti-alias filter
    (``2 half + 1`` taps, ``half = 10 down``, symmetric) with ``x[k down - half: k down + half + 1]``
    (zeros outside the signal): computed here as a few matrix products over blocks of ``down`` samples.
    """
    taps = _antialias_filter(up, down)
    if up != 1:
        return scipy.signal.resample_poly(x, up, down, axis=-1, window=taps.copy())
    half = (taps.size - 1) // 2
    n_out = -(-x.shape[-1] // down)
    n_blocks = -(-taps.size // down)  # the taps span n_blocks blocks of down samples
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, (n_out + n_blocks) * down - half - x.shape[-1])])
    blocks = padded.reshape(x.shape[:-1] + (n_out + n_blocks, down))  # contiguous: no strided copy
    reversed_taps = np.zeros(n_blocks * down)
    reversed_taps[: taps.size] = taps[::-1]
    out = np.zeros(x.shape[:-1] + (n_out,))
    for q in range(n_blocks):
        out += blocks[..., q: q + n_out, :] @ reversed_taps[q * down: (q + 1) * down]
    return out


def band_envelopes(y: np.ndarray, *, sr: int, env_rate: int) -> np.ndarray:
    """Hilbert envelopes of octave bands, resampled to ``env_rate``, their edges dropped.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : int
        Hz.
    env_rate : int
        Envelope sample rate, Hz (``scipy.signal.resample_poly`` with its default anti-alias filter).

    Returns
    -------
    np.ndarray, shape (n_bands, n_env)
        Non-negative envelopes, in signal units: ``ceil(n_samples * env_rate / sr)`` samples less
        ``round(envelope_edge_s * env_rate)`` at each end (none for a clip shorter than twice that).
    """
    common = gcd(env_rate, sr)
    # one band at a time: temporaries of one band's size are reused by the allocator, where (n_bands, n_samples)
    # ones were returned to the system and page-faulted in again for every clip (1,000 faults, 2 ms per 2 s clip)
    envelope = np.stack([_resample(_analytic_magnitude(scipy.signal.sosfilt(sos, y)), env_rate // common,
                                   sr // common) for sos in _band_filters(sr)])
    edge = round(envelope_edge_s(sr, env_rate) * env_rate)
    return np.maximum(envelope[:, edge: max(edge, envelope.shape[-1] - edge)], 0.0)
