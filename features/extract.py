"""Per-clip descriptor extraction and the corpus-level entry point.

:func:`compute_clip_features` computes the selected descriptors of one decoded clip, sharing one
STFT, one pitch track and one set of band envelopes between them (:class:`ClipAnalysis`).
:func:`extract_features` maps it over a manifest with :func:`audioprobe.runner.map_clips`: all
cores by default or a dask scheduler, failures recorded per clip, resumable in a run folder.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import decode_audio
from ..contract import FAILURE_COLUMNS, FAILURES, FEATURES, FEATURES_META
from ..errors import StageError
from ..log import logger
from ..manifest import as_clip_table, table_sha256
from ..runner import blas_threads, map_clips
from ..runstore import ChunkStore, Run, jsonable
from .clip import ClipAnalysis
from .config import DEFAULT_F0_CEILING, DEFAULT_F0_FLOOR, DEFAULT_SR, FULL_SCALE_UNIT, AnalysisConfig
from .registry import COUNT_COLUMNS, REGISTRY, descriptor_table, resolve_descriptors

__all__ = ["compute_clip_features", "extract_features", "STAGE"]

STAGE = "features"


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


def _features_for_clip(row: dict, *, names: list[str], config: AnalysisConfig) -> dict:
    """Describe one manifest row: decode at the analysis rate, then describe (the runner's per-clip pure function)."""
    decoded = decode_audio(row["audio_path"], sr=config.sr, clip_id=str(row["clip_id"]))
    return compute_clip_features(decoded.y, config.sr, descriptors=names, config=config,
                                 n_over_full_scale=decoded.n_over_full_scale)


def _tidy(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    columns = ["clip_id", *names, *COUNT_COLUMNS]
    if table.empty:
        table = pd.DataFrame(columns=columns)
    dtypes = {"clip_id": str, **dict.fromkeys(names, np.float64), **dict.fromkeys(COUNT_COLUMNS, np.int64)}
    return table[columns].astype(dtypes).reset_index(drop=True)


def _check_produced(table: pd.DataFrame, failures: pd.DataFrame, n_clips: int, where: str) -> pd.DataFrame:
    """``table``, or :class:`StageError` when no clip succeeded (a stage that produced nothing fails)."""
    if table.empty:
        first = failures.iloc[0] if len(failures) else None
        raise StageError(f"{STAGE}: no clip of {n_clips} succeeded" + (
            f" (first failure, clip {first['clip_id']!r}: {first['error_type']}: {first['message']})"
            if first is not None else "") + f"; see {where}")
    return table


def extract_features(manifest_or_paths: str | Path | pd.DataFrame | Sequence[str | Path], *,
                     descriptors: Iterable[str] | str | None = None, pitch: str = "praat", sr: int = DEFAULT_SR,
                     f0_floor: float = DEFAULT_F0_FLOOR, f0_ceiling: float = DEFAULT_F0_CEILING,
                     n_jobs: int | None = None, scheduler: str | None = None, run: Run | str | Path | None = None,
                     force: bool = False) -> pd.DataFrame:
    """Compute the descriptor table of a set of clips.

    Every clip is decoded and resampled to ``sr`` (so results do not depend on the file's rate),
    its DC and sub-20 Hz drift are removed by one high-pass that every descriptor family sees, and
    the selected descriptors are computed from one shared STFT and one pitch track. A clip whose
    file exceeds full scale is described, with ``n_over_full_scale`` > 0 and NaN dBFS levels.

    Parameters
    ----------
    manifest_or_paths : manifest CSV path, manifest DataFrame, or sequence of audio paths
        See :func:`audioprobe.manifest.as_clip_table`.
    descriptors : iterable of str, optional
        Descriptor and/or family names; default all (``list(REGISTRY)``).
    pitch : {"praat", "pyin"}
        Pitch tracker: Praat autocorrelation (default, fast) or librosa pyin (~35x slower).
    sr : int
        Analysis rate, Hz. Default 16000.
    f0_floor, f0_ceiling : float
        Pitch search range, Hz. Default 50-2000 Hz (voices and instruments).
    n_jobs : int, optional
        Worker processes; default all cores; 1 runs in this process.
    scheduler : str, optional
        ``"local"`` or a dask scheduler address ``"tcp://host:port"``.
    run : Run or path, optional
        A run folder: finished clips are kept in chunks (a re-run resumes), failures go to
        ``failures.csv``, and ``features.parquet``, ``features_meta.csv``, ``clips.parquet`` and
        the ``features`` stage record in ``run.json`` are written. A stage already complete with
        the same settings and clips is not recomputed.
    force : bool
        With ``run``: recompute every clip, even when the stage is up to date.

    Returns
    -------
    pd.DataFrame
        One row per clip that succeeded, in manifest order: ``clip_id``, one float64 column per
        descriptor (NaN = undefined), and int64 ``n_frames``, ``n_nonsilent_frames``,
        ``n_voiced_frames``, ``n_over_full_scale``. Failed clips are absent (see ``failures.csv`` or the log).

    Raises
    ------
    ParameterError
        Unknown descriptor, tracker or invalid settings, before any clip is read: a pitch range the
        tracker cannot use (pyin: ``f0_floor >= 2 sr / 1024``, ``f0_ceiling / f0_floor`` at least 4
        semitones at the 10 ms hop; see :class:`AnalysisConfig`).
    StageError
        The first clips all failed with one error (a setting the analysis cannot use), or no clip
        succeeded; with ``run`` the stage is recorded as failed.
    """
    config = AnalysisConfig(sr=sr, pitch=pitch, f0_floor=float(f0_floor), f0_ceiling=float(f0_ceiling))
    names = resolve_descriptors(descriptors)
    clips = as_clip_table(manifest_or_paths)
    func = partial(_features_for_clip, names=names, config=config)
    if run is None:
        result = map_clips(func, clips, n_jobs=n_jobs, scheduler=scheduler, stage=STAGE, desc=STAGE)
        return _check_produced(_tidy(result.table, names), result.failures, len(clips), "the failures above")

    run = run if isinstance(run, Run) else Run(run)
    run.write_clips(clips)
    stage_config = jsonable({"descriptors": names, "analysis": config.as_dict(),
                                "clips_sha256": table_sha256(clips, ["clip_id", "audio_path"])})
    previous = run.stage_record(STAGE)
    if force or (previous and previous.get("config") != stage_config):
        if previous and not force:
            logger.info("%s: settings changed since the last run; discarding its partial results", STAGE)
        ChunkStore(run, STAGE).clear()
    with run.stage(STAGE, config=stage_config,
                   inputs={"clips_sha256": stage_config["clips_sha256"]}, outputs=(FEATURES, FEATURES_META),
                   force=force) as stage:
        if stage.up_to_date:
            logger.info("%s: up to date in %s (same settings and clips); not recomputed (--force recomputes)",
                        STAGE, run.path)
            return run.read_table(FEATURES)
        result = map_clips(func, clips, run=run, stage=STAGE, n_jobs=n_jobs, scheduler=scheduler, desc=STAGE)
        table = _check_produced(_tidy(result.table, names), result.failures, len(clips), str(run.file(FAILURES)))
        run.write_table(FEATURES, table)
        run.write_table(FEATURES_META, descriptor_table(names, config=config))
        if not run.exists(FAILURES):
            run.write_table(FAILURES, pd.DataFrame(columns=FAILURE_COLUMNS))
        ChunkStore(run, STAGE).clear()
        stage.complete(n_clips=len(clips), n_succeeded=len(table), n_failed=len(result.failures),
                       manifest=clips.attrs.get("source"))
    logger.info("%s: %d of %d clips described (%d descriptors) in %s", STAGE, len(table), len(clips), len(names),
                run.path)
    return table
