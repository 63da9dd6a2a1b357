"""The corpus recipe: source rules, the default/pool partition, MIDI files, crops, and (where the Debian packages
are installed) rebuilding the shipped corpus and the pools."""
from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audioprobe.corpora import sources
from audioprobe.corpora.clips import crop, leading_silence, peak_normalise, write_flac
from audioprobe.corpora.midi import Melody, Note, fixed_pitch_phrase, melody_f0_hz, midi_file_bytes, random_melody
from audioprobe.corpora.pools import plan_take
from audioprobe.corpora.selection import round_robin, split_of
from audioprobe.corpora.sources import CorpusBuildError, classify, partition_of, unit_hash
from audioprobe.errors import ParameterError

REPO = Path(__file__).resolve().parent.parent
HAVE_PACKAGES = shutil.which("dpkg-query") is not None and shutil.which("fluidsynth") is not None and all(
    sources.package_version(p) for p in [*sources.PACKAGES, "fluidr3mono-gm-soundfont"])
needs_packages = pytest.mark.skipif(not HAVE_PACKAGES, reason="the corpus's Debian packages are not installed")


@pytest.mark.parametrize("package, path, expected", [
    ("klettres-data", "/usr/share/klettres/fr/alpha/a.ogg", ("speech", "letters", "fr", "klettres-data:fr")),
    ("ktuberling-data", "/usr/share/ktuberling/sounds/de/hat.ogg", ("speech", "words", "de", "ktuberling-data:de")),
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/animals/birds/owl_desc_el.ogg",
     ("speech", "description", "el", "tuxpaint-stamps-default:el")),
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/animals/birds/owl_desc.ogg",
     ("speech", "description", "en", "tuxpaint-stamps-default:en")),
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/symbols/math/7_zh_tw.ogg",
     ("speech", "numbers", "zh_tw", "tuxpaint-stamps-default:zh_tw")),
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/animals/birds/owl.ogg",
     ("environmental", "animals", "", "tuxpaint-stamps-default:animals/birds/owl")),
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/hobbies/music/string/cello.ogg",
     ("music", "string", "", "tuxpaint-stamps-default:cello")),
    ("sonic-pi-samples", "/usr/share/sonic-pi/samples/tabla_ghe4.flac",
     ("music", "tabla", "", "sonic-pi-samples:tabla_ghe")),
    ("lmms-common", "/usr/share/lmms/samples/drums/snare07.ogg", ("music", "drums", "", "lmms-common:drums/snare")),
    ("minetest-data", "/usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_dirt_footstep.2.ogg",
     ("environmental", "footstep", "", "minetest-data:default_dirt_footstep")),
    ("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16/data/core/sounds/wolf-hit-3.ogg",
     ("environmental", "animals", "", "wesnoth-1.16-data:wolf-hit")),
])
def test_classify_rules(package, path, expected):
    src = classify(package, path, version="1")
    assert (src.domain, src.category, src.language, src.group) == expected
    assert src.source == f"{package}=1:{path}"


@pytest.mark.parametrize("package, path", [
    ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/symbols/faces/happy.ogg"),  # human vocalisation
    ("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16/data/core/sounds/human-die-1.ogg"),  # human vocalisation
    ("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16/sounds/button.wav"),  # user interface
    ("lmms-common", "/usr/share/lmms/samples/waveforms/10saw.flac"),  # synthetic waveform
    ("sonic-pi-samples", "/usr/share/sonic-pi/samples/misc_burp.flac"),
    ("klettres-data", "/usr/share/klettres/fr/alpha/a.png"),
])
def test_classify_leaves_out(package, path):
    assert classify(package, path) is None


def test_license_exceptions():
    base = "/usr/share/games/minetest/games/minetest_game/mods/"
    assert classify("minetest-data", base + "doors/sounds/doors_door_open.ogg").license == "CC-BY-3.0"
    assert classify("minetest-data", base + "tnt/sounds/tnt_explode.ogg").license == "CC0-1.0"
    assert classify("minetest-data", base + "fire/sounds/fire_fire.1.ogg").license == "CC-BY-SA-3.0"


