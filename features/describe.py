"""The descriptors of one clip: what a worker process of :func:`features.extract.extract_features` runs.

:func:`compute_clip_features` computes the selected descriptors of one decoded clip, sharing one
STFT, one pitch track and one set of band envelopes between them (:class:`ClipAnalysis`);
:func:`features_for_clip` decodes a manifest row first. Neither pandas nor joblib is imported here,
so that worker processes start fast (:mod:`audioprobe.workers`).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..audio import decode_audio
from ..workers import blas_threads
from .clip import ClipAnalysis
from .config import FULL_SCALE_UNIT, AnalysisConfig
from .registry import REGISTRY, resolve_descriptors

__all__ = ["compute_clip_features", "features_for_clip"]


def compute_clip_features(y: np.ndarray, sr: int, *, descriptors: Iterable[str] | str | None = None,
                          config: AnalysisConfig | None = None,
                          n_over_full_scale: int | None = None) -> dict[str, float | int]:
    """Descriptors of one clip.

    Every family is computed from the same analysis signal (:func:`features.signal.preprocess.clean_signal`:
    mean removed, zero-phase high-pass at ``config.lowcut_hz``). A clip beyond full scale
    (``n_over_full_scale`` > 0) keeps every scale-invariant descriptor, and its dBFS levels are NaN.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono samples at ``config.sr`` Hz; full scale is 1.
    sr : int
        Sample rate of ``y``, Hz; must equal ``config.sr`` (resample first).
    descriptors : iterable of str, optional
        Descriptor or family names (see :data:`REGISTRY`); default all.
    config : AnalysisConfig, optional
    n_over_full_scale : int, optional
        Samples of the source file beyond full scale (:func:`audioprobe.audio.decode_audio` counts
        them before channel averaging and resampling); default: counted in ``y``.

    Returns
    -------
    dict
        ``{name: float}`` for each selected descriptor (NaN = undefined for this clip), then the int
        counts ``n_frames``, ``n_nonsilent_frames``, ``n_voiced_frames`` and ``n_over_full_scale``.

    Raises
    ------
    ClipError
        Empty signal or NaN/Inf samples.
    """
    names = resolve_descriptors(descriptors)
    analysis = ClipAnalysis(y, sr, config, n_over_full_scale=n_over_full_scale)
    values: dict[str, float] = {}
    # The matrices are small: one BLAS thread per clip is faster, and workers run clips in parallel.
    with blas_threads(1):
        for name in names:
            if name not in values:
                values.update(REGISTRY[name].compute(analysis))
    beyond_full_scale = analysis.n_over_full_scale > 0
    out: dict[str, float | int] = {
        name: float("nan") if beyond_full_scale and REGISTRY[name].unit == FULL_SCALE_UNIT else float(values[name])
        for name in names}
    out.update(n_frames=analysis.n_frames, n_nonsilent_frames=analysis.n_nonsilent,
               n_voiced_frames=analysis.pitch.n_voiced, n_over_full_scale=analysis.n_over_full_scale)
    return out


def features_for_clip(row: dict, *, names: list[str], config: AnalysisConfig) -> dict:
    """Describe one manifest row: decode at the analysis rate, then describe (the runner's per-clip pure function)."""
    decoded = decode_audio(row["audio_path"], sr=config.sr, clip_id=str(row["clip_id"]))
    return compute_clip_features(decoded.y, config.sr, descriptors=names, config=config,
                                 n_over_full_scale=decoded.n_over_full_scale)
