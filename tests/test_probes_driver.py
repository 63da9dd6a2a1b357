"""The probe stage end to end on small synthetic run folders written per docs/run-folder.md."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.probes import COLUMNS, run_probes
from audioprobe.runstore import Run

N_CLIPS = 48
DESCRIPTORS = [("f0_median", "pitch", "log"), ("centroid_median", "spectral_shape", "log"),
               ("flatness_median", "spectral_shape", "linear"), ("rms_median", "amplitude", "linear")]


def make_run(path, *, n_clips=N_CLIPS, n_groups=12, models=("m-speech", "m-random"), seed=0) -> Run:
    """A run folder: clips, features (F0 NaN on a third of the clips), two models of three layers each.

    Layer ``enc`` of every model encodes log centroid linearly (plus noise); layer ``logmel`` is noise;
    ``fc`` is a ReLU of a random projection of ``enc``. One clip of the first model failed extraction.
    """
    rng = np.random.default_rng(seed)
    run = Run(path)
    domains = np.array(["speech", "music", "environmental"])[np.arange(n_clips) % 3]
    clips = pd.DataFrame({"clip_id": [f"c{i:03d}" for i in range(n_clips)], "path": [f"c{i}.flac" for i in range(n_clips)],
                          "domain": domains, "dataset": "synthetic",
                          "group": [f"g{i % n_groups}" for i in range(n_clips)], "split": "all"})
    run.write_clips(clips)
    centroid = np.exp(rng.uniform(np.log(300), np.log(4000), n_clips))
    f0 = np.exp(rng.uniform(np.log(80), np.log(800), n_clips))
    f0[domains == "environmental"] = np.nan
    features = pd.DataFrame({"clip_id": clips["clip_id"], "f0_median": f0, "centroid_median": centroid,
                             "flatness_median": rng.uniform(0, 1, n_clips), "rms_median": rng.normal(-20, 5, n_clips),
                             "n_frames": 200, "n_nonsilent_frames": 200, "n_voiced_frames": 100})
    run.write_table("features.parquet", features.iloc[1:])  # clip c000 failed feature extraction
    meta = pd.DataFrame([{"name": n, "unit": "Hz", "family": fam, "extractor": "synthetic", "probe_scale": scale,
                          "parameters": "{}"} for n, fam, scale in DESCRIPTORS])
    run.write_table("features_meta.csv", meta)
    for k, name in enumerate(models):
        folder = run.file(f"activations/{name}")
        folder.mkdir(parents=True)
        json.dump({"name": name, "spec": "synthetic", "arch": "none", "d": 8,
                   "pretrain_domain": "speech" if "speech" in name else "none", "seed": None if "random" in name else k,
                   "control": None, "checkpoint_sha256": None}, open(folder / "model.json", "w"))
        z = (np.log(centroid) - np.log(centroid).mean()) / np.log(centroid).std()
        enc = np.outer(z, rng.normal(size=16)) + 0.5 * rng.normal(size=(n_clips, 16))
        layers = {"logmel": rng.normal(size=(n_clips, 12)), "enc": enc,
                  "fc": np.maximum(enc @ rng.normal(size=(16, 24)), 0)}
        if k == 0:
            layers["enc"][5] = np.nan
        rows = []
        for index, (layer, values) in enumerate(layers.items()):
            arr = zarr.open_array(str(folder / f"{layer}.zarr"), mode="w", shape=values.shape, chunks=(16, values.shape[1]),
                                  dtype="float32")
            arr[:] = values.astype(np.float32)
            rows.append({"layer": layer, "layer_index": index, "kind": "synthetic", "output_shape": str(values.shape[1]),
                         "pooling": "mean", "pooled_width": values.shape[1], "receptive_field_ms": np.nan,
                         "receptive_field_hz": np.nan, "file": f"{layer}.zarr"})
        pd.DataFrame(rows).to_csv(folder / "layers.csv", index=False)
    return run
