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
import zarr

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
    assert zarr.open_array(str(result.folder / "logmel.zarr"), mode="r").dtype == np.float32  # stored as float32
    assert arrays["logmel"].dtype == np.float64  # read as float64 (audioprobe.contract.read_layer)
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


@pytest.mark.slow
def test_kill_and_resume_gives_identical_arrays(tmp_path):
    manifest = write_clips(tmp_path / "corpus", [2.0, 1.0] * 20)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(manifest, killed), env=env, stderr=subprocess.PIPE)
    def done_chunks() -> dict:
        return Run(killed).stage_record("extract:byola-v1-random-seed0").get("units", {}) if killed.is_dir() else {}

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if done_chunks():
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the extraction finished before it could be killed"
    n_done = len(done_chunks())
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


# --- networks handed in by issue 18 (hand-weighted, see handed_nets.py) and structural errors (issue 12) ---

def _logmels(model, path: str) -> np.ndarray:
    """The normalised log-mel (64, T) of a clip as the extraction sees it (zero-padded to 0.95 s)."""
    y = sf.read(path, dtype="float32")[0]
    if len(y) < 15200:
        y = np.pad(y, ((15200 - len(y)) // 2, 15200 - len(y) - (15200 - len(y)) // 2))
    with torch.no_grad():
        return model.pipeline.logmel(torch.from_numpy(y)[None])[0, 0].numpy().astype(np.float64)


def test_reused_relu_default_extraction(tmp_path):
    """Issue 18 item 5: default extraction of a BasicBlock-style net (one ReLU, two calls) exited 2; now each call."""
    manifest = write_clips(tmp_path / "corpus", [1.0, 2.0, 0.5, 1.3, 1.0])
    run = Run(tmp_path / "run")
    result = extract_activations("module:handed_nets:basic_block", manifest, run=run, device="cpu", batch_size=2,
                                 n_jobs=1)
    assert result.n_failed == 0
    assert result.layers[["layer", "layer_index", "file"]].values.tolist() == [
        ["logmel", 0, "logmel.zarr"], ["conv1", 1, "conv1.zarr"], ["relu#0", 2, "relu#0.zarr"],
        ["conv2", 3, "conv2.zarr"], ["relu#1", 4, "relu#1.zarr"]]
    model = load_model("module:handed_nets:basic_block")
    relu0, conv2, relu1 = (read_activations(run, result.name, n) for n in ("relu#0", "conv2", "relu#1"))
    for i, path in enumerate(run.clips()["audio_path"]):
        x = _logmels(model, path)
        # relu#0 = [relu(x), relu(-x)] (channel-major units), conv2 = |x| - 0.5, relu#1 = relu(|x| - 0.5 + x)
        np.testing.assert_allclose(relu0[i], np.concatenate([np.maximum(x, 0).mean(1), np.maximum(-x, 0).mean(1)]),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(conv2[i], (np.abs(x) - 0.5).mean(1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(relu1[i], np.maximum(np.abs(x) + x - 0.5, 0).mean(1), rtol=1e-5, atol=1e-5)


def test_weight_tied_loop_extraction_from_the_cli(tmp_path):
    from audioprobe.cli import main

    manifest = write_clips(tmp_path / "corpus", [1.0, 1.5, 1.0])
    assert main(["-q", "extract", "module:handed_nets:tied_loop", str(manifest), "-o", str(tmp_path / "run"),
                 "--layers", "block#0", "block#2", "--pooling", "meanmax", "-j", "1", "--batch-size", "2"]) == 0
    model = load_model("module:handed_nets:tied_loop")
    rows = {n: read_activations(tmp_path / "run", "tied_loop", n) for n in ("block#0", "block#2")}
    for i, path in enumerate(Run(tmp_path / "run").clips()["audio_path"]):
        a, b = _logmels(model, path)[:2]
        steps = []
        for _ in range(3):  # (a, b) -> (relu(2a - 1), relu(1 - b))
            a, b = np.maximum(2 * a - 1, 0), np.maximum(1 - b, 0)
            steps.append(np.stack([a, b]))
        for name, step in (("block#0", steps[0]), ("block#2", steps[2])):
            np.testing.assert_allclose(rows[name][i], step.mean(1) + step.max(1), rtol=1e-4, atol=1e-5)


def test_frame_folding_pitch_net_extraction(tmp_path):
    """Issue 18 item 6: a CREPE-style net (frames folded into the batch axis) failed every clip; rows known by hand."""
    manifest = write_clips(tmp_path / "corpus", [1.0, 1.0, 2.0, 0.5])
    run = Run(tmp_path / "run")
    result = extract_activations("module:handed_nets:frame_net", manifest, run=run, device="cpu", batch_size=2,
                                 n_jobs=1, pooling={"frame_fc": "meanmax", "*": "mean"})
    assert result.n_failed == 0 and list(result.layers["layer"]) == ["logmel", "frame_fc", "relu", "clip_mean"]
    arrays = {n: read_activations(run, result.name, n) for n in ("frame_fc", "relu", "clip_mean")}
    for i, path in enumerate(run.clips()["audio_path"]):
        y = sf.read(path, dtype="float32")[0].astype(np.float64)
        if len(y) < 15200:
            y = np.pad(y, ((15200 - len(y)) // 2, 15200 - len(y) - (15200 - len(y)) // 2))
        frames = np.lib.stride_tricks.sliding_window_view(y, 8)[::4]    # 8-sample frames, hop 4
        fc = np.stack([frames.mean(1), frames[:, 0] - frames[:, 1]], axis=1)
        np.testing.assert_allclose(arrays["frame_fc"][i], fc.mean(0) + fc.max(0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(arrays["relu"][i], np.maximum(fc, 0).mean(0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(arrays["clip_mean"][i], np.maximum(fc, 0).mean(0), rtol=1e-4, atol=1e-6)


def test_patch_folding_net_extraction(tmp_path):
    """VGGish-style: 0.96 s log-mel patches folded into the batch axis, pooled over the patches of each clip."""
    manifest = write_clips(tmp_path / "corpus", [2.0, 2.0, 3.1])
    run = Run(tmp_path / "run")
    result = extract_activations("module:handed_nets:patch_net", manifest, run=run, device="cpu", batch_size=2,
                                 n_jobs=1)
    assert result.n_failed == 0
    conv, means = (read_activations(run, result.name, n) for n in ("conv", "patch_mean"))
    assert conv.shape == (3, 64 * 96) and means.shape == (3, 1)
    model = load_model("module:handed_nets:patch_net")
    for i, path in enumerate(run.clips()["audio_path"]):
        x = _logmels(model, path)
        n = x.shape[1] // 96                                          # 2 s: 201 frames -> 2 patches; 3.1 s: 3
        patches = np.stack([x[:, k * 96:(k + 1) * 96] for k in range(n)])
        np.testing.assert_allclose(conv[i], (2 * patches + 1).mean(0).ravel(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(means[i], [(2 * patches + 1).mean()], rtol=1e-4, atol=1e-5)


def test_structural_error_stops_before_any_clip(tmp_path):
    """Issue 12: the pitch net without its declaration failed clip after clip, then exit 0; now one line, exit 2."""
    manifest = write_clips(tmp_path / "corpus", [1.0] * 12)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "audioprobe", "-q", "extract",
                           "module:handed_nets:undeclared_frame_net", str(manifest), "-o", str(tmp_path / "run"),
                           "-j", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and time.monotonic() - started < 30
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "first axis is not the batch" in err[0] and "frames_per_clip(n_samples)" in err[0]
    run = Run(tmp_path / "run")
    assert run.failures().empty
    assert run.info.get("stages", {}).get("extract:undeclared_frame_net", {}).get("status") != "complete"


def test_model_fault_on_the_first_clips_stops_the_run(tmp_path):
    """A fault describe_layers cannot see (a 2.56 s positional table, clips of 3 s): stop after 3 clips."""
    from audioprobe.models.extract import FAIL_FAST_CLIPS, ModelFaultError

    manifest = write_clips(tmp_path / "corpus", [3.0] * 8)
    run = Run(tmp_path / "run")
    batches = []  # batch sizes the encoder was called with on 3 s clips (301 frames)
    model = load_model("module:handed_nets:positional_net")
    model.pipeline.encoder.register_forward_pre_hook(
        lambda module, inputs: batches.append(len(inputs[0])) if inputs[0].shape[-1] == 301 else None)
    with pytest.raises(ModelFaultError, match=r"first 3 clip\(s\) all failed the same way and none succeeded.*"
                                              r"size of tensor a \(301\) must match the size of tensor b \(256\)"):
        extract_activations(model, manifest, run=run, device="cpu", batch_size=4, n_jobs=1)
    assert FAIL_FAST_CLIPS == 3 and batches == [4, 1, 1, 1]  # the first batch, then its clips one by one
    assert run.failures().empty
    record = run.info["stages"]["extract:positional_net"]
    assert record["status"] == "failed" and "ModelFaultError" in record["error"]


def test_clip_failures_after_a_success_are_recorded_per_clip(tmp_path):
    """The same fault is per clip once a clip has run: clips over 2.56 s fail, the others are extracted."""
    manifest = write_clips(tmp_path / "corpus", [3.0, 1.0, 3.0, 1.0, 3.0, 3.0, 2.0])
    run = Run(tmp_path / "run")
    result = extract_activations("module:handed_nets:positional_net", manifest, run=run, device="cpu",
                                 batch_size=1, n_jobs=1)
    assert result.n_failed == 4
    failures = run.failures()
    assert failures["clip_id"].tolist() == ["c000", "c002", "c004", "c005"]
    assert set(failures["error_type"]) == {"ForwardError"}
    values = read_activations(run, result.name, "out")
    assert np.isnan(values[[0, 2, 4, 5]]).all() and np.isfinite(values[[1, 3, 6]]).all()


def test_progress_advances_per_batch():
    """Issue 12: the bar sat at 0 until a 64-clip chunk finished; it now advances as each batch is done."""
    from audioprobe.models.extract import _ChunkState, _FailFast

    done: list[int] = []
    batches: list[int] = []

    def run_batch(batch):
        batches.append(len(batch))
        return {"layer": np.zeros((len(batch), 1), dtype=np.float32)}, None

    state = _ChunkState(64, 7, run_batch, 2, on_done=done.append,
                        fail_fast=_FailFast(3, load_model("module:handed_nets:basic_block")))
    wave, longer = np.zeros(16000, dtype=np.float32), np.zeros(20000, dtype=np.float32)
    for row, y in enumerate([wave, wave, None, wave, longer, wave]):
        state.add(0, row, y, None if y is not None else "ClipError", None if y is not None else "missing")
        assert sum(done) == [0, 2, 3, 3, 3, 5][row]
    state.flush({"layer": 1})
    assert done == [2, 1, 2, 1] and batches == [2, 2, 1]
