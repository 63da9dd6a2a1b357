"""Manifest reading and `audioprobe corpus check`: every problem reported at once, one line each."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from synth import tone, write_corpus

from audioprobe.cli import main
from audioprobe.errors import ManifestError
from audioprobe.manifest import as_clip_table, check_manifest, read_manifest


def test_clean_manifest_passes(tmp_path):
    manifest = write_corpus(tmp_path, n=6)
    assert check_manifest(manifest) == []
    df = read_manifest(manifest)
    assert df["audio_path"].map(lambda p: p.startswith(str(tmp_path.resolve()))).all()
    assert main(["-q", "corpus", "check", str(manifest)]) == 0


def test_every_problem_is_reported_once_with_clip_and_file(tmp_path, capsys):
    manifest = write_corpus(tmp_path, n=9)
    df = pd.read_csv(manifest, dtype=str)
    (tmp_path / df.loc[0, "path"]).unlink()                                   # missing file
    (tmp_path / df.loc[1, "path"]).write_bytes(b"not audio at all" * 50)     # corrupt bytes
    (tmp_path / df.loc[2, "path"]).write_bytes(b"")                           # empty file
    df.loc[3, "sha256"] = "0" * 64                                            # wrong sha256
    df.loc[4, "sample_rate"] = "44100"                                        # wrong rate
    df.loc[5, "duration_s"] = "2.0"                                           # wrong duration
    sf.write(tmp_path / "clips" / "zero.wav", np.zeros(0, np.float32), 16000)  # zero-length audio (header only)
    df.loc[6, "path"] = "clips/zero.wav"
    df.to_csv(manifest, index=False)

    problems = check_manifest(manifest)
    expected = {"c000": "file not found", "c001": "cannot decode", "c002": "empty file", "c003": "sha256 mismatch",
                "c004": "sample rate", "c005": "duration", "c006": "zero-length"}
    assert len(problems) == len(expected)
    for clip_id, reason in expected.items():
        [line] = [p for p in problems if f"'{clip_id}'" in p]
        assert reason in line and "clips/" in line
    assert main(["-q", "corpus", "check", str(manifest)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == len(expected)


def test_nan_samples_are_a_problem(tmp_path):
    manifest = write_corpus(tmp_path, n=3)
    df = pd.read_csv(manifest, dtype=str)
    path = tmp_path / "clips" / "nan.wav"
    sf.write(path, np.array([0.0, np.nan] * 4000, np.float32), 16000, subtype="FLOAT")
    df.loc[0, "path"] = "clips/nan.wav"
    df.to_csv(manifest, index=False)
    [problem] = check_manifest(manifest)
    assert "'c000'" in problem and "NaN" in problem


def test_structural_problems_are_listed_together(tmp_path):
    manifest = write_corpus(tmp_path, n=4)
    df = pd.read_csv(manifest, dtype=str)
    df.loc[1, "clip_id"] = "c000"                                             # duplicate clip_id
    df.loc[2, "path"] = "/elsewhere/outside.flac"                             # absolute path outside
    df.loc[3, "domain"] = "birdsong"                                          # unknown domain
    df.to_csv(manifest, index=False)
    problems = check_manifest(manifest)
    assert any("duplicate clip_id" in p and "'c000'" in p for p in problems)
    assert any("absolute path" in p and "outside" in p and "/elsewhere/outside.flac" in p for p in problems)
    assert any("birdsong" in p for p in problems)
    with pytest.raises(ManifestError, match="3 problem"):
        read_manifest(manifest)


def test_missing_column_is_named(tmp_path):
    manifest = write_corpus(tmp_path, n=2)
    pd.read_csv(manifest).drop(columns=["group", "sha256"]).to_csv(manifest, index=False)
    [problem] = check_manifest(manifest)
    assert "missing required column" in problem and "'group'" in problem and "'sha256'" in problem


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.csv")


def test_clip_table_from_paths(tmp_path):
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.wav")
        sf.write(paths[-1], tone(), 16000)
    table = as_clip_table(paths)
    assert list(table["clip_id"]) == ["a", "b"] and list(table["group"]) == ["a", "b"]
