"""Each dataset adapter on a tiny fake tree in the dataset's real layout, with synthesized audio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audioprobe.cli import main
from audioprobe.corpora.adapters import from_dataset
from audioprobe.errors import ManifestError, ParameterError
from audioprobe.manifest import check_manifest, read_manifest

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
    row = table.set_index("clip_id").loc["19-227-0001"]
    assert (row["speaker"], row["chapter"], row["speaker_group"]) == ("19", "227", "19-227")


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
    assert sorted(table["utterance"].unique()) == ["001", "002"]
    assert (table["speaker_group"] == table["utterance"]).all()
    assert (table["speaker"] == table["group"]).all()


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
    assert table.loc["dev_64760", "label"] == "Electric_guitar" and table.loc["eval_37199", "label"] == "Rain"
    assert table.loc["dev_64760", "labels"] == dev.loc[0, "labels"]


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


AUDIOSET_ONTOLOGY = [  # a slice of ontology.json: Speech and Music with children, and two other sounds
    {"id": "/m/09x0r", "name": "Speech", "child_ids": ["/m/05zppz", "/m/02zsn"], "restrictions": []},
    {"id": "/m/05zppz", "name": "Male speech, man speaking", "child_ids": [], "restrictions": []},
    {"id": "/m/02zsn", "name": "Female speech, woman speaking", "child_ids": [], "restrictions": []},
    {"id": "/m/04rlf", "name": "Music", "child_ids": ["/m/04szw"], "restrictions": []},
    {"id": "/m/04szw", "name": "Musical instrument", "child_ids": ["/m/0342h"], "restrictions": []},
    {"id": "/m/0342h", "name": "Guitar", "child_ids": [], "restrictions": []},
    {"id": "/m/0jbk", "name": "Animal", "child_ids": ["/m/0bt9lr"], "restrictions": []},
    {"id": "/m/0bt9lr", "name": "Dog", "child_ids": [], "restrictions": []},
    {"id": "/m/06mb1", "name": "Rain", "child_ids": [], "restrictions": []},
]


def _audioset_tree(root: Path) -> None:
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "balanced_train_segments.csv").write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=5, num_segs=5, num_unique_labels=6, num_positive_labels=8\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
        '-0RWZT-miFs, 420.000, 430.000, "/m/0342h,/m/04rlf"\n'
        'Y0_K1BNO7fk, 0.000, 10.000, "/m/0bt9lr"\n'
        'k_speech-mu, 10.000, 20.000, "/m/09x0r,/m/0342h"\n'
        'absentclip1, 30.000, 40.000, "/m/06mb1"\n')
    (root / "metadata" / "eval_segments.csv").write_text(
        "# Segments csv created Sun Mar  5 10:54:25 2017\n"
        "# num_ytids=1, num_segs=1, num_unique_labels=1, num_positive_labels=1\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--aE2O5G5WE, 0.000, 10.000, "/m/06mb1"\n')
    (root / "metadata" / "class_labels_indices.csv").write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n'
        '137,/m/04rlf,"Music"\n140,/m/0342h,"Guitar"\n75,/m/0bt9lr,"Dog"\n289,/m/06mb1,"Rain"\n')
    (root / "metadata" / "ontology.json").write_text(json.dumps(AUDIOSET_ONTOLOGY))
    _tone(root / "audio" / "balanced_train" / "Y--PJHxphWEs_30.000_40.000.wav", 0)  # the "Y" prefix scheme
    _tone(root / "audio" / "balanced_train" / "-0RWZT-miFs_420.wav", 1)             # <ytid>_<start>
    _tone(root / "audio" / "balanced_train" / "Y0_K1BNO7fk.wav", 2)                 # <ytid> (an id starting Y)
    _tone(root / "audio" / "balanced_train" / "k_speech-mu_10.000_20.000.wav", 3)
    _tone(root / "audio" / "eval" / "Y--aE2O5G5WE_0.000_10.000.wav", 4)


def test_audioset(tmp_path, caplog):
    root = tmp_path / "audioset"
    _audioset_tree(root)
    with caplog.at_level("INFO", logger="audioprobe"):
        table = _check(tmp_path, "audioset", root).set_index("clip_id")
    assert "1 segment(s) of the CSVs have no clip file" in caplog.text and "absentclip1" in caplog.text
    assert "labelled both Speech and Music left out" in caplog.text   # k_speech-mu
    assert table["domain"].to_dict() == {"--PJHxphWEs_30.000": "speech", "-0RWZT-miFs_420.000": "music",
                                         "Y0_K1BNO7fk_0.000": "environmental", "--aE2O5G5WE_0.000": "environmental"}
    assert table["split"].to_dict() == {"--PJHxphWEs_30.000": "balanced_train", "-0RWZT-miFs_420.000": "balanced_train",
                                        "Y0_K1BNO7fk_0.000": "balanced_train", "--aE2O5G5WE_0.000": "eval"}
    assert table.loc["--PJHxphWEs_30.000", "group"] == "--PJHxphWEs"
    assert table.loc["--PJHxphWEs_30.000", "labels"] == "Speech; Male speech, man speaking"  # quoted comma kept
    assert table.loc["--PJHxphWEs_30.000", "mids"] == "/m/09x0r,/m/05zppz"
    assert pd.isna(table.loc["--PJHxphWEs_30.000", "label"])            # two labels: no single label
    assert table.loc["Y0_K1BNO7fk_0.000", "label"] == "Dog"


def test_audioset_segment_csv_and_names():
    from audioprobe.corpora.adapters import audioset_clip_key

    assert audioset_clip_key("Y--PJHxphWEs_30.000_40.000") == ("--PJHxphWEs", 30.0)
    assert audioset_clip_key("--PJHxphWEs_30") == ("--PJHxphWEs", 30.0)
    assert audioset_clip_key("--PJHxphWEs") == ("--PJHxphWEs", None)
    assert audioset_clip_key("Yabcdefghij_30.000") == ("Yabcdefghij", 30.0)  # an 11-character id starting with Y
    assert audioset_clip_key("notes") is None


def test_audioset_without_ontology_is_named(tmp_path):
    root = tmp_path / "audioset"
    _audioset_tree(root)
    (root / "metadata" / "ontology.json").unlink()
    with pytest.raises(ManifestError, match="ontology"):
        from_dataset("audioset", root, tmp_path / "x.csv")


def test_nsynth(tmp_path):
    root = tmp_path / "nsynth"
    examples = {}
    for k, (family, source, number, pitch, velocity) in enumerate(
            [("bass", "synthetic", 33, 22, 50), ("bass", "synthetic", 33, 69, 100), ("guitar", "acoustic", 2, 61, 75),
             ("keyboard", "electronic", 1, 108, 127)]):
        instrument = f"{family}_{source}_{number:03d}"
        note_str = f"{instrument}-{pitch:03d}-{velocity:03d}"
        examples[note_str] = {"note": 100 + k, "note_str": note_str, "instrument": number, "instrument_str": instrument,
                              "pitch": pitch, "velocity": velocity, "sample_rate": 16000, "qualities": [0] * 10,
                              "qualities_str": ["bright"] if k == 2 else [], "instrument_family": 0,
                              "instrument_family_str": family, "instrument_source": 2, "instrument_source_str": source}
        split = "nsynth-test" if k == 3 else "nsynth-valid"
        _tone(root / split / "audio" / f"{note_str}.wav", k)
    for split in ("nsynth-valid", "nsynth-test"):
        subset = {n: e for n, e in examples.items() if (root / split / "audio" / f"{n}.wav").exists()}
        (root / split / "examples.json").write_text(json.dumps(subset))
    table = _check(tmp_path, "nsynth", root).set_index("clip_id")
    assert set(table["domain"]) == {"music"} and len(table) == 4
    assert table["split"].to_dict() == {"bass_synthetic_033-022-050": "valid", "bass_synthetic_033-069-100": "valid",
                                        "guitar_acoustic_002-061-075": "valid",
                                        "keyboard_electronic_001-108-127": "test"}
    assert table.loc["bass_synthetic_033-022-050", "group"] == "bass_synthetic_033"
    assert table.loc["guitar_acoustic_002-061-075", "instrument_family"] == "guitar"
    assert table.loc["keyboard_electronic_001-108-127", "instrument_source"] == "electronic"
    # f0 exactly from the MIDI pitch, through the CSV round trip
    assert table.loc["bass_synthetic_033-069-100", "f0_hz"] == 440.0
    for clip, row in table.iterrows():
        assert row["f0_hz"] == 440.0 * 2.0 ** ((row["pitch"] - 69) / 12)
    assert table.loc["bass_synthetic_033-022-050", "f0_hz"] == pytest.approx(29.13523509488062, rel=1e-15)
