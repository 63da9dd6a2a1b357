"""extract_features and ``audioprobe features``: files, sample-rate invariance, failures, resume/skip."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audioprobe.cli import main
from audioprobe.features import COUNT_COLUMNS, extract_features
from audioprobe.runstore import Run


def _tone(sr: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.3 * sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in range(1, 6))


@pytest.fixture()
def corpus(tmp_path):
    """Three good clips at 16 / 22.05 / 44.1 kHz of the same sound, one file with NaN samples, a manifest."""
    folder = tmp_path / "clips"
    folder.mkdir()
    rows = []
    for i, sr in enumerate((16000, 22050, 44100)):
        sf.write(folder / f"tone{sr}.wav", _tone(sr), sr, subtype="FLOAT")
        rows.append((f"tone{sr}", f"clips/tone{sr}.wav", sr))
    bad = _tone(16000)
    bad[10] = np.nan
    sf.write(folder / "bad.wav", bad, 16000, subtype="FLOAT")
    rows.append(("bad", "clips/bad.wav", 16000))
    manifest = pd.DataFrame({"clip_id": [r[0] for r in rows], "path": [r[1] for r in rows], "domain": "music",
                             "dataset": "synth", "group": [r[0] for r in rows], "split": "test", "license": "CC0",
                             "source": "test", "sample_rate": [r[2] for r in rows], "duration_s": 1.0,
                             "sha256": "0" * 64})
    path = tmp_path / "manifest.csv"
    manifest.to_csv(path, index=False)
    return path


def test_f0_and_centroid_do_not_depend_on_the_file_rate(corpus):
    """The same sound stored at 16 / 22.05 / 44.1 kHz gives F0 and centroid within 1 %; the NaN file fails."""
    table = extract_features(corpus, descriptors=["f0_median", "centroid_median", "rms_median_dbfs"], n_jobs=1)
    assert list(table["clip_id"]) == ["tone16000", "tone22050", "tone44100"]
    for name in ("f0_median", "centroid_median"):
        values = table[name].to_numpy()
        assert np.max(values) / np.min(values) < 1.01, name
    assert table["f0_median"].iloc[0] == pytest.approx(220.0, rel=0.003)
    assert table[list(COUNT_COLUMNS)].dtypes.map(lambda d: d == np.int64).all()


def test_cli_writes_the_run_folder_and_skips_a_complete_stage(corpus, tmp_path):
    run_dir = tmp_path / "run"
    argv = ["features", str(corpus), "-o", str(run_dir), "--descriptors", "amplitude", "f0_median", "-j", "2", "-q"]
    assert main(argv) == 0
    run = Run(run_dir)
    features = run.read_table("features.parquet")
    assert list(features.columns) == ["clip_id", "f0_median", "rms_median_dbfs", "rms_p10_dbfs", "rms_p90_dbfs",
                                      "dynamic_range_db", *COUNT_COLUMNS]
    assert features["rms_median_dbfs"].dtype == np.float64 and len(features) == 3
    meta = run.read_table("features_meta.csv")
    assert list(meta.columns) == ["name", "unit", "family", "extractor", "probe_scale", "parameters"]
    # every descriptor column has exactly one meta row, with a unit of the documented list; counts have none
    descriptor_columns = [c for c in features.columns if c != "clip_id" and c not in COUNT_COLUMNS]
    assert sorted(meta["name"]) == sorted(descriptor_columns) and meta["name"].is_unique
    assert set(meta["unit"]) <= {"Hz", "st", "st/s", "fraction", "dB", "dBFS", "dB/oct", "a.u.", "cyc/oct", "1/s"}
    assert set(meta["probe_scale"]) <= {"log", "linear"}
    assert json.loads(meta.set_index("name").loc["f0_median", "parameters"])["f0_ceiling"] == 2000.0
    failures = run.read_table("failures.csv")
    assert list(failures["clip_id"]) == ["bad"] and "NaN" in failures["message"].iloc[0]
    assert len(run.clips()) == 4
    record = run.info["stages"]["features"]
    assert record["status"] == "complete" and record["summary"]["n_failed"] == 1
    assert record["seeds"] == {}  # no descriptor is random: no seed is recorded
    # the clip-set hash (manifest.table_sha256) is the one earlier run folders recorded: they resume
    clips = run.clips()[["clip_id", "audio_path"]].astype(str).to_csv(index=False)
    assert record["inputs"]["clips_sha256"] == hashlib.sha256(clips.encode()).hexdigest()
    assert not (run_dir / "partial" / "features").exists()
    finished = record["finished"]
    assert main(argv) == 0  # same settings: skipped, nothing recomputed
    assert Run(run_dir).info["stages"]["features"]["finished"] == finished
    assert main([*argv[:-3], "--pitch", "pyin", "-j", "1", "-q"]) == 0  # new settings: recomputed
    assert Run(run_dir).info["stages"]["features"]["config"]["analysis"]["pitch"] == "pyin"


def test_cli_rejects_an_unknown_descriptor(corpus, tmp_path):
    assert main(["features", str(corpus), "-o", str(tmp_path / "r"), "--descriptors", "loudness", "-q"]) == 2
