"""Pitch and periodicity descriptors: F0 statistics, F0 range and change, voiced fraction, HNR.

Summaries of the pitch track and the harmonicity track of :class:`~features.clip.ClipAnalysis`
(:mod:`features.signal.pitch_track`: Praat ac or pyin; Praat's harmonicity cc), over voiced,
non-silent frames only (NaN when there are none).
"""
from __future__ import annotations

import numpy as np

from ..clip import ClipAnalysis
from ..config import PYIN_PARAMETERS
from ..signal.harmonicity import N_REFINED, RANK_DEPTH, RANK_GRID, SINC_DEPTH
from ..signal.pitch_track import PRAAT_HARMONICITY_PARAMETERS, PRAAT_PERIODS_PER_WINDOW, PRAAT_PITCH_PARAMETERS
from .spec import Descriptor

__all__ = ["DESCRIPTORS"]


def _pitch_statistics(an: ClipAnalysis) -> dict[str, float]:
    track = an.pitch
    nan = float("nan")
    out = dict.fromkeys(("f0_median", "f0_p10", "f0_p90", "f0_range_st", "f0_change_st_per_s",
                         "voiced_fraction"), nan)
    if not track.defined:
        return out
    n_considered = int(track.considered.sum())
    # Nothing non-silent means nothing is voiced: the voiced fraction of silence is 0 (design table).
    out["voiced_fraction"] = track.n_voiced / n_considered if n_considered else 0.0
    f0 = track.f0[track.voiced]
    if f0.size == 0:
        return out
    p10, median, p90 = np.percentile(f0, [10, 50, 90])
    out.update(f0_median=float(median), f0_p10=float(p10), f0_p90=float(p90),
               f0_range_st=float(12.0 * np.log2(p90 / p10)))
    semitones = 12.0 * np.log2(track.f0)
    rate = np.diff(semitones) / track.time_step  # NaN wherever either frame is unvoiced: runs only
    rate = rate[np.isfinite(rate)]
    if rate.size:
        out["f0_change_st_per_s"] = float(np.median(np.abs(rate)))
    return out


def _hnr(an: ClipAnalysis) -> dict[str, float]:
    values = an.harmonicity
    return {"hnr_db": float(np.mean(values)) if values.size else float("nan")}


_PITCH_SETTINGS = ("pitch", "f0_floor", "f0_ceiling", "hop_length", "n_fft", "silence_rel_db", "silence_abs_dbfs")
_PITCH_EXTRA = {"praat_pitch": PRAAT_PITCH_PARAMETERS, "pyin_frame_length": "n_fft", "pyin": PYIN_PARAMETERS,
                "time_step_s": "hop_length / sr",
                "min_duration_s": f"{PRAAT_PERIODS_PER_WINDOW} / f0_floor (and n_fft / sr for pyin)"}
_VOICED = "voiced non-silent pitch frames"
_TRACKER = "parselmouth Sound.to_pitch_ac (Praat ac) or librosa.pyin, per the 'pitch' setting"


def _pitch_descriptor(name: str, unit: str, scale: str, computed: str) -> Descriptor:
    return Descriptor(name=name, unit=unit, family="pitch", extractor=_TRACKER, probe_scale=scale,
                      settings=_PITCH_SETTINGS, computed=computed, compute=_pitch_statistics, extra=_PITCH_EXTRA)


DESCRIPTORS = (
    _pitch_descriptor("f0_median", "Hz", "log", f"median F0 over {_VOICED}"),
    _pitch_descriptor("f0_p10", "Hz", "log", f"10th percentile of F0 over {_VOICED}"),
    _pitch_descriptor("f0_p90", "Hz", "log", f"90th percentile of F0 over {_VOICED}"),
    _pitch_descriptor("f0_range_st", "st", "linear", "12 log2(f0_p90 / f0_p10)"),
    _pitch_descriptor("f0_change_st_per_s", "st/s", "linear",
                      "median |dF0/dt| in semitones per second over pairs of consecutive voiced frames"),
    _pitch_descriptor("voiced_fraction", "fraction", "linear",
                      "voiced pitch frames / non-silent pitch frames (0 when no frame is non-silent)"),
    Descriptor(name="hnr_db", unit="dB", family="pitch",
               extractor="Praat's Sound: To Harmonicity (cc), vectorised in numpy (features.signal.harmonicity)",
               probe_scale="linear", settings=("f0_floor", "hnr_time_step", "silence_rel_db", "silence_abs_dbfs"),
               computed="mean harmonicity over periodic (not -200 dB) non-silent Praat frames",
               compute=_hnr, extra={"praat_harmonicity": PRAAT_HARMONICITY_PARAMETERS,
                                    "minimum_pitch": "f0_floor", "peak_interpolation": {
                                        "sinc_depth": SINC_DEPTH, "candidates_refined": N_REFINED,
                                        "ranking": f"short sinc (depth {RANK_DEPTH}, 1/{RANK_GRID} lag grid)",
                                        "note": "Praat refines every candidate with depth 700; clip mean HNR within "
                                                "0.01 dB of parselmouth's to_harmonicity_cc on harmonic signals"}}),
)
