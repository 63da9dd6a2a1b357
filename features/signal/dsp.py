"""librosa's frame-level primitives, in numpy: the same formulas without importing librosa.

Importing librosa's feature, filter and onset modules compiles or loads numba ufuncs, about 2 s of
start-up in every worker process (measured here: ``import librosa.feature`` 3.5 s on a busy
2-core machine, most of the features stage's start-up); the descriptors need only a few closed-form
formulas of librosa 0.11, restated here from its source (``librosa.filters.mel``,
``librosa.feature.spectral_*``, ``librosa.power_to_db``, ``librosa.feature.mfcc``,
``librosa.onset.onset_strength``, ``librosa.onset.onset_detect`` / ``librosa.util.peak_pick``).
Every function is checked against librosa on the same input in ``tests/test_features.py``
(``test_dsp_primitives_equal_librosa``); librosa itself is still used for pyin.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

__all__ = [
    "fft_frequencies",
    "frame",
    "hann",
    "mel_filterbank",
    "mfcc",
    "onset_detect",
    "onset_strength",
    "power_to_db",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_flatness",
    "spectral_rolloff",
]


@lru_cache(maxsize=32)
def hann(n: int) -> np.ndarray:
    """Periodic Hann window, ``scipy.signal.get_window("hann", n)`` (a single sample is 1).

    Parameters
    ----------
    n : int
        Window length, samples.

    Returns
    -------
    np.ndarray, shape (n,)
        Read-only (cached) weights in [0, 1].
    """
    window = np.ones(n) if n <= 1 else 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    window.setflags(write=False)
    return window


def frame(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Frame ``y`` as a strided view, as ``librosa.util.frame`` (frames wholly inside ``y``, not centred).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    frame_length, hop_length : int
        Samples per frame and between frame starts.

    Returns
    -------
    np.ndarray, shape (frame_length, n_frames)
        ``n_frames = 1 + (n_samples - frame_length) // hop_length``; a read-only view of ``y``.
    """
    n_frames = 1 + (y.size - frame_length) // hop_length
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length][:n_frames].T


def fft_frequencies(*, sr: int, n_fft: int) -> np.ndarray:
    """Centre frequency of each rfft bin, as ``librosa.fft_frequencies``.

    Parameters
    ----------
    sr : int
        Sample rate, Hz.
    n_fft : int
        FFT length, samples.

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2,)
        Hz, from 0 to sr / 2.
    """
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (6.4 = 27 mel steps) above."""
    mels = frequencies / (200.0 / 3)
    log_region = frequencies >= 1000.0
    mels[log_region] = 15.0 + np.log(frequencies[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = (200.0 / 3) * mels
    log_region = mels >= 15.0
    freqs[log_region] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_region] - 15.0))
    return freqs


@lru_cache(maxsize=8)
def mel_filterbank(*, sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filters from 0 Hz to sr/2 (``librosa.filters.mel`` defaults).

    Slaney's Auditory Toolbox mel scale and area normalisation (``htk=False``, ``norm="slaney"``).

    Parameters
    ----------
    sr : int
        Sample rate, Hz.
    n_fft : int
        FFT length, samples.
    n_mels : int
        Number of bands.

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2)
        Weights per STFT bin, computed in float32 (librosa's default dtype), returned as float64.
    """
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2.0]))[0], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_frequencies(sr=sr, n_fft=n_fft))
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights.astype(np.float64)


def power_to_db(S: np.ndarray, *, top_db: float = 80.0, amin: float = 1e-10) -> np.ndarray:
    """Convert power to dB re 1, floored at its maximum - ``top_db``, as ``librosa.power_to_db(ref=1)``.

    Parameters
    ----------
    S : np.ndarray, any shape
        Power (linear units).
    top_db : float
        Dynamic range kept below the maximum, dB.
    amin : float
        Smallest power (avoids log of 0).

    Returns
    -------
    np.ndarray, shape of ``S``
        ``max(10 log10(max(amin, S)), max - top_db)``, dB.
    """
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, 1.0))
    return np.maximum(log_spec, log_spec.max() - top_db)


def mfcc(S_db: np.ndarray, *, n_mfcc: int) -> np.ndarray:
    """Compute MFCCs, as ``librosa.feature.mfcc``: DCT-II (orthonormal) of a log-mel spectrogram over bands.

    Parameters
    ----------
    S_db : np.ndarray, shape (n_mels, n_frames)
        Log-mel power spectrogram, dB.
    n_mfcc : int
        Coefficients kept (c0 .. c{n_mfcc-1}).

    Returns
    -------
    np.ndarray, shape (n_mfcc, n_frames)
        Cepstral coefficients, dB-scaled (arbitrary units).
    """
    return scipy.fft.dct(S_db, axis=-2, type=2, norm="ortho")[..., :n_mfcc, :]


def _l1_normalised(S: np.ndarray) -> np.ndarray:
    """Columns divided by their sum (``librosa.util.normalize(norm=1, axis=0)``; all-zero columns stay 0)."""
    length = np.sum(np.abs(S), axis=0, keepdims=True)
    small = length < np.finfo(S.dtype).tiny
    return S / np.where(small, 1.0, length)


