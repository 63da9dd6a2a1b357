"""Modulation: temporal modulation (spectrum of octave-band envelopes) and spectral modulation.

Temporal modulation: the signal is split into octave bands (4th-order Butterworth, centres
125 Hz .. 4 kHz), each band's Hilbert envelope is resampled to ``env_rate`` Hz, its edges (the
filters' settling time, :func:`envelope_edge_s`, 54 ms at 16 kHz) are dropped, and the
envelopes' periodograms (Hann window, mean removed) are summed over bands. Band energies are
fractions of the total envelope power (DC included), so they measure modulation depth per
modulation band and do not depend on gain.

Spectral modulation: each non-silent frame's log-frequency power spectrum (dB on a log2 axis,
``smod_bins_per_octave`` per octave, 125 Hz .. 0.475 sr) is linearly detrended and its
periodogram taken along frequency (cycles per octave); the mean over frames is the
spectral-modulation marginal of the 2-D modulation spectrum (Parseval over the time axis).

Resolution rule (temporal and spectral bands, the peaks and roughness): a band [lo, hi) is
reported only when the analysed span holds at least ``MIN_PERIODS`` = 2 periods of ``lo``, i.e.
``lo >= 2 / span`` (span = the envelope's duration in s, i.e. the clip's less the dropped edges,
or the log-frequency axis in octaves). Below ``2 /
span`` lies the main lobe of the Hann window centred on 0, which holds the leakage of the
envelope's (windowed) mean and of the clip's edges, not modulation; a band starting there is NaN,
and a peak is searched only from ``2 / span`` up (NaN when nothing of its range is left). At 16 kHz
the log-frequency axis spans 6 octaves (every spectral band resolved); spectral modulation also
needs one full ``n_fft`` frame (a shorter clip's spectrum is coarser than the axis it is sampled on).
A steady tone has no modulation: its band energies are ~0 and its peak NaN (modulation power in the
peak range at most ``NO_MODULATION`` of the envelope power).
"""
from __future__ import annotations

from functools import lru_cache
from math import gcd
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
import scipy.signal

from .config import Descriptor
from .dsp import hann

if TYPE_CHECKING:  # pragma: no cover
    from .analysis import ClipAnalysis

__all__ = ["DESCRIPTORS", "MIN_PERIODS", "lowest_resolved", "envelope_edge_s", "band_envelopes", "logfreq_filterbank", "octave_bands", "modulation_spectrum",
           "band_power", "ENVELOPE_PARAMETERS", "TMOD_BANDS_HZ", "SMOD_BANDS", "TMOD_PEAK_RANGE_HZ", "ENVELOPE_BAND_CENTRES_HZ", "LOGFREQ_FMIN_HZ"]

ENVELOPE_BAND_CENTRES_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
LOGFREQ_FMIN_HZ = 125.0
# Octave-wide modulation bands named by their centre (edges at centre / sqrt 2 and centre * sqrt 2).
TMOD_BANDS_HZ = {f"tmod_band_{c}": (c / np.sqrt(2), c * np.sqrt(2)) for c in (1, 2, 4, 8, 16, 32)}
TMOD_PEAK_RANGE_HZ = (1 / np.sqrt(2), 32 * np.sqrt(2))
SMOD_BANDS = {name: (c / np.sqrt(2), c * np.sqrt(2)) for name, c in
              (("smod_band_0p5", 0.5), ("smod_band_1", 1.0), ("smod_band_2", 2.0), ("smod_band_4", 4.0))}
SMOD_PEAK_RANGE = (0.5 / np.sqrt(2), 4 * np.sqrt(2))
MIN_PERIODS = 2.0
# Share of a band filter's impulse-response energy after which it has settled (envelope_edge_s).
SETTLED_ENERGY = 0.999
# Envelope modulation power below this fraction of the envelope power (a modulation depth under
# ~0.14 %) is no modulation: the peak is then NaN rather than the peak of numerical residue.
NO_MODULATION = 1e-6
# A detrended log spectrum with less spectral-modulation power than this (dB^2) is flat.
_FLAT_DB2 = 1e-10


def lowest_resolved(span: float) -> float:
    """Lowest band edge resolved over ``span`` (s or octaves): ``MIN_PERIODS / span`` (Hz or cyc/oct)."""
    return MIN_PERIODS / span


