"""The shipped corpus's label columns are what its recipe derives from each clip's recorded source."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from audioprobe.corpora import default
from audioprobe.corpora.midi import GM_PROGRAMS, melody_f0_hz
from audioprobe.corpora.sources import classify
from audioprobe.manifest import REQUIRED_COLUMNS, default_manifest_path, read_manifest

LABELS = ["category", "language", "instrument", "source_category"]


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return read_manifest(default_manifest_path())


def _package_file(source: str) -> tuple[str, str]:
    """``package=[epoch:]version:/path@offset`` -> (package, /path)."""
    package, rest = source.split("=", 1)
    return package, "/" + rest.split(":/", 1)[1].rsplit("@", 1)[0]


def _melody(source: str) -> tuple[str, int, int]:
    """``...:phrase-000012 program=19 (church_organ) pitch=39@0.005s`` -> (melody id, program, pitch)."""
    m = re.search(r":(phrase-\d+) program=(\d+) \((\w+)\) pitch=(\d+)@", source)
    assert m and GM_PROGRAMS[int(m.group(2))] == m.group(3)
    return m.group(1), int(m.group(2)), int(m.group(4))


def test_columns_are_the_recipes(manifest):
    assert [c for c in manifest.columns if c != "audio_path"] == [*REQUIRED_COLUMNS, "category", "language", "f0_hz",
                                                                  "instrument", "source_category"]
    assert set(default.label_columns(domain="speech", category="words", language="fr")) == set(LABELS)


def test_label_columns_equal_what_the_recipe_derives_from_each_source(manifest):
    phrases = {mel.melody_id: mel for mel in default._phrases(default.QUOTAS["music"]["fluidsynth"])}
    text = manifest[LABELS].fillna("")
    for row, labels in zip(manifest.itertuples(), text.to_dict("records")):
        if row.dataset == "fluidsynth":
            melody_id, program, pitch = _melody(row.source)
            mel = phrases[melody_id]                                 # the recipe regenerates the same phrase
            assert (mel.program, mel.notes[0].pitch) == (program, pitch)
            assert row.f0_hz == pytest.approx(melody_f0_hz(mel), rel=1e-9)
            expected = default.label_columns(domain="music", category="midi", language="",
                                             instrument=GM_PROGRAMS[program])
        else:
            src = classify(*_package_file(row.source))
            assert (src.domain, src.group) == (row.domain, row.group)
            expected = default.label_columns(domain=src.domain, category=src.category, language=src.language)
            assert np.isnan(row.f0_hz)
        assert labels == expected, row.clip_id


def test_each_domain_has_its_task_labels(manifest):
    speech, music, env = (manifest[manifest["domain"] == d] for d in ("speech", "music", "environmental"))
    assert speech["language"].notna().all() and manifest.loc[manifest["domain"] != "speech", "language"].isna().all()
    melodies = music["dataset"] == "fluidsynth"
    assert music.loc[melodies, "instrument"].nunique() == len(GM_PROGRAMS)
    assert manifest.loc[manifest["dataset"] != "fluidsynth", "instrument"].isna().all()
    assert env["source_category"].notna().all() and (env["source_category"] == env["category"]).all()
    assert manifest.loc[manifest["domain"] != "environmental", "source_category"].isna().all()