def test_partition_is_stable_keyed_and_near_its_fraction():
    keys = [f"k{i}" for i in range(4000)]
    share = np.mean([partition_of("speech", k) == "default" for k in keys])
    assert abs(share - sources.DEFAULT_FRACTION["speech"]) < 0.03
    assert partition_of("music", "abc") == partition_of("music", "abc")
    assert unit_hash("x") == int.from_bytes(hashlib.sha256(b"x").digest()[:8], "big") / 2**64
    # numbered variants of one recording fall on the same side
    mt = "/usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_sand_footstep.{}.ogg"
    assert len({classify("minetest-data", mt.format(i)).partition for i in (1, 2, 3)}) == 1
    with pytest.raises(ParameterError, match="domain must be one of"):
        partition_of("noise", "x")


def test_round_robin_interleaves_groups_and_ignores_input_order():
    items = [(g, i) for g in "abc" for i in range(3)] + [("d", 0)]
    order = round_robin(items, group=lambda t: t[0], key=lambda t: f"{t[0]}{t[1]}", salt="s")
    assert sorted(order) == sorted(items)
    assert len({g for g, _ in order[:4]}) == 4  # the first round takes one item from every group
    again = round_robin(items[::-1], group=lambda t: t[0], key=lambda t: f"{t[0]}{t[1]}", salt="s")
    assert again == order


def test_split_is_a_function_of_group():
    groups = [f"g{i}" for i in range(2000)]
    assert abs(np.mean([split_of(g) == "test" for g in groups]) - 0.2) < 0.03
    assert split_of("g7") == split_of("g7")


@pytest.mark.parametrize("remaining, available, expected", [(100, 30, 30), (100, 120, 100), (35, 30, 25),
                                                             (15, 12, 0), (10, 10, 10)])
def test_plan_take_keeps_the_rest_usable(remaining, available, expected):
    take = plan_take(remaining, available, min_len=10)
    assert take == expected
    assert take == 0 or (take >= 10 and (remaining - take == 0 or remaining - take >= 10))


def test_leading_silence_crop_and_peak():
    sr = 16000
    y = np.zeros(sr, dtype=np.float32)
    y[4000:8000] = 0.2 * np.sin(2 * np.pi * 440 * np.arange(4000) / sr)
    start = leading_silence(y)
    assert 4000 - 512 <= start <= 4000
    seg = crop(y, start, 32000)
    assert seg.shape == (32000,) and not seg[-20000:].any()
    assert np.max(np.abs(peak_normalise(seg))) == pytest.approx(10 ** (-1 / 20))
    with pytest.raises(ParameterError, match="silent"):
        peak_normalise(np.zeros(10))


