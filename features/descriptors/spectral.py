"""Spectral shape: centroid, bandwidth, roll-off, flatness, slope and mean MFCCs.

All frame values are librosa's formulas (computed by :mod:`features.signal.dsp`, checked against librosa)
on the shared STFT magnitude of the DC-removed signal, summarised over non-silent frames (NaN when
there are none).
"""
from __future__ import annotations

import numpy as np

from ..clip import ClipAnalysis
from ..signal import dsp
from .spec import Descriptor

__all__ = ["DESCRIPTORS", "ROLL_PERCENT", "FLATNESS_AMIN", "SLOPE_BAND_HZ", "N_MFCC_REPORTED", "STFT_SETTINGS",
           "MFCC_SETTINGS", "MFCC_PARAMETERS", "LIBROSA_FORMULA", "spectral_slope"]

#: Extractor of the descriptors whose frame values are a librosa.feature function's formula, restated in numpy.
LIBROSA_FORMULA = "librosa.feature.{} formula (features.signal.dsp)"

ROLL_PERCENT = 0.85
FLATNESS_AMIN = 1e-10
SLOPE_BAND_HZ = (100.0, 7000.0)
N_MFCC_REPORTED = 12
_NONSILENT = "non-silent frames"


def _iqr(values: np.ndarray) -> float:
    q25, q75 = np.percentile(values, [25, 75])
    return float(q75 - q25)


def _shape_statistics(an: ClipAnalysis) -> dict[str, float]:
    names = ("centroid_median", "centroid_iqr", "bandwidth_median", "bandwidth_iqr", "rolloff_median",
             "rolloff_iqr", "flatness_median")
    S = an.nonsilent_magnitude
    if S.shape[1] == 0:
        return dict.fromkeys(names, float("nan"))
    centroid = an.centroid
    bandwidth = dsp.spectral_bandwidth(S, an.frequencies, centroid, p=2)
    rolloff = dsp.spectral_rolloff(S, an.frequencies, roll_percent=ROLL_PERCENT)
    # over the bins that are kept (the excluded sub-lowcut bins are zeros, which a geometric mean would see)
    flatness = dsp.spectral_flatness(S[an.frequencies >= an.config.lowcut_hz], power=2.0, amin=FLATNESS_AMIN)
    return {"centroid_median": float(np.median(centroid)), "centroid_iqr": _iqr(centroid),
            "bandwidth_median": float(np.median(bandwidth)), "bandwidth_iqr": _iqr(bandwidth),
            "rolloff_median": float(np.median(rolloff)), "rolloff_iqr": _iqr(rolloff),
            "flatness_median": float(np.median(flatness))}


def spectral_slope(power: np.ndarray, frequencies: np.ndarray, *, band_hz: tuple[float, float]) -> float:
    """Slope of a power spectrum in dB per octave.

    Weighted least-squares line of ``10 log10(power)`` against ``log2(f)`` over ``band_hz``, with
    weights ``1/f`` so that every octave counts equally (linear bins crowd the high octaves).

    Parameters
    ----------
    power : np.ndarray, shape (n_bins,)
        Power spectrum (any linear power unit).
    frequencies : np.ndarray, shape (n_bins,)
        Bin frequencies, Hz.
    band_hz : (float, float)
        Fitted band, Hz.

    Returns
    -------
    float
        dB/octave; NaN when the band holds fewer than 3 bins with positive power.
    """
    keep = (frequencies >= band_hz[0]) & (frequencies <= band_hz[1]) & (power > 0)
    if keep.sum() < 3:
        return float("nan")
    f = frequencies[keep]
    slope, _ = np.polyfit(np.log2(f), 10.0 * np.log10(power[keep]), 1, w=1.0 / np.sqrt(f))
    return float(slope)


