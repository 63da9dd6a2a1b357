"""Descriptors: known answers on synthesized signals, oracles (Praat, librosa, scipy), invariances, edge cases.

Tolerances are stated next to each check. Signals are 2 s at 16 kHz unless said otherwise.
"""
from __future__ import annotations

import json
from functools import lru_cache

import librosa
import numpy as np
import parselmouth
import pytest
import scipy.signal

from audioprobe.errors import ClipError, ParameterError
from audioprobe.features import (
    COUNT_COLUMNS,
    REGISTRY,
    AnalysisConfig,
    ClipAnalysis,
    compute_clip_features,
    descriptor_table,
    resolve_descriptors,
)

SR = 16000
DUR = 2.0
T = np.arange(int(DUR * SR)) / SR
LEVEL = ("rms_median_dbfs", "rms_p10_dbfs", "rms_p90_dbfs")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def harmonic(f0, *, vibrato_cents=0.0, n_harmonics=10, t=T, sr=SR):
    """Harmonic complex (1/k amplitudes) with optional 5 Hz vibrato; f0 may be an array (glide)."""
    inst = f0 * 2.0 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(inst) / sr
    top = np.max(inst)
    y = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * top < 0.45 * sr)
    return 0.3 * y / np.max(np.abs(y))


def white(seed=0, scale=0.1, n=T.size):
    return scale * rng(seed).standard_normal(n)


def pink(seed=0):
    spectrum = np.fft.rfft(rng(seed).standard_normal(T.size))
    f = np.fft.rfftfreq(T.size, 1 / SR)
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    y = np.fft.irfft(spectrum, T.size)
    return 0.1 * y / np.std(y)


@lru_cache(maxsize=None)
def feats(name: str) -> dict:
    return compute_clip_features(SIGNALS[name](), SR)


SIGNALS = {
    "sine440": lambda: 0.5 * np.sin(2 * np.pi * 440 * T),
    "white": white,
    "pink": pink,
    "silence": lambda: np.zeros(T.size),
    "rich": lambda: harmonic(220.0, vibrato_cents=30) * (1 + 0.5 * np.sin(2 * np.pi * 3 * T)) + white(1, 0.01),
}


# ---- registry ------------------------------------------------------------------------------------
#: features_meta.csv as stated independently of the code (docs/run-folder.md, design table): unit, family, probe scale.
EXPECTED_META = {
    "f0_median": ("Hz", "pitch", "log"), "f0_p90": ("Hz", "pitch", "log"), "f0_range_st": ("st", "pitch", "linear"),
    "f0_change_st_per_s": ("st/s", "pitch", "linear"), "voiced_fraction": ("fraction", "pitch", "linear"),
    "hnr_db": ("dB", "pitch", "linear"), "centroid_median": ("Hz", "spectral_shape", "log"),
    "centroid_iqr": ("Hz", "spectral_shape", "linear"), "flatness_median": ("fraction", "spectral_shape", "linear"),
    "slope_db_per_oct": ("dB/oct", "spectral_shape", "linear"), "mfcc01_mean": ("a.u.", "spectral_shape", "linear"),
    "flux_mean": ("a.u.", "spectral_variability", "linear"), "logmel_std": ("dB", "spectral_variability", "linear"),
    "mfcc12_std": ("a.u.", "spectral_variability", "linear"), "rms_median_dbfs": ("dBFS", "amplitude", "linear"),
    "dynamic_range_db": ("dB", "amplitude", "linear"), "tmod_peak_hz": ("Hz", "modulation", "log"),
    "tmod_band_4": ("fraction", "modulation", "linear"), "smod_peak_cyc_per_oct": ("cyc/oct", "modulation", "linear"),
    "smod_band_0p5": ("fraction", "modulation", "linear"), "onset_rate": ("1/s", "onsets_roughness", "linear"),
    "roughness": ("fraction", "onsets_roughness", "linear"),
}
#: Columns per family: 6 F0 + HNR; 6 shape medians/IQRs + flatness + slope + 12 MFCC means; flux, centroid and
#: log-mel spread + 12 MFCC spreads; 3 levels + range; temporal peak + 6 bands, spectral peak + 4 bands;
#: onsets, roughness.
EXPECTED_FAMILY_SIZES = {"pitch": 7, "spectral_shape": 20, "spectral_variability": 15, "amplitude": 4,
                         "modulation": 12, "onsets_roughness": 2}
#: The skewed positive descriptors probed on a log scale; every other one is linear.
EXPECTED_LOG_SCALE = {"f0_median", "f0_p10", "f0_p90", "centroid_median", "bandwidth_median", "rolloff_median",
                      "tmod_peak_hz"}
ALLOWED_UNITS = {"Hz", "st", "st/s", "fraction", "dB", "dBFS", "dB/oct", "a.u.", "cyc/oct", "1/s"}