def test_flac_writing_is_deterministic(tmp_path):
    y = np.random.default_rng(0).uniform(-0.9, 0.9, 16000).astype(np.float32)
    write_flac(tmp_path / "a.flac", y, 16000)
    write_flac(tmp_path / "b.flac", y, 16000)
    assert (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()


def _parse_midi(data: bytes) -> list[tuple[int, bytes]]:
    """A minimal reader for the format-0 files we write: (absolute tick, message) pairs."""
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk"
    track = data[22:22 + struct.unpack(">I", data[18:22])[0]]
    events, pos, tick = [], 0, 0
    while pos < len(track):
        delta = 0
        while True:
            byte = track[pos]
            pos += 1
            delta = (delta << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        tick += delta
        if track[pos] == 0xFF:
            length = track[pos + 2]
            events.append((tick, track[pos:pos + 3 + length]))
            pos += 3 + length
        else:
            size = 2 if track[pos] & 0xF0 == 0xC0 else 3
            events.append((tick, track[pos:pos + size]))
            pos += size
    return events


def test_midi_file_places_each_melody_in_its_slot():
    mels = [Melody("a", 0, (Note(0.0, 0.5, 60, 100),)), Melody("b", 40, (Note(0.25, 1.0, 69, 90),))]
    events = _parse_midi(midi_file_bytes(mels, slot_s=3.0))
    assert events[0][1] == b"\xff\x51\x03" + (500000).to_bytes(3, "big")
    msgs = [(t, m) for t, m in events if m[0] != 0xFF]
    assert msgs == [(0, bytes([0xC0, 0])), (0, bytes([0x90, 60, 100])), (480, bytes([0x80, 60, 0])),
                    (2880, bytes([0xC0, 40])), (3120, bytes([0x90, 69, 90])), (4080, bytes([0x80, 69, 0]))]
    assert events[-1] == (5760, b"\xff\x2f\x00")


def test_melodies():
    ph = fixed_pitch_phrase("p", 42, 57, duration_s=2.0, random_state=3)
    assert {n.pitch for n in ph.notes} == {57} and melody_f0_hz(ph) == pytest.approx(220.0)
    assert all(0 <= n.start_s and n.start_s + n.dur_s <= 2.0 for n in ph.notes)
    mel = random_melody("m", 73, duration_s=2.0, random_state=1)
    assert len({n.pitch for n in mel.notes}) > 1 and np.isnan(melody_f0_hz(mel))
    assert mel == random_melody("m", 73, duration_s=2.0, random_state=1)
    with pytest.raises(ParameterError, match="program must be one of"):
        fixed_pitch_phrase("p", 200, 60)


def test_missing_package_is_named_with_the_apt_command(monkeypatch):
    monkeypatch.setattr(sources, "package_version", lambda package: None)
    with pytest.raises(CorpusBuildError, match=r"klettres-data.*apt-get install .*klettres-data"):
        sources.require_packages(["klettres-data"])


@needs_packages
def test_build_default_reproduces_the_shipped_corpus(tmp_path):
    from audioprobe.cli import main

    assert main(["-q", "corpus", "build-default", "-o", str(tmp_path / "c"), "--manifest",
                 str(tmp_path / "data_manifest.csv")]) == 0
    built = pd.read_csv(tmp_path / "data_manifest.csv")
    shipped = pd.read_csv(REPO / "data_manifest.csv")
    built["path"] = built["path"].str.replace("c/", "corpus/", n=1, regex=False)
    pd.testing.assert_frame_equal(built, shipped)


@needs_packages
@pytest.mark.slow  # ~14 s; the fast loop: matched pools (test_pretrain::test_pools_have_matched_durations_and_shares)
# and the disjointness rules (test_pretrain_pools: package rules, default inventory without pool packages)
def test_pools_are_matched_and_disjoint_from_the_default_corpus(tmp_path):
    from audioprobe.cli import main
    from audioprobe.manifest import check_manifest

    assert main(["-q", "corpus", "build-pools", "-o", str(tmp_path), "--minutes", "0.5"]) == 0
    tables = {n: pd.read_csv(tmp_path / f"{n}.csv") for n in ("speech", "nonspeech", "mixed")}
    assert tables["speech"]["duration_s"].sum() == pytest.approx(30.0, abs=1e-4)
    assert tables["nonspeech"]["duration_s"].sum() == pytest.approx(30.0, abs=1e-4)
    assert tables["mixed"]["duration_s"].sum() == pytest.approx(30.0, abs=2.0)
    assert set(tables["speech"]["domain"]) == {"speech"}
    assert set(tables["nonspeech"]["domain"]) == {"music", "environmental"}
    assert tables["speech"]["duration_s"].between(0.5, 2.0).all()
    assert check_manifest(tmp_path / "nonspeech.csv") == []

    def files(table):
        return set(table["source"].str.rsplit("@", n=1).str[0])

    shipped = pd.read_csv(REPO / "data_manifest.csv")
    pool_files = files(tables["speech"]) | files(tables["nonspeech"])
    assert not pool_files & files(shipped)
    shipped_groups = set(shipped.loc[shipped["domain"] != "speech", "group"]) - {
        g for g in shipped["group"] if g.startswith("fluidsynth:")}  # instruments are shared, melodies are not
    assert not shipped_groups & set(tables["nonspeech"]["group"])
