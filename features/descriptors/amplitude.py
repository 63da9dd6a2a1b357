"""Amplitude: frame RMS level statistics in dBFS and the dynamic range.

Level = 20 log10(frame RMS) in dB re full scale (a full-scale sine reads -3.01 dBFS), floored at
``level_floor_dbfs`` (digital silence reads as the floor, never -inf). Never normalised to the
clip's maximum (``amplitude_to_db(ref=np.max)`` would erase level). Praat's intensity of the
same frames is this value + 93.98 dB (its reference is 2e-5 Pa for a full-scale value of 1 Pa).
Statistics are over all frames, so a clip's pauses count toward its level; NaN for a clip without
frames (shorter than ``min(n_fft, sr / lowcut_hz)`` samples). The dBFS levels assume that 1 is full
scale: for a clip whose file holds samples beyond it (``n_over_full_scale`` > 0, e.g. a float WAV
reaching 200) they are NaN; the dynamic range (a level difference) does not depend on the scale and
is kept.
"""
from __future__ import annotations

import numpy as np

from ..clip import ClipAnalysis
from .spec import Descriptor

__all__ = ["DESCRIPTORS", "DYNAMIC_RANGE_PERCENTILES"]

DYNAMIC_RANGE_PERCENTILES = (5, 95)


def _levels(an: ClipAnalysis) -> dict[str, float]:
    level = an.frame_dbfs
    if level.size == 0:
        return dict.fromkeys(("rms_median_dbfs", "rms_p10_dbfs", "rms_p90_dbfs", "dynamic_range_db"), float("nan"))
    p10, median, p90 = np.percentile(level, [10, 50, 90])
    low, high = np.percentile(level, DYNAMIC_RANGE_PERCENTILES)
    return {"rms_median_dbfs": float(median), "rms_p10_dbfs": float(p10), "rms_p90_dbfs": float(p90),
            "dynamic_range_db": float(high - low)}


_SETTINGS = ("n_fft", "hop_length", "level_floor_dbfs")
_EXTRA = {"frame": "rectangular, n_fft samples (the whole clip when shorter), not centred: wholly inside the clip, "
                   "no edge padding", "center": False}
#: librosa's default centres frames (``center=True``, zero-padded edges); these frames are not centred.
_EXTRACTOR = "librosa.feature.rms formula with center=False (numpy on the analysis frames, features.clip)"


def _level(name: str, unit: str, computed: str) -> Descriptor:
    return Descriptor(name=name, unit=unit, family="amplitude", extractor=_EXTRACTOR,
                      probe_scale="linear", settings=_SETTINGS, computed=computed, compute=_levels, extra=_EXTRA)


DESCRIPTORS = (
    _level("rms_median_dbfs", "dBFS", "median over all frames of 20 log10(frame RMS)"),
    _level("rms_p10_dbfs", "dBFS", "10th percentile over all frames of 20 log10(frame RMS)"),
    _level("rms_p90_dbfs", "dBFS", "90th percentile over all frames of 20 log10(frame RMS)"),
    _level("dynamic_range_db", "dB", "95th minus 5th percentile of frame levels over all frames"),
)
