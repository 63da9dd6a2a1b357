"""Per-clip job functions for the runner tests (importable by worker processes)."""
from __future__ import annotations

import os
import time

import numpy as np

from audioprobe.audio import load_audio


def rms_job(row: dict) -> dict:
    """Level and length of one clip; sleeps a little when ``AUDIOPROBE_TEST_DELAY`` is set."""
    delay = float(os.environ.get("AUDIOPROBE_TEST_DELAY", "0"))
    if delay:
        time.sleep(delay)
    y = load_audio(row["audio_path"], sr=16000, clip_id=row["clip_id"])
    return {"rms": float(np.sqrt(np.mean(y.astype(np.float64) ** 2))), "n_samples": int(y.size)}
