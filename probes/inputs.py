"""Read what the probes need from a run folder (docs/run-folder.md), one layer at a time.

* :func:`probe_targets`: descriptors of every clip of ``clips.parquet`` (rows in that order), on
  their probe scale from ``features_meta.csv`` (``log`` -> natural log; non-positive values of a
  log-scale descriptor become NaN and are counted).
* :func:`list_models` / :func:`model_layers`: ``activations/<model>/model.json`` and ``layers.csv``.
* :func:`read_layer`: one ``<layer>.zarr`` array as float64, shape (n_clips, pooled_width).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..log import logger
from ..runstore import Run

__all__ = ["probe_targets", "list_models", "model_layers", "read_layer", "PROBE_SCALES"]

PROBE_SCALES = {"linear": lambda v: v, "log": np.log}


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


def list_models(run: Run, models=None) -> list[dict]:
    """The ``model.json`` of every model under ``activations/`` (or of the named ones), by name."""
    root = run.file("activations")
    found = sorted(p.parent.name for p in root.glob("*/model.json")) if root.is_dir() else []
    if models is None:
        names = found
    else:
        names = [models] if isinstance(models, str) else list(models)
        unknown = [m for m in names if m not in found]
        if unknown:
            raise ParameterError(f"models {unknown} have no activations in {str(root)!r}; available: {found}")
    if not names:
        raise ParameterError(f"no model activations under {str(root)!r}: run `audioprobe extract` first")
    out = []
    for name in names:
        info = json.loads((root / name / "model.json").read_text())
        info.setdefault("name", name)
        info["folder"] = str(root / name)
        out.append(info)
    return out


def model_layers(model: dict, layers=None) -> pd.DataFrame:
    """Rows of the model's ``layers.csv`` (all, or the named layers), in ``layer_index`` order."""
    table = pd.read_csv(Path(model["folder"]) / "layers.csv", keep_default_na=False, na_values=[""])
    table["layer"] = table["layer"].astype(str)
    if layers is not None:
        names = [layers] if isinstance(layers, str) else list(layers)
        table = table[table["layer"].isin(names)]
        if table.empty:
            logger.warning("model %s has none of the layers %s", model["name"], names)
    return table.sort_values("layer_index", kind="stable").reset_index(drop=True)


def read_layer(model: dict, layer: pd.Series, n_clips: int) -> np.ndarray:
    """One layer's pooled activations, float64, shape (n_clips, pooled_width); NaN rows = failed clips."""
    import zarr

    name = layer.get("file")
    path = Path(model["folder"]) / (name if isinstance(name, str) and name else f"{layer['layer']}.zarr")
    if not path.exists():
        raise ParameterError(f"activation array {str(path)!r} is missing (layers.csv lists it)")
    X = np.asarray(zarr.open_array(str(path), mode="r")[:], dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != n_clips:
        raise ParameterError(f"{str(path)!r} has shape {X.shape}; expected ({n_clips}, n_units), one row per clip "
                             "of clips.parquet")
    return X
