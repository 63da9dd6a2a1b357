"""Audio decoding: any soundfile format -> mono float32 at the rate a stage asks for.

Decoding is faithful: samples are returned as the file holds them, never clipped or rescaled.
Full scale is 1: integer PCM decodes into [-1, 1), but float files (``FLOAT``/``DOUBLE`` WAV) and
lossy codecs can hold larger values, which break the "1 = full scale" contract that dBFS levels
rely on; :func:`decode_audio` reports them (``peak_abs``, ``n_over_full_scale``), ``audioprobe corpus
check`` names such files and the features stage records them per clip.
Resampling uses soxr at "HQ" quality, as librosa's default ``res_type="soxr_hq"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import ClipError, ParameterError

__all__ = ["AudioInfo", "DecodedAudio", "FULL_SCALE", "audio_info", "decode_audio", "load_audio", "validate_samples"]

#: The sample value of digital full scale (0 dBFS peak).
FULL_SCALE = 1.0


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file.

    Attributes
    ----------
    sample_rate : int
        Hz.
    n_frames : int
        Samples per channel.
    channels : int
    duration_s : float
        Seconds.
    format : str
        Container, e.g. ``"FLAC"``.
    subtype : str
        Sample encoding, e.g. ``"PCM_24"``.
    """

    sample_rate: int
    n_frames: int
    channels: int
    duration_s: float
    format: str
    subtype: str


def _open_checked(path: Path, clip_id: str | None) -> sf.SoundFile:
    if not path.exists():
        raise ClipError("file not found", clip_id=clip_id, path=path)
    if path.is_dir():
        raise ClipError("path is a directory, not an audio file", clip_id=clip_id, path=path)
    if path.stat().st_size == 0:
        raise ClipError("empty file (0 bytes)", clip_id=clip_id, path=path)
    try:
        return sf.SoundFile(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ClipError(f"cannot decode audio ({type(exc).__name__}: {exc})", clip_id=clip_id,
                        path=path) from exc


def audio_info(path: str | Path, *, clip_id: str | None = None) -> AudioInfo:
    """Read an audio file's header without decoding its samples.

    Raises
    ------
    ClipError
        If the file is missing, empty or not decodable.
    """
    path = Path(path)
    with _open_checked(path, clip_id) as f:
        return AudioInfo(sample_rate=int(f.samplerate), n_frames=int(f.frames), channels=int(f.channels),
                         duration_s=f.frames / f.samplerate, format=str(f.format), subtype=str(f.subtype))


def validate_samples(y: np.ndarray, *, clip_id: str | None = None, path: str | Path | None = None) -> None:
    """Raise :class:`ClipError` if ``y`` is empty or holds NaN/Inf samples."""
    if y.size == 0:
        raise ClipError("zero-length audio (no samples)", clip_id=clip_id, path=path)
    bad = ~np.isfinite(y)
    if bad.any():
        raise ClipError(f"{int(bad.sum())} of {y.size} samples are NaN or Inf", clip_id=clip_id, path=path)


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded clip and how its samples sit against full scale.

    Attributes
    ----------
    y : np.ndarray, shape (n_samples,), float32
        Mono samples (channels averaged) at ``sr``, as decoded (not clipped or rescaled).
    sr : int
        Sample rate of ``y``, Hz.
    peak_abs : float
        Largest ``|sample|`` of the file over every channel, before channel averaging and
        resampling (so a stereo file with one channel beyond full scale is seen, and a resampler's
        overshoot is not).
    n_over_full_scale : int
        Samples of the file (all channels, before averaging and resampling) with
        ``|sample| > FULL_SCALE``; 0 when the file keeps the [-1, 1] contract.
    n_file_samples : int
        Samples of the file over all channels (frames x channels).
    """

    y: np.ndarray
    sr: int
    peak_abs: float
    n_over_full_scale: int
    n_file_samples: int


def decode_audio(path: str | Path, *, sr: int | None = 16000, clip_id: str | None = None) -> DecodedAudio:
    """Decode an audio file to mono float32 and measure its peak against full scale.

    Parameters
    ----------
    path : str or Path
        WAV, FLAC, OGG/Vorbis, MP3 or any other format libsndfile reads.
    sr : int or None, keyword-only
        Target sample rate in Hz; ``None`` keeps the file's rate. Default 16000.
    clip_id : str, optional
        Named in error messages.

    Returns
    -------
    DecodedAudio
        The samples (decoded in float64, channels averaged, resampled with soxr HQ, then float32)
        and the file's ``peak_abs`` and ``n_over_full_scale``.

    Raises
    ------
    ClipError
        Missing, empty, undecodable or zero-length file, or NaN/Inf samples in any channel.
    ParameterError
        If ``sr`` is not a positive integer.
    """
    if sr is not None and (not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or sr <= 0):
        raise ParameterError(f"sr must be a positive integer (Hz) or None, got {sr!r}")
    path = Path(path)
    with _open_checked(path, clip_id) as f:
        native_sr = int(f.samplerate)
        try:
            data = f.read(dtype="float64", always_2d=True)
        except Exception as exc:
            raise ClipError(f"cannot decode audio ({type(exc).__name__}: {exc})", clip_id=clip_id,
                            path=path) from exc
    validate_samples(data, clip_id=clip_id, path=path)
    magnitude = np.abs(data)
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr is not None and sr != native_sr:
        y = soxr.resample(y, native_sr, sr, quality="HQ")
    return DecodedAudio(y=np.ascontiguousarray(y, dtype=np.float32), sr=native_sr if sr is None else int(sr),
                        peak_abs=float(magnitude.max()),
                        n_over_full_scale=int(np.count_nonzero(magnitude > FULL_SCALE)), n_file_samples=int(data.size))


def load_audio(path: str | Path, *, sr: int | None = 16000, clip_id: str | None = None) -> np.ndarray:
    """Decode an audio file to a mono float32 signal (the samples of :func:`decode_audio`).

    Parameters
    ----------
    path : str or Path
        WAV, FLAC, OGG/Vorbis, MP3 or any other format libsndfile reads.
    sr : int or None, keyword-only
        Target sample rate in Hz; ``None`` keeps the file's rate. Default 16000.
    clip_id : str, optional
        Named in error messages.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        Samples as decoded, channels averaged; full scale is 1. Integer PCM lies in [-1, 1);
        float files and lossy codecs are not clipped or rescaled and may exceed 1 (use
        :func:`decode_audio` to see the peak; ``audioprobe corpus check`` reports such files).

    Raises
    ------
    ClipError
        Missing, empty, undecodable or zero-length file, or NaN/Inf samples.
    ParameterError
        If ``sr`` is not a positive integer.
    """
    return decode_audio(path, sr=sr, clip_id=clip_id).y
