"""Hooks and pooling on a tiny network whose weights are set by hand, so every activation is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from audioprobe.errors import AudioprobeError, ParameterError
from audioprobe.models.hooks import LayerHooks
from audioprobe.models.pooling import Layout, infer_layout, pool, pooled_width

CONV = Layout(ndim=4, time_axis=3, freq_axis=2)   # (B, C, F, T)
SEQ = Layout(ndim=3, time_axis=1, freq_axis=None)  # (B, T, D)


class Tiny(nn.Module):
    """conv 1x1: channel 0 = x, channel 1 = 0.5 - x; relu (in place); sum over F -> (B, T, 2); linear swaps + 1."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, 0.5]))
            self.fc.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
            self.fc.bias.fill_(1.0)

    def forward(self, x):
        h = self.relu(self.conv(x))           # (B, 2, F, T)
        return self.fc(h.sum(dim=2).transpose(1, 2))  # (B, T, 2)


# one clip, F = 2 rows, T = 3 frames
X = torch.tensor([[[[1.0, -1.0, 2.0], [0.0, 3.0, -2.0]]]])
# conv channel 0 = x, channel 1 = 0.5 - x (before relu)
CONV0 = np.array([[1.0, -1.0, 2.0], [0.0, 3.0, -2.0]])
CONV1 = 0.5 - CONV0


def _hooks(net, pooling="mean", layers=("conv", "fc")):
    layouts = {"conv": CONV, "relu": CONV, "fc": SEQ}
    return LayerHooks(net, {name: layouts[name] for name in layers}, pooling=pooling)


def test_mean_pooling_known_values():
    net = Tiny()
    with _hooks(net) as hooks:
        net(torch.cat([X, 2 * X]))
        rows = hooks.pop(batch_size=2)
    # conv (C=2, F=2) pooled over T, unit c * F + f; stored BEFORE the in-place relu changed the tensor
    expected_conv = np.array([CONV0[0].mean(), CONV0[1].mean(), CONV1[0].mean(), CONV1[1].mean()])
    np.testing.assert_allclose(rows["conv"][0], expected_conv, rtol=1e-6)
    np.testing.assert_allclose(rows["conv"][1], [2 * CONV0[0].mean(), 2 * CONV0[1].mean(),
                                                 (0.5 - 2 * CONV0[0]).mean(), (0.5 - 2 * CONV0[1]).mean()], rtol=1e-6)
    # fc: relu'd channels summed over F, then swapped, + 1
    s0 = np.maximum(CONV0, 0).sum(0)   # [1, 3, 2]
    s1 = np.maximum(CONV1, 0).sum(0)   # [0.5, 1.5, 2.5]
    np.testing.assert_allclose(rows["fc"][0], [s1.mean() + 1, s0.mean() + 1], rtol=1e-6)
    assert rows["fc"][0].tolist() == pytest.approx([2.5, 3.0])
    assert rows["conv"].dtype == np.float32 and rows["conv"].shape == (2, 4)


@pytest.mark.parametrize("method, expected", [
    ("meanmax", [CONV0[0].mean() + 2, CONV0[1].mean() + 3, CONV1[0].mean() + 1.5, CONV1[1].mean() + 2.5]),
    ("tf-mean", [CONV0.mean(), CONV1.mean()]),
    ("none", np.concatenate([CONV0.ravel(), CONV1.ravel()])),
])
def test_other_poolings_known_values(method, expected):
    net = Tiny()
    with _hooks(net, pooling=method, layers=("conv",)) as hooks:
        net(X)
        rows = hooks.pop(batch_size=1)
    np.testing.assert_allclose(rows["conv"][0], expected, rtol=1e-6)
    assert pooled_width((1, 2, 2, 3), CONV, method) == len(expected)


def test_tf_mean_without_frequency_axis_is_time_mean():
    x = torch.arange(12.0).reshape(1, 3, 4)
    np.testing.assert_allclose(pool(x, SEQ, "tf-mean"), pool(x, SEQ, "mean"))
    np.testing.assert_allclose(pool(x, SEQ, "mean")[0], [4.0, 5.0, 6.0, 7.0])


