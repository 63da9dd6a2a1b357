"""Turning a decoded source into corpus clips: leading-silence trim, crop, peak normalisation, FLAC output."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import ParameterError

__all__ = ["leading_silence", "crop", "peak_normalise", "write_flac", "pcm16_digest", "PEAK", "TOP_DB"]

#: Peak level after normalisation (full scale = 1.0); -1 dBFS keeps 16-bit rounding away from clipping.
PEAK = 10 ** (-1 / 20)
#: A sample region counts as silence when its RMS is this many dB below the source's loudest frame.
TOP_DB = 40.0


def leading_silence(y: np.ndarray, *, top_db: float = TOP_DB, frame_length: int = 512,
                    hop_length: int = 128) -> int:
    """Return the number of leading samples that are silence.

    Uses :func:`librosa.effects.trim` (frame RMS ``top_db`` below the loudest frame) and keeps
    only its start index: trailing silence is left alone.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    top_db : float, keyword-only
        Threshold in dB below the peak frame RMS.
    frame_length, hop_length : int, keyword-only
        Analysis frame and hop in samples.

    Returns
    -------
    start : int
        Index of the first non-silent sample (0 if ``y`` starts loud; ``len(y)`` if all silent).
    """
    import librosa

    if not np.any(y):
        return len(y)
    _, (start, _end) = librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)
    return int(start)


def crop(y: np.ndarray, start: int, n_samples: int) -> np.ndarray:
    """``y[start:start + n_samples]``, zero-padded at the end to exactly ``n_samples``.

    Returns
    -------
    segment : np.ndarray, shape (n_samples,), float32
    """
    if n_samples <= 0 or start < 0:
        raise ParameterError(f"crop needs start >= 0 and n_samples > 0, got start={start}, n_samples={n_samples}")
    seg = np.zeros(n_samples, dtype=np.float32)
    piece = y[start:start + n_samples]
    seg[:len(piece)] = piece
    return seg


def peak_normalise(y: np.ndarray, *, peak: float = PEAK) -> np.ndarray:
    """Scale ``y`` so that ``max |y| == peak``; an all-zero signal is refused.

    Returns
    -------
    y_norm : np.ndarray, float32
    """
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if top == 0.0:
        raise ParameterError("peak_normalise got an all-zero (silent) signal")
    return (y * (peak / top)).astype(np.float32)


def _to_pcm16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(y, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def pcm16_digest(y: np.ndarray) -> str:
    """sha256 of the 16-bit PCM samples a clip will be stored as (detects identical clips before writing)."""
    return hashlib.sha256(_to_pcm16(y).tobytes()).hexdigest()


def write_flac(path: str | Path, y: np.ndarray, sr: int) -> None:
    """Write a mono 16-bit FLAC file (bytes depend only on the samples and the libsndfile version).

    The samples are rounded to 16 bit here, so the file does not depend on how libsndfile
    converts floats.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _to_pcm16(y), int(sr), format="FLAC", subtype="PCM_16")
