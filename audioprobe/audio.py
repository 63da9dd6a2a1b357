"""Audio decoding: any soundfile format -> mono float32 at the rate a stage asks for.

Resampling uses soxr at "HQ" quality, as librosa's default ``res_type="soxr_hq"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import ClipError, ParameterError

__all__ = ["AudioInfo", "audio_info", "load_audio", "validate_samples"]


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


def load_audio(path: str | Path, *, sr: int | None = 16000, clip_id: str | None = None) -> np.ndarray:
    """Decode an audio file to a mono float32 signal.

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
        Samples in [-1, 1] (full scale), channels averaged.

    Raises
    ------
    ClipError
        Missing, empty, undecodable or zero-length file, or NaN/Inf samples.
    ParameterError
        If ``sr`` is not a positive integer.
    """
    if sr is not None and (not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ParameterError(f"sr must be a positive integer (Hz) or None, got {sr!r}")
    path = Path(path)
    with _open_checked(path, clip_id) as f:
        native_sr = int(f.samplerate)
        try:
            data = f.read(dtype="float32", always_2d=True)
        except Exception as exc:
            raise ClipError(f"cannot decode audio ({type(exc).__name__}: {exc})", clip_id=clip_id,
                            path=path) from exc
    y = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    validate_samples(y, clip_id=clip_id, path=path)
    if sr is not None and sr != native_sr:
        y = soxr.resample(y, native_sr, sr, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(y, dtype=np.float32)