def test_features_meta_matches_the_stated_table():
    """features_meta.csv against expectations written here, not derived from REGISTRY: unit/family/scale of 22
    descriptors, the size of each family, the set of log-scale descriptors, allowed units, and the settings
    recorded with the values of the config used (f0_floor 75 Hz, hop 80)."""
    config = AnalysisConfig(f0_floor=75.0, hop_length=80)
    meta = descriptor_table(config=config).set_index("name")
    assert meta.index.is_unique
    for name, expected in EXPECTED_META.items():
        assert tuple(meta.loc[name, ["unit", "family", "probe_scale"]]) == expected, name
    assert meta.groupby("family").size().to_dict() == EXPECTED_FAMILY_SIZES
    assert set(meta.index[meta["probe_scale"] == "log"]) == EXPECTED_LOG_SCALE
    assert set(meta["unit"]) <= ALLOWED_UNITS
    params = meta["parameters"].map(json.loads)
    assert params["f0_median"]["f0_floor"] == 75.0 and params["f0_median"]["hop_length"] == 80
    assert params["hnr_db"]["f0_floor"] == 75.0 and "hop_length" not in params["hnr_db"]
    assert all(p["sr"] == 16000 and "high-pass" in p["preprocessing"] for p in params)
    assert list(feats("sine440")) == list(meta.index) + list(COUNT_COLUMNS)


def test_rms_frames_are_uncentred_as_features_meta_says():
    """features_meta.csv records uncentred frames for the levels (center False, no edge padding), and the values are
    librosa.feature.rms(center=False) of the analysis signal (1e-9 dB); librosa's centred default (zero-padded edges)
    would put the 10th percentile of a 0.3 s tone burst more than 1 dB lower."""
    meta = descriptor_table(["amplitude"]).set_index("name")
    for name in ("rms_median_dbfs", "rms_p10_dbfs", "dynamic_range_db"):
        params = json.loads(meta.loc[name, "parameters"])
        assert params["center"] is False and "center=False" in meta.loc[name, "extractor"], name
        assert "not centred" in params["preprocessing"]
    y = harmonic(330.0, t=T[: int(0.3 * SR)])
    r = compute_clip_features(y, SR, descriptors=["amplitude"])
    clean = documented_clean(y)
    for center, agrees in ((False, True), (True, False)):
        rms = librosa.feature.rms(y=clean, frame_length=1024, hop_length=160, center=center)[0]
        p10 = np.percentile(20 * np.log10(rms), 10)
        assert (abs(r["rms_p10_dbfs"] - p10) < 1e-9) == agrees, center
        if not agrees:
            assert r["rms_p10_dbfs"] > p10 + 1.0


def test_resolve_descriptors_accepts_families_and_rejects_unknown_names():
    assert resolve_descriptors(["amplitude"]) == ["rms_median_dbfs", "rms_p10_dbfs", "rms_p90_dbfs", "dynamic_range_db"]
    with pytest.raises(ParameterError, match="unknown name 'f0_mean'.*valid families"):
        resolve_descriptors(["f0_mean"])
    with pytest.raises(ParameterError, match="pitch must be one of"):
        AnalysisConfig(pitch="yin")
    with pytest.raises(ParameterError, match="f0_floor"):
        AnalysisConfig(f0_floor=3000.0)


# ---- pitch and periodicity -----------------------------------------------------------------------
@pytest.mark.parametrize("f0", [110.0, 220.0, 440.0])
def test_f0_of_harmonic_complex_with_vibrato(f0):
    """Median within 5 cents of the nominal F0; p10/p90 inside the +-30 cent vibrato (+-20 cents): no octave errors."""
    r = compute_clip_features(harmonic(f0, vibrato_cents=30), SR, descriptors=["pitch"])
    assert abs(1200 * np.log2(r["f0_median"] / f0)) < 5
    assert abs(1200 * np.log2(r["f0_p10"] / f0)) < 50 and abs(1200 * np.log2(r["f0_p90"] / f0)) < 50
    assert r["voiced_fraction"] > 0.95


def test_high_note_is_not_halved():
    """Praat's default 600 Hz ceiling halves a 1500 Hz note; the default 2000 Hz ceiling does not (5 cents)."""
    r = compute_clip_features(harmonic(1500.0, n_harmonics=3), SR, descriptors=["f0_median"])
    assert abs(1200 * np.log2(r["f0_median"] / 1500.0)) < 5


def test_f0_glide_change_rate():
    """Glide at 2 st/s -> f0_change_st_per_s 2.0 +- 0.1; range over 2 s about 4 st * 0.8 (p10..p90) +- 0.2."""
    f0 = 200.0 * 2.0 ** (2.0 * T / 12)
    r = compute_clip_features(harmonic(f0), SR, descriptors=["pitch"])
    assert r["f0_change_st_per_s"] == pytest.approx(2.0, abs=0.1)
    assert r["f0_range_st"] == pytest.approx(0.8 * 4.0, abs=0.2)


