"""The log-mel front end against librosa, and BYOL-A's encoders against an independent computation."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audioprobe.errors import ParameterError
from audioprobe.models.byola import AudioNTT2020, AudioNTT2022
from audioprobe.models.frontend import BYOLA_V1_NORM, LogMelFrontend, Normalize
from audioprobe.models.specs import load_model

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "weights" / "AudioNTT2020-BYOLA-64x96d512.pth"
SR = 16000


def signal(seconds: float = 1.3) -> np.ndarray:
    """A fixed test signal: two tones, a glide and a little noise."""
    t = np.arange(int(SR * seconds)) / SR
    rng = np.random.default_rng(0)
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1900 * t)
         + 0.2 * np.sin(2 * np.pi * (200 * t + 900 * t ** 2)) + 0.02 * rng.standard_normal(len(t)))
    return y.astype(np.float32)


def librosa_mel(y: np.ndarray) -> np.ndarray:
    return librosa.feature.melspectrogram(y=y.astype(np.float64), sr=SR, n_fft=1024, hop_length=160,
                                          win_length=1024, window="hann", center=True, pad_mode="reflect",
                                          power=2.0, n_mels=64, fmin=60, fmax=7800, htk=True, norm=None)


def test_mel_power_equals_librosa():
    y = signal()
    ours = LogMelFrontend().mel_power(torch.from_numpy(y)[None])[0].numpy()
    ref = librosa_mel(y)
    assert ours.shape == ref.shape == (64, 1 + len(y) // 160)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * ref.max())
    # relative error of every bin with real energy (the quiet top bands included)
    big = ref > 1e-6 * ref.max()
    assert np.max(np.abs(ours[big] - ref[big]) / ref[big]) < 1e-4


def test_log_and_normalisation():
    y = signal(0.5)
    x = LogMelFrontend()(torch.from_numpy(y)[None])
    assert x.shape == (1, 1, 64, 51)
    np.testing.assert_allclose(x[0, 0].numpy(), np.log(librosa_mel(y) + np.finfo(np.float32).eps), rtol=1e-5,
                               atol=1e-4)
    z = Normalize()(x)
    np.testing.assert_allclose(z.numpy(), (x.numpy() - BYOLA_V1_NORM[0]) / BYOLA_V1_NORM[1], rtol=1e-6)
    with pytest.raises(ParameterError, match="std > 0"):
        Normalize(0.0, 0.0)
    with pytest.raises(ParameterError, match="waveform must have shape"):
        LogMelFrontend()(torch.zeros(16000))


def test_v1_v2_official_parameter_names_and_shapes():
    v1 = AudioNTT2020(1024)
    assert [k for k in v1.state_dict() if not k.endswith("num_batches_tracked")][:2] == ["features.0.weight",
                                                                                      "features.0.bias"]
    assert {k.rsplit(".", 1)[0] for k in v1.state_dict()} == {
        "features.0", "features.1", "features.4", "features.5", "features.8", "features.9", "fc.0", "fc.3"}
    x = torch.randn(2, 1, 64, 96)
    assert v1.eval().frames(x).shape == (2, 12, 1024) and v1(x).shape == (2, 1024)
    v2 = AudioNTT2022().eval()
    assert {k.rsplit(".", 1)[0] for k in v2.state_dict()} == {"features.0", "features.1", "features.4",
                                                              "features.5", "fc.0", "fc.3"}
    frames = v2.frames(x)
    assert frames.shape == (2, 24, 3072)
    # frame output = concat(conv features, fc features); the embedding is mean + max over time
    np.testing.assert_allclose(v2(x).detach(), (frames.mean(1) + frames.amax(1)).detach(), rtol=1e-6)
    with pytest.raises(ParameterError, match=r"input must have shape \(batch, 1, 64, frames\)"):
        v1(torch.randn(2, 64, 96))


def _reference_embedding(state: dict, y: np.ndarray) -> np.ndarray:
    """BYOL-A v1 applied step by step with torch.nn.functional to librosa's log-mel (float64)."""
    lms = np.log(librosa_mel(y) + np.finfo(np.float32).eps)
    x = torch.from_numpy((lms - BYOLA_V1_NORM[0]) / BYOLA_V1_NORM[1])[None, None]
    s = {k: v.double() for k, v in state.items()}
    for conv, bn in (("features.0", "features.1"), ("features.4", "features.5"), ("features.8", "features.9")):
        x = F.conv2d(x, s[f"{conv}.weight"], s[f"{conv}.bias"], padding=1)
        x = F.batch_norm(x, s[f"{bn}.running_mean"], s[f"{bn}.running_var"], s[f"{bn}.weight"], s[f"{bn}.bias"],
                         training=False, eps=1e-5)
        x = F.max_pool2d(F.relu(x), 2)
    b, c, f, t = x.shape
    x = x.permute(0, 3, 2, 1).reshape(b, t, f * c)
    x = F.relu(F.linear(x, s["fc.0.weight"], s["fc.0.bias"]))
    x = F.relu(F.linear(x, s["fc.3.weight"], s["fc.3.bias"]))
    return (x.mean(1) + x.amax(1))[0].numpy()


@pytest.mark.skipif(not OFFICIAL.is_file(), reason="official BYOL-A weights (../shared/weights) absent")
def test_official_weights_load_strictly_and_embed_as_reference():
    state = torch.load(OFFICIAL, map_location="cpu", weights_only=True)
    model = load_model(f"byola-v1:{OFFICIAL}")
    assert model.d == 512 and model.pretrain_domain == "mixed" and model.norm_source == "published-v1"
    y = signal()
    with torch.no_grad():
        ours = model.pipeline(torch.from_numpy(y)[None])[0].numpy()
    ref = _reference_embedding(state, y)
    assert np.count_nonzero(ref) > 100
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