def test_infer_layout():
    assert infer_layout((1, 64, 32, 50), (1, 64, 32, 100)) == Layout(4, 3, 2)
    assert infer_layout((1, 12, 512), (1, 25, 512)) == Layout(3, 1, None)
    assert infer_layout((1, 512), (1, 512)) == Layout(2, None, None)
    with pytest.raises(ParameterError, match="more than one axis"):
        infer_layout((1, 10, 10), (1, 20, 20))


def test_mode_grad_and_handles_restored_even_on_error():
    net = Tiny().train()
    with pytest.raises(RuntimeError):
        with _hooks(net) as hooks:
            assert not net.training and not torch.is_grad_enabled()
            assert net.conv._forward_hooks and net.fc._forward_hooks
            net(torch.zeros(1, 3, 2, 3))  # wrong channel count -> conv raises
    assert net.training and torch.is_grad_enabled()
    assert not net.conv._forward_hooks and not net.fc._forward_hooks and not hooks._store


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ParameterError,
                       match=r"unknown layer name\(s\) \['nope'\]; valid names: \['conv', 'relu', 'fc'\]"):
        LayerHooks(Tiny(), {"nope": CONV})


def test_batch_size_and_call_count_checked():
    net = Tiny()
    with _hooks(net) as hooks:
        net(X)
        with pytest.raises(AudioprobeError, match="returned 1 rows for a batch of 2"):
            hooks.pop(batch_size=2)
        net(X)
        net(X)
        with pytest.raises(AudioprobeError, match="ran 2 times"):
            hooks.pop(batch_size=1)


def test_bad_pooling_named():
    with pytest.raises(ParameterError, match="pooling of layer 'conv' must be one of"):
        LayerHooks(Tiny(), {"conv": CONV}, pooling="median")


# --- modules called more than once per forward pass (issue 18, item 5) ---

def test_shared_relu_each_call_is_its_own_layer():
    """torchvision-BasicBlock-style: one nn.ReLU after conv1 and after conv2 + skip; each call known by hand."""
    from handed_nets import BasicBlockNet

    net = BasicBlockNet()
    one = Layout(ndim=4, time_axis=3, freq_axis=2)
    with LayerHooks(net, {"relu#0": one, "conv2": one, "relu#1": one}) as hooks:
        net(X)
        rows = hooks.pop(batch_size=1)
    # relu#0 = [relu(x), relu(-x)]; conv2 = relu(x) + relu(-x) - 0.5 = |x| - 0.5; relu#1 = relu(|x| - 0.5 + x)
    np.testing.assert_allclose(rows["relu#0"][0], [1.0, 1.0, 1 / 3, 2 / 3], rtol=1e-6)   # rows [1,-1,2], [0,3,-2]
    np.testing.assert_allclose(rows["conv2"][0], [4 / 3 - 0.5, 5 / 3 - 0.5], rtol=1e-6)
    np.testing.assert_allclose(rows["relu#1"][0], [(1.5 + 0 + 3.5) / 3, (0 + 5.5 + 0) / 3], rtol=1e-6)
    # the plain name of a module that runs twice is refused, with the call names to use
    with LayerHooks(net, {"relu": one}) as hooks:
        net(X)
        with pytest.raises(AudioprobeError, match=r"'relu' ran 2 times.*relu#0 \.\.\. relu#1"):
            hooks.pop(batch_size=1)


