"""Synthesized audio and manifests for the foundation tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from audioprobe.manifest import sha256_file


def tone(freq: float = 440.0, *, sr: int = 16000, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone, float32."""
    t = np.arange(int(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_corpus(folder: Path, n: int = 12, *, sr: int = 16000, seconds: float = 0.5) -> Path:
    """Write ``n`` tones of different pitch and level plus a manifest; return the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    domains = ["speech", "music", "environmental"]
    for i in range(n):
        rel = f"clips/clip{i:03d}.flac"
        (folder / "clips").mkdir(exist_ok=True)
        sf.write(folder / rel, tone(200.0 + 25 * i, sr=sr, seconds=seconds, amplitude=0.1 + 0.05 * i), sr)
        rows.append({"clip_id": f"c{i:03d}", "path": rel, "domain": domains[i % 3], "dataset": "synth",
                     "group": f"g{i // 2}", "split": "train", "license": "CC0", "source": "tests",
                     "sample_rate": sr, "duration_s": seconds, "sha256": sha256_file(folder / rel)})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest
