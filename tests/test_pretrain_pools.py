"""Pretraining pools from the pool-only Debian packages: source rules, G.722 decoding, and (where the
packages are installed) deterministic builds that are disjoint from the default corpus."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audioprobe.corpora import sources
from audioprobe.corpora.pools import build_pools, decode_g722
from audioprobe.corpora.sources import POOL_PACKAGES, classify

REPO = Path(__file__).resolve().parent.parent
HAVE_FFMPEG = shutil.which("ffmpeg") is not None
HAVE_POOL_PACKAGES = shutil.which("dpkg-query") is not None and HAVE_FFMPEG and all(
    sources.package_version(p) for p in [*sources.PACKAGES, *POOL_PACKAGES])


@pytest.mark.parametrize("package, path, expected", [
    ("asterisk-core-sounds-fr-g722", "/usr/share/asterisk/sounds/fr_CA_f_June/agent-pass.g722",
     ("speech", "prompts", "fr", "asterisk-core-sounds:fr_CA_f_June", "CC-BY-SA-3.0")),
    ("asterisk-core-sounds-ru-g722", "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/digits/7.g722",
     ("speech", "digits", "ru", "asterisk-core-sounds:ru_RU_f_IvrvoiceRU", "CC-BY-3.0")),
    ("hyperrogue-music", "/usr/share/hyperrogue/music/hr3-caves.ogg",
     ("music", "soundtrack", "", "hyperrogue-music:hr3-caves", "CC-BY-SA-3.0")),
    ("warzone2100-music", "/usr/share/games/warzone2100/music/albums/legacy_soundtrack/track1.opus",
     ("music", "soundtrack", "", "warzone2100-music:albums/legacy_soundtrack/track1", "GPL-2+")),
    ("colobot-common-sounds", "/usr/share/games/colobot/music/Constructive.ogg",
     ("music", "soundtrack", "", "colobot-common-sounds:Constructive", "GPL-3+")),
])
def test_pool_package_rules(package, path, expected):
    src = classify(package, path, version="1")
    assert (src.domain, src.category, src.language, src.group, src.license) == expected
    assert src.partition == "pool"  # pool-only packages never feed the default corpus


@pytest.mark.parametrize("package, path", [
    ("asterisk-core-sounds-en-g722", "/usr/share/asterisk/sounds/en_US_f_Allison/silence/1.g722"),  # silence
    ("asterisk-core-sounds-en-g722", "/usr/share/asterisk/sounds/en_US_f_Allison/beep.wav"),  # not the G.722 set
    ("colobot-common-sounds", "/usr/share/games/colobot/sounds/sound001.wav"),  # unnamed effects
    ("hyperrogue-music", "/usr/share/hyperrogue/sounds/click.ogg"),  # effects, per-file licenses
    ("klettres-data", "/usr/share/klettres/fr/alpha/a.g722"),  # .g722 only for the pool-only packages
])
def test_pool_package_rules_leave_out(package, path):
    assert classify(package, path) is None


def test_default_inventory_does_not_read_pool_packages(monkeypatch):
    asked = []
    monkeypatch.setattr(sources, "require_packages", lambda packages: asked.extend(packages))
    monkeypatch.setattr(sources, "package_files", lambda package: [])
    sources.inventory(partition="default")
    assert set(asked) == set(sources.PACKAGES) and not set(asked) & set(POOL_PACKAGES)


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg is not installed")
def test_decode_g722_recovers_a_tone(tmp_path):
    path = tmp_path / "tone.g722"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1",
                    "-c:a", "g722", "-f", "g722", str(path)], check=True)
    y = decode_g722(path, sr=16000)
    assert y.dtype == np.float32 and len(y) == pytest.approx(16000, abs=400)
    spectrum = np.abs(np.fft.rfft(y[2000:14000]))
    assert np.fft.rfftfreq(12000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=2)


@pytest.mark.skipif(not HAVE_POOL_PACKAGES, reason="the pool packages (or ffmpeg) are not installed")
@pytest.mark.slow
def test_pool_build_is_deterministic_uses_the_new_sources_and_is_disjoint_from_the_default_corpus(tmp_path):
    tables = []
    for run in ("a", "b"):
        paths = build_pools(tmp_path / run, minutes=1.0, max_source_s=4.0, n_jobs=1)
        tables.append({name: pd.read_csv(path) for name, path in paths.items()})
    for name in ("speech", "nonspeech", "mixed"):
        pd.testing.assert_frame_equal(tables[0][name], tables[1][name])  # same crops, same file hashes
    speech, nonspeech = tables[0]["speech"], tables[0]["nonspeech"]
    assert speech["duration_s"].sum() == pytest.approx(60.0, abs=1e-4)
    assert nonspeech["duration_s"].sum() == pytest.approx(60.0, abs=1e-4)
    assert speech["dataset"].str.startswith("asterisk-core-sounds-").any()
    assert nonspeech["dataset"].isin(["hyperrogue-music", "warzone2100-music", "colobot-common-sounds"]).any()
    # at most max_source_s from one source file
    per_file = speech.groupby(speech["source"].str.rsplit("@", n=1).str[0])["duration_s"].sum()
    assert per_file.max() <= 4.0 + 1e-6
    # licenses kept: each row carries its package's license
    for table in (speech, nonspeech):
        pool_only = table[table["dataset"].isin(POOL_PACKAGES)]
        assert (pool_only["license"] == pool_only["dataset"].map(POOL_PACKAGES)).all()
    shipped = pd.read_csv(REPO / "data_manifest.csv")
    files = {t: set(t_["source"].str.rsplit("@", n=1).str[0]) for t, t_ in
             (("pool", pd.concat([speech, nonspeech])), ("default", shipped))}
    assert not files["pool"] & files["default"]
