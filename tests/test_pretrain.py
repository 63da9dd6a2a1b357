"""BYOL-A pretraining on synthesized audio: pools, loss, checkpoints, resume, DDP, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.manifest import sha256_file
from audioprobe.models.byola import AudioNTT2020
from audioprobe.models.frontend import LogMelFrontend
from audioprobe.pretrain import shipped as shipped_module
from audioprobe.pretrain.byol import BYOL, byol_loss
from audioprobe.pretrain.data import LogMelPool, matched_total_s, read_manifests, select_pool
from audioprobe.pretrain.train import pretrain

SR = 16000
TINY = dict(d=64, batch_size=8, proj_hidden=64, proj_dim=32, device="cpu")


def _clip(label: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    if label == "speech":  # gliding harmonic complex, syllable-rate envelope
        f0 = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        y = sum(np.sin(k * phase) / k for k in range(1, 15)) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    elif label == "music":  # steady harmonic note
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        y = sum(np.sin(2 * np.pi * k * f * t) * 0.6 ** k for k in range(1, 6))
    else:  # gated noise
        y = rng.standard_normal(len(t)) * (rng.random(len(t) // 1600 + 1).repeat(1600)[:len(t)] > 0.5)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def write_pool(folder: Path, *, durations: dict[str, list[float]], seed: int = 0) -> Path:
    """Synthesized clips of each manifest domain with the given durations (s); returns the manifest."""
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rng, rows = np.random.default_rng(seed), []
    for label, seconds in durations.items():
        for i, dur in enumerate(seconds):
            rel = f"clips/{label}{i}.wav"
            sf.write(folder / rel, _clip(label, rng, dur), SR)
            rows.append({"clip_id": f"{label}{i}", "path": rel, "domain": label, "dataset": "synth",
                         "group": f"{label}{i // 2}", "split": "train", "license": "CC0", "source": "tests",
                         "sample_rate": SR, "duration_s": dur, "sha256": sha256_file(folder / rel)})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def pool_manifest(tmp_path_factory) -> Path:
    return write_pool(tmp_path_factory.mktemp("pool"), durations={
        "speech": [2.0] * 6, "music": [1.5, 2.5, 2.0, 0.5, 3.0, 2.0], "environmental": [2.0] * 4 + [0.6, 3.0]})


# ---- pools -------------------------------------------------------------------------------------
def test_pools_have_matched_durations_and_shares(pool_manifest):
    manifest = read_manifests(pool_manifest)
    total = matched_total_s(manifest)
    assert total == pytest.approx(min(12.0, 11.5 + 11.6))
    music = 11.5 / 23.1  # non-speech keeps the manifest's music / environmental proportions
    pools = {}
    for domain, shares in {"speech": {"speech": 1.0}, "nonspeech": {"music": music, "environmental": 1 - music},
                           "mixed": {"speech": 0.5, "music": music / 2, "environmental": (1 - music) / 2}}.items():
        pool = pools[domain] = select_pool(manifest, domain)
        assert pool["take_s"].sum() == pytest.approx(total)
        by_label = pool.groupby("domain")["take_s"].sum()
        assert by_label.to_dict() == pytest.approx({k: v * total for k, v in shares.items()})
        assert (pool["take_s"] <= pool["duration_s"] + 1e-12).all() and (pool["take_s"] > 0).all()
        assert pool["clip_id"].equals(select_pool(manifest, domain)["clip_id"])  # seeded
    # the halves of mixed come from the start of the same clip order as the single-domain pools
    assert set(pools["mixed"]["clip_id"]) <= set(pools["speech"]["clip_id"]) | set(pools["nonspeech"]["clip_id"])
    assert not select_pool(manifest, "mixed", random_state=0)["clip_id"].equals(
        select_pool(manifest, "mixed", random_state=1)["clip_id"])


def test_pool_bad_arguments(pool_manifest):
    manifest = read_manifests(pool_manifest)
    with pytest.raises(ParameterError, match=r"domain must be one of \['speech', 'nonspeech', 'mixed'\]"):
        select_pool(manifest, "music")
    with pytest.raises(ParameterError, match="total_s must be in"):
        select_pool(manifest, "speech", total_s=100.0)


def test_log_mel_pool_crops_and_epoch_plan(pool_manifest):
    pool = select_pool(read_manifests(pool_manifest), "mixed")
    data = LogMelPool(pool, quiet=True)
    assert data.n_frames_ == 96
    # a crop is the normalised slice of the front end's log-mel of the (trimmed) clip
    index = int(np.flatnonzero(pool["take_s"] > 1.2)[0])
    row = pool.iloc[index]
    y, _ = sf.read(row["audio_path"], dtype="float32")
    y = y[:int(round(row["take_s"] * SR))]
    reference = LogMelFrontend()(torch.from_numpy(y)[None])[0, 0, :, 5:101]
    torch.testing.assert_close(data.crops(np.array([index]), np.array([5]))[0, 0],
                               (reference - data.mean_) / data.std_)
    values = torch.cat([lm.reshape(-1) for lm in data.log_mels_]).double()
    assert data.mean_ == pytest.approx(float(values.mean())) and data.std_ == pytest.approx(float(values.std()))
    expected = np.maximum(1, np.floor(pool["take_s"].to_numpy() / 0.95 + 1e-9)).astype(int)
    np.testing.assert_array_equal(np.bincount(data.segments_, minlength=len(pool)), expected)
    clips, starts = data.epoch_plan(7, batch_size=3, world_size=2)
    assert clips.shape == starts.shape == (-(-len(data.segments_) // 6), 2, 3)
    first = clips.reshape(-1)[:len(data.segments_)]
    np.testing.assert_array_equal(np.bincount(first, minlength=len(pool)), expected)  # each crop once
    room = np.array([lm.shape[1] - 96 for lm in data.log_mels_])
    assert (starts >= 0).all() and (starts <= room[clips]).all()
    np.testing.assert_array_equal(data.epoch_plan(7, batch_size=3, world_size=2)[1], starts)


# ---- BYOL --------------------------------------------------------------------------------------
def test_byol_loss_known_values():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    torch.testing.assert_close(byol_loss(a, b), torch.tensor([0.0, 2.0, 4.0]))


def test_target_is_an_exponential_moving_average():
    torch.manual_seed(0)
    learner = BYOL(AudioNTT2020(d=16), 16, proj_hidden=8, proj_dim=4, ema_decay=0.9)
    before = [p.clone() for p in learner.target.parameters()]
    with torch.no_grad():
        for p in learner.online.parameters():
            p.add_(1.0)
    learner.update_target()
    for old, new in zip(before, learner.target.parameters()):
        torch.testing.assert_close(new, old + 0.1)
    assert not any(p.requires_grad for p in learner.target.parameters())


# ---- training runs -----------------------------------------------------------------------------
@pytest.mark.slow
def test_short_run_lowers_the_loss_and_writes_a_loadable_checkpoint(pool_manifest, tmp_path):
    # fp32: the loop's reference arithmetic (bf16 against it: test_pretrain_precision.py)
    result = pretrain(pool_manifest, tmp_path, domain="mixed", epochs=8, seed=0, precision="fp32",
                      channels_last=False, **TINY)
    losses = result.sidecar["loss_per_epoch"]
    assert len(losses) == 8 and np.mean(losses[-2:]) < losses[0] - 0.3
    state = torch.load(tmp_path / "seed0.pt", weights_only=True)
    AudioNTT2020(d=64).load_state_dict(state, strict=True)
    assert all(k.startswith(("features.", "fc.")) for k in state)
    sidecar = json.loads((tmp_path / "seed0.json").read_text())
    for key in ("arch", "d", "norm_mean", "norm_std", "domain", "seed", "epochs", "pool_manifest_sha256",
                "loss_per_epoch", "wall_time_s"):
        assert key in sidecar
    assert (sidecar["arch"], sidecar["d"], sidecar["domain"], sidecar["epochs"]) == ("byola-v1", 64, "mixed", 8)
    assert sidecar["pool_manifest_sha256"] == sha256_file(pool_manifest)
    assert sidecar["weights_sha256"] == sha256_file(tmp_path / "seed0.pt")
    data = LogMelPool(select_pool(read_manifests(pool_manifest), "mixed"), quiet=True)
    assert (sidecar["norm_mean"], sidecar["norm_std"]) == pytest.approx((data.mean_, data.std_))


@pytest.mark.slow
def test_resume_continues_the_loss_curve(pool_manifest, tmp_path):
    straight = pretrain(pool_manifest, tmp_path / "straight", domain="speech", epochs=3, seed=1, **TINY)
    first = pretrain(pool_manifest, tmp_path / "split", domain="speech", epochs=1, seed=1, **TINY)
    resumed = pretrain(pool_manifest, tmp_path / "split", domain="speech", epochs=3, seed=1, **TINY)
    assert first.sidecar["loss_per_epoch"] == resumed.sidecar["loss_per_epoch"][:1]
    np.testing.assert_allclose(resumed.sidecar["loss_per_epoch"], straight.sidecar["loss_per_epoch"], rtol=1e-5)
    for (name, a), b in zip(straight.encoder.state_dict().items(), resumed.encoder.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ParameterError, match="other settings"):
        pretrain(pool_manifest, tmp_path / "split", domain="speech", epochs=3, seed=1, **{**TINY, "d": 32})


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_parameters(pool_manifest, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent("""
        import sys, torch, torch.distributed as dist
        from audioprobe.pretrain.train import pretrain
        result = pretrain(sys.argv[1], sys.argv[2], domain="nonspeech", epochs=2, seed=0, d=64, batch_size=4,
                          proj_hidden=32, proj_dim=16, device="cpu")
        online = dict(result.encoder.named_parameters())
        torch.save(online, f"{sys.argv[2]}/params.rank{dist.get_rank()}.pt")
        dist.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(pool_manifest), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    rank0 = torch.load(tmp_path / "params.rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "params.rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and len(rank0) == 16  # 3 conv + 3 BN + 2 linear, weight and bias
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    untrained = AudioNTT2020(d=64)
    assert not torch.equal(rank0["fc.0.weight"], untrained.state_dict()["fc.0.weight"])
    sidecar = json.loads((tmp_path / "seed0.json").read_text())
    assert sidecar["world_size"] == 2 and sidecar["global_batch_size"] == 8
    saved = torch.load(tmp_path / "seed0.pt", weights_only=True)
    assert all(torch.equal(saved[name], rank0[name]) for name in rank0)


@pytest.mark.slow
def test_cli_pretrain_and_shipped_layout(pool_manifest, tmp_path, monkeypatch):
    code = main(["pretrain", str(pool_manifest), "-o", str(tmp_path / "cli"), "--domain", "speech", "--epochs", "1",
                 "--d", "64", "--batch-size", "8", "--proj-hidden", "64", "--proj-dim", "32", "--seed", "2",
                 "--device", "cpu", "-q"])
    assert code == 0 and json.loads((tmp_path / "cli" / "seed2.json").read_text())["seed"] == 2
    assert main(["pretrain", str(pool_manifest), "-o", str(tmp_path), "--domain", "speech", "--minutes", "60",
                 "-q"]) == 2  # more audio than the pool holds: a clear error, exit status 2
    recipe = {key: value for key, value in TINY.items() if key != "device"}
    monkeypatch.setattr(shipped_module, "SHIPPED_RECIPE", {**recipe, "epochs": 2})
    curves = shipped_module.pretrain_shipped(pool_manifest, work_dir=tmp_path / "work",
                                             out_dir=tmp_path / "weights", domains=["speech", "mixed"],
                                             seeds=[0, 1], device="cpu")
    for domain in ("speech", "mixed"):
        for seed in (0, 1):
            assert (tmp_path / "weights" / domain / f"seed{seed}.pt").is_file()
    assert curves.shape == (8, 4) and list(curves.columns) == ["domain", "seed", "epoch", "loss"]
    assert pd.read_csv(tmp_path / "weights" / "loss_curves.csv").shape == (8, 4)
