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
from audioprobe.probes.cka import cka_from_grams, gram_linear
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
    ids = [f"c{i:03d}" for i in range(n_clips)]
    clips = pd.DataFrame({"clip_id": ids, "path": [f"{c}.flac" for c in ids], "domain": domains, "dataset": "synthetic",
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
            arr = zarr.open_array(str(folder / f"{layer}.zarr"), mode="w", shape=values.shape,
                                  chunks=(16, values.shape[1]), dtype="float32")
            arr[:] = values.astype(np.float32)
            rows.append({"layer": layer, "layer_index": index, "kind": "synthetic",
                         "output_shape": str(values.shape[1]), "pooling": "mean", "pooled_width": values.shape[1],
                         "receptive_field_ms": np.nan, "receptive_field_hz": np.nan, "file": f"{layer}.zarr"})
        pd.DataFrame(rows).to_csv(folder / "layers.csv", index=False)
    return run


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run") / "run")
    table = run_probes(run, probes=("ridge", "rsa", "cka", "partition", "transfer"), cv=4, n_permutations=99,
                       n_bootstraps=50, random_state=1)
    return run, table


def test_round_trip_follows_the_contract(probed):
    run, table = probed
    assert list(table.columns) == COLUMNS
    stored = run.read_table("probes.parquet")
    pd.testing.assert_frame_equal(stored, table)
    assert str(stored["fold"].dtype) == "Int64" and str(stored["seed"].dtype) == "Int64"
    assert set(stored["probe"]) == {"ridge", "rsa", "cka", "partition", "transfer"}
    keys = ["model", "layer", "feature", "probe", "metric", "fold", "train_domain", "eval_domain", "model_b",
            "layer_b"]
    assert not stored.duplicated(keys).any()
    record = run.info["stages"]["probe"]
    assert record["status"] == "complete" and record["config"]["cv"] == 4
    assert record["summary"]["n_layers"] == 6
    speech = stored[stored["model"] == "m-speech"]
    assert set(speech["pretrain_domain"]) == {"speech"} and set(speech["seed"].dropna()) == {0}


def _one(table, **where):
    """The single row of ``table`` matching ``column=value`` conditions (``fold=None``: pooled)."""
    mask = np.ones(len(table), dtype=bool)
    for col, value in where.items():
        mask &= table[col].isna().to_numpy() if value is None else (table[col] == value).fillna(False).to_numpy()
    assert mask.sum() == 1, where
    return table[mask].iloc[0]


def test_planted_layer_is_found_by_every_probe(probed):
    _, table = probed
    for model in ("m-speech", "m-random"):
        ridge = dict(model=model, feature="centroid_median", probe="ridge", metric="r2_pooled", eval_domain="all")
        assert _one(table, layer="enc", **ridge)["value"] > 0.9
        assert _one(table, layer="logmel", **ridge)["value"] < 0.2
        rsa = _one(table, model=model, layer="enc", feature="centroid_median", probe="rsa")
        assert rsa["p_value"] == pytest.approx(0.01) and rsa["ci_low"] < rsa["value"] < rsa["ci_high"]
        unique = _one(table, model=model, layer="enc", feature="spectral_shape", metric="unique_r2", fold=None)
        assert unique["value"] > 0.5
        cka = _one(table, model=model, layer="enc", feature="descriptors", metric="debiased_linear_cka")
        assert cka["value"] > _one(table, model=model, layer="logmel", feature="descriptors",
                                   metric="debiased_linear_cka")["value"]
    pairs = table[table["layer_b"].notna()]
    assert len(pairs) == 15 * 2  # 6 layers -> 15 pairs, plain and debiased
    assert _one(pairs, model="m-speech", layer="enc", model_b="m-speech", layer_b="fc",
                metric="linear_cka")["value"] > 0.5
    assert set(table.query("probe == 'transfer'")["train_domain"]) == {"speech", "music", "environmental"}


def test_layer_pair_cka_equals_the_cka_of_each_pair(probed):
    """Each layer's Gram matrix is centred once for all its pairs: the values equal cka_from_grams of the pair.

    Layer enc of m-speech lacks clip c005, so its pairs take the path over the clips both layers have.
    """
    run, table = probed
    pairs = table[table["layer_b"].notna()]
    assert len(pairs) == 30

    def layer(model, name):
        return zarr.open_array(str(run.file(f"activations/{model}/{name}.zarr")), mode="r")[:].astype(np.float64)

    for row in pairs.itertuples():
        X, Y = layer(row.model, row.layer), layer(row.model_b, row.layer_b)
        ok = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Y), axis=1)
        expected = cka_from_grams(gram_linear(X[ok]), gram_linear(Y[ok]), debiased=row.metric == "debiased_linear_cka")
        assert row.value == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert row.n_clips == ok.sum() == (47 if "m-speech/enc" in (f"{row.model}/{row.layer}",
                                                                   f"{row.model_b}/{row.layer_b}") else 48)


