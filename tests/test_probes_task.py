"""The task probe: planted classes, the null, grouped folds, small classes, scikit-learn on the same folds."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import zarr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.probes import COLUMNS, run_probes
from audioprobe.probes.task import TaskProbe
from audioprobe.probes.task_design import (
    TaskSpec,
    parse_task,
    permutation_scheme,
    permute_labels,
    small_classes,
    task_folds,
)
from audioprobe.runstore import Run


def planted(n_groups=30, per_group=3, n_classes=3, n_units=8, separation=4.0, seed=0):
    """Groups of clips with one class each; unit k carries class k (+ separation), all units unit-variance noise."""
    rng = np.random.default_rng(seed)
    group_class = np.arange(n_groups) % n_classes
    groups = np.repeat([f"g{i:02d}" for i in range(n_groups)], per_group)
    y = np.repeat(group_class, per_group)
    X = rng.normal(size=(len(y), n_units))
    X[np.arange(len(y)), y] += separation
    return X, np.array([f"class{k}" for k in y], dtype=object), groups


def test_planted_separable_classes_score_near_one():
    X, y, g = planted()
    probe = TaskProbe(5, Cs=(0.1,), n_permutations=19, random_state=0).fit(X, y, g)
    assert probe.scores_["balanced_accuracy_pooled"] >= 0.95
    assert probe.scores_["macro_f1_pooled"] >= 0.95
    assert probe.scores_["chance"] == pytest.approx(1 / 3)
    assert probe.p_value_ == pytest.approx(1 / 20)  # nothing in the null reaches it
    assert probe.scheme_ == "groups"


def test_shuffled_labels_score_at_chance():
    X, y, g = planted(n_groups=60, per_group=2, separation=0.0)
    scores = [TaskProbe(5, Cs=(0.1,)).fit(X, permute_labels(y, g, "groups", np.random.default_rng(s)), g)
              .scores_["balanced_accuracy_pooled"] for s in range(10)]
    assert abs(np.mean(scores) - 1 / 3) < 0.05  # sd of one score ~0.06 at 120 clips; of the mean ~0.02


@pytest.mark.slow
def test_permutation_p_values_are_calibrated_under_the_null():
    """False-positive rate at alpha 0.05 under a simulated null: with 19 permutations p <= 0.05 means the observed
    score beats all 19; exact under exchangeability up to ties (which make it conservative). 400 null data sets:
    binomial sd of the rate sqrt(0.05 * 0.95 / 400) = 0.011, so [0.03, 0.07] is about +-1.8 sd."""
    rng = np.random.default_rng(12345)
    n_sim, hits = 400, 0
    for s in range(n_sim):
        X, y, g = planted(n_groups=24, per_group=3, n_classes=2, n_units=3, separation=0.0, seed=10_000 + s)
        probe = TaskProbe(3, Cs=(1.0,), n_permutations=19, random_state=rng).fit(X, y, g)
        hits += probe.p_value_ <= 0.05
    assert 0.03 <= hits / n_sim <= 0.07


def test_speaker_task_keeps_chapters_in_one_fold_and_spreads_speakers():
    rng = np.random.default_rng(1)
    speakers = np.repeat([f"spk{s}" for s in range(6)], 12)            # 6 speakers x 4 chapters x 3 utterances
    chapters = np.array([f"{spk}-ch{(i // 3) % 4}" for i, spk in enumerate(speakers)])
    X = rng.normal(size=(len(speakers), 10)) + 3 * np.eye(10)[np.repeat(np.arange(6), 12)]
    probe = TaskProbe(4, Cs=(1.0,)).fit(X, speakers, chapters)
    folds = probe.folds_
    for chapter in np.unique(chapters):
        assert len(np.unique(folds[chapters == chapter])) == 1           # no chapter in train and test
    for f in range(4):
        assert not set(chapters[folds == f]) & set(chapters[folds != f])
    for spk in np.unique(speakers):
        assert len(np.unique(folds[speakers == spk])) == 4               # each speaker's chapters in every fold
    assert probe.scores_["balanced_accuracy_pooled"] > 0.9
    assert not any(k.startswith("fold:") for k in probe.notes_)          # every test speaker was trained on


def test_task_folds_balance_and_are_deterministic():
    y = np.repeat(["a", "b", "c"], [40, 20, 6])
    g = np.array([f"{c}{i // 2}" for i, c in enumerate(y)])
    folds = task_folds(y, g, 5)
    assert np.array_equal(folds, task_folds(y, g, 5))
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 2
    assert all(len(np.unique(folds[y == c])) == min(5, len(np.unique(g[y == c]))) for c in "abc")


def test_too_small_classes_are_reported_and_left_out(caplog):
    X, y, g = planted(n_groups=30, per_group=3)
    y, g = y.copy(), g.copy()
    y[:3], g[:3] = "lonely", "solo"                  # one class with one group: cannot be trained and tested
    y[3:6] = None                                    # unlabelled clips: not part of the task
    with caplog.at_level(logging.INFO, logger="audioprobe"):
        probe = TaskProbe(5, Cs=(1.0,)).fit(X, y, g)
    assert probe.left_out_ == {"lonely": (3, 1)}
    assert "lonely" not in probe.classes_ and probe.used_.sum() == len(y) - 6
    assert "lonely (3 clip(s), 1 group(s))" in caplog.text
    rows = probe.to_frame("t").set_index("metric")
    assert rows.loc["n_left_out", "value"] == 3
    assert "lonely" in rows.loc["n_left_out", "note"]
    assert rows.loc["n_classes", "value"] == 3
    assert small_classes(np.array(["a", "a", "b"]), np.array(["1", "2", "3"])) == {"b": (1, 1)}


def test_fewer_than_two_classes_give_nan_with_a_reason():
    X, _, g = planted()
    probe = TaskProbe(5).fit(X, np.where(np.arange(len(g)) < 3, "x", "y"), np.where(np.arange(len(g)) < 3, "g", g))
    rows = probe.to_frame("t")
    pooled = rows[rows["metric"] == "balanced_accuracy_pooled"].iloc[0]
    assert np.isnan(pooled["value"]) and "fewer than 2 classes" in pooled["note"]


@pytest.mark.parametrize("n_units", [6, 400])  # fewer units than clips, and the Gram-matrix path (more units)
def test_equals_scikit_learn_cross_val_score_on_the_same_folds(n_units):
    X, y, g = planted(n_units=n_units, separation=1.2 if n_units < 50 else 5.0, seed=3)
    X = X * np.linspace(0.5, 3.0, n_units) + 10.0               # units of different scales and a far mean
    C = 0.05
    probe = TaskProbe(5, Cs=(C,), scaling="standard").fit(X, y, g)
    splits = [(np.flatnonzero(probe.folds_ != f), np.flatnonzero(probe.folds_ == f)) for f in range(5)]
    expected = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10_000)),
                               X, y.astype(str), cv=splits, scoring="balanced_accuracy")
    assert np.allclose(probe.scores_["balanced_accuracy"], expected, atol=1e-6)
    assert 0.4 < probe.scores_["balanced_accuracy_pooled"] < 1.0  # neither trivial nor chance


def test_center_scaling_c_is_relative_to_the_mean_unit_variance():
    X, y, g = planted(n_units=300, separation=1.0, seed=4)
    X = 50.0 * X                                              # variance 2500 per unit
    probe = TaskProbe(5, Cs=(0.02,), scaling="center").fit(X, y, g)
    for f in range(5):
        train, test = probe.folds_ != f, probe.folds_ == f
        v = np.mean((X[train] - X[train].mean(axis=0)) ** 2)
        model = LogisticRegression(C=0.02 / v, max_iter=10_000).fit(X[train], y[train].astype(str))
        assert np.array_equal(model.predict(X[test]), probe.y_pred_[test].astype(str))


def test_c_is_chosen_on_the_training_folds():
    X, y, g = planted(n_units=40, separation=1.0, seed=5)
    probe = TaskProbe(5, Cs=(1e-6, 1.0)).fit(X, y, g)
    assert set(probe.C_) == {1.0}  # C = 1e-6 predicts one class: inner balanced accuracy 1/3


def test_permutation_schemes_respect_groups():
    rng = np.random.default_rng(0)
    g = np.repeat(["a", "b", "c", "d"], [2, 3, 1, 4])
    y = np.repeat(["x", "y", "x", "z"], [2, 3, 1, 4]).astype(object)
    assert permutation_scheme(y, g) == "groups"
    for _ in range(20):
        p = permute_labels(y, g, "groups", rng)
        assert all(len(set(p[g == k])) == 1 for k in "abcd")
        assert sorted(p[np.unique(g, return_index=True)[1]]) == sorted(["x", "y", "x", "z"])
    y2 = np.array(["x", "y", "y", "x", "z", "x", "q", "q", "r", "s"], dtype=object)
    assert permutation_scheme(y2, g) == "within-groups"
    p = permute_labels(y2, g, "within-groups", rng)
    assert all(sorted(p[g == k]) == sorted(y2[g == k]) for k in "abcd")


def test_parse_task_and_bad_input():
    assert parse_task("speaker=speaker:chapter") == TaskSpec("speaker", "speaker", "chapter")
    assert parse_task("domain=domain") == TaskSpec("domain", "domain", "group")
    assert parse_task({"name": "a", "column": "b"}) == TaskSpec("a", "b", "group")
    for bad in ("speaker", "=x", "a=", {"name": "a"}, {"name": "a", "column": "b", "x": 1}):
        with pytest.raises(ParameterError, match="task"):
            parse_task(bad)
    X, y, g = planted()
    with pytest.raises(ParameterError, match="Cs"):
        TaskProbe(Cs=(-1,)).fit(X, y, g)
    with pytest.raises(ParameterError, match="cv"):
        TaskProbe(1).fit(X, y, g)
    with pytest.raises(ParameterError, match="one row per clip"):
        TaskProbe().fit(X[:-1], y, g)


# --- the probe stage ------------------------------------------------------------------------------------------

MODELS = [("speech-s0", "speech", 0), ("speech-s1", "speech", 1), ("speech-s2", "speech", 2),
          ("nonspeech-s0", "nonspeech", 0), ("nonspeech-s1", "nonspeech", 1), ("nonspeech-s2", "nonspeech", 2)]


def make_task_run(path, *, n_clips=60, seed=0) -> Run:
    """Clips with a ``kind`` label (3 classes, constant within ``group``) and a ``speaker`` label grouped by
    ``chapter``. Layer ``enc`` encodes ``kind`` (speech models more strongly); layer ``noise`` encodes nothing."""
    rng = np.random.default_rng(seed)
    run = Run(path)
    ids = [f"c{i:03d}" for i in range(n_clips)]
    group = np.array([f"g{i // 2}" for i in range(n_clips)])
    kind = np.array(["a", "b", "c"])[(np.arange(n_clips) // 2) % 3]
    speaker = np.array([f"s{i % 4}" for i in range(n_clips)])
    chapter = np.array([f"s{i % 4}-ch{(i // 4) % 3}" for i in range(n_clips)])
    clips = pd.DataFrame({"clip_id": ids, "path": [f"{c}.flac" for c in ids], "domain": "speech",
                          "dataset": "synthetic", "group": group, "split": "all", "kind": kind, "speaker": speaker,
                          "chapter": chapter, "speaker_group": chapter, "label": ""})
    run.write_clips(clips)
    run.write_table("features.parquet", pd.DataFrame({"clip_id": ids, "rms": rng.normal(size=n_clips)}))
    run.write_table("features_meta.csv", pd.DataFrame([{"name": "rms", "unit": "dB", "family": "amplitude",
                                                        "extractor": "synthetic", "probe_scale": "linear",
                                                        "parameters": "{}"}]))
    onehot = np.eye(3)[np.searchsorted(["a", "b", "c"], kind)]
    for name, domain, s in MODELS:
        folder = run.file(f"activations/{name}")
        folder.mkdir(parents=True)
        json.dump({"name": name, "spec": "synthetic", "arch": "none", "d": 8, "pretrain_domain": domain, "seed": s,
                   "control": None, "checkpoint_sha256": None}, open(folder / "model.json", "w"))
        strength = 3.0 if domain == "speech" else 2.0
        layers = {"noise": rng.normal(size=(n_clips, 6)),
                  "enc": np.hstack([strength * onehot, np.zeros((n_clips, 3))]) + rng.normal(size=(n_clips, 6))}
        rows = []
        for index, (layer, values) in enumerate(layers.items()):
            arr = zarr.open_array(str(folder / f"{layer}.zarr"), mode="w", shape=values.shape,
                                  chunks=(16, values.shape[1]), dtype="float32")
            arr[:] = values.astype(np.float32)
            rows.append({"layer": layer, "layer_index": index, "kind": "synthetic", "output_shape": "6",
                         "pooling": "mean", "pooled_width": 6, "receptive_field_ms": np.nan,
                         "receptive_field_hz": np.nan, "file": f"{layer}.zarr"})
        pd.DataFrame(rows).to_csv(folder / "layers.csv", index=False)
    return run


@pytest.fixture(scope="module")
def task_run(tmp_path_factory):
    run = make_task_run(tmp_path_factory.mktemp("task") / "run")
    table = run_probes(run, probes=("ridge",), tasks=["kind=kind", "speaker=speaker:chapter"], cv=3,
                       n_permutations=9, task_permutations=9, task_cs=(1.0,), random_state=0, n_jobs=1)
    return run, table


def test_stage_writes_task_rows_per_the_contract(task_run):
    run, table = task_run
    assert list(table.columns) == COLUMNS
    rows = table[table["probe"] == "task"]
    assert set(rows["feature"]) == {"kind", "speaker"}
    assert set(rows["metric"]) == {"balanced_accuracy", "macro_f1", "C", "balanced_accuracy_pooled",
                                   "macro_f1_pooled", "chance", "n_classes", "n_left_out"}
    pooled = rows[rows["metric"] == "balanced_accuracy_pooled"]
    assert len(pooled) == len(MODELS) * 2 * 2 and pooled["fold"].isna().all()
    assert pooled["p_value"].between(0.1, 1.0).all()                  # 9 permutations: p >= 1/10
    enc = pooled[(pooled["layer"] == "enc") & (pooled["feature"] == "kind")]
    noise = pooled[(pooled["layer"] == "noise") & (pooled["feature"] == "kind")]
    assert enc["value"].min() > 0.6 and noise["value"].max() < 0.6
    config = run.read_json("run.json")["stages"]["probe"]["config"]
    assert config["tasks"] == [{"name": "kind", "column": "kind", "group": "group"},
                               {"name": "speaker", "column": "speaker", "group": "chapter"}]
    assert "task" in config["probes"]


def test_task_scores_do_not_depend_on_other_tasks(task_run, tmp_path):
    _, table = task_run
    run = make_task_run(tmp_path / "run")
    alone = run_probes(run, probes=("task",), tasks=["kind=kind"], cv=3, n_permutations=9, task_permutations=9,
                       task_cs=(1.0,), random_state=0, n_jobs=1)
    key = ["model", "layer", "feature", "metric", "fold"]
    both = table[(table["probe"] == "task") & (table["feature"] == "kind")].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(alone[alone["probe"] == "task"].sort_values(key).reset_index(drop=True), both)


def test_compare_runs_on_task_scores_unchanged(task_run):
    from audioprobe.analysis.stage import compare_run

    run, _ = task_run
    stats = compare_run(run, unit="seed", probe="task", metric="balanced_accuracy_pooled", n_permutations=100,
                        mixed=False)
    tested = stats[(stats["status"] == "tested") & (stats["layer"] == "enc") & (stats["feature"] == "kind")]
    assert len(tested) >= 1 and (tested["estimate"] > 0).all()       # speech models read out `kind` better
    assert set(stats["probe"]) == {"task"} and set(stats["metric"]) == {"balanced_accuracy_pooled"}


def test_unknown_task_column_is_an_error(tmp_path):
    run = make_task_run(tmp_path / "run", n_clips=24)
    with pytest.raises(ParameterError, match="no column"):
        run_probes(run, tasks=["x=nope"], n_jobs=1)


def test_default_tasks_and_cli(tmp_path):
    run = make_task_run(tmp_path / "run", n_clips=36)
    assert main(["-q", "probe", str(run.path), "--probes", "task", "--cv", "3", "--task-permutations", "0",
                 "--models", "speech-s0"]) == 0
    table = run.read_table("probes.parquet")
    assert set(table["feature"]) == {"speaker"}                       # the default task whose columns exist
    assert main(["-q", "probe", str(run.path), "--probes", "ridge", "--tasks", "kind=kind", "who=speaker:chapter",
                 "--cv", "3", "--task-permutations", "0", "--models", "speech-s0"]) == 0
    table = run.read_table("probes.parquet")
    assert set(table.loc[table["probe"] == "task", "feature"]) == {"kind", "who"}
