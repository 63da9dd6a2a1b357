"""BYOL-A augmentations: shapes kept, seeded, and each one against its known answer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audioprobe.errors import ParameterError
from audioprobe.pretrain.augment import (
    BYOLAugment,
    MixupMemory,
    RandomLinearFader,
    RandomResizeCrop,
    log_mixup_exp,
    standardize_batch,
)


def _batch(seed: int = 0, batch: int = 5) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 1, 64, 96)).astype(np.float32))


@pytest.mark.parametrize("make", [
    lambda rs: MixupMemory(random_state=rs),
    lambda rs: RandomResizeCrop(random_state=rs),
    lambda rs: RandomLinearFader(random_state=rs),
    lambda rs: BYOLAugment(random_state=rs),
])
def test_shape_kept_and_seeded(make):
    x, memory = _batch(0), _batch(1, batch=7)
    outputs = []
    for seed in (3, 3, 4):
        aug = make(seed)
        mixup = aug.mixup if isinstance(aug, BYOLAugment) else aug
        if isinstance(mixup, MixupMemory):
            mixup.remember(memory)
        outputs.append(aug(x))
    assert all(o.shape == x.shape and o.dtype == torch.float32 for o in outputs)
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])
    assert not torch.allclose(outputs[0], x)


def test_log_mixup_exp_known_values():
    a, b = torch.full((2, 3), np.log(4.0)), torch.full((2, 3), np.log(1.0))
    np.testing.assert_allclose(log_mixup_exp(a, b, 0.25), np.log(0.25 * 4 + 0.75 * 1), rtol=1e-6)
    np.testing.assert_allclose(log_mixup_exp(a, a, 0.3), a, rtol=1e-6)


def test_mixup_uses_only_earlier_examples_and_its_ratio_bound():
    mixup = MixupMemory(ratio=0.4, n_memory=3, random_state=0)
    x = torch.zeros(4, 1, 8, 8)
    assert torch.equal(mixup(x), x)  # empty memory: nothing to mix with
    background = torch.full((2, 1, 8, 8), 2.0)
    mixup.remember(background)
    mixed = mixup(x)
    # per example log((1 - a) + a e^2) with a in [0, 0.4): between 0 and log(0.6 + 0.4 e^2)
    weights = (mixed[:, 0, 0, 0].exp() - 1.0) / (np.e ** 2 - 1.0)
    assert torch.all(weights >= 0) and torch.all(weights < 0.4) and len(set(weights.tolist())) == 4
    assert torch.allclose(mixed, mixed[:, :, :1, :1].expand_as(mixed))  # one weight per example
    mixup.remember(torch.ones(2, 1, 8, 8))
    assert mixup.memory_.shape[0] == 3 and torch.equal(mixup.memory_[0], background[1])  # FIFO
    assert torch.equal(MixupMemory(ratio=0.0, random_state=0)(x), x)


def test_mixup_state_round_trip():
    first = MixupMemory(random_state=0)
    first.remember(_batch(2))
    second = MixupMemory(random_state=0)
    second.load_state_dict(first.state_dict())
    assert torch.equal(first(_batch(0)), second(_batch(0)))


def test_resize_crop_without_scaling_is_identity():
    x = _batch(0)
    crop = RandomResizeCrop(virtual_crop_scale=(1.0, 1.0), freq_scale=(1.0, 1.0), time_scale=(1.0, 1.0),
                            random_state=0)
    # the batch is resampled through grid_sample's normalised coordinates: ~1e-6 px of rounding
    torch.testing.assert_close(crop(x), x, rtol=0, atol=1e-4)


def test_resize_crop_stretches_time():
    # a crop of half the width, resized back, stretches a time ramp by 2 (slope doubles)
    ramp = torch.linspace(0.0, 95.0, 96).expand(1, 1, 64, 96).clone()
    crop = RandomResizeCrop(virtual_crop_scale=(1.0, 1.0), freq_scale=(1.0, 1.0), time_scale=(0.5, 0.5),
                            random_state=0)
    out = crop(ramp)[0, 0, 10]
    slope = np.polyfit(np.arange(96), out.numpy(), 1)[0]
    assert slope == pytest.approx(47.0 / 95.0, rel=1e-3)


def test_fader_adds_a_bounded_linear_ramp_in_time():
    x = _batch(0)
    out = RandomLinearFader(gain=0.7, random_state=1)(x)
    ramp = (out - x)[:, 0]  # (B, F, T)
    assert torch.allclose(ramp, ramp[:, :1, :].expand_as(ramp), atol=1e-6)  # same for every band
    second_difference = ramp[:, 0, 2:] - 2 * ramp[:, 0, 1:-1] + ramp[:, 0, :-2]
    assert second_difference.abs().max() < 1e-5  # linear in time
    assert ramp.abs().max() <= 0.7 + 1e-6
    torch.testing.assert_close(RandomLinearFader(gain=0.0, random_state=1)(x), x)


def test_views_differ_and_memory_grows_after():
    aug = BYOLAugment(random_state=0)
    x = _batch(0)
    v1, v2 = aug.views(x)
    assert v1.shape == v2.shape == x.shape and not torch.allclose(v1, v2)
    assert torch.equal(aug.mixup.memory_, x)


def test_standardize_batch():
    out = standardize_batch(3.0 + 2.0 * _batch(0))
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-5) and float(out.std()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("bad", [torch.zeros(64, 96), torch.zeros(2, 2, 64, 96)])
def test_bad_shape_raises(bad):
    with pytest.raises(ParameterError, match=r"\(batch, 1, n_mels, n_frames\)"):
        BYOLAugment(random_state=0)(bad)


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="ratio"):
        MixupMemory(ratio=1.5)
    with pytest.raises(ParameterError, match="time_scale"):
        RandomResizeCrop(time_scale=(1.5, 0.5))
    with pytest.raises(ParameterError, match="gain"):
        RandomLinearFader(gain=-1)
    with pytest.raises(TypeError, match="SeedSequence expects int"):  # numpy's own check of a seed
        RandomLinearFader(random_state="seed")