def test_weight_tied_block_in_a_loop_each_call_known():
    """One Linear+ReLU block applied three times: (a, b) -> (relu(2a - 1), relu(1 - b)) per step."""
    from handed_nets import TiedLoopNet

    net = TiedLoopNet()
    x = torch.tensor([[[[2.0, 1.0], [3.0, 0.5]]]])  # band 0 (a) = [2, 1], band 1 (b) = [3, 0.5] over T = 2
    layers = ["block#0", "block.0#0", "block#1", "block#2", "block.0#2"]
    with LayerHooks(net, {name: SEQ for name in layers}) as hooks:
        net(x)
        rows = hooks.pop(batch_size=1)
        net(2 * x)  # call counting restarts with every forward pass
        again = hooks.pop(batch_size=1)
    # step 1: a [3, 1], b pre-relu [-2, 0.5] -> [0, 0.5]; step 2: a [5, 1], b [1, 0.5]; step 3: a [9, 1], b [0, 0.5]
    expected = {"block.0#0": [2.0, -0.75], "block#0": [2.0, 0.25], "block#1": [3.0, 0.75],
                "block.0#2": [5.0, 0.25], "block#2": [5.0, 0.25]}
    for name, values in expected.items():
        np.testing.assert_allclose(rows[name][0], values, rtol=1e-6, err_msg=name)
    # 2x: a [4, 2] -> [7, 3] -> [13, 5] -> [25, 9]; b [6, 1] -> [0, 0] -> [1, 1] -> [0, 0]
    np.testing.assert_allclose(again["block#2"][0], [17.0, 0.0], rtol=1e-6)


def test_call_of_a_module_that_does_not_run_that_often():
    from handed_nets import BasicBlockNet

    net = BasicBlockNet()
    with LayerHooks(net, {"relu#2": CONV}) as hooks:
        net(X)
        with pytest.raises(AudioprobeError, match="'relu#2' ran 0 times"):
            hooks.pop(batch_size=1)


# --- encoders that fold frames into the batch axis (issue 18, item 6) ---

FRAMES = Layout(ndim=3, time_axis=1, freq_axis=None, frames_folded=True)   # (B, N, D) after unfolding


def test_frame_folded_layers_are_unfolded_clip_major_and_pooled_over_frames():
    """CREPE-style: 8-sample frames at a hop of 4 -> 3 frames per 16-sample clip, rows clip-major."""
    from handed_nets import FrameNet

    net = FrameNet()
    wave = torch.stack([torch.arange(16.0), torch.arange(16.0).flip(0)])  # clip 1 = clip 0 reversed
    layouts = {"frame_fc": FRAMES, "relu": FRAMES, "clip_mean": Layout(ndim=2, time_axis=None, freq_axis=None)}
    with LayerHooks(net, layouts, pooling={"frame_fc": "meanmax", "relu": "mean", "clip_mean": "mean"}) as hooks:
        net(wave)
        rows = hooks.pop(batch_size=2)
    # frame_fc = [frame mean, y0 - y1]: clip 0 frames 0-7, 4-11, 8-15 -> means 3.5, 7.5, 11.5 and -1;
    # clip 1 -> means 11.5, 7.5, 3.5 and +1. meanmax = mean + max over the 3 frames.
    np.testing.assert_allclose(rows["frame_fc"], [[7.5 + 11.5, -2.0], [7.5 + 11.5, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(rows["relu"], [[7.5, 0.0], [7.5, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(rows["clip_mean"], [[7.5, 0.0], [7.5, 1.0]], rtol=1e-6)  # a clip-level layer


def test_declared_frames_are_checked():
    from handed_nets import FrameNet

    net = FrameNet()
    with LayerHooks(net, {"relu": FRAMES}, frames_per_clip=lambda n: 2), \
            pytest.raises(AudioprobeError, match=r"'relu' returned 6 rows for a batch of 2 clips of 2 frames"):
        net(torch.zeros(2, 16))
    with pytest.raises(ParameterError, match="no frames_per_clip"):
        LayerHooks(Tiny(), {"fc": FRAMES})


def test_unfolded_batch_axis_without_declaration_names_the_fix():
    from handed_nets import FrameNet

    net = FrameNet()
    with LayerHooks(net, {"relu": Layout(ndim=2, time_axis=None, freq_axis=None)}) as hooks:
        net(torch.zeros(1, 16))
        with pytest.raises(AudioprobeError, match="returned 3 rows for a batch of 1.*frames_per_clip"):
            hooks.pop(batch_size=1)
