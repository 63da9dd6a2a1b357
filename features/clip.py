"""The shared per-clip analysis: one STFT, one level track, one pitch track, computed once.

The middle layer of :mod:`audioprobe.features`: it turns one clip into the representations built
by :mod:`features.signal` and is what every descriptor of :mod:`features.descriptors` consumes.

A :class:`ClipAnalysis` holds the analysis signal and computes each intermediate
representation lazily (``functools.cached_property``), so that asking for several
descriptors of one clip shares the STFT, the mel spectrogram, the pitch track, the
harmonicity track and the band envelopes instead of recomputing them.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from ..audio import FULL_SCALE, validate_samples
from ..errors import ParameterError
from .config import AnalysisConfig
from .signal import dsp
from .signal.envelopes import band_envelopes
from .signal.logfreq import logfreq_filterbank
from .signal.periodogram import modulation_spectrum
from .signal.pitch_track import PitchTrack, harmonicity_track, track_pitch
from .signal.preprocess import clean_signal

__all__ = ["ClipAnalysis"]


class ClipAnalysis:
    """Shared intermediate representations of one clip.

    Every descriptor family is computed from one analysis signal, :attr:`y` = :func:`clean_signal`
    of the input (clip mean removed, zero-phase high-pass at ``lowcut_hz``). Frames are ``n_fft``
    samples long, every ``hop_length`` samples, and lie wholly inside the clip (no edge padding,
    whose artificial onsets and splatter would bias spectral spread, flux and onsets); frame ``k``
    is centred at ``(k * hop_length + n_fft / 2) / sr`` seconds. A clip shorter than ``n_fft`` is one
    frame of its own length if it spans at least one period of ``lowcut_hz`` (``sr / lowcut_hz``
    samples, 50 ms at the defaults: shorter, the mean removal and the high-pass cannot tell drift
    from sound); a shorter clip has no frame (``n_frames`` 0) and every frame-based descriptor is NaN.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Samples at ``sr``; full scale is 1.
    sr : int
        Sample rate of ``y`` in Hz; must equal ``config.sr`` (resample first, e.g. with
        :func:`audioprobe.load_audio`).
    config : AnalysisConfig, optional
    n_over_full_scale : int, optional, keyword-only
        Samples of the source file beyond full scale (:attr:`audioprobe.audio.DecodedAudio.n_over_full_scale`);
        default: counted in ``y``.

    Raises
    ------
    ClipError
        Empty signal or NaN/Inf samples.
    ParameterError
        ``sr`` differs from ``config.sr`` or ``y`` is not one-dimensional.
    """

    def __init__(self, y: np.ndarray, sr: int, config: AnalysisConfig | None = None, *,
                 n_over_full_scale: int | None = None):
        self.config = config or AnalysisConfig()
        if sr != self.config.sr:
            raise ParameterError(f"sr must equal the analysis rate config.sr={self.config.sr} Hz, got {sr!r}; "
                                 "resample the clip first")
        y = np.asarray(y)
        if y.ndim != 1:
            raise ParameterError(f"y must be one-dimensional (mono), got shape {y.shape}")
        validate_samples(y)
        self.sr = sr
        if n_over_full_scale is None:
            n_over_full_scale = int(np.count_nonzero(np.abs(y) > FULL_SCALE))
        self.n_over_full_scale = int(n_over_full_scale)
        self.y = clean_signal(y, sr=sr, lowcut_hz=self.config.lowcut_hz)

    @property
    def duration_s(self) -> float:
        """Clip duration in seconds."""
        return self.y.size / self.sr

    # ---- frames and levels -----------------------------------------------------------------
    @property
    def min_frame_length(self) -> int:
        """Shortest frame analysed, samples: ``min(n_fft, ceil(sr / lowcut_hz))``."""
        c = self.config
        return min(c.n_fft, int(np.ceil(self.sr / c.lowcut_hz)))

    @cached_property
    def frames(self) -> np.ndarray:
        """Frames of the analysis signal, shape (frame_length, n_frames); no frame when the clip is too short."""
        c = self.config
        length = min(c.n_fft, self.y.size)
        if length < self.min_frame_length:
            return np.zeros((length, 0))
        return dsp.frame(self.y, frame_length=length, hop_length=c.hop_length)

    @cached_property
    def frame_dbfs(self) -> np.ndarray:
        """Frame levels, dBFS: 20 log10 of the frame RMS (rectangular frames), floored; shape (n_frames,)."""
        rms = np.sqrt(np.mean(self.frames ** 2, axis=0))
        return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-300)), self.config.level_floor_dbfs)

    @property
    def n_frames(self) -> int:
        """Number of analysis frames (0 for a clip shorter than :attr:`min_frame_length`)."""
        return int(self.frames.shape[1])

    @cached_property
    def silence_threshold_dbfs(self) -> float:
        """``max(silence_abs_dbfs, loudest frame level - silence_rel_db)``, dBFS."""
        c = self.config
        loudest = float(self.frame_dbfs.max()) if self.n_frames else c.level_floor_dbfs
        return max(c.silence_abs_dbfs, loudest - c.silence_rel_db)

    @cached_property
    def nonsilent(self) -> np.ndarray:
        """Boolean mask of non-silent frames, shape (n_frames,).

        A frame is non-silent when its level (:attr:`frame_dbfs`) and the level of its windowed
        spectrum over the bins at or above ``lowcut_hz`` (:attr:`spectrum_dbfs`) both exceed
        :attr:`silence_threshold_dbfs` (the loudest frame minus ``silence_rel_db``, and
        ``silence_abs_dbfs``): digital silence, a pure DC offset and a -90 dBFS clip have none, and
        neither has a frame whose only sound lies where the window is ~0 (a spectrum of numerical
        residue, whose centroid and flatness would be numbers about nothing).
        """
        threshold = self.silence_threshold_dbfs
        return (self.frame_dbfs > threshold) & (self.spectrum_dbfs > threshold)

    @property
    def n_nonsilent(self) -> int:
        """Number of non-silent frames (:attr:`nonsilent`)."""
        return int(self.nonsilent.sum())

    # ---- spectra -----------------------------------------------------------------------------
    @cached_property
    def magnitude(self) -> np.ndarray:
        """|STFT| of the analysis signal, shape (1 + n_fft/2, n_frames).

        Each frame is Hann-windowed (``scipy.signal.get_window("hann")``, periodic, as librosa;
        :func:`features.signal.dsp.hann`)
        and transformed with ``numpy.fft.rfft``; bins below ``lowcut_hz`` are set to 0 (no
        spectral descriptor uses them). A clip shorter than ``n_fft`` is one frame windowed over
        its own length and zero-padded to ``n_fft``.
        """
        c = self.config
        frames = self.frames
        window = dsp.hann(frames.shape[0])
        magnitude = np.abs(np.fft.rfft(frames * window[:, None], n=c.n_fft, axis=0))
        magnitude[self.frequencies < c.lowcut_hz] = 0.0
        return magnitude

    @cached_property
    def spectrum_dbfs(self) -> np.ndarray:
        """Level of each frame's windowed spectrum (kept bins), dBFS, floored; shape (n_frames,).

        ``10 log10(sum_k w_k |X_k|^2 / (n_fft sum w^2))`` (Parseval, one-sided weights ``w_k``): the
        Hann-weighted RMS, equal to the frame RMS for a steady sound.
        """
        c = self.config
        weights = np.full(self.frequencies.size, 2.0)
        weights[0] = 1.0
        if c.n_fft % 2 == 0:
            weights[-1] = 1.0
        window = dsp.hann(self.frames.shape[0])
        power = weights @ self.magnitude ** 2 / (c.n_fft * np.sum(window ** 2))
        return np.maximum(10.0 * np.log10(np.maximum(power, 1e-300)), c.level_floor_dbfs)

    @cached_property
    def frequencies(self) -> np.ndarray:
        """Centre frequency of each STFT bin, Hz, shape (1 + n_fft/2,)."""
        return dsp.fft_frequencies(sr=self.sr, n_fft=self.config.n_fft)

    @cached_property
    def nonsilent_magnitude(self) -> np.ndarray:
        """The magnitude spectrogram restricted to non-silent frames, shape (1 + n_fft/2, n_nonsilent)."""
        return self.magnitude[:, self.nonsilent]

    @cached_property
    def centroid(self) -> np.ndarray:
        """Spectral centroid (librosa's, magnitude-weighted) of each non-silent frame, Hz, shape (n_nonsilent,)."""
        S = self.nonsilent_magnitude
        if S.shape[1] == 0:
            return np.zeros(0)
        return dsp.spectral_centroid(S, self.frequencies)

    @cached_property
    def mel_db(self) -> np.ndarray:
        """Log-mel power spectrogram, dB re 1 (``power_to_db``, top_db 80), shape (n_mels, n_frames).

        The mel power is ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) @ |STFT|**2``,
        what ``librosa.feature.melspectrogram`` computes (:func:`features.signal.dsp.mel_filterbank`, built
        once per process).
        """
        c = self.config
        mel = dsp.mel_filterbank(sr=self.sr, n_fft=c.n_fft, n_mels=c.n_mels) @ self.magnitude ** 2
        return dsp.power_to_db(mel, top_db=80.0)

    @cached_property
    def mfcc(self) -> np.ndarray:
        """MFCCs c0..c{n_mfcc-1} of the log-mel spectrogram (DCT-II, ortho), shape (n_mfcc, n_frames)."""
        return dsp.mfcc(self.mel_db, n_mfcc=self.config.n_mfcc)

    @cached_property
    def logfreq_db(self) -> np.ndarray:
        """Log-frequency power spectrogram of the non-silent frames, dB, shape (n_logbins, n_nonsilent).

        Triangular filters on a log2 axis (``smod_bins_per_octave`` per octave, 125 Hz up to
        0.475 sr), applied to the STFT power.
        """
        c = self.config
        weights = logfreq_filterbank(sr=self.sr, n_fft=c.n_fft, bins_per_octave=c.smod_bins_per_octave)
        return 10.0 * np.log10(np.maximum(weights @ self.nonsilent_magnitude ** 2, 1e-12))

    # ---- pitch, periodicity, envelopes -------------------------------------------------------
    @cached_property
    def pitch(self) -> PitchTrack:
        """The pitch track (``config.pitch``), with unvoiced frames and silent frames as NaN."""
        c = self.config
        return track_pitch(self.y, sr=self.sr, tracker=c.pitch, f0_floor=c.f0_floor, f0_ceiling=c.f0_ceiling,
                           hop_length=c.hop_length, n_fft=c.n_fft, nonsilent=self.nonsilent)

    @cached_property
    def harmonicity(self) -> np.ndarray:
        """HNR (dB) of the periodic, non-silent Praat harmonicity (cc) frames, shape (n_defined,)."""
        c = self.config
        return harmonicity_track(self.y, sr=self.sr, f0_floor=c.f0_floor, time_step=c.hnr_time_step,
                                 hop_length=c.hop_length, n_fft=c.n_fft, nonsilent=self.nonsilent)

    @cached_property
    def envelopes(self) -> np.ndarray:
        """Octave-band Hilbert envelopes at ``env_rate`` Hz, shape (n_bands, n_env_samples)."""
        return band_envelopes(self.y, sr=self.sr, env_rate=self.config.env_rate)

    @cached_property
    def envelope_spectrum(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Modulation spectrum of the band envelopes.

        Returns
        -------
        freqs : np.ndarray, shape (n_freqs,)
            Modulation frequency, Hz.
        power : np.ndarray, shape (n_freqs,)
            Periodogram density (Hann, mean removed) summed over bands.
        total : float
            Total envelope power (mean square, DC included) summed over bands.
        """
        envelope = self.envelopes
        freqs, power = modulation_spectrum(envelope, fs=self.config.env_rate, detrend="constant", axis=-1)
        return freqs, power.sum(axis=0), float(np.sum(np.mean(envelope ** 2, axis=-1)))