def test_missing_values_and_out_of_fold_predictions(probed):
    run, table = probed
    ridge = table.query("probe == 'ridge' and eval_domain == 'all'").set_index(["model", "layer", "feature", "metric"])
    # f0 is NaN on the 16 environmental clips and clip c000 has no features; m-speech enc lost clip c005 (NaN row)
    assert ridge.loc[("m-random", "enc", "f0_median", "n_dropped"), "value"] == 17
    assert ridge.loc[("m-speech", "enc", "f0_median", "n_dropped"), "value"] == 16
    assert ridge.loc[("m-speech", "enc", "centroid_median", "r2_pooled"), "n_clips"] == 46
    oof = run.read_table("oof.parquet")
    assert list(oof.columns) == ["model", "layer", "feature", "clip_id", "group", "domain", "fold", "y_true",
                                 "y_pred"]
    one = oof.query("model == 'm-random' and layer == 'fc' and feature == 'centroid_median'")
    r2 = 1 - ((one.y_true - one.y_pred) ** 2).sum() / ((one.y_true - one.y_true.mean()) ** 2).sum()
    assert r2 == pytest.approx(ridge.loc[("m-random", "fc", "centroid_median", "r2_pooled"), "value"], abs=1e-12)
    features = run.read_table("features.parquet").set_index("clip_id")
    np.testing.assert_allclose(one.y_true, np.log(features.loc[one.clip_id, "centroid_median"]))  # log probe scale
    assert one.groupby("group")["fold"].nunique().max() == 1


def test_complete_stage_is_skipped_and_layers_are_streamed(tmp_path, monkeypatch):
    from audioprobe.probes import driver

    run = make_run(tmp_path / "run")
    reads = []
    real = driver.read_layer
    monkeypatch.setattr(driver, "read_layer", lambda *a: reads.append(a[1]["layer"]) or real(*a))
    first = run_probes(run, probes=("ridge",), cv=3, layers=["enc", "fc"], n_jobs=1)  # in this process: counted
    assert sorted(reads) == ["enc", "enc", "fc", "fc"]  # each layer of each model read once
    assert set(first["layer"]) == {"enc", "fc"}
    again = run_probes(run, probes=("ridge",), cv=3, layers=["enc", "fc"], n_jobs=1)
    assert len(reads) == 4
    pd.testing.assert_frame_equal(first, again)
    processes = run_probes(run, probes=("ridge",), cv=3, layers=["enc", "fc"], n_jobs=2, force=True)
    assert len(reads) == 4  # read by the worker processes
    pd.testing.assert_frame_equal(first, processes)


def test_cli_and_refusals(tmp_path):
    run = make_run(tmp_path / "run", models=("solo",), n_groups=3)
    assert main(["probe", str(run.path), "--probes", "ridge", "--cv", "3", "-q"]) == 0
    assert run.exists("probes.parquet") and run.exists("oof.parquet")
    assert main(["probe", str(run.path), "--probes", "ridge", "rsa", "--cv", "4", "--permutations", "9", "-q"]) == 2
    with pytest.raises(ParameterError, match="cv=4 folds need at least 4 distinct groups, got 3"):
        run_probes(run, probes=("ridge",), cv=4)
    with pytest.raises(ParameterError, match="probes must be a non-empty selection"):
        run_probes(run, probes=("lasso",))
    with pytest.raises(ParameterError, match="have no activations"):
        run_probes(run, models=["other"])
