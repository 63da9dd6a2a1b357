"""Onsets and roughness: onset rate, and fast (30-150 Hz) envelope modulation.

Onsets: librosa's spectral-flux onset strength on the shared log-mel spectrogram, peak-picked as
``librosa.onset.onset_detect`` does with an absolute threshold (both by :mod:`features.signal.dsp`);
onsets on silent frames are dropped. The rate of a clip without any onset (silence included) is 0
onsets per second; a clip of fewer than two frames has no frame-to-frame change to detect and its
rate is NaN.

Roughness: the share of the octave-band envelopes' power (DC included, summed over bands) that
lies at modulation frequencies of 30-150 Hz, where amplitude fluctuations are heard as rough.
A steady tone gives ~0 and a tone fully modulated at 70 Hz gives 1/3. Like every modulation band
it needs an envelope (the clip less its dropped edges) of at least two periods of its lowest
frequency, 1/15 s (NaN otherwise).
"""
from __future__ import annotations

import numpy as np

from ..clip import ClipAnalysis
from ..signal import dsp
from ..signal.periodogram import band_power
from .modulation import ENVELOPE_PARAMETERS, PERIODOGRAM, lowest_resolved
from .spec import Descriptor

__all__ = ["DESCRIPTORS", "ROUGHNESS_BAND_HZ", "ONSET_DELTA_DB"]

ROUGHNESS_BAND_HZ = (30.0, 150.0)
# Peak-picking threshold on the (unnormalised) onset strength, in dB of mean log-mel increase. librosa's
# default normalises the strength to [0, 1] first, which turns the numerical residue of a steady tone into
# ~20 onsets per second; an absolute threshold does not.
ONSET_DELTA_DB = 2.0


def _onset_rate(an: ClipAnalysis) -> dict[str, float]:
    if an.n_frames < 2:  # an onset is a change between frames: one frame cannot show one
        return {"onset_rate": float("nan")}
    c = an.config
    strength = dsp.onset_strength(an.mel_db)
    onsets = dsp.onset_detect(strength, sr=an.sr, hop_length=c.hop_length, delta=ONSET_DELTA_DB)
    onsets = onsets[onsets < an.n_frames]
    return {"onset_rate": float(np.count_nonzero(an.nonsilent[onsets])) / an.duration_s}


def _roughness(an: ClipAnalysis) -> dict[str, float]:
    span = an.envelopes.shape[-1] / an.config.env_rate
    if an.n_nonsilent == 0 or span == 0 or lowest_resolved(span) > ROUGHNESS_BAND_HZ[0]:
        return {"roughness": float("nan")}
    freqs, power, total = an.envelope_spectrum
    return {"roughness": band_power(freqs, power, *ROUGHNESS_BAND_HZ) / total}


DESCRIPTORS = (
    Descriptor(name="onset_rate", unit="1/s", family="onsets_roughness",
               extractor="librosa.onset.onset_strength + librosa.onset.onset_detect formulas (features.signal.dsp)",
               probe_scale="linear",
               settings=("n_fft", "hop_length", "n_mels", "silence_rel_db", "silence_abs_dbfs"),
               computed="onsets on non-silent frames / clip duration (NaN with fewer than 2 frames)",
               compute=_onset_rate, extra={"onset_strength": "log-mel (power_to_db, top_db 80), librosa defaults",
                                           "onset_detect": {"normalize": False, "delta_db": ONSET_DELTA_DB,
                                                            "others": "librosa defaults"}}),
    Descriptor(name="roughness", unit="fraction", family="onsets_roughness", extractor=PERIODOGRAM,
               probe_scale="linear", settings=("env_rate", "silence_rel_db", "silence_abs_dbfs"),
               computed=f"envelope modulation power in {ROUGHNESS_BAND_HZ[0]:g}-{ROUGHNESS_BAND_HZ[1]:g} Hz / total "
                        "envelope power (NaN when the envelope, the clip less its dropped edges, is shorter than 2 "
                        "periods of 30 Hz: 1/15 s)",
               compute=_roughness, extra={**ENVELOPE_PARAMETERS, "band_hz": list(ROUGHNESS_BAND_HZ)}),
)
