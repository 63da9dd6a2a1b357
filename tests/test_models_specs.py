"""Model specs, shipped-checkpoint format, refusal of pickled code, layer listing and receptive fields."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audioprobe.cli import main
from audioprobe.errors import AudioprobeError, ParameterError
from audioprobe.models.layers import describe_layers
from audioprobe.models.specs import load_model, shipped_models


def _embed(model, seconds=1.0):
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal(int(16000 * seconds)).astype(np.float32))
    with torch.no_grad():
        return model.pipeline(0.1 * wave[None])[0].numpy()


def test_random_control_is_seeded():
    a, b, c = (load_model("byola-v1:random", random_state=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(_embed(a), _embed(b))
    assert not np.allclose(_embed(a), _embed(c))
    assert a.metadata() | {"name": None} == {
        "name": None, "spec": "byola-v1:random", "arch": "byola-v1", "d": 512, "pretrain_domain": "none", "seed": 3,
        "control": "random-weights", "checkpoint_sha256": None, "norm_mean": -5.4919195, "norm_std": 5.0389895,
        "norm_source": "published-v1"}
    assert a.name == "byola-v1-random-seed3"
    assert load_model("byola-v2:random").d == 3072


def test_shipped_checkpoint_format(tmp_path):
    source = load_model("byola-v1:random", random_state=7)
    (tmp_path / "speech").mkdir()
    torch.save(source.pipeline.encoder.state_dict(), tmp_path / "speech" / "seed2.pt")
    sidecar = {"arch": "byola-v1", "d": 512, "norm_mean": -4.0, "norm_std": 4.5, "domain": "speech", "seed": 2,
               "epochs": 3, "pool_manifest_sha256": "ab" * 32, "loss_per_epoch": [1.0, 0.5, 0.4], "wall_time_s": 9.0}
    (tmp_path / "speech" / "seed2.json").write_text(json.dumps(sidecar))
    (tmp_path / "music").mkdir()
    torch.save({}, tmp_path / "music" / "seed0.pt")  # no sidecar: not a shipped model
    assert shipped_models(weights_dir=tmp_path) == ["speech/seed2"]
    model = load_model("speech/seed2", weights_dir=tmp_path)
    assert (model.name, model.pretrain_domain, model.seed, model.control, model.norm_source) == (
        "speech-seed2", "speech", 2, None, "sidecar")
    assert (model.norm_mean, model.norm_std) == (-4.0, 4.5)
    for key, value in source.pipeline.encoder.state_dict().items():
        torch.testing.assert_close(model.pipeline.encoder.state_dict()[key], value, rtol=0, atol=0)
    # the same file by path, with the caller's norm stats
    by_path = load_model(f"byola-v1:{tmp_path / 'speech' / 'seed2.pt'}", norm_mean=-5.0, norm_std=5.0)
    assert by_path.norm_source == "user" and len(by_path.checkpoint_sha256) == 64
    with pytest.raises(ParameterError, match=r"no shipped model 'speech/seed9'.*shipped models: \['speech/seed2'\]"):
        load_model("speech/seed9", weights_dir=tmp_path)
    with pytest.raises(ParameterError, match="sidecar .* says 'byola-v1'"):
        load_model(f"byola-v2:{tmp_path / 'speech' / 'seed2.pt'}")


def test_bad_checkpoints_refused(tmp_path):
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)
    with pytest.raises(AudioprobeError, match=r"pickled\.pth.*needs pickled code"):
        load_model(f"byola-v1:{pickled}")
    wrong = tmp_path / "wrong.pth"
    torch.save(load_model("byola-v2:random").pipeline.encoder.state_dict(), wrong)
    with pytest.raises(AudioprobeError, match="does not match AudioNTT2020"):
        load_model(f"byola-v1:{wrong}")
    with pytest.raises(ParameterError, match="does not exist"):
        load_model(f"byola-v1:{tmp_path / 'absent.pth'}")
    with pytest.raises(ParameterError, match="not understood"):
        load_model("resnet50")


def test_module_spec_with_checkpoint(tmp_path):
    ckpt = tmp_path / "enc.pt"
    reference = load_model("byola-v1:random", random_state=5)
    torch.save(reference.pipeline.encoder.state_dict(), ckpt)
    model = load_model(f"module:audioprobe.models.byola:AudioNTT2020:{ckpt}")
    assert model.arch == "module:audioprobe.models.byola:AudioNTT2020" and model.d == 512
    np.testing.assert_array_equal(_embed(model), _embed(reference))
    with pytest.raises(ParameterError, match="cannot import"):
        load_model("module:audioprobe.models.byola:Nope")


def test_layers_table_and_receptive_fields():
    table = describe_layers(load_model("byola-v1:random").pipeline)
    assert list(table["layer"][:5]) == ["logmel", "features.0", "features.1", "features.2", "features.3"]
    assert list(table["layer_index"]) == list(range(18))
    row = table.set_index("layer")
    assert row.loc["features.0", "output_shape"] == "64x64x101" and row.loc["fc.4", "output_shape"] == "12x512"
    assert row.loc["features.3", "pooled_width"] == 64 * 32 and row.loc["fc.4", "pooled_width"] == 512
    # the receptive field recurrence r += (k - 1) * jump, jump *= stride, in frames of 10 ms + a 64 ms window
    frames = {"features.0": 3, "features.3": 4, "features.4": 8, "features.7": 10, "features.8": 18,
              "features.11": 22, "fc.4": 22}
    for name, n in frames.items():
        assert row.loc[name, "receptive_field_ms"] == pytest.approx(((n - 1) * 160 + 1024) / 16)
    # in frequency: a 3x3 conv at the centre band spans 3 mel bands; the fc layers see the whole 60-7800 Hz band
    import librosa
    edges = librosa.mel_frequencies(n_mels=66, fmin=60, fmax=7800, htk=True)
    assert row.loc["features.0", "receptive_field_hz"] == pytest.approx(edges[33 + 2] - edges[31])
    assert row.loc["fc.1", "receptive_field_hz"] == pytest.approx(7740.0)
    assert row.loc["logmel", "receptive_field_ms"] == 64.0


def test_layers_cli(capsys):
    assert main(["layers", "byola-v1:random", "--pooling", "tf-mean"]) == 0
    out = capsys.readouterr().out
    assert "features.11" in out and "MaxPool2d" in out and "64x8x12" in out
    line = next(line for line in out.splitlines() if line.split()[1:2] == ["features.3"])
    assert line.split()[4] == "64"  # tf-mean keeps the channels
