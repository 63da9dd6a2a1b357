"""The pitch and harmonicity tracks of the analysis signal, on the analysis frame grid.

The pitch track is Praat's autocorrelation method (parselmouth ``Sound.to_pitch_ac``; Boersma 1993) by
default, or librosa's probabilistic YIN (``librosa.pyin``; Mauch & Dixon 2014); the harmonicity track
is Praat's cross-correlation harmonicity (``Sound: To Harmonicity (cc)``, computed by
:mod:`features.signal.harmonicity`: the same algorithm vectorised with numpy; an ac harmonicity with
1 period per window is biased, the cc method with its 1-period window is not). Every tool marks
"undefined" its own way (Praat 0 Hz and -200 dB, pyin NaN): here unvoiced or silent frames are NaN
(pitch) or dropped (harmonicity). The descriptors that summarise them are in
:mod:`features.descriptors.pitch`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import parselmouth

from ...errors import check_choice
from ..config import PITCH_TRACKERS, PYIN_PARAMETERS
from .harmonicity import harmonicity_cc

__all__ = ["PitchTrack", "track_pitch", "harmonicity_track", "PRAAT_PITCH_PARAMETERS",
           "PRAAT_HARMONICITY_PARAMETERS", "PRAAT_PERIODS_PER_WINDOW"]

# Praat's defaults for the ac pitch method (besides floor, ceiling and time step), recorded in the metadata.
PRAAT_PITCH_PARAMETERS = {"max_number_of_candidates": 15, "very_accurate": False, "silence_threshold": 0.03,
                          "voicing_threshold": 0.45, "octave_cost": 0.01, "octave_jump_cost": 0.35,
                          "voiced_unvoiced_cost": 0.14}
PRAAT_HARMONICITY_PARAMETERS = {"method": "cc", "silence_threshold": 0.1, "periods_per_window": 1.0}
# Praat's ac pitch analysis window is 3 periods of the pitch floor; shorter clips have no pitch track.
PRAAT_PERIODS_PER_WINDOW = 3.0


@dataclass(frozen=True)
class PitchTrack:
    """A pitch track aligned to the analysis frames.

    Attributes
    ----------
    f0 : np.ndarray, shape (n_pitch_frames,)
        F0 in Hz; NaN in unvoiced and in silent frames.
    considered : np.ndarray of bool, shape (n_pitch_frames,)
        Frames that are non-silent (the denominator of the voiced fraction).
    time_step : float
        Seconds between pitch frames.
    defined : bool
        False when the clip is too short for the tracker (every pitch descriptor is NaN).
    """

    f0: np.ndarray
    considered: np.ndarray
    time_step: float
    defined: bool

    @property
    def voiced(self) -> np.ndarray:
        """Boolean mask of voiced (non-silent) frames."""
        return np.isfinite(self.f0)

    @property
    def n_voiced(self) -> int:
        """Number of voiced (non-silent) frames."""
        return int(self.voiced.sum())


def _frame_index(times: np.ndarray, *, sr: int, hop_length: int, n_fft: int, n_frames: int) -> np.ndarray:
    """Index of the analysis frame (frame k centred at k hop + n_fft / 2 samples) nearest to each time in s."""
    return np.clip(np.round((times * sr - n_fft / 2) / hop_length).astype(int), 0, n_frames - 1)


def _too_short(y: np.ndarray, sr: int, f0_floor: float, nonsilent: np.ndarray) -> bool:
    """Shorter than Praat's window (3 periods of the floor), or without analysis frames."""
    return y.size / sr < PRAAT_PERIODS_PER_WINDOW / f0_floor or nonsilent.size == 0


def track_pitch(y: np.ndarray, *, sr: int, tracker: str = "praat", f0_floor: float, f0_ceiling: float,
                hop_length: int, n_fft: int, nonsilent: np.ndarray) -> PitchTrack:
    """Track F0 with Praat ac or pyin, on the analysis frame grid.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        The analysis signal (:func:`features.signal.preprocess.clean_signal`: DC and drift removed).
    sr : int
        Hz.
    tracker : {"praat", "pyin"}
    f0_floor, f0_ceiling : float
        Search range, Hz.
    hop_length : int
        Time step in samples (Praat's ``time_step`` = ``hop_length / sr``).
    n_fft : int
        Analysis frame length, samples (also pyin's frame length; pyin needs a clip of at least one frame).
    nonsilent : np.ndarray of bool, shape (n_frames,)
        Non-silent analysis frames; pitch frames falling on silent frames are unvoiced.

    Returns
    -------
    PitchTrack
    """
    check_choice("tracker", tracker, PITCH_TRACKERS)
    time_step = hop_length / sr
    if _too_short(y, sr, f0_floor, nonsilent) or (tracker == "pyin" and y.size < n_fft):
        empty = np.zeros(0)
        return PitchTrack(f0=empty, considered=empty.astype(bool), time_step=time_step, defined=False)
    if tracker == "pyin":
        import librosa  # only here: its import costs seconds per worker process (features.signal.dsp)

        f0, voiced, _ = librosa.pyin(y, fmin=f0_floor, fmax=f0_ceiling, sr=sr, frame_length=n_fft,
                                     hop_length=hop_length, center=False, **PYIN_PARAMETERS)
        considered = nonsilent[: f0.size]
        f0 = np.where(voiced & considered, f0, np.nan)
        return PitchTrack(f0=f0, considered=considered, time_step=time_step, defined=True)
    pitch = parselmouth.Sound(y, sampling_frequency=sr).to_pitch_ac(
        time_step=time_step, pitch_floor=f0_floor, pitch_ceiling=f0_ceiling, **PRAAT_PITCH_PARAMETERS)
    position = (pitch.xs() * sr - n_fft / 2) / hop_length  # in analysis frames
    on_grid = (position > -0.5) & (position < nonsilent.size - 0.5)  # Praat frames beyond the grid are dropped
    frequency = pitch.selected_array["frequency"][on_grid]
    considered = nonsilent[np.round(position[on_grid]).astype(int)]
    f0 = np.where((frequency > 0) & considered, frequency, np.nan)
    return PitchTrack(f0=f0, considered=considered, time_step=time_step, defined=True)


def harmonicity_track(y: np.ndarray, *, sr: int, f0_floor: float, time_step: float, hop_length: int, n_fft: int,
                      nonsilent: np.ndarray) -> np.ndarray:
    """Praat harmonicity (cc) values, dB, of periodic frames on non-silent analysis frames.

    Computed by :func:`features.signal.harmonicity.harmonicity_cc` (Praat's cc algorithm vectorised with
    numpy, ~10x faster than parselmouth's ``to_harmonicity_cc``, whose values it reproduces to
    ~0.01 dB). Aperiodic or silent frames (Praat's -200 dB) are dropped.

    Returns
    -------
    hnr : np.ndarray, shape (n_defined,)
        dB; empty when the clip is shorter than the pitch analysis window or nothing is periodic.
    """
    if _too_short(y, sr, f0_floor, nonsilent):
        return np.zeros(0)
    harmonicity = harmonicity_cc(y, sr=sr, minimum_pitch=f0_floor, time_step=time_step,
                                 silence_threshold=PRAAT_HARMONICITY_PARAMETERS["silence_threshold"],
                                 periods_per_window=PRAAT_HARMONICITY_PARAMETERS["periods_per_window"])
    values = harmonicity.hnr_db
    keep = (values > -199.0) & nonsilent[_frame_index(harmonicity.times, sr=sr, hop_length=hop_length,
                                                      n_fft=n_fft, n_frames=nonsilent.size)]
    return values[keep]