def test_voiced_fraction_known_answers():
    """Silence 0 (nothing is voiced), sine 1, white noise <= 0.1."""
    assert feats("silence")["voiced_fraction"] == 0.0
    assert feats("sine440")["voiced_fraction"] == pytest.approx(1.0, abs=0.01)
    assert feats("white")["voiced_fraction"] <= 0.1


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0, 30.0])
def test_hnr_of_harmonic_plus_noise(snr_db):
    """Harmonic complex + white noise at a given power SNR -> hnr_db within 1.5 dB of the SNR."""
    h = harmonic(220.0)
    h /= np.std(h)
    n = rng(3).standard_normal(T.size)
    y = 0.1 * (h + n / np.std(n) * 10 ** (-snr_db / 20))
    assert compute_clip_features(y, SR, descriptors=["hnr_db"])["hnr_db"] == pytest.approx(snr_db, abs=1.5)


def test_pitch_oracle_praat_and_pyin():
    """f0_median / hnr_db equal a direct parselmouth call (1e-9 relative); pyin agrees with librosa.pyin (1e-9)."""
    y = harmonic(220.0, vibrato_cents=30)
    r = compute_clip_features(y, SR, descriptors=["pitch"])
    sound = parselmouth.Sound(y - y.mean(), SR)
    f = sound.to_pitch_ac(time_step=0.01, pitch_floor=50, pitch_ceiling=2000).selected_array["frequency"]
    # all frames voiced and non-silent; the first and last Praat frames fall outside the frame grid
    assert r["f0_median"] == pytest.approx(np.median(f[f > 0][1:-1]), rel=1e-3)
    h = sound.to_harmonicity_cc(time_step=0.02, minimum_pitch=50).values[0]
    assert r["hnr_db"] == pytest.approx(np.mean(h[h > -200]), abs=0.3)
    y_short = y[: SR // 2]
    r_pyin = compute_clip_features(y_short, SR, descriptors=["f0_median"], config=AnalysisConfig(pitch="pyin"))
    f0, voiced, _ = librosa.pyin(y_short - y_short.mean(), fmin=50, fmax=2000, sr=SR, frame_length=1024,
                                 hop_length=160, center=False)
    assert r_pyin["f0_median"] == pytest.approx(np.median(f0[voiced]), rel=1e-9)


def _praat_and_ours_cc(y):
    from audioprobe.features.signal.harmonicity import harmonicity_cc
    praat = parselmouth.Sound(y, SR).to_harmonicity_cc(time_step=0.02, minimum_pitch=50.0, silence_threshold=0.1,
                                                        periods_per_window=1.0)
    ours = harmonicity_cc(y, sr=SR, minimum_pitch=50.0, time_step=0.02, silence_threshold=0.1, periods_per_window=1.0)
    np.testing.assert_allclose(ours.times, praat.xs(), rtol=0, atol=1e-12)
    expected = praat.values[0]
    np.testing.assert_array_equal(ours.hnr_db > -199, expected > -199)  # the same periodic frames
    return expected, ours.hnr_db


@pytest.mark.parametrize("snr_db", [0.0, 20.0, 40.0])
def test_harmonicity_cc_reproduces_praat_frame_by_frame(snr_db):
    """features.signal.harmonicity.harmonicity_cc vs parselmouth's to_harmonicity_cc (time step 0.02 s, floor 50 Hz,
    silence 0.1, 1 period) on a harmonic complex with vibrato plus noise: the same frame times and periodic frames,
    per-frame HNR within 0.05 dB on 90 % of frames and 0.2 dB on all, clip mean within 0.01 dB (the differences
    come from refining the 3 highest-ranked candidates with sinc depth 70 instead of all with depth 700)."""
    h = harmonic(220.0, vibrato_cents=30)
    n = rng(5).standard_normal(T.size)
    expected, ours = _praat_and_ours_cc(0.1 * (h / np.std(h) + n / np.std(n) * 10 ** (-snr_db / 20)))
    periodic = expected > -199
    assert periodic.sum() == expected.size
    diff = np.abs(ours[periodic] - expected[periodic])
    assert np.percentile(diff, 90) < 0.05 and diff.max() < 0.2
    assert ours[periodic].mean() == pytest.approx(expected[periodic].mean(), abs=0.01)


def test_harmonicity_cc_silence_rule_and_noise_frames_follow_praat():
    """Noise, a pause at -66 dB and a harmonic tone in one clip: the same periodic frames as Praat (the pause is
    voiceless by the silence rule); tone frames within 0.1 dB; noise frames (HNR < 0 dB, many near-equal candidates)
    within 1.5 dB each and 0.1 dB on average; clip mean within 0.05 dB."""
    y = np.where(T < 0.7, white(4, 0.05), 0.0) + np.where(T > 1.2, 0.2 * harmonic(180.0), 0.0) + white(9, 0.0005)
    expected, ours = _praat_and_ours_cc(y)
    periodic = expected > -199
    assert 0 < periodic.sum() < expected.size
    tone, noise = periodic & (expected > 0), periodic & (expected <= 0)
    assert tone.sum() >= 30 and noise.sum() >= 30
    assert np.abs(ours[tone] - expected[tone]).max() < 0.1
    assert np.abs(ours[noise] - expected[noise]).max() < 1.5
    assert ours[noise].mean() == pytest.approx(expected[noise].mean(), abs=0.1)
    assert ours[periodic].mean() == pytest.approx(expected[periodic].mean(), abs=0.05)


def test_pyin_runs_and_agrees_with_praat_within_10_cents():
    y = harmonic(330.0)[: SR // 2]
    r_praat = compute_clip_features(y, SR, descriptors=["f0_median"])
    r_pyin = compute_clip_features(y, SR, descriptors=["f0_median"], config=AnalysisConfig(pitch="pyin"))
    assert abs(1200 * np.log2(r_pyin["f0_median"] / r_praat["f0_median"])) < 10


# ---- spectral shape ------------------------------------------------------------------------------
def test_spectral_shape_of_sine_and_white_noise():
    """Sine f -> centroid f (0.5 %), flatness < 0.01. White noise -> centroid sr/4, bandwidth sr/(4 sqrt 3),
    roll-off 0.85 sr/2 (3 %), flatness e^-gamma = 0.561 (0.02), slope 0 dB/oct (0.3)."""
    s = feats("sine440")
    assert s["centroid_median"] == pytest.approx(440.0, rel=0.005)
    assert s["flatness_median"] < 0.01
    w = feats("white")
    assert w["centroid_median"] == pytest.approx(SR / 4, rel=0.03)
    assert w["bandwidth_median"] == pytest.approx(SR / (4 * np.sqrt(3)), rel=0.03)
    assert w["rolloff_median"] == pytest.approx(0.85 * SR / 2, rel=0.03)
    assert w["flatness_median"] == pytest.approx(np.exp(-np.euler_gamma), abs=0.02)
    assert w["slope_db_per_oct"] == pytest.approx(0.0, abs=0.3)


def test_slope_of_pink_noise():
    """Pink noise (power ~ 1/f) -> -3.01 dB/oct +- 0.3."""
    assert feats("pink")["slope_db_per_oct"] == pytest.approx(-10 * np.log10(2), abs=0.3)


def documented_clean(y):
    """The documented pre-processing, written out: mean removed, mirror-extended by 3 periods of 20 Hz, 4th-order
    Butterworth high-pass at 20 Hz forward and backward from rest."""
    sos = scipy.signal.butter(4, 20.0, "highpass", fs=SR, output="sos")
    pad = min(y.size - 1, 3 * SR // 20)
    x = scipy.signal.sosfilt(sos, np.pad(y - y.mean(), pad, mode="reflect"))
    return scipy.signal.sosfilt(sos, x[::-1])[::-1][pad: pad + y.size]


def test_spectral_oracle_librosa():
    """Median centroid, bandwidth, roll-off, flatness and mean MFCCs equal librosa on the same frames of the
    documented analysis signal (1e-6)."""
    y = documented_clean(SIGNALS["rich"]())
    r = feats("rich")
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=160, center=False))
    S[:2] = 0  # bins below 20 Hz are excluded
    kw = dict(sr=SR, n_fft=1024, hop_length=160)
    assert r["centroid_median"] == pytest.approx(np.median(librosa.feature.spectral_centroid(S=S, **kw)), rel=1e-6)
    assert r["bandwidth_median"] == pytest.approx(np.median(librosa.feature.spectral_bandwidth(S=S, **kw)),
                                                  rel=1e-6)
    assert r["rolloff_median"] == pytest.approx(np.median(librosa.feature.spectral_rolloff(S=S, **kw)), rel=1e-6)
    assert r["flatness_median"] == pytest.approx(np.median(librosa.feature.spectral_flatness(S=S[2:])),
                                                 rel=1e-6)
    mel = librosa.feature.melspectrogram(S=S ** 2, sr=SR, n_fft=1024, n_mels=64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=80.0), sr=SR, n_mfcc=13)
    assert r["mfcc03_mean"] == pytest.approx(mfcc[3].mean(), rel=1e-6)
    assert r["mfcc05_std"] == pytest.approx(mfcc[5].std(), rel=1e-6)
    assert r["centroid_std"] == pytest.approx(np.std(librosa.feature.spectral_centroid(S=S, **kw)), rel=1e-6)


