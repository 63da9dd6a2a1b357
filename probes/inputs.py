"""Read what the probes need from a run folder (docs/run-folder.md), one layer at a time.

* :func:`probe_targets`: descriptors of every clip of ``clips.parquet`` (rows in that order), on
  their probe scale from ``features_meta.csv`` (``log`` -> natural log; non-positive values of a
  log-scale descriptor become NaN and are counted).

The model and layer readers are the run folder's own (:mod:`audioprobe.contract`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..features.config import PROBE_SCALES
from ..log import logger
from ..runstore import Run

__all__ = ["probe_targets", "PROBE_SCALES"]


def probe_targets(run: Run, clips: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Descriptors on their probe scale, one row per clip of ``clips`` (NaN where undefined or missing).

    Parameters
    ----------
    run : Run
    clips : pd.DataFrame
        The run's clip table (``clip_id`` in activation-row order).

    Returns
    -------
    targets : pd.DataFrame, shape (n_clips, n_descriptors)
        Columns in ``features_meta.csv`` order; index = clip ids.
    meta : pd.DataFrame
        ``features_meta.csv`` rows of those descriptors.
    """
    features = run.read_table("features.parquet")
    meta = run.read_table("features_meta.csv")
    missing = {"name", "family", "probe_scale"} - set(meta.columns)
    if missing:
        raise ParameterError(f"features_meta.csv lacks column(s) {sorted(missing)}; see docs/run-folder.md")
    meta = meta[meta["name"].isin(features.columns)].reset_index(drop=True)
    if meta.empty:
        raise ParameterError("no descriptor of features_meta.csv is a column of features.parquet")
    table = features.assign(clip_id=features["clip_id"].astype(str)).set_index("clip_id")
    table = table.reindex(clips["clip_id"].astype(str))
    targets = {}
    for name, scale in zip(meta["name"], meta["probe_scale"]):
        if scale not in PROBE_SCALES:
            raise ParameterError(f"features_meta.csv: probe_scale of {name!r} must be one of "
                                 f"{sorted(PROBE_SCALES)}, got {scale!r}")
        values = table[name].to_numpy(dtype=np.float64)
        if scale == "log":
            bad = values <= 0
            if bad.any():
                logger.warning("%s: %d non-positive value(s) have no log; treated as missing", name, int(bad.sum()))
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(bad, np.nan, np.log(np.where(bad, 1.0, values)))
        targets[name] = values
    return pd.DataFrame(targets, index=table.index), meta
