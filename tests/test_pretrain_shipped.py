"""The shipped domain models: complete, loadable by name, consistent sidecars, within the size budget."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from audioprobe.manifest import sha256_file
from audioprobe.models.specs import WEIGHTS_DIR, load_model, shipped_models
from audioprobe.pretrain.recipe import SHIPPED_DOMAINS, SHIPPED_RECIPE, SHIPPED_SEEDS
from audioprobe.pretrain.shipped import loss_curves

pytestmark = pytest.mark.skipif(not any(WEIGHTS_DIR.glob("*/seed*.pt")), reason="no shipped weights in this tree")
NAMES = [f"{domain}/seed{seed}" for domain in SHIPPED_DOMAINS for seed in SHIPPED_SEEDS]


def _sidecar(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())


def test_every_domain_and_seed_is_shipped_within_30_mb():
    assert set(NAMES) <= set(shipped_models())
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert total <= 30 * 2 ** 20


def test_sidecars_describe_the_recipe_and_matched_pools():
    sidecars = {name: _sidecar(name) for name in NAMES}
    for name, info in sidecars.items():
        domain, seed = name.split("/")
        assert (info["domain"], f"seed{info['seed']}", info["arch"], info["d"]) == (
            domain, seed, SHIPPED_RECIPE["arch"], SHIPPED_RECIPE["d"])
        assert info["epochs"] == SHIPPED_RECIPE["epochs"] == len(info["loss_per_epoch"])
        assert len(info["loss_per_step"]) == info["steps"]
        assert np.isfinite(info["norm_mean"]) and info["norm_std"] > 0
        assert info["weights_sha256"] == sha256_file(WEIGHTS_DIR / f"{name}.pt")
        assert info["total_audio_s"] == pytest.approx(SHIPPED_RECIPE["total_s"])
    for domain in SHIPPED_DOMAINS:  # seeds of a domain differ only in the seed, not in the audio
        assert len({sidecars[f"{domain}/seed{s}"]["pool_selection_sha256"] for s in SHIPPED_SEEDS}) == 1
    curves = pd.read_csv(WEIGHTS_DIR / "loss_curves.csv")
    pd.testing.assert_frame_equal(curves, loss_curves(), check_exact=False, atol=1e-5)


@pytest.mark.parametrize("name", NAMES[::4])
def test_shipped_model_loads_by_name_and_runs(name):
    loaded = load_model(name)
    info = _sidecar(name)
    assert (loaded.pretrain_domain, loaded.seed, loaded.d, loaded.norm_source) == (
        info["domain"], info["seed"], 512, "sidecar")
    t = np.arange(16000) / 16000
    with torch.no_grad():
        out = loaded.pipeline(torch.from_numpy((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))[None])
    assert out.shape == (1, 512) and torch.isfinite(out).all()
