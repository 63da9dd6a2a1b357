"""The shipped default corpus: balance, format, uniqueness, licenses, groups, and `corpus check`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audioprobe.audio import audio_info, load_audio
from audioprobe.cli import main
from audioprobe.manifest import read_manifest

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "data_manifest.csv"
pytestmark = pytest.mark.skipif(not MANIFEST.is_file(), reason="no shipped data_manifest.csv in this checkout")


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return read_manifest(MANIFEST)


def test_balance_100_per_domain(manifest):
    assert manifest["domain"].value_counts().to_dict() == {"speech": 100, "music": 100, "environmental": 100}


def test_every_clip_is_2s_16khz_mono_flac(manifest):
    for path in manifest["audio_path"]:
        info = audio_info(path)
        assert (info.sample_rate, info.n_frames, info.channels, info.format) == (16000, 32000, 1, "FLAC")
    assert set(manifest["duration_s"]) == {2.0}
    assert set(manifest["sample_rate"]) == {16000}


def test_clips_are_unique_and_total_size_within_15mb(manifest):
    assert manifest["sha256"].is_unique
    assert manifest["clip_id"].is_unique
    total = sum(Path(p).stat().st_size for p in manifest["audio_path"])
    assert total <= 15e6


def test_no_group_spans_two_domains(manifest):
    domains_per_group = manifest.groupby("group")["domain"].nunique()
    assert (domains_per_group == 1).all(), domains_per_group[domains_per_group > 1]


def test_split_is_by_group(manifest):
    assert set(manifest["split"]) == {"train", "test"}
    assert (manifest.groupby("group")["split"].nunique() == 1).all()


def test_license_text_for_every_license(manifest):
    for lic in manifest["license"].unique():
        text = REPO / "corpus" / "licenses" / f"{lic.rstrip('+')}.txt"
        assert text.is_file() and len(text.read_text(encoding="utf-8").strip()) > 500, lic


def test_spread_over_sources_languages_and_instruments(manifest):
    speech = manifest[manifest["domain"] == "speech"]
    assert speech["dataset"].nunique() == 3 and speech["language"].nunique() >= 15
    assert manifest.groupby("domain")["group"].nunique().min() >= 30
    midi = manifest[manifest["dataset"] == "fluidsynth"]
    assert midi["source"].str.extract(r"program=(\d+)")[0].nunique() >= 8


def test_peak_normalised_and_leading_silence_trimmed(manifest):
    for path in manifest["audio_path"][::15]:
        y = load_audio(path, sr=None)
        assert np.max(np.abs(y)) == pytest.approx(10 ** (-1 / 20), abs=2 / 32768)
        # the first 50 ms hold sound: within 40 dB of the loudest 50-ms frame
        frames = y[: len(y) // 800 * 800].reshape(-1, 800)
        rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
        assert rms[0] > rms.max() * 10 ** (-40 / 20), path


def test_f0_of_midi_clips_matches_a_pitch_tracker(manifest):
    import librosa

    midi = manifest[manifest["f0_hz"].notna()]
    assert len(midi) == 40 and (manifest.loc[manifest["f0_hz"].notna(), "dataset"] == "fluidsynth").all()
    for _, row in midi.iloc[::3].iterrows():
        y = load_audio(row["audio_path"], sr=None)
        # search half an octave either side: an octave error would land on a search edge and fail
        f0 = librosa.yin(y[:16000], fmin=row["f0_hz"] / 1.41, fmax=row["f0_hz"] * 1.41, sr=16000, frame_length=2048)
        assert np.median(f0) == pytest.approx(row["f0_hz"], rel=0.02), row["clip_id"]


def test_corpus_check_passes_via_cli():
    assert main(["-q", "corpus", "check"]) == 0
