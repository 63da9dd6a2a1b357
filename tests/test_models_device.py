"""models.device.resolve_device: the one device resolution of extraction (and, later, pretraining)."""
from __future__ import annotations

import pytest
import torch

from audioprobe.errors import ParameterError
from audioprobe.models.device import resolve_device


def test_auto_is_the_local_cuda_device_or_the_cpu():
    expected = torch.device("cuda:1") if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto", local_rank=1) == expected


def test_cpu_and_an_indexed_cuda_device_are_parsed():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_an_unknown_device_is_refused_naming_it(device):
    with pytest.raises(ParameterError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch sees no CUDA")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(ParameterError, match="torch sees no CUDA device"):
        resolve_device("cuda")
