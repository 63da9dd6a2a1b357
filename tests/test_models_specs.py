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


def test_layers_lists_each_call_of_a_reused_module(capsys):
    """Issue 18 item 5: one nn.ReLU used after two convs; `audioprobe layers` failed ("do not run exactly once")."""
    table = describe_layers(load_model("module:handed_nets:basic_block").pipeline)
    assert table[["layer", "layer_index", "kind"]].values.tolist() == [
        ["logmel", 0, "input"], ["conv1", 1, "Conv2d"], ["relu#0", 2, "ReLU"], ["conv2", 3, "Conv2d"],
        ["relu#1", 4, "ReLU"]]
    assert not table["frames_folded"].any()
    assert main(["layers", "module:handed_nets:basic_block"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()[2:]] == ["logmel", "conv1", "relu#0", "conv2", "relu#1"]
    pipeline = load_model("module:handed_nets:basic_block").pipeline
    with pytest.raises(AudioprobeError, match=r"'relu': relu runs 2 times per forward pass, name one call: "
                                              r"relu#0, relu#1"):
        describe_layers(pipeline, layers=["relu"])
    with pytest.raises(AudioprobeError, match=r"'relu#2': relu runs 2 times.*'conv1#0': conv1 runs once"):
        describe_layers(pipeline, layers=["relu#2", "conv1#0"])
    with pytest.raises(ParameterError, match=r"unknown layer name\(s\) \['relux#0'\]"):
        describe_layers(pipeline, layers=["relux#0"])


def test_weight_tied_loop_layers_in_forward_order_of_calls():
    pipeline = load_model("module:handed_nets:tied_loop").pipeline
    table = describe_layers(pipeline)
    assert list(table["layer"]) == ["logmel", "block.0#0", "block.1#0", "block.0#1", "block.1#1", "block.0#2",
                                    "block.1#2"]
    assert list(table["layer_index"]) == list(range(7))
    # a container call shares the number of its last leaf call; rows come in forward order
    table = describe_layers(pipeline, layers=["block.0#2", "block#1", "block.1#0"])
    assert table[["layer", "layer_index", "output_shape"]].values.tolist() == [
        ["block.1#0", 2, "101x2"], ["block#1", 4, "101x2"], ["block.0#2", 5, "101x2"]]


def test_layers_of_frame_folding_encoders(capsys):
    """Issue 18 item 6: layers of encoders that fold frames (CREPE-style) or patches (VGGish-style) into the batch."""
    frames = describe_layers(load_model("module:handed_nets:frame_net").pipeline).set_index("layer")
    # 1 s = 16000 samples -> 1 + (16000 - 8) // 4 = 3999 frames of 8 samples, the frames are the time axis
    assert frames.loc["frame_fc", "output_shape"] == "3999x2" and frames.loc["frame_fc", "time_axis"] == 1
    assert frames.loc["frame_fc", "pooled_width"] == 2 and bool(frames.loc["relu", "frames_folded"])
    assert frames.loc["frame_fc", "receptive_field_ms"] == pytest.approx(1000 * 8 / 16000)  # one frame
    assert frames.loc["clip_mean", "output_shape"] == "2" and not frames.loc["clip_mean", "frames_folded"]
    assert frames.loc["clip_mean", "pooling"] == "none"
    patches = describe_layers(load_model("module:handed_nets:patch_net").pipeline).set_index("layer")
    # 1 s = 101 log-mel frames -> one 96-frame patch of (1, 64, 96)
    assert patches.loc["conv", "output_shape"] == "1x1x64x96" and patches.loc["conv", "time_axis"] == 1
    assert patches.loc["conv", "pooled_width"] == 64 * 96 and bool(patches.loc["patch_mean", "frames_folded"])
    assert patches.loc["conv", "receptive_field_ms"] == pytest.approx((95 * 160 + 1024) / 16)
    assert main(["layers", "module:handed_nets:frame_net"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert next(line for line in out if " frame_fc " in line).split()[-2:] == ["0.5", "NaN"]
    assert out[-1] == ("frames folded into the batch axis (frames_per_clip), unfolded and pooled over frames: "
                       "['frame_fc', 'relu']")


def test_batch_axis_that_is_not_the_batch_names_the_fix():
    """The handed pitch network without a declaration: refused before any clip, naming frames_per_clip."""
    with pytest.raises(AudioprobeError, match=r"layer 'frame_fc' returned 7999 rows for one clip of 2 s: its first "
                                              r"axis is not the batch\. .*frames_per_clip\(n_samples\)"):
        describe_layers(load_model("module:handed_nets:undeclared_frame_net").pipeline)
    from handed_nets import BasicBlockNet

    from audioprobe.models.pipeline import Pipeline

    wrong_input = Pipeline(BasicBlockNet(), norm_mean=0.0, norm_std=1.0, input_kind="waveform")
    with pytest.raises(AudioprobeError, match=r"the encoder fails on a random input of shape \(1, 32000\) .*"
                                              r"input_kind 'waveform'"):
        describe_layers(wrong_input)


def test_domain_and_seed_only_fill_in_what_a_checkpoint_does_not_record(tmp_path, capsys):
    """Issue 12: `extract speech/seed0 ... --domain nonspeech` relabelled a shipped speech model without a word."""
    encoder = load_model("byola-v1:random", random_state=1).pipeline.encoder
    (tmp_path / "speech").mkdir()
    torch.save(encoder.state_dict(), tmp_path / "speech" / "seed2.pt")
    (tmp_path / "speech" / "seed2.json").write_text(json.dumps({"arch": "byola-v1", "domain": "speech", "seed": 2}))
    with pytest.raises(ParameterError, match=r"pretrain_domain='nonspeech' \(--domain\) contradicts the sidecar "
                                             r".*seed2\.json', which records pretrain_domain='speech'"):
        load_model("speech/seed2", weights_dir=tmp_path, pretrain_domain="nonspeech")
    with pytest.raises(ParameterError, match=r"seed=0 \(--seed\) contradicts .* records seed=2"):
        load_model("speech/seed2", weights_dir=tmp_path, seed=0)
    agreeing = load_model("speech/seed2", weights_dir=tmp_path, pretrain_domain="speech", seed=2)
    assert (agreeing.pretrain_domain, agreeing.seed) == ("speech", 2)
    # a checkpoint without a sidecar: the options fill in
    bare = tmp_path / "bare.pth"
    torch.save(encoder.state_dict(), bare)
    filled = load_model(f"byola-v1:{bare}", pretrain_domain="nonspeech", seed=4)
    assert (filled.pretrain_domain, filled.seed) == ("nonspeech", 4)
    # a sidecar with a domain but no seed: the seed fills in, the domain must agree
    (tmp_path / "bare.json").write_text(json.dumps({"domain": "mixed"}))
    partial = load_model(f"byola-v1:{bare}", seed=4)
    assert (partial.pretrain_domain, partial.seed) == ("mixed", 4)
    with pytest.raises(ParameterError, match="'speech'.*'mixed'"):
        load_model(f"byola-v1:{bare}", pretrain_domain="speech")
    # module checkpoints read their sidecar too; random weights are domain none
    module = load_model(f"module:audioprobe.models.byola:AudioNTT2020:{bare}")
    assert (module.pretrain_domain, module.seed) == ("mixed", None)
    with pytest.raises(ParameterError, match="'nonspeech'.*'mixed'"):
        load_model(f"module:audioprobe.models.byola:AudioNTT2020:{bare}", pretrain_domain="nonspeech")
    with pytest.raises(ParameterError, match=r"pretrain_domain='speech' \(--domain\) contradicts the random-weight "
                                             "control"):
        load_model("byola-v1:random", pretrain_domain="speech")
    assert load_model("module:handed_nets:basic_block", pretrain_domain="speech").pretrain_domain == "speech"


def test_domain_contradicting_a_shipped_model_is_a_cli_error(tmp_path, capsys):
    if "speech/seed0" not in shipped_models():
        pytest.skip("shipped model speech/seed0 absent")
    assert main(["extract", "speech/seed0", "-o", str(tmp_path / "run"), "--domain", "nonspeech"]) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err
    assert "pretrain_domain='nonspeech' (--domain)" in err and "pretrain_domain='speech'" in err
