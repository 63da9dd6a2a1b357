"""Each dataset adapter on a tiny fake tree in the dataset's real layout, with synthesized audio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audioprobe.cli import main
from audioprobe.errors import ManifestError, ParameterError
from audioprobe.manifest import check_manifest, read_manifest
from audioprobe.corpora.adapters import from_dataset

SR = 8000


def _tone(path: Path, seed: int, *, seconds: float = 0.25, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * (200 + 37 * seed) * t)  # a distinct tone per file: distinct sha256
    sf.write(str(path), y, SR, format=fmt)


def _check(tmp_path: Path, kind: str, root: Path) -> pd.DataFrame:
    out = tmp_path / "manifests" / f"{kind}.csv"
    assert main(["-q", "corpus", "from-dataset", kind, str(root), "-o", str(out)]) == 0
    assert check_manifest(out) == []
    table = read_manifest(out)
    assert not any(p.startswith("/") for p in table["path"])
    assert table["path"].str.startswith("../").all()  # relative to the manifest's folder
    assert set(table["sample_rate"]) == {SR}
    assert np.allclose(table["duration_s"], 0.25)
    return table


def test_librispeech(tmp_path):
    root = tmp_path / "LibriSpeech"
    (root).mkdir()
    (root / "SPEAKERS.TXT").write_text(
        "; Some comment\n;ID  |SEX| SUBSET           |MINUTES| NAME\n"
        "19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n"
        "84   | M | dev-clean        |  8.02 | Christie Nowak\n")
    k = 0
    for subset, speaker, chapter in [("train-clean-100", "19", "198"), ("train-clean-100", "19", "227"),
                                     ("dev-clean", "84", "121123")]:
        for utt in range(2):
            _tone(root / subset / speaker / chapter / f"{speaker}-{chapter}-{utt:04d}.flac", k)
            k += 1
        (root / subset / speaker / chapter / f"{speaker}-{chapter}.trans.txt").write_text("0000 HELLO\n")
    table = _check(tmp_path, "librispeech", tmp_path)  # the parent of LibriSpeech/ works too
    assert len(table) == 6 and set(table["domain"]) == {"speech"}
    assert table.set_index("clip_id").loc["19-227-0001", "group"] == "19"
    assert table.groupby("group")["split"].agg(set).to_dict() == {"19": {"train-clean-100"}, "84": {"dev-clean"}}
    assert table.groupby("group")["sex"].first().to_dict() == {"19": "F", "84": "M"}


@pytest.mark.parametrize("version", ["0.80", "0.92"])
def test_vctk(tmp_path, version):
    root = tmp_path / "VCTK-Corpus"
    if version == "0.80":
        (root).mkdir()
        (root / "speaker-info.txt").write_text("ID  AGE  GENDER  ACCENTS  REGION\n"
                                               "225  23  F    English    Southern  England\n"
                                               "226  22  M    English    Surrey\n")
        files = [root / "wav48" / f"p{s}" / f"p{s}_{u:03d}.wav" for s in (225, 226) for u in (1, 2)]
    else:
        (root).mkdir()
        (root / "speaker-info.txt").write_text("ID  AGE  GENDER  ACCENTS  REGION COMMENTS\n"
                                               "p225  23  F    English    Southern  England\n"
                                               "p226  22  M    English    Surrey\n")
        files = [root / "wav48_silence_trimmed" / f"p{s}" / f"p{s}_{u:03d}_{mic}.flac"
                 for s in (225, 226) for u in (1, 2) for mic in ("mic1", "mic2")]
    for k, f in enumerate(files):
        _tone(f, k)
    table = _check(tmp_path, "vctk", root)
    assert len(table) == 4  # 0.92: mic2 copies of the same utterances are left out
    assert set(table["domain"]) == {"speech"} and set(table["split"]) == {"all"}
    assert sorted(table["group"].unique()) == ["p225", "p226"]
    assert table.groupby("group")["gender"].first().to_dict() == {"p225": "F", "p226": "M"}


def test_esc50(tmp_path):
    root = tmp_path / "ESC-50-master"
    rows = [("1-100032-A-0.wav", 1, 0, "dog", True, 100032, "A"),
            ("1-100032-B-0.wav", 1, 0, "dog", True, 100032, "B"),
            ("2-109505-A-21.wav", 2, 21, "sneezing", False, 109505, "A"),
            ("5-9032-A-20.wav", 5, 20, "crying_baby", True, 9032, "A")]
    meta = pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    (root / "meta").mkdir(parents=True)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    for k, r in enumerate(rows):
        _tone(root / "audio" / r[0], k)
    table = _check(tmp_path, "esc50", root).set_index("clip_id")
    assert set(table["domain"]) == {"environmental"}
    assert table.loc["1-100032-B-0", "group"] == table.loc["1-100032-A-0", "group"] == "100032"
    assert table["split"].to_dict() == {"1-100032-A-0": "fold1", "1-100032-B-0": "fold1",
                                        "2-109505-A-21": "fold2", "5-9032-A-20": "fold5"}
    assert table.loc["5-9032-A-20", "label"] == "crying_baby"


def test_urbansound8k(tmp_path):
    root = tmp_path / "UrbanSound8K"
    rows = [("100032-3-0-0.wav", 100032, 0.0, 0.3, 1, 5, 3, "dog_bark"),
            ("100263-2-0-117.wav", 100263, 58.5, 62.5, 1, 5, 2, "children_playing"),
            ("100263-2-0-121.wav", 100263, 60.5, 64.5, 1, 5, 2, "children_playing"),
            ("108041-9-0-4.wav", 108041, 2.0, 6.0, 1, 9, 9, "street_music")]
    meta = pd.DataFrame(rows, columns=["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID",
                                       "class"])
    (root / "metadata").mkdir(parents=True)
    meta.to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    for k, r in enumerate(rows):
        _tone(root / "audio" / f"fold{r[5]}" / r[0], k)
    table = _check(tmp_path, "urbansound8k", root).set_index("clip_id")
    assert table["domain"].to_dict() == {"100032-3-0-0": "environmental", "100263-2-0-117": "environmental",
                                         "100263-2-0-121": "environmental", "108041-9-0-4": "music"}
    assert table.loc["100263-2-0-117", "group"] == table.loc["100263-2-0-121", "group"] == "100263"
    assert table.loc["108041-9-0-4", "split"] == "fold9" and table.loc["100032-3-0-0", "fold"] == 5


def test_fsd50k(tmp_path):
    root = tmp_path / "FSD50K"
    dev = pd.DataFrame({"fname": ["64760", "16399", "21200", "999"],
                        "labels": ["Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music",
                                   "Male_speech_and_man_speaking,Speech,Human_voice",
                                   "Dog,Domestic_animals_and_pets,Animal",
                                   "Singing,Music,Speech,Human_voice"],
                        "mids": ["/m/02sgy,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf", "/m/05zppz,/m/09x0r,/m/09l8g",
                                 "/m/0bt9lr,/m/068hy,/m/0jbk", "/m/015lz1,/m/04rlf,/m/09x0r,/m/09l8g"],
                        "split": ["train", "train", "val", "train"]})
    ev = pd.DataFrame({"fname": ["37199"], "labels": ["Rain,Water"], "mids": ["/m/06mb1,/m/0838f"]})
    (root / "FSD50K.ground_truth").mkdir(parents=True)
    dev.to_csv(root / "FSD50K.ground_truth" / "dev.csv", index=False)
    ev.to_csv(root / "FSD50K.ground_truth" / "eval.csv", index=False)
    (root / "FSD50K.metadata").mkdir()
    (root / "FSD50K.metadata" / "dev_clips_info_FSD50K.json").write_text(json.dumps({
        "64760": {"uploader": "alice", "license": "http://creativecommons.org/licenses/by/3.0/"},
        "16399": {"uploader": "alice", "license": "http://creativecommons.org/publicdomain/zero/1.0/"},
        "21200": {"uploader": "bob", "license": "http://creativecommons.org/licenses/by/3.0/"}}))
    for k, f in enumerate(dev["fname"]):
        _tone(root / "FSD50K.dev_audio" / f"{f}.wav", k)
    _tone(root / "FSD50K.eval_audio" / "37199.wav", 9)
    table = _check(tmp_path, "fsd50k", root).set_index("clip_id")
    assert table["domain"].to_dict() == {"dev_64760": "music", "dev_16399": "speech", "dev_21200": "environmental",
                                         "eval_37199": "environmental"}  # 999 (speech and music) is left out
    assert table["split"].to_dict() == {"dev_64760": "train", "dev_16399": "train", "dev_21200": "val",
                                        "eval_37199": "eval"}
    assert table.loc["dev_64760", "group"] == table.loc["dev_16399", "group"] == "alice"
    assert table.loc["eval_37199", "group"] == "37199"  # no eval metadata: the clip is its own group
    assert table.loc["dev_16399", "license"].endswith("zero/1.0/")


def test_folders(tmp_path):
    root = tmp_path / "mine"
    _tone(root / "speech" / "alice" / "a1.wav", 0)
    _tone(root / "speech" / "alice" / "a2.wav", 1)
    _tone(root / "speech" / "bob" / "sub" / "b1.flac", 2, fmt="FLAC")
    _tone(root / "music" / "piano.ogg", 3, fmt="OGG")
    _tone(root / "environmental" / "rain" / "r1.wav", 4)
    (root / "notes").mkdir()
    (root / "speech" / "alice" / "readme.txt").write_text("not audio")
    out = tmp_path / "m.csv"
    table = from_dataset("folders", root, out).set_index("clip_id")
    assert check_manifest(out) == []
    assert table["domain"].value_counts().to_dict() == {"speech": 3, "music": 1, "environmental": 1}
    assert table["group"].to_dict() == {"environmental/rain/r1": "environmental/rain", "music/piano": "music/piano",
                                        "speech/alice/a1": "speech/alice", "speech/alice/a2": "speech/alice",
                                        "speech/bob/sub/b1": "speech/bob"}
    assert table.loc["speech/bob/sub/b1", "path"] == "mine/speech/bob/sub/b1.flac"


def test_wrong_layout_and_kind_are_named(tmp_path):
    with pytest.raises(ManifestError, match="meta/esc50.csv"):
        from_dataset("esc50", tmp_path, tmp_path / "x.csv")
    with pytest.raises(ParameterError, match="kind must be one of"):
        from_dataset("timit", tmp_path, tmp_path / "x.csv")
    with pytest.raises(ManifestError, match="domain folders"):
        from_dataset("folders", tmp_path, tmp_path / "x.csv")


def test_missing_files_are_left_out(tmp_path):
    root = tmp_path / "ESC-50"
    meta = pd.DataFrame([("a.wav", 1, 0, "dog", True, 1, "A"), ("b.wav", 2, 0, "dog", True, 2, "A")],
                        columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    (root / "meta").mkdir(parents=True)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    _tone(root / "audio" / "a.wav", 0)
    table = from_dataset("esc50", root, tmp_path / "x.csv")
    assert table["clip_id"].tolist() == ["a"]