def octave_bands(sr: int) -> list[tuple[float, float]]:
    """(low, high) edges in Hz of the envelope octave bands that fit below 0.45 ``sr``."""
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
    """``abs(scipy.signal.hilbert(bands, N=next_fast_len))`` cut to the input length, with a real forward FFT.

    Parameters
    ----------
    bands : np.ndarray, shape (n_bands, n_samples)

    Returns
    -------
    np.ndarray, shape (n_bands, n_samples)
    """
    n = bands.shape[-1]
    n_fast = scipy.fft.next_fast_len(n)
    half = scipy.fft.rfft(bands, n_fast, axis=-1)
    spectrum = np.zeros(bands.shape[:-1] + (n_fast,), dtype=complex)
    spectrum[..., : half.shape[-1]] = half
    spectrum[..., 1: (n_fast + 1) // 2] *= 2.0  # positive frequencies doubled, DC and Nyquist kept, negative 0
    return np.abs(scipy.fft.ifft(spectrum, axis=-1, overwrite_x=True)[..., :n])


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
    bands = np.stack([scipy.signal.sosfilt(sos, y) for sos in _band_filters(sr)])
    envelope = _analytic_magnitude(bands)
    common = gcd(env_rate, sr)
    envelope = _resample(envelope, env_rate // common, sr // common)
    edge = round(envelope_edge_s(sr, env_rate) * env_rate)
    return np.maximum(envelope[:, edge: max(edge, envelope.shape[-1] - edge)], 0.0)


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


def _peak(freqs: np.ndarray, power: np.ndarray, lo: float, hi: float, floor: float) -> float:
    """Frequency of the largest power in [lo, hi); NaN when the band's power is at most ``floor``."""
    inside = (freqs >= lo) & (freqs < hi)
    if not inside.any() or band_power(freqs, power, lo, hi) <= floor:
        return float("nan")
    return float(freqs[inside][np.argmax(power[inside])])


def _temporal(an: ClipAnalysis) -> dict[str, float]:
    out = dict.fromkeys(["tmod_peak_hz", *TMOD_BANDS_HZ], float("nan"))
    if an.n_nonsilent == 0:
        return out
    span = an.envelopes.shape[-1] / an.config.env_rate
    if span == 0:
        return out
    freqs, power, total = an.envelope_spectrum
    lowest = lowest_resolved(span)
    for name, (lo, hi) in TMOD_BANDS_HZ.items():
        if lo >= lowest:
            out[name] = band_power(freqs, power, lo, hi) / total
    out["tmod_peak_hz"] = _peak(freqs, power, max(TMOD_PEAK_RANGE_HZ[0], lowest), TMOD_PEAK_RANGE_HZ[1],
                                NO_MODULATION * total)
    return out


@lru_cache(maxsize=8)
def logfreq_filterbank(*, sr: int, n_fft: int, bins_per_octave: int) -> np.ndarray:
    """Triangular filters on a log2 frequency axis, applied to STFT power.

    Centres at ``125 Hz * 2 ** (k / bins_per_octave)`` up to 0.475 ``sr``; each triangle spans the
    neighbouring centres, widened to at least one STFT bin each side, and sums to 1.

    Returns
    -------
    np.ndarray, shape (n_logbins, 1 + n_fft // 2)
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


def _spectral(an: ClipAnalysis) -> dict[str, float]:
    out = dict.fromkeys(["smod_peak_cyc_per_oct", *SMOD_BANDS], float("nan"))
    c = an.config
    if an.n_nonsilent == 0 or an.y.size < c.n_fft:
        return out
    logfreq = an.logfreq_db
    freqs, power = modulation_spectrum(logfreq, fs=c.smod_bins_per_octave, detrend="linear", axis=0)
    power = power.mean(axis=1)
    lowest = lowest_resolved(logfreq.shape[0] / c.smod_bins_per_octave)
    peak_range = (max(SMOD_PEAK_RANGE[0], lowest), SMOD_PEAK_RANGE[1])
    total = band_power(freqs, power, *peak_range)
    if peak_range[0] >= peak_range[1] or total <= _FLAT_DB2:
        return out
    for name, (lo, hi) in SMOD_BANDS.items():
        if lo >= lowest:
            out[name] = band_power(freqs, power, lo, hi) / total
    out["smod_peak_cyc_per_oct"] = _peak(freqs, power, *peak_range, 0.0)
    return out


_TMOD_SETTINGS = ("env_rate", "silence_rel_db", "silence_abs_dbfs")
ENVELOPE_PARAMETERS = {"min_periods": MIN_PERIODS, "edges_dropped": "envelope_edge_s (filter settling to "
                       f"{SETTLED_ENERGY} of the impulse energy + resampler half-length) at each end",
                       "envelope_bands": "octave, 4th-order Butterworth, centres " + str(list(ENVELOPE_BAND_CENTRES_HZ)) +
               " Hz below 0.45 sr", "envelope": "abs(scipy.signal.hilbert), scipy.signal.resample_poly",
               "periodogram": "Hann, mean removed, summed over bands"}
_SMOD_SETTINGS = ("n_fft", "hop_length", "smod_bins_per_octave", "silence_rel_db", "silence_abs_dbfs")
_SMOD_EXTRA = {"min_periods": MIN_PERIODS, "logfreq": f"triangular log2 filters from {LOGFREQ_FMIN_HZ} Hz to 0.475 sr on STFT power, dB",
               "periodogram": "Hann along frequency, linear detrend, mean over non-silent frames"}


def _tmod_band(name: str, lo: float, hi: float) -> Descriptor:
    return Descriptor(name=name, unit="fraction", family="modulation", extractor="scipy.signal.periodogram",
                      probe_scale="linear", settings=_TMOD_SETTINGS,
                      computed=f"envelope modulation power in {lo:.3g}-{hi:.3g} Hz / total envelope power (NaN "
                               f"for envelopes shorter than 2 periods of {lo:.3g} Hz: {MIN_PERIODS / lo:.3g} s)",
                      compute=_temporal, extra={**ENVELOPE_PARAMETERS, "band_hz": [lo, hi]})


def _smod_band(name: str, lo: float, hi: float) -> Descriptor:
    return Descriptor(name=name, unit="fraction", family="modulation", extractor="scipy.signal.periodogram",
                      probe_scale="linear", settings=_SMOD_SETTINGS,
                      computed=f"spectral modulation power in {lo:.3g}-{hi:.3g} cyc/oct / power in "
                               f"{SMOD_PEAK_RANGE[0]:.3g}-{SMOD_PEAK_RANGE[1]:.3g} cyc/oct (the part at or above "
                               f"2 / axis span); NaN when the log-frequency axis spans fewer than 2 periods of "
                               f"{lo:.3g} cyc/oct ({MIN_PERIODS / lo:.3g} octaves) or the clip is shorter than n_fft",
                      compute=_spectral, extra={**_SMOD_EXTRA, "band_cyc_per_oct": [lo, hi]})


DESCRIPTORS = (
    Descriptor(name="tmod_peak_hz", unit="Hz", family="modulation", extractor="scipy.signal.periodogram",
               probe_scale="log", settings=_TMOD_SETTINGS,
               computed=f"frequency of the largest envelope modulation power in {TMOD_PEAK_RANGE_HZ[0]:.3g}-"
                        f"{TMOD_PEAK_RANGE_HZ[1]:.3g} Hz and at or above 2/duration (NaN when that range is empty "
                        "or holds no modulation)",
               compute=_temporal, extra=ENVELOPE_PARAMETERS),
    *(_tmod_band(name, lo, hi) for name, (lo, hi) in TMOD_BANDS_HZ.items()),
    Descriptor(name="smod_peak_cyc_per_oct", unit="cyc/oct", family="modulation",
               extractor="scipy.signal.periodogram", probe_scale="linear", settings=_SMOD_SETTINGS,
               computed=f"spectral modulation frequency of the largest power in {SMOD_PEAK_RANGE[0]:.3g}-"
                        f"{SMOD_PEAK_RANGE[1]:.3g} cyc/oct and at or above 2 / axis span (NaN for a flat log "
                        "spectrum or a clip shorter than n_fft)", compute=_spectral, extra=_SMOD_EXTRA),
    *(_smod_band(name, lo, hi) for name, (lo, hi) in SMOD_BANDS.items()),
)
