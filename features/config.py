"""Analysis settings shared by every descriptor.

One :class:`AnalysisConfig` fixes the analysis rate, the frame grid, the silence rule and
the pitch range; every descriptor records the settings it depends on (``features_meta.csv``).
The defaults of the analysis rate and the pitch range (:data:`DEFAULT_SR`, :data:`DEFAULT_F0_FLOOR`,
:data:`DEFAULT_F0_CEILING`) are defined here once; the CLI, :func:`extract_features` and the study
file take them from here. This module imports no numpy, so that ``audioprobe --help`` stays light.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import ParameterError, check_choice

__all__ = ["AnalysisConfig", "DEFAULT_SR", "DEFAULT_F0_FLOOR", "DEFAULT_F0_CEILING", "PITCH_TRACKERS", "FAMILIES",
           "PROBE_SCALES", "HIGHPASS_ORDER", "HIGHPASS_PAD_PERIODS", "PREPROCESSING", "PYIN_PARAMETERS",
           "FULL_SCALE_UNIT", "pyin_min_range_st"]

PITCH_TRACKERS = ("praat", "pyin")
FAMILIES = ("pitch", "spectral_shape", "spectral_variability", "amplitude", "modulation", "onsets_roughness")
#: How the probes read a descriptor (``probe_scale`` in features_meta.csv): ``log`` -> natural log, ``linear`` as is.
PROBE_SCALES = ("log", "linear")
#: Analysis rate, Hz.
DEFAULT_SR = 16000
#: Pitch search range, Hz: covers voices and instruments (Praat's own 600 Hz ceiling halves notes above it).
DEFAULT_F0_FLOOR = 50.0
DEFAULT_F0_CEILING = 2000.0

HIGHPASS_ORDER = 4
HIGHPASS_PAD_PERIODS = 3
#: What every descriptor family sees (recorded as ``preprocessing`` in features_meta.csv).
PREPROCESSING = (
    "every family (pitch, HNR, levels, spectra, envelopes) is computed from one analysis signal: the clip mean "
    f"subtracted, then a Butterworth high-pass of order {HIGHPASS_ORDER} at lowcut_hz applied forward and backward "
    "from rest (scipy.signal.sosfilt, zero phase, -6 dB at lowcut_hz) over the clip extended by its mirror image "
    f"({HIGHPASS_PAD_PERIODS} periods of lowcut_hz at most); STFT bins below lowcut_hz are not used by any spectral "
    "descriptor; frames (n_fft samples every hop_length) are not centred: each lies wholly inside the clip, without "
    "edge padding (librosa's center=False); clips shorter than min(n_fft, sr / lowcut_hz) samples have no frame "
    "(n_frames 0) and every frame-based descriptor is NaN")
#: Descriptors in this unit are referenced to full scale: NaN for a clip whose file exceeds it.
FULL_SCALE_UNIT = "dBFS"
#: librosa.pyin settings passed explicitly (librosa's defaults), recorded in features_meta.csv.
PYIN_PARAMETERS = {"resolution": 0.1, "max_transition_rate": 35.92}


def pyin_min_range_st(*, sr: int, hop_length: int) -> int:
    """Return the narrowest F0 search range librosa.pyin accepts, semitones.

    pyin's Viterbi transition window spans ``round(max_transition_rate * 12 * hop_length / sr)``
    semitones and must fit in its pitch grid of ``floor(12 log2(fmax / fmin) / resolution) + 1``
    bins (``librosa.sequence.transition_local`` raises "Target size ... must be at least input
    size" otherwise): ``12 log2(f0_ceiling / f0_floor)`` must be at least this many semitones.
    """
    return round(PYIN_PARAMETERS["max_transition_rate"] * 12 * hop_length / sr)


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of the per-clip analysis.

    Parameters
    ----------
    sr : int
        Analysis rate in Hz; every clip is resampled to it (soxr HQ) so that descriptors do not
        depend on the file's rate. Default 16000.
    n_fft : int
        Frame length in samples: the STFT's Hann window and the RMS level's rectangular frame. Frames
        are not centred (no edge padding, librosa's ``center=False``): every frame lies wholly inside
        the clip. Default 1024 (64 ms).
    hop_length : int
        Frame step in samples; also the pitch tracker's time step. Default 160 (10 ms).
    lowcut_hz : float
        Corner of the high-pass that removes DC and sub-audio drift from the analysis signal of
        every descriptor family (see :data:`PREPROCESSING`); STFT bins below it are not used by
        spectral descriptors; clips shorter than one period of it have no frame. Hz, in
        (0, f0_floor). Default 20.
    silence_rel_db : float
        A frame is non-silent when its level exceeds both ``loudest frame - silence_rel_db``
        and ``silence_abs_dbfs``. Default 60 dB.
    silence_abs_dbfs : float
        Absolute non-silence threshold, dBFS. Default -70.
    level_floor_dbfs : float
        Floor of frame levels, dBFS (digital silence reads as this). Default -100.
    pitch : {"praat", "pyin"}
        Pitch tracker: Praat autocorrelation (parselmouth ``to_pitch_ac``) or librosa ``pyin``.
    f0_floor, f0_ceiling : float
        Pitch search range in Hz. Default 50-2000 Hz, which covers voices and instruments
        (Praat's own 600 Hz ceiling halves notes above it). Valid: ``0 < f0_floor < f0_ceiling <
        sr / 2``; with ``pitch="pyin"`` also ``f0_floor >= 2 sr / n_fft`` (two periods of the
        floor in pyin's frame; librosa silently cuts longer periods at ``n_fft - 1`` samples) and
        ``12 log2(f0_ceiling / f0_floor) >=`` :func:`pyin_min_range_st` (4 semitones at
        ``hop_length / sr`` = 10 ms). Praat's window (3 periods of the floor) longer than a clip
        makes that clip's pitch NaN (a per-clip fact, recorded by the frame counts).
    hnr_time_step : float
        Frame step of Praat's harmonicity (cc) analysis, s. Default 0.02.
    n_mels : int
        Mel bands (Slaney) for log-mel variability, MFCCs and onsets. Default 64.
    n_mfcc : int
        Cepstral coefficients computed (c0 .. c{n_mfcc-1}); c1..c12 are reported. Default 13.
    env_rate : int
        Rate of the band envelopes used for modulation and roughness, Hz. Default 1000.
    smod_bins_per_octave : int
        Resolution of the log-frequency spectrogram for spectral modulation. Default 12.
    """

    sr: int = DEFAULT_SR
    n_fft: int = 1024
    hop_length: int = 160
    lowcut_hz: float = 20.0
    silence_rel_db: float = 60.0
    silence_abs_dbfs: float = -70.0
    level_floor_dbfs: float = -100.0
    pitch: str = "praat"
    f0_floor: float = DEFAULT_F0_FLOOR
    f0_ceiling: float = DEFAULT_F0_CEILING
    hnr_time_step: float = 0.02
    n_mels: int = 64
    n_mfcc: int = 13
    env_rate: int = 1000
    smod_bins_per_octave: int = 12

    def __post_init__(self) -> None:
        """Validate the settings (:class:`ParameterError` naming the setting, the value and the valid range)."""
        check_choice("pitch", self.pitch, PITCH_TRACKERS)
        for name in ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc", "env_rate", "smod_bins_per_octave"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if self.sr < 8000:
            raise ParameterError(f"sr must be at least 8000 Hz (the modulation and slope bands need it), "
                                 f"got {self.sr!r}")
        if self.n_mfcc < 13:
            raise ParameterError(f"n_mfcc must be at least 13 (c1..c12 are reported), got {self.n_mfcc!r}")
        if not 0 < self.f0_floor < self.f0_ceiling < self.sr / 2:
            raise ParameterError(f"f0_floor/f0_ceiling (--f0-floor/--f0-ceiling, --sr): need 0 < f0_floor < "
                                 f"f0_ceiling < sr/2 = {self.sr / 2:g} Hz, got f0_floor={self.f0_floor!r}, "
                                 f"f0_ceiling={self.f0_ceiling!r}, sr={self.sr!r}")
        if self.pitch == "pyin":
            self._check_pyin_range()
        if not 0 < self.lowcut_hz < self.f0_floor:
            raise ParameterError(f"lowcut_hz must be in (0, f0_floor={self.f0_floor}) Hz, got {self.lowcut_hz!r}")
        if self.env_rate < 400:
            raise ParameterError(f"env_rate must be at least 400 Hz (roughness reaches 150 Hz), got {self.env_rate!r}")
        if self.smod_bins_per_octave < 12:
            raise ParameterError("smod_bins_per_octave must be at least 12 (spectral modulation reaches 5.7 cyc/oct), "
                                 f"got {self.smod_bins_per_octave!r}")
        if self.hop_length > self.n_fft:
            raise ParameterError(f"hop_length must not exceed n_fft={self.n_fft}, got {self.hop_length!r}")
        if not self.hnr_time_step > 0:
            raise ParameterError(f"hnr_time_step must be positive (s), got {self.hnr_time_step!r}")
        if not self.silence_rel_db > 0 or not self.level_floor_dbfs < self.silence_abs_dbfs < 0:
            raise ParameterError("need silence_rel_db > 0 and level_floor_dbfs < silence_abs_dbfs < 0, got "
                                 f"silence_rel_db={self.silence_rel_db!r}, silence_abs_dbfs="
                                 f"{self.silence_abs_dbfs!r}, level_floor_dbfs={self.level_floor_dbfs!r}")

    def _check_pyin_range(self) -> None:
        """Refuse a pyin search range that librosa.pyin cannot use (see the f0_floor parameter)."""
        lowest = 2.0 * self.sr / self.n_fft
        if self.f0_floor < lowest:
            raise ParameterError(
                f"pitch='pyin' (--pitch pyin) needs f0_floor (--f0-floor) >= 2 sr / n_fft = {lowest:g} Hz (two "
                f"periods in its {self.n_fft}-sample frame at sr={self.sr} Hz), got f0_floor={self.f0_floor:g} Hz")
        need_st = pyin_min_range_st(sr=self.sr, hop_length=self.hop_length)
        span_st = 12.0 * math.log2(self.f0_ceiling / self.f0_floor)
        # pyin's grid has floor(span_st / resolution) + 1 bins; the small slack absorbs rounding at the boundary
        if math.floor(span_st / PYIN_PARAMETERS["resolution"] + 1e-9) < need_st / PYIN_PARAMETERS["resolution"]:
            ratio = 2.0 ** (need_st / 12)
            raise ParameterError(
                f"pitch='pyin' (--pitch pyin) cannot use f0_floor={self.f0_floor:g} Hz, f0_ceiling={self.f0_ceiling:g} "
                f"Hz (--f0-floor/--f0-ceiling): the range spans {span_st:.2f} semitones, pyin needs at least "
                f"{need_st} (its transition window at hop_length={self.hop_length}, sr={self.sr} Hz), i.e. f0_ceiling "
                f">= {ratio:.4f} x f0_floor = {self.f0_floor * ratio:.1f} Hz (or f0_floor <= "
                f"{self.f0_ceiling / ratio:.1f} Hz), with f0_floor >= {lowest:g} Hz and f0_ceiling < "
                f"{self.sr / 2:g} Hz")

    def as_dict(self) -> dict:
        """Return the settings as a plain dict (for run.json and features_meta.csv)."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> AnalysisConfig:
        """Return a copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)