def spectral_centroid(S: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Spectral centroid, as ``librosa.feature.spectral_centroid``: magnitude-weighted mean frequency.

    Parameters
    ----------
    S : np.ndarray, shape (n_bins, n_frames)
        Magnitude spectrogram.
    freq : np.ndarray, shape (n_bins,)
        Bin frequencies, Hz.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Hz; 0 for an all-zero frame.
    """
    return np.sum(freq[:, None] * _l1_normalised(S), axis=0)


def spectral_bandwidth(S: np.ndarray, freq: np.ndarray, centroid: np.ndarray, *, p: float = 2.0) -> np.ndarray:
    """Spectral bandwidth, as ``librosa.feature.spectral_bandwidth``.

    ``(sum_k S_k / sum S |f_k - centroid|^p)^(1/p)`` per frame.

    Parameters
    ----------
    S : np.ndarray, shape (n_bins, n_frames)
        Magnitude spectrogram.
    freq : np.ndarray, shape (n_bins,)
        Bin frequencies, Hz.
    centroid : np.ndarray, shape (n_frames,)
        Spectral centroid of each frame, Hz (:func:`spectral_centroid`).
    p : float
        Order of the deviation.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Hz.
    """
    deviation = np.abs(freq[:, None] - centroid[None, :])
    return np.sum(_l1_normalised(S) * deviation ** p, axis=0) ** (1.0 / p)


def spectral_rolloff(S: np.ndarray, freq: np.ndarray, *, roll_percent: float) -> np.ndarray:
    """Spectral roll-off, as ``librosa.feature.spectral_rolloff``.

    The lowest bin frequency whose cumulative magnitude reaches ``roll_percent`` of the frame's total.

    Parameters
    ----------
    S : np.ndarray, shape (n_bins, n_frames)
        Magnitude spectrogram.
    freq : np.ndarray, shape (n_bins,)
        Bin frequencies, Hz.
    roll_percent : float
        Fraction of the total, in (0, 1).

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Hz.
    """
    total = np.cumsum(S, axis=0)
    reached = total >= roll_percent * total[-1]
    return freq[np.argmax(reached, axis=0)]


def spectral_flatness(S: np.ndarray, *, power: float = 2.0, amin: float = 1e-10) -> np.ndarray:
    """Spectral flatness, as ``librosa.feature.spectral_flatness``.

    Geometric over arithmetic mean of ``max(amin, S**power)`` per frame.

    Parameters
    ----------
    S : np.ndarray, shape (n_bins, n_frames)
        Magnitude spectrogram.
    power : float
        Exponent applied to ``S`` (2: power flatness).
    amin : float
        Floor of ``S**power``.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Fraction in (0, 1]; 1 for a flat spectrum.
    """
    S_thresh = np.maximum(amin, S ** power)
    return np.exp(np.mean(np.log(S_thresh), axis=0)) / np.mean(S_thresh, axis=0)


def onset_strength(S_db: np.ndarray) -> np.ndarray:
    """Onset strength, as ``librosa.onset.onset_strength(lag=1, max_size=1, center=False)``.

    The mean over bands of the positive change of a log spectrogram from the previous frame
    (spectral flux), with a 0 for the first frame.

    Parameters
    ----------
    S_db : np.ndarray, shape (n_bands, n_frames)
        Log spectrogram, dB.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        dB.
    """
    change = np.maximum(0.0, S_db[:, 1:] - S_db[:, :-1]).mean(axis=0)
    return np.concatenate([[0.0], change])


def onset_detect(envelope: np.ndarray, *, sr: int, hop_length: int, delta: float) -> np.ndarray:
    """Detect onsets, as ``librosa.onset.onset_detect(normalize=False)`` (``librosa.util.peak_pick``).

    A frame n is an onset when ``envelope[n]`` is the maximum of ``envelope[n - pre_max: n + post_max]``,
    at least ``delta`` above the mean of ``envelope[n - pre_avg: n + post_avg]``, and more than ``wait``
    frames after the previous onset (30 ms, 0, 100 ms, 100 ms + 1 frame and 30 ms, as librosa).

    Parameters
    ----------
    envelope : np.ndarray, shape (n_frames,)
        Onset strength (:func:`onset_strength`), dB.
    sr : int
        Sample rate, Hz.
    hop_length : int
        Samples between frames.
    delta : float
        Threshold above the local mean, in the unit of ``envelope``.

    Returns
    -------
    np.ndarray of int, shape (n_onsets,)
        Frame indices, increasing; empty for an all-zero or non-finite envelope.
    """
    if not envelope.any() or not np.all(np.isfinite(envelope)):
        return np.zeros(0, dtype=int)
    pre_max, post_max = int(np.ceil(0.03 * sr // hop_length)), int(np.ceil(0.00 * sr // hop_length + 1))
    pre_avg, post_avg = int(np.ceil(0.10 * sr // hop_length)), int(np.ceil(0.10 * sr // hop_length + 1))
    wait = int(np.ceil(0.03 * sr // hop_length))
    n = envelope.size
    padded = np.concatenate([np.full(pre_max, -np.inf), envelope, np.full(post_max - 1, -np.inf)])
    local_max = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max).max(axis=1)
    onsets: list[int] = []
    next_allowed = 0
    for i in np.flatnonzero(envelope == local_max):
        if i < next_allowed:
            continue
        if envelope[i] >= np.mean(envelope[max(0, i - pre_avg): min(i + post_avg, n)]) + delta:
            onsets.append(int(i))
            next_allowed = i + wait + 1
    return np.array(onsets, dtype=int)