@pytest.mark.parametrize("signal", ["rich", "white", "clicks"])
def test_dsp_primitives_equal_librosa(signal):
    """features.signal.dsp restates librosa 0.11's formulas without importing librosa in the workers: frames, mel
    filters, power_to_db, MFCCs, centroid, bandwidth, roll-off, flatness, onset strength and onset frames equal
    librosa's on the same input (1e-10 relative; onset frames identical, also at other thresholds)."""
    from audioprobe.features.signal import dsp
    if signal == "clicks":
        y = white(9, 1e-3)
        y[(SR * (0.1 + 0.23 * np.arange(8))).astype(int)] = 0.9
    else:
        y = SIGNALS[signal]()
    frames = dsp.frame(y, frame_length=1024, hop_length=160)
    np.testing.assert_array_equal(frames, librosa.util.frame(y, frame_length=1024, hop_length=160))
    for n in (1, 2, 50, 1024):
        np.testing.assert_allclose(dsp.hann(n), scipy.signal.get_window("hann", n), rtol=0, atol=1e-15)
    S = np.abs(np.fft.rfft(frames * scipy.signal.get_window("hann", 1024)[:, None], axis=0))
    freq = dsp.fft_frequencies(sr=SR, n_fft=1024)
    np.testing.assert_array_equal(freq, librosa.fft_frequencies(sr=SR, n_fft=1024))
    mel_basis = dsp.mel_filterbank(sr=SR, n_fft=1024, n_mels=64)
    np.testing.assert_array_equal(mel_basis, librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64))
    mel_db = dsp.power_to_db(mel_basis @ S ** 2)
    expected_db = librosa.power_to_db(librosa.feature.melspectrogram(S=S ** 2, sr=SR, n_fft=1024, n_mels=64),
                                      ref=1.0, top_db=80.0)
    np.testing.assert_allclose(mel_db, expected_db, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dsp.mfcc(mel_db, n_mfcc=13), librosa.feature.mfcc(S=mel_db, sr=SR, n_mfcc=13),
                               rtol=1e-10, atol=1e-10)
    kw = {"S": S, "sr": SR, "n_fft": 1024}
    centroid = dsp.spectral_centroid(S, freq)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(**kw)[0], rtol=1e-10)
    np.testing.assert_allclose(dsp.spectral_bandwidth(S, freq, centroid),
                               librosa.feature.spectral_bandwidth(**kw, centroid=centroid[None, :])[0], rtol=1e-10)
    np.testing.assert_array_equal(dsp.spectral_rolloff(S, freq, roll_percent=0.85),
                                  librosa.feature.spectral_rolloff(**kw, roll_percent=0.85)[0])
    np.testing.assert_allclose(dsp.spectral_flatness(S, power=2.0, amin=1e-10),
                               librosa.feature.spectral_flatness(S=S, power=2.0, amin=1e-10)[0], rtol=1e-10)
    strength = dsp.onset_strength(mel_db)
    np.testing.assert_allclose(strength, librosa.onset.onset_strength(S=mel_db, sr=SR, hop_length=160, center=False),
                               rtol=1e-10, atol=1e-12)
    for delta in (0.5, 2.0, 6.0):
        ours = dsp.onset_detect(strength, sr=SR, hop_length=160, delta=delta)
        theirs = librosa.onset.onset_detect(onset_envelope=strength, sr=SR, hop_length=160, units="frames",
                                            normalize=False, delta=delta)
        np.testing.assert_array_equal(ours, theirs)
    if signal == "clicks":
        assert len(dsp.onset_detect(strength, sr=SR, hop_length=160, delta=2.0)) == 8


