"""Issue 18: inputs that broke the descriptors, each fixed as a kind.

1. decoded audio beyond full scale, 2. descriptors of empty, too-short or numerically zero frames, 3. slow drift
that must be removed for every family, 4. modulation bands a clip is too short to resolve, 8. pitch settings the
tracker cannot use. Each kind: the handed input, and at least one other member. Clips are short and synthesized.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf

from audioprobe.audio import decode_audio, load_audio
from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.features import COUNT_COLUMNS, REGISTRY, AnalysisConfig, compute_clip_features, extract_features
from audioprobe.features.config import PREPROCESSING
from audioprobe.features.descriptors.modulation import SMOD_BANDS, TMOD_BANDS_HZ
from audioprobe.features.meta import descriptor_table
from audioprobe.features.signal.envelopes import envelope_edge_s
from audioprobe.manifest import check_manifest, sha256_file

SR = 16000
DBFS = [n for n, d in REGISTRY.items() if d.unit == "dBFS"]


def sine(freq: float, seconds: float, amplitude: float, sr: int = SR) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)


def cents(a: float, b: float) -> float:
    return abs(1200 * np.log2(a / b))


def write_manifest(folder, files: dict[str, tuple[np.ndarray, int, str]]):
    """Write clips {clip_id: (samples (n,) or (n, ch), sr, subtype)} and a valid manifest; return its path."""
    rows = []
    for clip_id, (data, sr, subtype) in files.items():
        path = folder / f"{clip_id}.wav"
        sf.write(path, data, sr, subtype=subtype)
        rows.append({"clip_id": clip_id, "path": path.name, "domain": "music", "dataset": "synth", "group": clip_id,
                     "split": "test", "license": "CC0", "source": "tests", "sample_rate": sr,
                     "duration_s": len(data) / sr, "sha256": sha256_file(path)})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


# ---- 1. decoded audio beyond full scale -------------------------------------------------------------
def test_float_wav_reaching_200_is_named_by_corpus_check_and_loses_only_its_dbfs_levels(tmp_path):
    """Handed input: a 440 Hz float WAV at amplitude 200. Decoding stays faithful (peak 200); corpus check names
    the clip and the peak (+46.0 dB re full scale); features keeps the scale-invariant descriptors (F0 within 5
    cents, centroid equal to the same sine at 0.5 within 0.1 %), records n_over_full_scale and sets the dBFS
    levels (+43.0 dBFS before) to NaN; the sine at 0.5 keeps -9.03 dBFS."""
    loud, quiet = sine(440.0, 1.0, 200.0), sine(440.0, 1.0, 0.5)
    manifest = write_manifest(tmp_path, {"loud": (loud, SR, "FLOAT"), "quiet": (quiet, SR, "FLOAT")})
    assert np.abs(load_audio(tmp_path / "loud.wav")).max() == pytest.approx(200.0, rel=1e-6)
    problems = check_manifest(manifest, n_jobs=1)
    assert len(problems) == 1
    assert "'loud'" in problems[0] and "peak |sample| 200 " in problems[0] and "+46.0 dB" in problems[0]
    n_over = int(np.count_nonzero(np.abs(loud.astype(np.float32)) > 1))
    table = extract_features(manifest, descriptors=["f0_median", "centroid_median", "amplitude"], n_jobs=1)
    table = table.set_index("clip_id")
    assert table.loc["loud", "n_over_full_scale"] == n_over and table.loc["quiet", "n_over_full_scale"] == 0
    for name in DBFS:
        assert np.isnan(table.loc["loud", name]), name
    assert table.loc["quiet", "rms_median_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert cents(table.loc["loud", "f0_median"], 440.0) < 5
    assert table.loc["loud", "centroid_median"] == pytest.approx(table.loc["quiet", "centroid_median"], rel=1e-3)
    assert table.loc["loud", "dynamic_range_db"] == pytest.approx(table.loc["quiet", "dynamic_range_db"], abs=0.01)


def test_one_stereo_channel_or_a_double_file_beyond_full_scale_is_seen_before_mixing(tmp_path):
    """Second member: a stereo file whose left channel reaches 1.5 (the mono mix only 0.75) and a 64-bit float
    file at 1.5 are flagged (peak 1.5, +3.5 dB) and their levels are NaN; a full-scale PCM_16 square at 44.1 kHz,
    whose resampled samples overshoot 1, is not (the check is on the file's own samples)."""
    left = sine(300.0, 0.5, 1.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    square = np.sign(sine(441.0, 0.5, 1.0, sr=44100) + 1e-9) * (1 - 2 ** -15)
    manifest = write_manifest(tmp_path, {"stereo": (stereo, SR, "FLOAT"), "double": (left, SR, "DOUBLE"),
                                         "square": (square, 44100, "PCM_16")})
    decoded = decode_audio(tmp_path / "stereo.wav")
    assert np.abs(decoded.y).max() == pytest.approx(0.75, rel=1e-4) and decoded.peak_abs == pytest.approx(1.5)
    assert decoded.n_over_full_scale == int(np.count_nonzero(np.abs(left) > 1))
    resampled = decode_audio(tmp_path / "square.wav", sr=SR)
    assert np.abs(resampled.y).max() > 1.0 and resampled.n_over_full_scale == 0
    problems = check_manifest(manifest, n_jobs=1)
    assert len(problems) == 2 and all("peak |sample| 1.5 " in p and "+3.5 dB" in p for p in problems)
    assert {p.split("'")[1] for p in problems} == {"stereo", "double"}
    table = extract_features(manifest, descriptors=["rms_median_dbfs", "f0_median"], n_jobs=1).set_index("clip_id")
    assert np.isnan(table.loc["stereo", "rms_median_dbfs"]) and np.isnan(table.loc["double", "rms_median_dbfs"])
    assert cents(table.loc["stereo", "f0_median"], 300.0) < 5
    assert np.isfinite(table.loc["square", "rms_median_dbfs"]) and table.loc["square", "n_over_full_scale"] == 0


def test_arrays_beyond_full_scale_are_counted_and_the_rule_is_in_the_metadata():
    r = compute_clip_features(sine(440.0, 0.5, 2.0), SR, descriptors=["amplitude", "centroid_median"])
    assert r["n_over_full_scale"] > 0 and np.isnan(r["rms_median_dbfs"]) and np.isfinite(r["centroid_median"])
    meta = descriptor_table().set_index("name")["parameters"].map(json.loads)
    assert all(("beyond_full_scale" in meta[n]) == (n in DBFS) for n in REGISTRY)
    assert "n_over_full_scale" in COUNT_COLUMNS


# ---- 2. descriptors of empty, too-short or numerically zero frames ----------------------------------
@pytest.mark.parametrize("y", [np.array([0.5, -0.3, 0.2]), sine(1000.0, 0.04, 0.3)],
                         ids=["3_samples", "40_ms"])
def test_clip_shorter_than_one_period_of_the_lowcut_has_no_frame_and_every_descriptor_is_nan(y):
    """Handed input: a 3-sample clip (centroid 4015.6 Hz and flatness 1.0 before, from a spectrum at 2e-17);
    second member: a 40 ms tone, shorter than one period of the 20 Hz high-pass (50 ms). No frame (n_frames 0):
    every descriptor of every family is NaN."""
    r = compute_clip_features(y, SR)
    assert (r["n_frames"], r["n_nonsilent_frames"], r["n_voiced_frames"]) == (0, 0, 0)
    for name in REGISTRY:
        assert np.isnan(r[name]), name


def test_frame_whose_sound_lies_where_the_window_is_zero_is_not_described():
    """A click on the first sample of a 1000-sample clip: the frame has a level (-36 dBFS) but its Hann-windowed
    spectrum is numerical residue; it is not non-silent, so centroid, flatness, slope, MFCCs, variability,
    modulation and pitch statistics are NaN (voiced fraction 0 of 0 considered frames), the level is kept."""
    y = np.zeros(1000)
    y[0] = 0.5
    r = compute_clip_features(y, SR)
    assert (r["n_frames"], r["n_nonsilent_frames"]) == (1, 0)
    for name, d in REGISTRY.items():
        if d.family in ("spectral_shape", "spectral_variability", "modulation") or name in ("f0_median", "hnr_db"):
            assert np.isnan(r[name]), name
    assert np.isfinite(r["rms_median_dbfs"])


def test_one_frame_has_no_onset_rate_and_one_nonsilent_frame_no_spread():
    """60 ms tone: one frame, so no frame-to-frame change (onset rate NaN, not 0) and no spread (NaN); its
    centroid is defined (1 kHz within 2 %)."""
    r = compute_clip_features(sine(1000.0, 0.06, 0.3), SR)
    assert r["n_frames"] == 1 and r["n_nonsilent_frames"] == 1
    for name in ("onset_rate", "centroid_std", "flux_mean", "logmel_std", "mfcc01_std"):
        assert np.isnan(r[name]), name
    assert r["centroid_median"] == pytest.approx(1000.0, rel=0.02)


# ---- 3. one cleaned signal for every family -----------------------------------------------------------
def highpassed(y: np.ndarray) -> np.ndarray:
    return scipy.signal.sosfiltfilt(scipy.signal.butter(4, 20.0, "highpass", fs=SR, output="sos"), y)


def _agree(a: dict, b: dict) -> None:
    assert cents(a["f0_median"], b["f0_median"]) < 5
    assert a["hnr_db"] == pytest.approx(b["hnr_db"], abs=1.5)
    assert a["voiced_fraction"] == b["voiced_fraction"]
    assert a["centroid_median"] == pytest.approx(b["centroid_median"], rel=0.01)
    assert a["rms_median_dbfs"] == pytest.approx(b["rms_median_dbfs"], abs=0.1)


def test_slow_drift_under_a_quiet_sine_does_not_reach_pitch_or_harmonicity():
    """Handed input: 220 Hz at 0.01 + 2 Hz at 0.5 (2 s). Before: f0 238.4 Hz, HNR 14.8 dB, voiced 0.74; the same
    clip high-passed at 20 Hz: 220.0 Hz, 81.8 dB, 1.0. Now both agree (5 cents, 1.5 dB, equal voiced fraction,
    centroid 1 %, level 0.1 dB) and F0 is 220 Hz."""
    y = sine(220.0, 2.0, 0.01) + sine(2.0, 2.0, 0.5)
    names = ["f0_median", "hnr_db", "voiced_fraction", "centroid_median", "rms_median_dbfs"]
    drifted = compute_clip_features(y, SR, descriptors=names)
    clean = compute_clip_features(highpassed(y), SR, descriptors=names)
    _agree(drifted, clean)
    assert cents(drifted["f0_median"], 220.0) < 5 and drifted["voiced_fraction"] == 1.0


def test_dc_offset_and_ramp_under_a_harmonic_complex_change_no_family():
    """Second member: a 110 Hz harmonic complex at 0.05 under a DC offset of 0.3 and a ramp of 0.4 over 1 s, vs
    the complex alone: pitch, HNR, centroid and level agree; features_meta records one pre-processing for all."""
    t = np.arange(SR) / SR
    tone = 0.05 * sum(np.sin(2 * np.pi * k * 110.0 * t) / k for k in range(1, 8))
    names = ["f0_median", "hnr_db", "voiced_fraction", "centroid_median", "rms_median_dbfs"]
    _agree(compute_clip_features(tone + 0.3 + 0.4 * t, SR, descriptors=names),
           compute_clip_features(tone, SR, descriptors=names))
    meta = descriptor_table().set_index("name")["parameters"].map(json.loads)
    assert {m["preprocessing"] for m in meta} == {PREPROCESSING} and "high-pass" in PREPROCESSING


# ---- 4. modulation bands too short for the clip ------------------------------------------------------
def _envelope_span(seconds: float) -> float:
    return seconds - 2 * envelope_edge_s(SR, 1000)


@pytest.mark.parametrize("seconds", [0.03, 0.1, 0.5, 1.0, 2.0])
def test_steady_tone_has_no_modulation_peak_at_any_length(seconds):
    """Handed input: a steady 440 Hz tone of 0.03 s gave tmod_peak_hz 39.1 Hz (0.1 s 11.7, 0.5 s 2.44, from 1 s NaN).
    A steady tone has no modulation: the peak is NaN at every length; a temporal band is NaN exactly when the
    envelope spans fewer than 2 periods of its lower edge, and is ~0 otherwise."""
    r = compute_clip_features(sine(440.0, seconds, 0.5), SR, descriptors=["modulation", "roughness"])
    assert np.isnan(r["tmod_peak_hz"])
    span = _envelope_span(seconds)
    for name, (lo, _) in TMOD_BANDS_HZ.items():
        if span <= 0 or lo < 2 / span:
            assert np.isnan(r[name]), name
        else:
            assert r[name] < 1e-6, name


def test_am_noise_is_resolved_only_in_bands_the_clip_holds_two_periods_of():
    """Second member: noise AM at 16 Hz, 0.4 s (envelope 0.29 s, so bands from 6.8 Hz): the peak is 16 +- 2 Hz,
    tmod_band_16 is the largest, tmod_band_1/2/4/8 (lower edges 0.71-5.7 Hz) are NaN. Roughness (30 Hz band) needs
    1/15 s of envelope: NaN for a 0.15 s clip (42 ms), defined for 0.2 s (92 ms)."""
    t = np.arange(int(0.4 * SR)) / SR
    y = 0.1 * np.random.default_rng(0).standard_normal(t.size) * (1 + np.sin(2 * np.pi * 16 * t))
    r = compute_clip_features(y, SR, descriptors=["modulation"])
    assert r["tmod_peak_hz"] == pytest.approx(16.0, abs=2.0)
    for name in ("tmod_band_1", "tmod_band_2", "tmod_band_4", "tmod_band_8"):
        assert np.isnan(r[name]), name
    assert r["tmod_band_16"] > r["tmod_band_32"]
    rough = [compute_clip_features(sine(1000.0, s, 0.3) * (1 + np.cos(2 * np.pi * 70 * np.arange(int(s * SR)) / SR)),
                                   SR, descriptors=["roughness"])["roughness"] for s in (0.15, 0.2)]
    assert np.isnan(rough[0]) and rough[1] == pytest.approx(1 / 3, abs=0.05)


def test_spectral_modulation_needs_one_full_frame_and_an_axis_of_two_periods():
    """Spectral modulation of a steady tone: NaN below one n_fft frame (60 ms); from 0.1 s on it does not depend on
    the length (0.01). At sr 8 kHz the log-frequency axis spans 5 octaves, fewer than 2 periods of 0.35 cyc/oct:
    smod_band_0p5 is NaN while the other bands are defined."""
    short = compute_clip_features(sine(440.0, 0.06, 0.5), SR, descriptors=["modulation"])
    assert all(np.isnan(short[name]) for name in ["smod_peak_cyc_per_oct", *SMOD_BANDS])
    a, b = (compute_clip_features(sine(440.0, s, 0.5), SR, descriptors=["modulation"]) for s in (0.1, 2.0))
    for name in SMOD_BANDS:
        assert a[name] == pytest.approx(b[name], abs=0.01), name
    low = compute_clip_features(sine(440.0, 0.5, 0.5, sr=8000), 8000, descriptors=["modulation"],
                                config=AnalysisConfig(sr=8000))
    assert np.isnan(low["smod_band_0p5"]) and np.isfinite(low["smod_band_1"])


# ---- 8. pitch settings the tracker cannot use ---------------------------------------------------------
def test_pyin_range_narrower_than_its_transition_window_is_refused_before_any_clip(tmp_path, caplog):
    """Handed input: --pitch pyin --f0-floor 200 --f0-ceiling 240 failed on every clip ("Target size (32) must be
    at least input size (41)"). Now the config refuses it, naming both options and the valid range (ceiling >=
    252.0 Hz), through the Python API (before any clip is read: the paths do not exist) and the CLI (exit 2,
    one line)."""
    with pytest.raises(ParameterError, match=r"f0_floor=200 Hz, f0_ceiling=240 Hz.*252\.0 Hz"):
        AnalysisConfig(pitch="pyin", f0_floor=200.0, f0_ceiling=240.0)
    with pytest.raises(ParameterError, match="--f0-floor/--f0-ceiling"):
        extract_features([tmp_path / "missing.wav"], pitch="pyin", f0_floor=200, f0_ceiling=240, n_jobs=1)
    manifest = write_manifest(tmp_path, {"a": (sine(220.0, 0.2, 0.3), SR, "PCM_16")})
    with caplog.at_level(logging.ERROR, logger="audioprobe"):
        code = main(["features", str(manifest), "-o", str(tmp_path / "run"), "--pitch", "pyin", "--f0-floor", "200",
                     "--f0-ceiling", "240", "-j", "1", "-q"])
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert code == 2 and len(errors) == 1 and "\n" not in errors[0] and "--f0-floor/--f0-ceiling" in errors[0]
    assert not (tmp_path / "run").exists()  # refused before anything is written, the run folder included


def test_other_pitch_settings_outside_the_trackers_range_are_refused_and_the_boundary_runs():
    """Second members: a pyin floor below 2 sr / n_fft (31.25 Hz), a ceiling at Nyquist, a floor above the ceiling.
    The narrowest accepted pyin range (4 semitones) runs and finds a 220 Hz tone within 10 cents."""
    with pytest.raises(ParameterError, match=r"f0_floor \(--f0-floor\) >= 2 sr / n_fft = 31.25 Hz"):
        AnalysisConfig(pitch="pyin", f0_floor=25.0, f0_ceiling=400.0, lowcut_hz=10.0)
    with pytest.raises(ParameterError, match="sr/2 = 4000 Hz"):
        AnalysisConfig(sr=8000, f0_ceiling=4000.0)
    with pytest.raises(ParameterError, match="--f0-floor/--f0-ceiling"):
        AnalysisConfig(f0_floor=300.0, f0_ceiling=200.0)
    config = AnalysisConfig(pitch="pyin", f0_floor=200.0, f0_ceiling=200.0 * 2 ** (4 / 12))
    r = compute_clip_features(sine(220.0, 0.3, 0.3), SR, descriptors=["f0_median"], config=config)
    assert cents(r["f0_median"], 220.0) < 10
