"""The corpus-level entry point of descriptor extraction.

:func:`extract_features` maps :func:`features.describe.features_for_clip` (decode, then
:func:`~features.describe.compute_clip_features`) over a manifest with :func:`audioprobe.runner.map_clips`: all
cores by default or a dask scheduler, failures recorded per clip, resumable in a run folder.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import FAILURE_COLUMNS, FAILURES, FEATURES, FEATURES_META
from ..errors import StageError
from ..log import logger
from ..manifest import as_clip_table, table_sha256
from ..runner import map_clips
from ..runstore import ChunkStore, Run, jsonable
from .config import DEFAULT_F0_CEILING, DEFAULT_F0_FLOOR, DEFAULT_SR, AnalysisConfig
from .describe import features_for_clip
from .meta import descriptor_table
from .registry import COUNT_COLUMNS, resolve_descriptors

__all__ = ["extract_features", "STAGE"]

STAGE = "features"


def _tidy(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    columns = ["clip_id", *names, *COUNT_COLUMNS]
    if table.empty:
        table = pd.DataFrame(columns=columns)
    dtypes = {"clip_id": str, **dict.fromkeys(names, np.float64), **dict.fromkeys(COUNT_COLUMNS, np.int64)}
    table = table[columns].reset_index(drop=True)
    for column, dtype in dtypes.items():  # only the columns not of their dtype: a whole-table astype costs ~10 ms
        if table[column].dtype != dtype:
            table[column] = table[column].astype(dtype)
    return table


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
    func = partial(features_for_clip, names=names, config=config)
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