def test_praat_path_does_not_import_librosa():
    """Worker start-up: describing a clip with the default (Praat) tracker loads neither librosa nor numba (about 2 s
    per worker process here); pyin loads librosa when it is asked for."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from audioprobe.features import compute_clip_features\n"
            "y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)\n"
            "compute_clip_features(y, 16000)\n"
            "print('librosa' in sys.modules, 'numba' in sys.modules)\n"
            "from audioprobe.features import AnalysisConfig\n"
            "compute_clip_features(y, 16000, descriptors=['f0_median'], config=AnalysisConfig(pitch='pyin'))\n"
            "print('librosa' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_dc_offset_and_drift_do_not_move_the_centroid():
    """A DC offset 10x the tone and a 5 Hz drift as large as the tone leave the 1 kHz centroid within 1 %.

    (Without DC removal the centroid of this clip is near 0 Hz; the 20 Hz high-pass of the analysis signal removes
    the 5 Hz drift by 96 dB.)"""
    y = 0.05 * np.sin(2 * np.pi * 1000 * T) + 0.5 + 0.05 * np.sin(2 * np.pi * 5 * T)
    assert compute_clip_features(y, SR, descriptors=["centroid_median"])["centroid_median"] == pytest.approx(
        1000.0, rel=0.01)


# ---- spectral variability ------------------------------------------------------------------------
def test_variability_known_answers():
    """Steady tone: flux < 0.01, centroid_std < 1 Hz, logmel_std < 0.5 dB. Gated noise (8 Hz, 20 dB steps)
    has a logmel_std > 3x stationary noise; noise switching between low and high bands has a centroid_std
    > 3x and a flux > 1.05x stationary noise."""
    s = feats("sine440")
    assert s["flux_mean"] < 0.01 and s["centroid_std"] < 1.0 and s["logmel_std"] < 0.5
    w = feats("white")
    gate = np.where(np.sin(2 * np.pi * 8 * T) > 0, 1.0, 0.1)
    g = compute_clip_features(white() * gate, SR, descriptors=["spectral_variability"])
    assert g["logmel_std"] > 3 * w["logmel_std"]
    lo = scipy.signal.sosfilt(scipy.signal.butter(6, 1000, "lowpass", fs=SR, output="sos"), white(5))
    hi = scipy.signal.sosfilt(scipy.signal.butter(6, 3000, "highpass", fs=SR, output="sos"), white(6))
    switch = np.where(np.sin(2 * np.pi * 4 * T) > 0, lo, hi)
    sw = compute_clip_features(switch, SR, descriptors=["spectral_variability"])
    assert sw["centroid_std"] > 3 * w["centroid_std"]
    # the flux of stationary noise is already large (periodogram fluctuations): switching adds to it
    assert sw["flux_mean"] > 1.05 * w["flux_mean"]


# ---- amplitude -----------------------------------------------------------------------------------
def test_level_known_answer_and_praat_oracle():
    """Sine amplitude 0.5 (1 kHz: whole periods per frame) -> -9.03 dBFS (0.01 dB), dynamic range ~0;
    Praat intensity = dBFS + 93.98 (0.1 dB); librosa frame RMS on the same frames (0.05 dB)."""
    s = compute_clip_features(0.5 * np.sin(2 * np.pi * 1000 * T), SR, descriptors=["amplitude"])
    for name in LEVEL:
        assert s[name] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert s["dynamic_range_db"] < 0.1
    intensity = parselmouth.Sound(SIGNALS["sine440"](), SR).to_intensity(minimum_pitch=100.0).values[0]
    assert np.median(intensity) - 20 * np.log10(1 / 2e-5) == pytest.approx(s["rms_median_dbfs"], abs=0.1)
    rms = librosa.feature.rms(y=SIGNALS["rich"](), frame_length=1024, hop_length=160, center=False)[0]
    assert feats("rich")["rms_p90_dbfs"] == pytest.approx(np.percentile(20 * np.log10(rms), 90), abs=0.05)


# ---- modulation ----------------------------------------------------------------------------------
def test_temporal_modulation_of_am_noise():
    """White noise fully AM at 4 Hz -> tmod_peak_hz 4 +- 0.5 and tmod_band_4 the largest band."""
    y = white(7) * (1 + np.sin(2 * np.pi * 4 * T))
    r = compute_clip_features(y, SR, descriptors=["modulation"])
    assert r["tmod_peak_hz"] == pytest.approx(4.0, abs=0.5)
    # the 1 Hz band (from 0.71 Hz) needs 2 periods (2.83 s) of envelope: NaN on a 2 s clip
    assert np.isnan(r["tmod_band_1"])
    bands = {k: v for k, v in r.items() if k.startswith("tmod_band_") and np.isfinite(v)}
    assert max(bands, key=bands.get) == "tmod_band_4"
    # oracle: the peak of the broadband Hilbert envelope's periodogram (scipy) is at the same place (0.25 Hz)
    env = np.abs(scipy.signal.hilbert(y))
    f, p = scipy.signal.periodogram(env, fs=SR, nfft=16 * T.size, detrend="constant")
    keep = (f > 0.7) & (f < 45)
    assert r["tmod_peak_hz"] == pytest.approx(f[keep][np.argmax(p[keep])], abs=0.25)


def test_envelopes_and_periodogram_equal_scipy():
    """band_envelopes (rfft-based Hilbert, cached anti-alias filter) equals sosfilt + abs(scipy.signal.hilbert) +
    scipy.signal.resample_poly with the edges dropped; modulation_spectrum equals scipy.signal.periodogram (Hann,
    4x zero padding, density) for mean and linear detrending (1e-12 of the largest value); band_power over all
    frequencies is the weighted mean square (1e-12), over 5-9 Hz a 7 Hz sine's A^2/2 (2 %), over 300-400 Hz a
    fifth of the white noise's variance (35 %); an unknown detrend is refused."""
    from math import gcd

    from audioprobe.features.signal.envelopes import _band_filters, _resample, band_envelopes, envelope_edge_s
    from audioprobe.features.signal.periodogram import modulation_spectrum
    for n in (T.size, T.size - 1, 4001):  # next_fast_len pads the odd lengths
        y = SIGNALS["rich"]()[:n]
        bands = np.stack([scipy.signal.sosfilt(sos, y) for sos in _band_filters(SR)])
        env = np.abs(scipy.signal.hilbert(bands, N=scipy.fft.next_fast_len(n), axis=-1))[:, :n]
        common = gcd(1000, SR)
        env = scipy.signal.resample_poly(env, 1000 // common, SR // common, axis=-1)
        edge = round(envelope_edge_s(SR, 1000) * 1000)
        expected = np.maximum(env[:, edge: max(edge, env.shape[-1] - edge)], 0.0)
        np.testing.assert_allclose(band_envelopes(y, sr=SR, env_rate=1000), expected, rtol=0,
                                   atol=1e-12 * expected.max())
    for up, down in ((1, 16), (1, 8), (10, 441)):  # the matrix-product path (up 1) and scipy's
        x = rng(12).random((3, 4411))
        np.testing.assert_allclose(_resample(x, up, down), scipy.signal.resample_poly(x, up, down, axis=-1),
                                   rtol=0, atol=1e-13)
    x = rng(11).standard_normal((6, 1801))
    for detrend, axis, data in (("constant", -1, x), ("linear", 0, x.T)):
        nfft = 1 << int(np.ceil(np.log2(4 * data.shape[axis])))
        f_ref, p_ref = scipy.signal.periodogram(data, fs=1000.0, window="hann", nfft=nfft, detrend=detrend,
                                                scaling="density", axis=axis)
        f, p = modulation_spectrum(data, fs=1000.0, detrend=detrend, axis=axis)
        np.testing.assert_allclose(f, f_ref, rtol=1e-15)
        np.testing.assert_allclose(p, p_ref, rtol=0, atol=1e-12 * p_ref.max())
    # band_power over every frequency is Parseval's sum: the Hann-weighted mean square of the detrended signal
    from audioprobe.features.signal.dsp import hann
    from audioprobe.features.signal.periodogram import band_power

    x = 0.5 * np.sin(2 * np.pi * 7.0 * np.arange(1801) / 1000.0) + 0.1 * rng(13).standard_normal(1801)
    f, p = modulation_spectrum(x, fs=1000.0, detrend="constant", axis=0)
    w, xc = hann(x.size), x - x.mean()
    assert band_power(f, p, 0.0, np.inf) == pytest.approx(np.sum((w * xc) ** 2) / np.sum(w ** 2), rel=1e-12)
    assert band_power(f, p, 5.0, 9.0) == pytest.approx(0.5 ** 2 / 2, rel=0.02)  # the sine's power, A^2 / 2
    # 100 Hz of the white noise's flat density (variance 0.01 over 0-500 Hz): 0.002, +-35 % (periodogram scatter)
    assert band_power(f, p, 300.0, 400.0) == pytest.approx(0.1 ** 2 * 100 / 500, rel=0.35)
    with pytest.raises(ParameterError, match="detrend"):
        modulation_spectrum(x, fs=1000.0, detrend="none", axis=0)


@pytest.mark.parametrize("ripple", [1.0, 2.0])
def test_spectral_modulation_of_ripple_noise(ripple):
    """Noise with a +-10 dB spectral ripple of 1 (2) cyc/oct -> smod_peak 1 (2) +- 0.15 cyc/oct."""
    spectrum = np.fft.rfft(rng(8).standard_normal(T.size))
    f = np.fft.rfftfreq(T.size, 1 / SR)
    gain_db = np.zeros_like(f)
    gain_db[1:] = 10 * np.sin(2 * np.pi * ripple * np.log2(f[1:] / 125.0))
    y = np.fft.irfft(spectrum * 10 ** (gain_db / 20), T.size)
    r = compute_clip_features(0.1 * y / np.std(y), SR, descriptors=["modulation"])
    assert r["smod_peak_cyc_per_oct"] == pytest.approx(ripple, abs=0.15)
    assert r["smod_band_1" if ripple == 1.0 else "smod_band_2"] > 0.5


# ---- onsets and roughness ------------------------------------------------------------------------
def test_onset_rate_of_click_train_and_librosa_oracle():
    """4 Hz click train over 4 s -> 4.0 +- 0.25 onsets/s; a steady tone has none; librosa's own
    onset_detect on the same audio finds the same 16 clicks."""
    t = np.arange(4 * SR) / SR
    y = np.zeros(t.size)
    y[((0.125 + 0.25 * np.arange(16)) * SR).astype(int)] = 0.9
    y += 1e-3 * rng(9).standard_normal(t.size)
    r = compute_clip_features(y, SR, descriptors=["onset_rate"])
    assert r["onset_rate"] == pytest.approx(4.0, abs=0.25)
    assert len(librosa.onset.onset_detect(y=y, sr=SR, hop_length=160)) == 16
    assert feats("sine440")["onset_rate"] == 0.0


def test_roughness_of_am_tones():
    """1 kHz tone fully AM at 70 Hz -> roughness 1/3 (+- 0.05), > 10x the same tone AM at 4 Hz."""
    carrier = np.sin(2 * np.pi * 1000 * T)
    fast = compute_clip_features(0.3 * carrier * (1 + np.cos(2 * np.pi * 70 * T)), SR, descriptors=["roughness"])
    slow = compute_clip_features(0.3 * carrier * (1 + np.cos(2 * np.pi * 4 * T)), SR, descriptors=["roughness"])
    assert fast["roughness"] == pytest.approx(1 / 3, abs=0.05)
    assert fast["roughness"] > 10 * slow["roughness"]


# ---- invariances ---------------------------------------------------------------------------------
def test_gain_shifts_levels_by_6_02_db_and_nothing_else():
    """+6.02 dB (x2): level descriptors shift by 20 log10 2 (1e-6 dB), the MFCC c0 track shifts, every other
    descriptor is unchanged (relative 1e-6, absolute 1e-6)."""
    y = SIGNALS["rich"]()
    base, loud = feats("rich"), compute_clip_features(2 * y, SR)
    for name in LEVEL:
        assert loud[name] - base[name] == pytest.approx(20 * np.log10(2), abs=1e-6)
    for name in REGISTRY:
        if name not in LEVEL:
            assert loud[name] == pytest.approx(base[name], rel=1e-6, abs=1e-6, nan_ok=True), name
    c0_shift = ClipAnalysis(2 * y, SR).mfcc[0] - ClipAnalysis(y, SR).mfcc[0]
    assert np.median(c0_shift) > 1.0


# ---- edge cases ----------------------------------------------------------------------------------
def _spectral_names():
    return [n for n, d in REGISTRY.items() if d.family in ("spectral_shape", "spectral_variability", "modulation")]


@pytest.mark.parametrize("signal", ["silence", "dc", "near_silence"])
def test_silent_clips_give_nan_not_numbers(signal):
    """Digital silence, a pure DC offset and a -90 dBFS sine have no non-silent frame: spectral, pitch,
    modulation and roughness are NaN, voiced fraction and onset rate 0, levels are the floor or the level."""
    y = {"silence": np.zeros(T.size), "dc": np.full(T.size, 0.5),
         "near_silence": 10 ** (-90 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * T)}[signal]
    r = compute_clip_features(y, SR)
    assert r["n_nonsilent_frames"] == 0 and r["n_voiced_frames"] == 0 and r["n_frames"] == 194
    for name in _spectral_names() + ["f0_median", "f0_change_st_per_s", "hnr_db", "roughness"]:
        assert np.isnan(r[name]), name
    assert r["voiced_fraction"] == 0.0 and r["onset_rate"] == 0.0
    expected = -90.0 if signal == "near_silence" else -100.0
    assert r["rms_median_dbfs"] == pytest.approx(expected, abs=0.05)


def test_white_noise_has_no_pitch():
    r = feats("white")
    assert r["n_voiced_frames"] <= 0.1 * r["n_nonsilent_frames"]
    assert np.isfinite(r["centroid_median"]) and np.isfinite(r["tmod_band_4"])


def test_50ms_clip_gives_nan_where_undefined():
    """50 ms: shorter than Praat's 60 ms pitch window (pitch NaN) and than the modulation bands need (NaN); one
    spectral frame (one period of the 20 Hz high-pass: centroid of the 1 kHz tone within 2 %)."""
    y = 0.3 * np.sin(2 * np.pi * 1000 * T[: SR // 20])
    r = compute_clip_features(y, SR)
    assert r["n_frames"] == 1
    for name in ("f0_median", "voiced_fraction", "hnr_db", "tmod_band_1", "tmod_band_16", "centroid_std"):
        assert np.isnan(r[name]), name
    assert r["centroid_median"] == pytest.approx(1000.0, rel=0.02)
    assert r["rms_median_dbfs"] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.05)


def test_nan_and_empty_samples_raise_clip_error():
    y = SIGNALS["sine440"]()
    y[100] = np.nan
    with pytest.raises(ClipError, match="NaN or Inf"):
        compute_clip_features(y, SR)
    with pytest.raises(ClipError, match="zero-length"):
        compute_clip_features(np.zeros(0), SR)
    with pytest.raises(ParameterError, match="config.sr=16000"):
        compute_clip_features(np.zeros(100), 22050)
