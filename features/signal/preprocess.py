"""The analysis signal: the clip with its DC offset and sub-audio drift removed, seen by every descriptor family."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal

from ..config import HIGHPASS_ORDER, HIGHPASS_PAD_PERIODS

__all__ = ["clean_signal"]


@lru_cache(maxsize=8)
def _highpass(sr: int, lowcut_hz: float) -> np.ndarray:
    return scipy.signal.butter(HIGHPASS_ORDER, lowcut_hz, btype="highpass", fs=sr, output="sos")


def clean_signal(y: np.ndarray, *, sr: int, lowcut_hz: float) -> np.ndarray:
    """Remove DC and sub-``lowcut_hz`` drift: the analysis signal every descriptor family sees.

    The clip mean is subtracted, then a Butterworth high-pass of order ``HIGHPASS_ORDER`` at
    ``lowcut_hz`` is applied forward and backward (zero phase, squared magnitude response: -6 dB at
    ``lowcut_hz``; a 2 Hz drift is attenuated by 160 dB at 20 Hz). The clip is first extended at
    both ends by its mirror image (``numpy.pad(mode="reflect")``, ``HIGHPASS_PAD_PERIODS`` periods of
    ``lowcut_hz`` or the clip's length) and the filter starts from rest: unlike
    ``scipy.signal.sosfiltfilt``'s odd extension and step-response start, this adds no step at the
    edges, whose 20 Hz ringing would pull a 50 ms tone's centroid down by 7 %.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : int
        Hz.
    lowcut_hz : float
        High-pass corner, Hz.

    Returns
    -------
    np.ndarray, shape (n_samples,), float64
    """
    y = np.asarray(y, dtype=np.float64) - np.mean(y, dtype=np.float64)
    pad = min(y.size - 1, int(np.ceil(HIGHPASS_PAD_PERIODS * sr / lowcut_hz)))
    sos = _highpass(sr, lowcut_hz)
    x = scipy.signal.sosfilt(sos, np.pad(y, pad, mode="reflect"))
    x = scipy.signal.sosfilt(sos, x[::-1])[::-1]
    return np.ascontiguousarray(x[pad: pad + y.size])