def _slope(an: ClipAnalysis) -> dict[str, float]:
    S = an.nonsilent_magnitude
    if S.shape[1] == 0:
        return {"slope_db_per_oct": float("nan")}
    band = (SLOPE_BAND_HZ[0], min(SLOPE_BAND_HZ[1], 0.45 * an.sr))
    return {"slope_db_per_oct": spectral_slope(np.mean(S ** 2, axis=1), an.frequencies, band_hz=band)}


def _mfcc_means(an: ClipAnalysis) -> dict[str, float]:
    names = [f"mfcc{k:02d}_mean" for k in range(1, N_MFCC_REPORTED + 1)]
    if an.n_nonsilent == 0:
        return dict.fromkeys(names, float("nan"))
    means = an.mfcc[1: N_MFCC_REPORTED + 1, an.nonsilent].mean(axis=1)
    return {name: float(v) for name, v in zip(names, means)}


STFT_SETTINGS = ("n_fft", "hop_length", "silence_rel_db", "silence_abs_dbfs")


def _shape(name: str, extractor: str, computed: str, extra: dict | None = None) -> Descriptor:
    # medians are skewed and positive: probed on a log scale; an IQR can be exactly 0 (a steady tone): linear
    scale = "linear" if name.endswith("_iqr") else "log"
    return Descriptor(name=name, unit="Hz", family="spectral_shape", extractor=extractor, probe_scale=scale,
                      settings=STFT_SETTINGS, computed=computed, compute=_shape_statistics, extra=extra or {})


MFCC_SETTINGS = STFT_SETTINGS + ("n_mels", "n_mfcc")
MFCC_PARAMETERS = {"mel": "librosa.feature.melspectrogram (Slaney), power 2", "log": "power_to_db(ref=1, top_db=80)",
                   "dct": "type 2, ortho"}

_MEDIAN, _IQR = f"median over {_NONSILENT}", f"interquartile range over {_NONSILENT}"

DESCRIPTORS = (
    _shape("centroid_median", LIBROSA_FORMULA.format("spectral_centroid"), _MEDIAN),
    _shape("centroid_iqr", LIBROSA_FORMULA.format("spectral_centroid"), _IQR),
    _shape("bandwidth_median", LIBROSA_FORMULA.format("spectral_bandwidth"), _MEDIAN, {"p": 2}),
    _shape("bandwidth_iqr", LIBROSA_FORMULA.format("spectral_bandwidth"), _IQR, {"p": 2}),
    _shape("rolloff_median", LIBROSA_FORMULA.format("spectral_rolloff"), _MEDIAN, {"roll_percent": ROLL_PERCENT}),
    _shape("rolloff_iqr", LIBROSA_FORMULA.format("spectral_rolloff"), _IQR, {"roll_percent": ROLL_PERCENT}),
    Descriptor(name="flatness_median", unit="fraction", family="spectral_shape",
               extractor=LIBROSA_FORMULA.format("spectral_flatness"), probe_scale="linear", settings=STFT_SETTINGS,
               computed=f"median over {_NONSILENT} of the power flatness of the bins at or above lowcut_hz",
               compute=_shape_statistics, extra={"power": 2.0, "amin": FLATNESS_AMIN}),
    Descriptor(name="slope_db_per_oct", unit="dB/oct", family="spectral_shape",
               extractor="numpy.polyfit on the mean STFT power", probe_scale="linear", settings=STFT_SETTINGS,
               computed=f"weighted (1/f) least-squares slope of 10 log10(mean power over {_NONSILENT}) "
                        "against log2(f)",
               compute=_slope, extra={"band_hz": list(SLOPE_BAND_HZ), "band_upper_limit": "0.45 sr"}),
) + tuple(
    Descriptor(name=f"mfcc{k:02d}_mean", unit="a.u.", family="spectral_shape", extractor=LIBROSA_FORMULA.format("mfcc"),
               probe_scale="linear", settings=MFCC_SETTINGS, computed=f"mean of MFCC c{k} over {_NONSILENT}",
               compute=_mfcc_means, extra=MFCC_PARAMETERS)
    for k in range(1, N_MFCC_REPORTED + 1)
)
