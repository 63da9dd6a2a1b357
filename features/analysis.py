"""The shared per-clip analysis: one STFT, one level track, one pitch track, computed once.

A :class:`ClipAnalysis` holds the analysis signal and computes each intermediate
representation lazily (``functools.cached_property``), so that asking for several
descriptors of one clip shares the STFT, the mel spectrogram, the pitch track, the
harmonicity track and the band envelopes instead of recomputing them.
"""
from __future__ import annotations

from functools import cached_property, lru_cache

import librosa
import numpy as np
import scipy.signal

from ..audio import validate_samples
from ..errors import ParameterError
from .config import AnalysisConfig
from .modulation import band_envelopes, logfreq_filterbank, modulation_spectrum
from .pitch import PitchTrack, harmonicity_track, track_pitch

__all__ = ["ClipAnalysis"]


@lru_cache(maxsize=8)
def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)


@lru_cache(maxsize=8)
def _trend_basis(length: int) -> np.ndarray:
    """Orthonormal basis (length, 3) of constant, linear and quadratic trends over a frame."""
    x = np.linspace(-1.0, 1.0, length)
    return np.linalg.qr(np.vander(x, 3))[0]


class ClipAnalysis:
    """Shared intermediate representations of one clip.

    Frames are ``n_fft`` samples long, every ``hop_length`` samples, and lie wholly inside the
    clip (no edge padding, whose artificial onsets and splatter would bias spectral spread,
    flux and onsets); frame ``k`` is centred at ``(k * hop_length + n_fft / 2) / sr`` seconds. A
    clip shorter than ``n_fft`` is one frame (its level is the RMS of its samples).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Samples in full scale ([-1, 1]) at ``sr``. Its mean (DC) is subtracted; the analysis
        signal is :attr:`y` (float64).
    sr : int
        Sample rate of ``y`` in Hz; must equal ``config.sr`` (resample first, e.g. with
        :func:`audioprobe.load_audio`).
    config : AnalysisConfig, optional

    Raises
    ------
    ClipError
        Empty signal or NaN/Inf samples.
    ParameterError
        ``sr`` differs from ``config.sr`` or ``y`` is not one-dimensional.
    """

    def __init__(self, y: np.ndarray, sr: int, config: AnalysisConfig | None = None):
        self.config = config or AnalysisConfig()
        if sr != self.config.sr:
            raise ParameterError(f"sr must equal the analysis rate config.sr={self.config.sr} Hz, got {sr!r}; "
                                 "resample the clip first")
        y = np.asarray(y)
        if y.ndim != 1:
            raise ParameterError(f"y must be one-dimensional (mono), got shape {y.shape}")
        validate_samples(y)
        self.sr = sr
        self.y = np.asarray(y, dtype=np.float64) - np.mean(y, dtype=np.float64)

    @property
    def duration_s(self) -> float:
        """Clip duration in seconds."""
        return self.y.size / self.sr

    # ---- frames and levels -----------------------------------------------------------------
    @cached_property
    def frame_dbfs(self) -> np.ndarray:
        """Frame levels, dBFS: 20 log10 of the frame RMS about the frame mean, floored; shape (n_frames,).

        Frames are rectangular, ``n_fft`` samples (the whole clip when shorter); removing each
        frame's mean keeps DC and slow drift out of the level, as Praat's intensity does.
        """
        c = self.config
        frames = librosa.util.frame(self.y, frame_length=min(c.n_fft, self.y.size), hop_length=c.hop_length)
        rms = frames.std(axis=0)
        return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-300)), c.level_floor_dbfs)

    @property
    def n_frames(self) -> int:
        return int(self.frame_dbfs.size)

    @cached_property
    def nonsilent(self) -> np.ndarray:
        """Boolean mask of non-silent frames, shape (n_frames,).

        A frame is non-silent when its level exceeds the loudest frame minus
        ``silence_rel_db`` and ``silence_abs_dbfs`` (so digital silence, a pure DC offset and
        a -90 dBFS clip have none).
        """
        c = self.config
        level = self.frame_dbfs
        threshold = max(c.silence_abs_dbfs, float(level.max()) - c.silence_rel_db)
        return level > threshold

    @property
    def n_nonsilent(self) -> int:
        return int(self.nonsilent.sum())

    # ---- spectra -----------------------------------------------------------------------------
    @cached_property
    def magnitude(self) -> np.ndarray:
        """|STFT| of the analysis signal, shape (1 + n_fft/2, n_frames).

        Each frame's least-squares quadratic trend is removed (its DC and most sub-audio drift, whose
        window leakage would otherwise reach far up the spectrum), Hann-windowed
        (``scipy.signal.get_window("hann")``, periodic, as librosa) and transformed with
        ``numpy.fft.rfft``; bins below ``lowcut_hz`` are then set to 0, so no spectral descriptor
        sees DC or drift. A clip shorter than ``n_fft`` is one frame windowed over its own length
        and zero-padded to ``n_fft``.
        """
        c = self.config
        length = min(c.n_fft, self.y.size)
        frames = librosa.util.frame(self.y, frame_length=length, hop_length=c.hop_length)
        basis = _trend_basis(length)
        frames = frames - basis @ (basis.T @ frames)
        window = scipy.signal.get_window("hann", length)
        magnitude = np.abs(np.fft.rfft(frames * window[:, None], n=c.n_fft, axis=0))
        magnitude[self.frequencies < c.lowcut_hz] = 0.0
        return magnitude

    @cached_property
    def frequencies(self) -> np.ndarray:
        """Centre frequency of each STFT bin, Hz, shape (1 + n_fft/2,)."""
        return librosa.fft_frequencies(sr=self.sr, n_fft=self.config.n_fft)

    @cached_property
    def nonsilent_magnitude(self) -> np.ndarray:
        """The magnitude spectrogram restricted to non-silent frames, shape (1 + n_fft/2, n_nonsilent)."""
        return self.magnitude[:, self.nonsilent]

    @cached_property
    def centroid(self) -> np.ndarray:
        """Spectral centroid (librosa, magnitude-weighted) of each non-silent frame, Hz, shape (n_nonsilent,)."""
        S = self.nonsilent_magnitude
        if S.shape[1] == 0:
            return np.zeros(0)
        return librosa.feature.spectral_centroid(S=S, sr=self.sr, n_fft=self.config.n_fft)[0]

    @cached_property
    def mel_db(self) -> np.ndarray:
        """Log-mel power spectrogram, dB re 1 (``power_to_db``, top_db 80), shape (n_mels, n_frames).

        The mel power is ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) @ |STFT|**2``,
        what ``librosa.feature.melspectrogram`` computes, with the filterbank built once per process.
        """
        c = self.config
        mel = _mel_filterbank(self.sr, c.n_fft, c.n_mels) @ self.magnitude ** 2
        return librosa.power_to_db(mel, ref=1.0, top_db=80.0)

    @cached_property
    def mfcc(self) -> np.ndarray:
        """MFCCs c0..c{n_mfcc-1} of the log-mel spectrogram (DCT-II, ortho), shape (n_mfcc, n_frames)."""
        return librosa.feature.mfcc(S=self.mel_db, sr=self.sr, n_mfcc=self.config.n_mfcc)

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
