"""Audio loading: formats, rates, channels and every kind of bad file."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from synth import tone

from audioprobe.audio import audio_info, load_audio
from audioprobe.errors import ClipError, ParameterError


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_resampled_tone_keeps_its_pitch_and_length(tmp_path, sr):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, sr=sr, seconds=1.0), sr)
    y = load_audio(path, sr=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spectrum) * 16000 / y.size - 440.0) <= 1.0
    # amplitude is kept (0.5 sine -> rms 0.3536) away from the resampler's edges
    assert np.sqrt(np.mean(y[2000:-2000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_native_rate_kept_when_sr_none(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(sr=22050), 22050)
    assert load_audio(path, sr=None).size == tone(sr=22050).size


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "st.wav"
    left, right = tone(300.0), np.zeros(8000, np.float32)
    sf.write(path, np.stack([left, right], axis=1), 16000)
    y = load_audio(path, sr=16000)
    np.testing.assert_allclose(y, left / 2, atol=1e-4)


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_24", "wav"), ("FLAC", "PCM_16", "flac"),
                                            ("OGG", "VORBIS", "ogg"), ("WAV", "FLOAT", "wav")])
def test_formats_decode(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"x.{ext}"
    x = tone(440.0, seconds=1.0)
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y = load_audio(path, sr=16000)
    assert audio_info(path).subtype == subtype
    tol = 0.05 if subtype == "VORBIS" else 1e-4
    assert np.sqrt(np.mean((y[:15000] - x[:15000]) ** 2)) < tol


def test_mp3_decodes(tmp_path):
    path = tmp_path / "x.mp3"
    try:
        sf.write(path, tone(440.0, seconds=1.0), 16000, format="MP3", subtype="MPEG_LAYER_III")
    except Exception:
        pytest.skip("this libsndfile build cannot write MP3")
    y = load_audio(path, sr=16000)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / y.size - 440.0) < 2.0


@pytest.mark.parametrize("make,reason", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 20), "cannot decode"),
    (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "zero-length"),
    (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT"), "NaN"),
    (lambda p: sf.write(p, np.array([0.1, np.inf, 0.2] * 100, np.float32), 16000, subtype="FLOAT"), "NaN or Inf"),
])
def test_bad_files_raise_clip_error_naming_clip_and_file(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(ClipError, match=reason) as info:
        load_audio(path, clip_id="clip-7")
    assert info.value.clip_id == "clip-7" and info.value.path == str(path)
    assert "clip-7" in str(info.value) and str(path) in str(info.value)


def test_clip_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(ClipError("broken", clip_id="a", path="/x.wav")))
    assert (err.clip_id, err.path, str(err)) == ("a", "/x.wav", "clip 'a' file '/x.wav': broken")


def test_bad_sample_rate_argument(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(), 16000)
    with pytest.raises(ParameterError, match="sr must be a positive integer"):
        load_audio(path, sr=0)
