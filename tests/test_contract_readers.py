"""The shared run-folder readers and hashes: contract.read_layer (row selection), model_order,
all_fold_scores, manifest.table_sha256 and sha256_file, checked against direct computations."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import zarr

from audioprobe.contract import all_fold_scores, model_order, read_layer, zarr_store
from audioprobe.errors import ParameterError
from audioprobe.manifest import manifest_sha256, sha256_file, table_sha256


@pytest.fixture
def layer(tmp_path):
    values = np.arange(15, dtype=np.float32).reshape(5, 3)
    array = zarr.open_array(str(tmp_path / "a.zarr"), mode="w", shape=values.shape, chunks=(2, 3), dtype="float32")
    array[:] = values
    return {"folder": str(tmp_path), "name": "m"}, {"layer": "a", "file": "a.zarr"}, values


def test_read_layer_reads_all_rows_or_the_selected_rows_in_their_order(layer):
    model, row, values = layer
    full = read_layer(model, row, 5)
    assert full.dtype == np.float64 and np.array_equal(full, values)
    np.testing.assert_array_equal(read_layer(model, row, 5, rows=[4, 0, 2]), values[[4, 0, 2]])


def test_read_layer_refuses_rows_outside_the_clips_and_a_wrong_clip_count(layer):
    model, row, _ = layer
    with pytest.raises(ParameterError, match=r"rows must lie in \[0, 5\)"):
        read_layer(model, row, 5, rows=[0, 5])
    with pytest.raises(ParameterError, match=r"expected \(6, n_units\)"):
        read_layer(model, row, 6)


def test_read_layer_falls_back_to_the_layer_name_and_names_a_missing_array(layer):
    model, _, values = layer
    assert np.array_equal(read_layer(model, {"layer": "a", "file": float("nan")}, 5), values)
    with pytest.raises(ParameterError, match="b.zarr' is missing"):
        read_layer(model, {"layer": "b"}, 5)


def test_model_order_is_domain_then_seed_then_name():
    table = pd.DataFrame({"model": ["n10", "ctrl", "s2", "s10", "mixed0", "odd"],
                          "pretrain_domain": ["nonspeech", "none", "speech", "speech", "mixed", "other"],
                          "seed": [10, pd.NA, 2, 10, 0, 0]})
    assert model_order(table) == ["s2", "s10", "n10", "mixed0", "ctrl", "odd"]


def test_all_fold_scores_keep_the_pooled_rows_over_all_domains_only():
    probes = pd.DataFrame({"probe": ["ridge"] * 5 + ["rsa"], "metric": ["r2_pooled"] * 4 + ["r2", "r2_pooled"],
                           "fold": pd.array([pd.NA, pd.NA, pd.NA, 0, pd.NA, pd.NA], dtype="Int64"),
                           "train_domain": ["all", "all", "speech", "all", "all", "all"],
                           "eval_domain": ["all", "music", "all", "all", "all", "all"],
                           "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    assert all_fold_scores(probes)["value"].tolist() == [1.0]


def test_table_sha256_is_the_sha256_of_the_csv_text():
    table = pd.DataFrame({"clip_id": ["a", "b"], "audio_path": ["x.wav", "y.wav"], "other": [1, 2]})
    expected = hashlib.sha256(b"clip_id,audio_path\na,x.wav\nb,y.wav\n").hexdigest()
    assert table_sha256(table, ["clip_id", "audio_path"]) == expected
    assert table_sha256(table, ["clip_id"]) != table_sha256(table.iloc[::-1], ["clip_id"])  # order-sensitive
    assert manifest_sha256(table) == table_sha256(table, ["clip_id"])  # the contract columns present
    with pytest.raises(ParameterError, match=r"columns \['path'\] are not in the table"):
        table_sha256(table, ["path"])


def test_sha256_file_equals_hashlib_on_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f.bin").write_bytes(data)
    assert sha256_file(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()


def test_all_fold_scores_select_one_domain_pair_and_count_na_domains_as_all():
    probes = pd.DataFrame({"probe": ["transfer", "transfer", "rsa"], "metric": ["r2", "r2", "spearman"],
                           "fold": pd.array([pd.NA] * 3, dtype="Int64"),
                           "train_domain": pd.array(["speech", "music", pd.NA], dtype="string"),
                           "eval_domain": pd.array(["music", "music", pd.NA], dtype="string"),
                           "value": [1.0, 2.0, 3.0]})
    assert all_fold_scores(probes, probe="transfer", metric="r2", train_domain="speech",
                           eval_domain="music")["value"].tolist() == [1.0]
    assert all_fold_scores(probes, probe="rsa", metric="spearman")["value"].tolist() == [3.0]


@pytest.mark.parametrize("name", ["relu#0", "block.1#2", "odd?name"])
def test_layer_names_with_url_characters_are_literal_folder_names(tmp_path, name):
    """zarr >= 3.4 parses a string path as a URL (``relu#0`` -> ``relu``): arrays go through a literal store."""
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    array = zarr.open_array(store=zarr_store(tmp_path / f"{name}.zarr"), mode="w", shape=(3, 2), chunks=(2, 2),
                            dtype="float32")
    array[:] = values
    assert (tmp_path / f"{name}.zarr").is_dir() and [p.name for p in tmp_path.iterdir()] == [f"{name}.zarr"]
    model = {"name": "m", "folder": str(tmp_path)}
    np.testing.assert_array_equal(read_layer(model, {"layer": name, "file": f"{name}.zarr"}, 3), values)
