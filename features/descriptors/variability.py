"""Spectral variability: spectral flux, and the spread over time of the centroid, log-mel bands and MFCCs.

Summaries use non-silent frames only; a spread needs at least two of them (NaN otherwise), a
flux needs at least one pair of consecutive non-silent frames.
"""
from __future__ import annotations

import numpy as np

from ..clip import ClipAnalysis
from .spec import Descriptor
from .spectral import LIBROSA_FORMULA, MFCC_PARAMETERS, MFCC_SETTINGS, N_MFCC_REPORTED, STFT_SETTINGS

__all__ = ["DESCRIPTORS", "spectral_flux"]


def spectral_flux(magnitude: np.ndarray, frames: np.ndarray) -> float:
    """Mean frame-to-frame change of L2-normalised magnitude spectra.

    Parameters
    ----------
    magnitude : np.ndarray, shape (n_bins, n_frames)
        STFT magnitude.
    frames : np.ndarray of bool, shape (n_frames,)
        Frames that may take part; a pair counts when both of its frames do.

    Returns
    -------
    float
        Mean over pairs of ``|| s_t / ||s_t|| - s_{t-1} / ||s_{t-1}|| ||_2`` (0 for a steady
        spectrum, at most sqrt(2)); NaN when no pair qualifies. Independent of gain.
    """
    pairs = frames[1:] & frames[:-1]
    if not pairs.any():
        return float("nan")
    norms = np.linalg.norm(magnitude, axis=0)
    usable = frames & (norms > 0)
    pairs &= usable[1:] & usable[:-1]
    if not pairs.any():
        return float("nan")
    unit = magnitude / np.where(norms > 0, norms, 1.0)
    change = np.linalg.norm(unit[:, 1:] - unit[:, :-1], axis=0)
    return float(change[pairs].mean())


def _variability(an: ClipAnalysis) -> dict[str, float]:
    names = ["flux_mean", "centroid_std", "logmel_std"] + [f"mfcc{k:02d}_std" for k in range(1, N_MFCC_REPORTED + 1)]
    out = dict.fromkeys(names, float("nan"))
    out["flux_mean"] = spectral_flux(an.magnitude, an.nonsilent)
    if an.n_nonsilent < 2:
        return out
    out["centroid_std"] = float(np.std(an.centroid))
    out["logmel_std"] = float(np.mean(np.std(an.mel_db[:, an.nonsilent], axis=1)))
    stds = np.std(an.mfcc[1: N_MFCC_REPORTED + 1, an.nonsilent], axis=1)
    out.update({f"mfcc{k:02d}_std": float(v) for k, v in zip(range(1, N_MFCC_REPORTED + 1), stds)})
    return out


_FAMILY = "spectral_variability"

DESCRIPTORS = (
    Descriptor(name="flux_mean", unit="a.u.", family=_FAMILY, extractor="numpy on the shared STFT magnitude",
               probe_scale="linear", settings=STFT_SETTINGS,
               computed="mean L2 distance between L2-normalised magnitude spectra of consecutive non-silent frames",
               compute=_variability),
    Descriptor(name="centroid_std", unit="Hz", family=_FAMILY, extractor=LIBROSA_FORMULA.format("spectral_centroid"),
               probe_scale="linear", settings=STFT_SETTINGS, computed="standard deviation over non-silent frames",
               compute=_variability),
    Descriptor(name="logmel_std", unit="dB", family=_FAMILY, extractor=LIBROSA_FORMULA.format("melspectrogram"),
               probe_scale="linear", settings=STFT_SETTINGS + ("n_mels",),
               computed="mean over mel bands of the standard deviation over non-silent frames of the log-mel power",
               compute=_variability, extra={"log": "power_to_db(ref=1, top_db=80)"}),
) + tuple(
    Descriptor(name=f"mfcc{k:02d}_std", unit="a.u.", family=_FAMILY, extractor=LIBROSA_FORMULA.format("mfcc"),
               probe_scale="linear", settings=MFCC_SETTINGS,
               computed=f"standard deviation of MFCC c{k} over non-silent frames", compute=_variability,
               extra=MFCC_PARAMETERS)
    for k in range(1, N_MFCC_REPORTED + 1)
)
