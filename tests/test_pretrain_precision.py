"""The fast pretraining loop: bf16 autocast / channels_last against fp32, batched augmentation and
crops against their per-example definitions, float32 checkpoints, continued pretraining."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from test_pretrain import TINY, write_pool

from audioprobe.cli import main
from audioprobe.models.byola import AudioNTT2020
from audioprobe.models.specs import load_model
from audioprobe.pretrain import shipped as shipped_module
from audioprobe.pretrain.augment import BYOLAugment, RandomResizeCrop
from audioprobe.pretrain.byol import BYOL, byol_step, make_optimizer
from audioprobe.pretrain.recipe import SHIPPED_DOMAINS, SHIPPED_SEEDS
from audioprobe.pretrain.train import pretrain

#: Relative L2 error of the whole gradient (all online parameters) against fp32 on the same batch
#: and dropout masks. fp32 + channels_last only reorders sums (measured 0.002). bf16 keeps 8
#: significant bits; the rounding of every conv / linear output is amplified by the cancellation
#: in the batch-norm backward pass (measured 0.26-0.28 at initialisation, d=512): less than half
#: of what resampling the dropout masks alone changes (measured about 0.7), so within SGD's own noise.
GRAD_RTOL = {"fp32": 0.01, "bf16": 0.35}


@pytest.fixture(scope="module")
def pool_manifest(tmp_path_factory):
    return write_pool(tmp_path_factory.mktemp("pool"), durations={
        "speech": [2.0] * 6, "music": [1.5, 2.5, 2.0, 0.5, 3.0, 2.0], "environmental": [2.0] * 4 + [0.6, 3.0]})


def _gradient(learner: BYOL, views: torch.Tensor, *, precision: str, channels_last: bool,
              dropout_seed: int = 7) -> torch.Tensor:
    """The online network's gradient of the BYOL loss of ``views``, flattened (float32)."""
    if channels_last:
        learner.to(memory_format=torch.channels_last)
        views = views.contiguous(memory_format=torch.channels_last)
    batch = views.shape[0] // 2
    torch.manual_seed(dropout_seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = learner.loss(views[:batch], views[batch:])
    loss.backward()
    return torch.cat([p.grad.float().reshape(-1) for p in learner.online.parameters()])


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).norm() / expected.norm())


@pytest.fixture(scope="module")
def fp32_reference():
    torch.manual_seed(0)
    learner = BYOL(AudioNTT2020(d=512), 512, proj_hidden=256, proj_dim=64)
    views = torch.randn(2 * 16, 1, 64, 96, generator=torch.Generator().manual_seed(1))
    expected = _gradient(copy.deepcopy(learner), views, precision="fp32", channels_last=False)
    return learner, views, expected


@pytest.mark.parametrize("precision, channels_last", [("fp32", True), ("bf16", False), ("bf16", True)])
def test_reduced_precision_step_gradients_match_fp32(fp32_reference, precision, channels_last):
    learner, views, expected = fp32_reference
    got = _gradient(copy.deepcopy(learner), views, precision=precision, channels_last=channels_last)
    error = _relative_error(got, expected)
    assert error < GRAD_RTOL[precision]
    assert float(F.cosine_similarity(got, expected, dim=0)) > 1 - GRAD_RTOL[precision] ** 2 / 2 - 1e-3
    if precision == "bf16":  # the bf16 error is smaller than the change that other dropout masks make in fp32
        other_masks = _gradient(copy.deepcopy(learner), views, precision="fp32", channels_last=False, dropout_seed=8)
        assert error < 0.5 * _relative_error(other_masks, expected)


@pytest.mark.slow
def test_bf16_loss_curve_follows_fp32(pool_manifest, tmp_path):
    """The same seed in fp32 and in bf16 + channels_last: per-epoch losses within 0.15 (loss range 0..8)."""
    settings = {**TINY, "d": 512, "proj_hidden": 128, "proj_dim": 64}
    curves = {precision: pretrain(pool_manifest, tmp_path / precision, domain="mixed", epochs=6, seed=0,
                                  precision=precision, channels_last=precision == "bf16",
                                  **settings).sidecar["loss_per_epoch"]
              for precision in ("fp32", "bf16")}
    np.testing.assert_allclose(curves["bf16"], curves["fp32"], atol=0.15)
    assert curves["bf16"][-1] < curves["bf16"][0] - 0.3  # and it learns


