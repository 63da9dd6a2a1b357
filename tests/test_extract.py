"""Activation extraction: rows equal the network run clip by clip, failures are NaN rows, a killed run resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audioprobe.errors import ParameterError
from audioprobe.manifest import sha256_file
from audioprobe.models.extract import LAYERS_CSV_COLUMNS, extract_activations, read_activations
from audioprobe.models.layers import describe_layers, layouts_of
from audioprobe.models.pooling import pool
from audioprobe.models.specs import load_model
from audioprobe.runstore import Run

SR = 16000


def write_clips(folder: Path, seconds: list[float], *, missing: int | None = None) -> Path:
    """Noise bursts of the given durations + a manifest; clip ``missing`` names a file that does not exist."""
    rng = np.random.default_rng(0)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, s in enumerate(seconds):
        rel = f"clips/c{i:03d}.wav"
        if i != missing:
            y = (0.05 * (1 + i % 3) * rng.standard_normal(int(SR * s))).astype(np.float32)
            sf.write(folder / rel, y, SR)
        rows.append({"clip_id": f"c{i:03d}", "path": rel, "domain": ["speech", "music", "environmental"][i % 3],
                     "dataset": "synth", "group": f"g{i}", "split": "train", "license": "CC0", "source": "tests",
                     "sample_rate": SR, "duration_s": s,
                     "sha256": sha256_file(folder / rel) if i != missing else "0" * 64})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def _direct(model, y: np.ndarray, layouts: dict, pooling: dict[str, str]) -> dict[str, np.ndarray]:
    """The pooled rows of one clip, computed without the extraction machinery."""
    if len(y) < 15200:
        left = (15200 - len(y)) // 2
        y = np.pad(y, (left, 15200 - len(y) - left))
    layers = list(layouts)
    outputs = {}
    handles = [model.pipeline.hookable_modules()[n].register_forward_hook(
        lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in layers]
    with torch.no_grad():
        model.pipeline.eval()(torch.from_numpy(y)[None])
    for h in handles:
        h.remove()
    return {n: pool(outputs[n], layouts[n], pooling[n])[0].numpy() for n in layers}


def test_rows_match_clip_by_clip_and_failures_are_nan(tmp_path):
    seconds = [1.0, 2.0, 0.5, 1.0, 2.0, 1.3, 1.0]
    manifest = write_clips(tmp_path / "corpus", seconds, missing=3)
    layers = ["logmel", "features.3", "fc.4"]
    pooling = {"logmel": "mean", "features.3": "tf-mean", "fc.4": "meanmax"}
    run = Run(tmp_path / "run")
    result = extract_activations("byola-v1:random", manifest, run=run, layers=layers, pooling=pooling,
                                 device="cpu", batch_size=2, n_jobs=1, chunk_clips=3)
    assert result.n_clips == 7 and result.n_failed == 1 and result.name == "byola-v1-random-seed0"
    model = load_model("byola-v1:random")
    clips = run.clips()
    assert list(clips["clip_id"]) == [f"c{i:03d}" for i in range(7)]
    arrays = {n: read_activations(run, result.name, n) for n in layers}
    assert arrays["features.3"].shape == (7, 64) and arrays["fc.4"].shape == (7, 512)
    assert arrays["logmel"].dtype == np.float32
    layouts = layouts_of(describe_layers(model.pipeline, layers=layers))
    for i, path in enumerate(clips["audio_path"]):
        if i == 3:
            assert all(np.isnan(a[3]).all() for a in arrays.values())
            continue
        expected = _direct(model, sf.read(path, dtype="float32")[0], layouts, pooling)
        for n in layers:
            np.testing.assert_allclose(arrays[n][i], expected[n], rtol=1e-5, atol=1e-5)
    # the fc output pooled with meanmax is the clip embedding
    with torch.no_grad():
        emb = model.pipeline(torch.from_numpy(sf.read(clips["audio_path"][1], dtype="float32")[0])[None])[0]
    np.testing.assert_allclose(arrays["fc.4"][1], emb.numpy(), rtol=1e-5, atol=1e-5)

    folder = run.file("activations/byola-v1-random-seed0")
    table = pd.read_csv(folder / "layers.csv")
    assert list(table.columns) == LAYERS_CSV_COLUMNS
    assert table[["layer", "pooling", "pooled_width"]].values.tolist() == [
        ["logmel", "mean", 64], ["features.3", "tf-mean", 64], ["fc.4", "meanmax", 512]]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["control"] == "random-weights" and meta["pretrain_domain"] == "none" and meta["device"] == "cpu"
    failures = run.failures()
    assert failures["clip_id"].tolist() == ["c003"] and failures["error_type"].tolist() == ["ClipError"]
    assert run.info["stages"]["extract:byola-v1-random-seed0"]["status"] == "complete"
    import zarr
    assert zarr.open_array(str(folder / "fc.4.zarr"), mode="r").chunks == (3, 512)

    # a finished extraction is skipped; other settings under the same name are refused
    before = (folder / "fc.4.zarr").stat().st_mtime_ns
    extract_activations("byola-v1:random", manifest, run=run, layers=layers, pooling=pooling, n_jobs=1, chunk_clips=3)
    assert (folder / "fc.4.zarr").stat().st_mtime_ns == before
    with pytest.raises(ParameterError, match="other settings"):
        extract_activations("byola-v1:random", manifest, run=run, layers=layers, pooling="mean", n_jobs=1,
                            chunk_clips=3)


def test_none_pooling_needs_equal_lengths(tmp_path):
    manifest = write_clips(tmp_path / "corpus", [1.0, 1.0, 1.5])
    run = Run(tmp_path / "run")
    result = extract_activations("byola-v1:random", manifest, run=run, layers=["fc.4"], pooling="none",
                                 device="cpu", n_jobs=1)
    values = read_activations(run, result.name, "fc.4")
    assert values.shape == (3, 12 * 512) and np.isfinite(values[:2]).all() and np.isnan(values[2]).all()
    assert run.failures()["error_type"].tolist() == ["ShapeError"]


def _cli(manifest: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "audioprobe", "-q", "extract", "byola-v1:random", str(manifest), "-o", str(out),
            "--layers", "logmel", "features.7", "fc.1", "--chunk-clips", "2", "--batch-size", "1", "-j", "1"]


def test_kill_and_resume_gives_identical_arrays(tmp_path):
    manifest = write_clips(tmp_path / "corpus", [2.0, 1.0] * 20)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(manifest, killed), env=env, stderr=subprocess.PIPE)
    record = killed / "activations" / "byola-v1-random-seed0" / "progress.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if record.is_file() and json.loads(record.read_text())["done_chunks"]:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the extraction finished before it could be killed"
    n_done = len(json.loads(record.read_text())["done_chunks"])
    assert 0 < n_done < 20
    resumed = subprocess.run(_cli(manifest, killed)[:3] + ["-v"] + _cli(manifest, killed)[4:], env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    clean = tmp_path / "clean"
    assert subprocess.run(_cli(manifest, clean), env=env, timeout=120).returncode == 0
    for layer in ("logmel", "features.7", "fc.1"):
        a = read_activations(killed, "byola-v1-random-seed0", layer)
        b = read_activations(clean, "byola-v1-random-seed0", layer)
        assert a.shape == (40, b.shape[1]) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
