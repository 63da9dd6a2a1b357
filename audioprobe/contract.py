"""The run-folder contract in code: file names, columns and dtypes, domains, and the shared readers.

docs/run-folder.md is the human-readable copy of this module; every stage reads and writes a run
folder through these names, so the stages agree on what each file holds.

* File names: :data:`RUN_JSON`, :data:`CLIPS`, :data:`FAILURES`, :data:`FEATURES`, :data:`FEATURES_META`,
  :data:`ACTIVATIONS`, :data:`PROBES`, :data:`OOF`, :data:`STATS`, :data:`STATS_SUMMARY`, :data:`FIGURES`,
  :data:`REPORT`, and :data:`UNITS` (the finished work units of unit-based stages).
* Columns: :data:`TABLE_COLUMNS` maps a table to its columns and dtypes; :func:`check_table` checks a
  table against it.
* Domains: :data:`CLIP_DOMAINS` (what a clip is), :data:`PRETRAIN_DOMAINS` (what a model was
  pretrained on; ``none`` = random weights or unknown), :data:`NONSPEECH_DOMAINS`.
* Readers: :func:`list_models`, :func:`model_layers`, :func:`layer_path`, :func:`read_layer`.
* Scores: :func:`all_fold_scores` (the one score per model x layer x feature that the analysis and the
  figures use) and :func:`model_order` (models by pretraining domain, then seed and name).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ParameterError

if TYPE_CHECKING:  # numpy and pandas are imported by the functions that need them (fast CLI start-up)
    import numpy as np
    import pandas as pd

    from .runstore import Run

__all__ = ["RUN_JSON", "CLIPS", "FAILURES", "FEATURES", "FEATURES_META", "ACTIVATIONS", "PROBES", "OOF", "STATS",
           "STATS_SUMMARY", "FIGURES", "REPORT", "UNITS", "MODEL_JSON", "LAYERS_CSV", "CLIP_DOMAINS",
           "NONSPEECH_DOMAINS", "PRETRAIN_DOMAINS", "FAILURE_COLUMNS", "PROBE_COLUMNS", "OOF_COLUMNS",
           "LAYERS_CSV_COLUMNS", "TABLE_COLUMNS", "check_table", "zarr_store", "list_models", "model_layers",
           "layer_path", "read_layer", "all_fold_scores", "model_order", "SHIPPED_SPEC"]

# ---- file names -----------------------------------------------------------------------------------
RUN_JSON = "run.json"
CLIPS = "clips.parquet"
FAILURES = "failures.csv"
FEATURES = "features.parquet"
FEATURES_META = "features_meta.csv"
ACTIVATIONS = "activations"
MODEL_JSON = "model.json"
LAYERS_CSV = "layers.csv"
PROBES = "probes.parquet"
OOF = "oof.parquet"
STATS = "stats.parquet"
STATS_SUMMARY = "stats_summary.txt"
FIGURES = "figures"
REPORT = "report.html"
UNITS = "units"

# ---- domain vocabulary ------------------------------------------------------------------------------
CLIP_DOMAINS = ("speech", "music", "environmental")
NONSPEECH_DOMAINS = ("music", "environmental")
PRETRAIN_DOMAINS = ("speech", "nonspeech", "mixed", "none")
#: The spec of a shipped domain model, ``DOMAIN/seedK`` (``models/weights/DOMAIN/seedK.pt``).
SHIPPED_SPEC = re.compile(r"^(?P<domain>[a-z]+)/seed(?P<seed>\d+)$")

# ---- columns and dtypes ---------------------------------------------------------------------------
FAILURE_COLUMNS = ["clip_id", "path", "stage", "error_type", "message"]
PROBE_COLUMNS = ["model", "pretrain_domain", "seed", "layer", "layer_index", "pooling", "feature", "probe", "metric",
                 "fold", "train_domain", "eval_domain", "value", "n_clips", "p_value", "ci_low", "ci_high",
                 "model_b", "layer_b", "note"]
OOF_COLUMNS = ["model", "layer", "feature", "clip_id", "group", "domain", "fold", "y_true", "y_pred"]
LAYERS_CSV_COLUMNS = ["layer", "layer_index", "kind", "output_shape", "pooling", "pooled_width",
                      "receptive_field_ms", "receptive_field_hz", "file"]

_S, _I, _F = "string", "Int64", "float64"
#: table name -> {column: dtype} ("string", "Int64" nullable int, "float64"; None = not checked).
TABLE_COLUMNS: dict[str, dict[str, str | None]] = {
    FAILURES: dict.fromkeys(FAILURE_COLUMNS, None),
    PROBES: {"model": _S, "pretrain_domain": _S, "seed": _I, "layer": _S, "layer_index": _I, "pooling": _S,
             "feature": _S, "probe": _S, "metric": _S, "fold": _I, "train_domain": _S, "eval_domain": _S,
             "value": _F, "n_clips": _I, "p_value": _F, "ci_low": _F, "ci_high": _F, "model_b": _S, "layer_b": _S,
             "note": _S},
    OOF: {"model": None, "layer": None, "feature": None, "clip_id": None, "group": None, "domain": None,
          "fold": None, "y_true": _F, "y_pred": _F},
    LAYERS_CSV: dict.fromkeys(LAYERS_CSV_COLUMNS, None),
}


def check_table(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """Check that ``table`` has the columns (in order) and dtypes the contract gives file ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`TABLE_COLUMNS`, e.g. ``"probes.parquet"``.
    table : pd.DataFrame

    Returns
    -------
    pd.DataFrame
        ``table`` itself.

    Raises
    ------
    ParameterError
        Unknown table name, missing or extra columns, or a column of another dtype.
    """
    if name not in TABLE_COLUMNS:
        raise ParameterError(f"no contract for table {name!r}; known: {sorted(TABLE_COLUMNS)}")
    expected = TABLE_COLUMNS[name]
    if list(table.columns) != list(expected):
        raise ParameterError(f"{name}: columns {list(table.columns)} differ from the contract's {list(expected)} "
                             "(docs/run-folder.md)")
    wrong = {c: str(table[c].dtype) for c, dtype in expected.items() if dtype is not None
             and str(table[c].dtype) != dtype}
    if wrong:
        raise ParameterError(f"{name}: column dtypes {wrong} differ from the contract's "
                             f"{ {c: expected[c] for c in wrong} }")
    return table


def zarr_store(path: str | Path):
    """Return a zarr store of the local folder ``path``, taken literally.

    A plain string would be parsed as a URL by zarr >= 3.4, so a layer named ``relu#0`` (a module's first call)
    would be written to ``relu`` (``#0`` read as a fragment): every array of the run is opened through this.
    """
    from zarr.storage import LocalStore

    return LocalStore(str(path))


# ---- readers --------------------------------------------------------------------------------------
def list_models(run: Run, models: str | Sequence[str] | None = None) -> list[dict]:
    """Return the ``model.json`` of every model under ``activations/`` (or of the named ones), sorted by name.

    Each dict gets ``name`` (the folder name when absent) and ``folder`` (absolute path).

    Raises
    ------
    ParameterError
        A named model has no activations, or there are none at all.
    """
    root = run.file(ACTIVATIONS)
    found = sorted(p.parent.name for p in root.glob(f"*/{MODEL_JSON}")) if root.is_dir() else []
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
        info = json.loads((root / name / MODEL_JSON).read_text())
        info.setdefault("name", name)
        info["folder"] = str(root / name)
        out.append(info)
    return out


def model_layers(model: dict, layers: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of the model's ``layers.csv`` (all, or the named layers), in ``layer_index`` order."""
    import pandas as pd

    from .log import logger

    table = pd.read_csv(Path(model["folder"]) / LAYERS_CSV, keep_default_na=False, na_values=[""])
    table["layer"] = table["layer"].astype(str)
    if layers is not None:
        names = [layers] if isinstance(layers, str) else list(layers)
        table = table[table["layer"].isin(names)]
        if table.empty:
            logger.warning("model %s has none of the layers %s", model["name"], names)
    return table.sort_values("layer_index", kind="stable").reset_index(drop=True)


def layer_path(model: dict, layer: pd.Series | dict) -> Path:
    """Path of one layer's zarr array: the ``file`` of its ``layers.csv`` row, else ``<layer>.zarr``.

    Parameters
    ----------
    model : dict
        A :func:`list_models` entry (``folder`` is used).
    layer : pd.Series or dict
        A :func:`model_layers` row (``layer`` and, when present, ``file``).
    """
    name = layer.get("file")
    return Path(model["folder"]) / (name if isinstance(name, str) and name else f"{layer['layer']}.zarr")


def read_layer(model: dict, layer: pd.Series | dict, n_clips: int, *, rows: Sequence[int] | None = None
               ) -> np.ndarray:
    """One layer's pooled activations, float64, shape (n_rows, pooled_width); NaN rows = failed clips.

    Parameters
    ----------
    model : dict
        A :func:`list_models` entry.
    layer : pd.Series or dict
        A :func:`model_layers` row.
    n_clips : int
        Rows of ``clips.parquet``; the array must have exactly this many.
    rows : sequence of int, optional, keyword-only
        Row numbers (``clips.parquet`` order) to read, in this order; all ``n_clips`` rows when omitted.

    Returns
    -------
    np.ndarray, shape (n_rows, pooled_width), float64
        ``n_rows`` is ``len(rows)`` or ``n_clips``.

    Raises
    ------
    ParameterError
        The array is missing or does not have one row per clip of ``clips.parquet``, or a row number is
        outside [0, n_clips).
    """
    import numpy as np
    import zarr

    path = layer_path(model, layer)
    if not path.exists():
        raise ParameterError(f"activation array {str(path)!r} is missing ({LAYERS_CSV} lists it)")
    array = zarr.open_array(store=zarr_store(path), mode="r")
    if array.ndim != 2 or array.shape[0] != n_clips:
        raise ParameterError(f"{str(path)!r} has shape {array.shape}; expected ({n_clips}, n_units), one row per "
                             f"clip of {CLIPS}")
    if rows is None:
        return np.asarray(array[:], dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= n_clips):
        raise ParameterError(f"rows must lie in [0, {n_clips}) (rows of {CLIPS}), got {rows.min()}..{rows.max()}")
    return np.asarray(array.get_orthogonal_selection((rows, slice(None))), dtype=np.float64)


# ---- scores ---------------------------------------------------------------------------------------
def all_fold_scores(probes: pd.DataFrame, *, probe: str = "ridge", metric: str = "r2_pooled",
                    train_domain: str = "all", eval_domain: str = "all") -> pd.DataFrame:
    """Return the rows of ``probes.parquet`` that give one score per model x layer x feature.

    Rows of ``probe`` and ``metric`` computed over all folds (``fold`` <NA>), for one (``train_domain``,
    ``eval_domain``) pair, by default trained and evaluated on all clips; where the table has no such column, or
    the column is <NA> (probes without a domain split), the row counts as ``"all"``.

    Parameters
    ----------
    probes : pd.DataFrame
        A table with the columns of :data:`PROBE_COLUMNS` (``probe``, ``metric`` and ``fold`` at least).
    probe, metric : str, keyword-only
        E.g. ``"ridge"`` and ``"r2_pooled"`` (the pooled out-of-fold R^2).
    train_domain, eval_domain : str, keyword-only
        ``"all"`` or a clip domain.

    Returns
    -------
    pd.DataFrame
        The selected rows, index reset; empty when the table has none.
    """
    keep = (probes["probe"] == probe) & (probes["metric"] == metric) & probes["fold"].isna()
    keep = keep.fillna(False).astype(bool)
    for column, value in (("train_domain", train_domain), ("eval_domain", eval_domain)):
        if column in probes.columns:
            match = (probes[column] == value).fillna(False).astype(bool)
            keep &= match | probes[column].isna() if value == "all" else match
    return probes[keep].reset_index(drop=True)


def model_order(table: pd.DataFrame) -> list[str]:
    """Distinct ``model`` of a table, by :data:`PRETRAIN_DOMAINS` order (unknown domains last), then seed, name.

    Parameters
    ----------
    table : pd.DataFrame
        Columns ``model``, ``pretrain_domain`` and ``seed`` (NA seeds come first within a domain).
    """
    import pandas as pd

    models = table[["model", "pretrain_domain", "seed"]].drop_duplicates("model")
    rank = {d: i for i, d in enumerate(PRETRAIN_DOMAINS)}
    models = models.assign(_rank=models["pretrain_domain"].map(lambda d: rank.get(d, len(rank))),
                           _seed=pd.to_numeric(models["seed"], errors="coerce").fillna(-1))
    return [str(m) for m in models.sort_values(["_rank", "_seed", "model"], kind="stable")["model"]]