@pytest.mark.slow
def test_bf16_checkpoint_loads_in_fp32_through_the_specs(pool_manifest, tmp_path):
    pretrain(pool_manifest, tmp_path / "speech", domain="speech", epochs=1, seed=4, precision="bf16",
             channels_last=True, **{**TINY, "d": 512})
    state = torch.load(tmp_path / "speech" / "seed4.pt", weights_only=True)
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 and v.is_contiguous() for v in floats)
    sidecar = json.loads((tmp_path / "speech" / "seed4.json").read_text())
    assert (sidecar["config"]["precision"], sidecar["config"]["channels_last"]) == ("bf16", True)
    loaded = load_model("speech/seed4", weights_dir=tmp_path)
    assert (loaded.pretrain_domain, loaded.seed, loaded.d) == ("speech", 4, 512)
    with torch.no_grad():
        out = loaded.pipeline(torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * 0.1)
    assert out.dtype == torch.float32 and out.shape == (2, 512) and torch.isfinite(out).all()


@pytest.mark.slow
def test_continued_pretraining_starts_from_the_given_encoder(pool_manifest, tmp_path):
    first = pretrain(pool_manifest, tmp_path / "first", domain="speech", epochs=1, seed=0, **TINY)
    # a learning rate of ~0 keeps the online encoder's parameters at the initial weights
    again = pretrain(pool_manifest, tmp_path / "again", domain="speech", epochs=1, seed=1, lr=1e-30,
                     init_weights=first.weights_path, **TINY)
    start = torch.load(first.weights_path, weights_only=True)
    for name, param in again.encoder.named_parameters():
        torch.testing.assert_close(param.detach(), start[name], msg=name)
    assert again.sidecar["config"]["init_sha256"] == first.sidecar["weights_sha256"]


def test_batched_resize_crop_equals_per_example_interpolation_inside_the_box():
    x = torch.randn(6, 1, 64, 96, generator=torch.Generator().manual_seed(0))
    crop = RandomResizeCrop(random_state=3)
    out = crop(x)
    boxes = RandomResizeCrop(random_state=3).crop_boxes(6, (64, 144), (64, 96))
    canvas = F.pad(x, (24, 24))
    for i, (top, left, h, w) in enumerate(boxes):
        expected = F.interpolate(canvas[i:i + 1, :, top:top + h, left:left + w], size=(64, 96), mode="bicubic",
                                 align_corners=True)[0, 0]
        # pixels whose 4 x 4 bicubic neighbourhood lies inside the box: identical definitions
        src_f, src_t = np.arange(64) * (h - 1) / 63, np.arange(96) * (w - 1) / 95
        rows = (np.floor(src_f) >= 1) & (np.floor(src_f) + 2 <= h - 1)
        cols = (np.floor(src_t) >= 1) & (np.floor(src_t) + 2 <= w - 1)
        inside = torch.from_numpy(rows[:, None] & cols[None, :])
        assert inside.sum() > 0.5 * inside.numel()
        # grid_sample's normalised coordinates round the sampling positions by ~1e-6 px
        torch.testing.assert_close(out[i, 0][inside], expected[inside], rtol=0, atol=5e-4)


def test_step_with_mixup_memory_on_the_batch_device_is_seeded():
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        learner = BYOL(AudioNTT2020(d=64), 64, proj_hidden=32, proj_dim=16)
        augment = BYOLAugment(n_memory=20, random_state=0)
        optimizer = make_optimizer(learner, 1e-3)
        crops = torch.randn(8, 1, 64, 96, generator=torch.Generator().manual_seed(2))
        losses.append([float(byol_step(learner, optimizer, augment, crops, precision="bf16", channels_last=True))
                       for _ in range(3)])
        assert augment.mixup.memory_.shape[0] == 20 and augment.mixup.memory_.device == crops.device
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_one_command_trains_all_nine_models_tiny_on_cpu(pool_manifest, tmp_path, monkeypatch):
    """The GPU command (``pretrain-shipped --device cuda``) with a tiny recipe, on the CPU."""
    recipe = {key: value for key, value in TINY.items() if key != "device"}
    monkeypatch.setattr(shipped_module, "SHIPPED_RECIPE", {**recipe, "epochs": 1, "precision": "bf16",
                                                           "channels_last": True})
    assert main(["pretrain-shipped", str(pool_manifest), "-o", str(tmp_path / "weights"), "--work",
                 str(tmp_path / "work"), "--device", "cpu", "-q"]) == 0
    curves = pd.read_csv(tmp_path / "weights" / "loss_curves.csv")
    assert len(curves) == len(SHIPPED_DOMAINS) * len(SHIPPED_SEEDS) and curves["loss"].between(0, 8).all()
    for domain in SHIPPED_DOMAINS:
        for seed in SHIPPED_SEEDS:
            info = json.loads((tmp_path / "weights" / domain / f"seed{seed}.json").read_text())
            assert (info["domain"], info["seed"], info["config"]["precision"], info["device"]) == (
                domain, seed, "bf16", "cpu")
