"""Modulation descriptors: temporal modulation (spectrum of octave-band envelopes) and spectral modulation.

Temporal modulation: the signal is split into octave bands (4th-order Butterworth, centres
125 Hz .. 4 kHz), each band's Hilbert envelope is resampled to ``env_rate`` Hz, its edges (the
filters' settling time, 54 ms at 16 kHz) are dropped (:mod:`features.signal.envelopes`), and the
envelopes' periodograms (Hann window, mean removed; :mod:`features.signal.periodogram`) are summed
over bands. Band energies are fractions of the total envelope power (DC included), so they measure
modulation depth per modulation band and do not depend on gain.

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

import numpy as np

from ..clip import ClipAnalysis
from ..signal.envelopes import ENVELOPE_BAND_CENTRES_HZ, SETTLED_ENERGY
from ..signal.logfreq import LOGFREQ_FMIN_HZ
from ..signal.periodogram import band_power, modulation_spectrum
from .spec import Descriptor

__all__ = ["DESCRIPTORS", "MIN_PERIODS", "lowest_resolved", "ENVELOPE_PARAMETERS", "TMOD_BANDS_HZ", "SMOD_BANDS",
           "TMOD_PEAK_RANGE_HZ", "SMOD_PEAK_RANGE", "NO_MODULATION", "PERIODOGRAM"]

# Octave-wide modulation bands named by their centre (edges at centre / sqrt 2 and centre * sqrt 2).
TMOD_BANDS_HZ = {f"tmod_band_{c}": (c / np.sqrt(2), c * np.sqrt(2)) for c in (1, 2, 4, 8, 16, 32)}
TMOD_PEAK_RANGE_HZ = (1 / np.sqrt(2), 32 * np.sqrt(2))
SMOD_BANDS = {name: (c / np.sqrt(2), c * np.sqrt(2)) for name, c in
              (("smod_band_0p5", 0.5), ("smod_band_1", 1.0), ("smod_band_2", 2.0), ("smod_band_4", 4.0))}
SMOD_PEAK_RANGE = (0.5 / np.sqrt(2), 4 * np.sqrt(2))
MIN_PERIODS = 2.0
#: Extractor of the modulation descriptors: scipy's periodogram, restated in numpy.
PERIODOGRAM = "scipy.signal.periodogram formula (features.signal.periodogram)"
# Envelope modulation power below this fraction of the envelope power (a modulation depth under
# ~0.14 %) is no modulation: the peak is then NaN rather than the peak of numerical residue.
NO_MODULATION = 1e-6
# A detrended log spectrum with less spectral-modulation power than this (dB^2) is flat.
_FLAT_DB2 = 1e-10


def lowest_resolved(span: float) -> float:
    """Return the lowest band edge resolved over ``span``: ``MIN_PERIODS / span``.

    Parameters
    ----------
    span : float
        Length of the analysed axis: s (envelopes) or octaves (log-frequency axis); positive.

    Returns
    -------
    float
        Hz or cycles per octave.
    """
    return MIN_PERIODS / span


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
ENVELOPE_PARAMETERS = {
    "min_periods": MIN_PERIODS,
    "edges_dropped": f"envelope_edge_s (filter settling to {SETTLED_ENERGY} of the impulse energy + resampler "
                     "half-length) at each end",
    "envelope_bands": f"octave, 4th-order Butterworth, centres {list(ENVELOPE_BAND_CENTRES_HZ)} Hz below 0.45 sr",
    "envelope": "abs(scipy.signal.hilbert), scipy.signal.resample_poly",
    "periodogram": "Hann, mean removed, summed over bands"}
_SMOD_SETTINGS = ("n_fft", "hop_length", "smod_bins_per_octave", "silence_rel_db", "silence_abs_dbfs")
_SMOD_EXTRA = {"min_periods": MIN_PERIODS,
               "logfreq": f"triangular log2 filters from {LOGFREQ_FMIN_HZ} Hz to 0.475 sr on STFT power, dB",
               "periodogram": "Hann along frequency, linear detrend, mean over non-silent frames"}


def _tmod_band(name: str, lo: float, hi: float) -> Descriptor:
    return Descriptor(name=name, unit="fraction", family="modulation", extractor=PERIODOGRAM,
                      probe_scale="linear", settings=_TMOD_SETTINGS,
                      computed=f"envelope modulation power in {lo:.3g}-{hi:.3g} Hz / total envelope power (NaN "
                               f"for envelopes shorter than 2 periods of {lo:.3g} Hz: {MIN_PERIODS / lo:.3g} s)",
                      compute=_temporal, extra={**ENVELOPE_PARAMETERS, "band_hz": [lo, hi]})


def _smod_band(name: str, lo: float, hi: float) -> Descriptor:
    return Descriptor(name=name, unit="fraction", family="modulation", extractor=PERIODOGRAM,
                      probe_scale="linear", settings=_SMOD_SETTINGS,
                      computed=f"spectral modulation power in {lo:.3g}-{hi:.3g} cyc/oct / power in "
                               f"{SMOD_PEAK_RANGE[0]:.3g}-{SMOD_PEAK_RANGE[1]:.3g} cyc/oct (the part at or above "
                               f"2 / axis span); NaN when the log-frequency axis spans fewer than 2 periods of "
                               f"{lo:.3g} cyc/oct ({MIN_PERIODS / lo:.3g} octaves) or the clip is shorter than n_fft",
                      compute=_spectral, extra={**_SMOD_EXTRA, "band_cyc_per_oct": [lo, hi]})


DESCRIPTORS = (
    Descriptor(name="tmod_peak_hz", unit="Hz", family="modulation", extractor=PERIODOGRAM,
               probe_scale="log", settings=_TMOD_SETTINGS,
               computed=f"frequency of the largest envelope modulation power in {TMOD_PEAK_RANGE_HZ[0]:.3g}-"
                        f"{TMOD_PEAK_RANGE_HZ[1]:.3g} Hz and at or above 2/duration (NaN when that range is empty "
                        "or holds no modulation)",
               compute=_temporal, extra=ENVELOPE_PARAMETERS),
    *(_tmod_band(name, lo, hi) for name, (lo, hi) in TMOD_BANDS_HZ.items()),
    Descriptor(name="smod_peak_cyc_per_oct", unit="cyc/oct", family="modulation",
               extractor=PERIODOGRAM, probe_scale="linear", settings=_SMOD_SETTINGS,
               computed=f"spectral modulation frequency of the largest power in {SMOD_PEAK_RANGE[0]:.3g}-"
                        f"{SMOD_PEAK_RANGE[1]:.3g} cyc/oct and at or above 2 / axis span (NaN for a flat log "
                        "spectrum or a clip shorter than n_fft)", compute=_spectral, extra=_SMOD_EXTRA),
    *(_smod_band(name, lo, hi) for name, (lo, hi) in SMOD_BANDS.items()),
)
