"""The network blocks that hooked module names stand for, so that the report can say what ``features.3`` ...

``fc.4`` are.

Written from the architectures of :mod:`audioprobe.models.byola` (nttcslab/byol-a, Niizumi et
al. 2021, 2023): a conv block is ``Conv3x3(64)-BatchNorm-ReLU-MaxPool2``, whose output is the
output of its max-pool (``features.3``, ``.7``, ``.11``); the fc layers are hooked after their
ReLU (``fc.1``, ``fc.4``).
"""
from __future__ import annotations

import pandas as pd

__all__ = ["BLOCKS", "block_of", "layer_blocks"]

_CONV = "Conv3x3(64)-BatchNorm-ReLU-MaxPool2"

#: arch (model.json ``arch``) -> module name -> (block, what the hooked output is).
BLOCKS: dict[str, dict[str, tuple[str, str]]] = {
    "byola-v1": {
        "logmel": ("input", "the normalised log-mel spectrogram the network reads"),
        "features.3": ("conv1", f"output of conv block 1 ({_CONV})"),
        "features.7": ("conv2", f"output of conv block 2 ({_CONV})"),
        "features.11": ("conv3", f"output of conv block 3 ({_CONV})"),
        "fc.1": ("fc1", "first fully connected layer, Linear(512, d)-ReLU"),
        "fc.4": ("fc2", "second fully connected layer, Linear(d, d)-ReLU"),
    },
    "byola-v2": {
        "logmel": ("input", "the normalised log-mel spectrogram the network reads"),
        "features.3": ("conv1", f"output of conv block 1 ({_CONV})"),
        "features.7": ("conv2", f"output of conv block 2 ({_CONV})"),
        "fc.1": ("fc1", "first fully connected layer, Linear(1024, 2048)-ReLU"),
        "fc.4": ("fc2", "second fully connected layer, Linear(2048, d - 1024)-ReLU"),
    },
}


def block_of(arch: str | None, layer: str) -> tuple[str, str] | None:
    """``(block, description)`` of a hooked module of a known architecture, else None.

    Examples
    --------
    >>> block_of("byola-v1", "features.7")[0]
    'conv2'
    >>> block_of("my-net", "layer3") is None
    True
    """
    return BLOCKS.get(str(arch), {}).get(str(layer))


def layer_blocks(models: dict[str, dict], layers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (architecture, layer) of the run's models.

    ``arch``, ``layer`` (module name), ``layer_index``, ``block``, ``description``, ``pooling``, ``pooled_width``,
    ``models`` (how many).

    Parameters
    ----------
    models : dict of str to dict
        ``model.json`` of every model (:attr:`RunTables.models`).
    layers : dict of str to pd.DataFrame
        ``layers.csv`` of every model.

    Returns
    -------
    pd.DataFrame
        Block and description are ``"not known"`` for an architecture or module this module does not
        describe (never guessed).
    """
    rows = []
    for name, info in models.items():
        arch = str(info.get("arch"))
        for row in layers[name].itertuples(index=False):
            known = block_of(arch, row.layer)
            rows.append({"arch": arch, "layer": str(row.layer), "layer_index": int(row.layer_index),
                         "block": known[0] if known else "not known",
                         "description": known[1] if known else "not known",
                         "pooling": getattr(row, "pooling", None), "pooled_width": getattr(row, "pooled_width", None),
                         "model": name})
    columns = ["arch", "layer", "layer_index", "block", "description", "pooling", "pooled_width", "models"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    keys = ["arch", "layer", "layer_index", "block", "description", "pooling", "pooled_width"]
    table = table.groupby(keys, dropna=False, sort=False)["model"].nunique().rename("models").reset_index()
    return table.sort_values(["arch", "layer_index"], kind="stable").reset_index(drop=True)[columns]
