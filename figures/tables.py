"""Read-only access to the saved tables of a run folder, for figures and the report.

Figures are rebuilt from these tables alone (docs/run-folder.md is the contract). A table
that a stage has not written is reported by :class:`MissingInput`, which
:func:`~audioprobe.figures.make_all` turns into a logged note rather than an error.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import ACTIVATIONS, all_fold_scores, layer_path, list_models, model_order, read_layer
from ..errors import AudioprobeError, ParameterError
from ..runstore import Run

__all__ = ["RunTables", "MissingInput", "headline_scores", "descriptor_columns", "model_order", "layer_names",
           "descriptor_order", "COUNT_COLUMNS"]

#: Integer columns of features.parquet that explain NaNs; they are not descriptors.
COUNT_COLUMNS = ("n_frames", "n_nonsilent_frames", "n_voiced_frames")

_TABLES = {
    "probes": "probes.parquet",
    "stats": "stats.parquet",
    "features": "features.parquet",
    "features_meta": "features_meta.csv",
    "clips": "clips.parquet",
    "failures": "failures.csv",
}


class MissingInput(AudioprobeError):
    """A figure's input is not in the run (its stage has not run, or wrote no matching rows)."""


class RunTables:
    """Lazily loaded tables of one run folder.

    Parameters
    ----------
    run : Run, str or Path
        The run folder; it must exist.

    Examples
    --------
    >>> tables = RunTables("my-run")          # doctest: +SKIP
    >>> tables.require("probes").head()       # doctest: +SKIP
    """

    def __init__(self, run: Run | str | Path):
        self.run = run if isinstance(run, Run) else Run(run, create=False)
        self._cache: dict[str, pd.DataFrame | None] = {}

    def __repr__(self) -> str:
        return f"RunTables({str(self.run.path)!r})"

    def get(self, name: str) -> pd.DataFrame | None:
        """Return table ``name``, or None when the run does not hold it.

        ``name``: ``probes``, ``stats``, ``features``, ``features_meta``, ``clips`` or ``failures``.
        """
        if name not in _TABLES:
            raise ParameterError(f"name must be one of {sorted(_TABLES)}, got {name!r}")
        if name not in self._cache:
            file = _TABLES[name]
            self._cache[name] = self.run.read_table(file) if self.run.exists(file) else None
        return self._cache[name]

    def require(self, name: str) -> pd.DataFrame:
        """Table ``name``; raises :class:`MissingInput` when the run does not hold it."""
        table = self.get(name)
        if table is None:
            raise MissingInput(f"{_TABLES[name]} is absent")
        return table

    @functools.cached_property
    def info(self) -> dict:
        """The content of ``run.json`` (empty dict when absent)."""
        return self.run.info

    def descriptor_names(self) -> list[str] | None:
        """Descriptor names in features_meta.csv order (grouped by family), or None when absent."""
        meta = self.get("features_meta")
        return None if meta is None else [str(n) for n in meta["name"]]

    def state(self) -> dict:
        """Return what the figures and the report are drawn from.

        A hash per saved table, the identity of every model's activations, and the recorded settings and summaries of
        the stages that wrote them.

        Two runs in the same state draw the same figures (the figures stage and the report skip
        work whose state has not changed).
        """
        models = {}
        for name in sorted(self.models):
            layers = Path("activations") / name / "layers.csv"
            models[name] = {"model": {k: v for k, v in self.models[name].items()
                                      if k not in ("timing", "device", "folder")},
                            "layers": self.run.sha256(layers)}
        stages = {name: {"config": record.get("config"), "summary": record.get("summary")}
                  for name, record in sorted(self.info.get("stages", {}).items()) if name not in ("figures", "report")}
        return {"tables": {file: self.run.sha256(file) for file in _TABLES.values()}, "models": models,
                "stages": stages}

    # ---- activations -----------------------------------------------------------------------
    @functools.cached_property
    def models(self) -> dict[str, dict]:
        """``model.json`` of every extracted model, keyed by model folder name.

        As :func:`~audioprobe.contract.list_models` gives them (with ``folder``), in
        :func:`~audioprobe.contract.model_order`.
        """
        root = self.run.file(ACTIVATIONS)
        if not root.is_dir() or not any(root.glob("*/model.json")):
            return {}
        found = {Path(info["folder"]).name: info for info in list_models(self.run)}
        listing = pd.DataFrame([{"model": name, "pretrain_domain": info.get("pretrain_domain", "none"),
                                 "seed": info.get("seed")} for name, info in found.items()])
        return {name: found[name] for name in model_order(listing)}

    def layers(self, model: str) -> pd.DataFrame:
        """``layers.csv`` of ``model``, sorted by ``layer_index``."""
        path = Path(ACTIVATIONS) / model / "layers.csv"
        if not self.run.exists(path):
            raise MissingInput(f"{path} is absent")
        return self.run.read_table(str(path)).sort_values("layer_index", kind="stable").reset_index(drop=True)

    def activations(self, model: str, layer: str, *, rows: np.ndarray | None = None) -> np.ndarray:
        """Pooled activations of one layer, shape (n_rows, pooled_width), float64.

        Parameters
        ----------
        model, layer : str
            Model folder and layer name (as in ``layers.csv``).
        rows : array of int, optional, keyword-only
            Row numbers (in ``clips.parquet`` order) to read; all rows when omitted.

        Raises
        ------
        MissingInput
            The model or its layer array is absent.
        ParameterError
            ``layer`` is not in the model's ``layers.csv``.
        """
        if model not in self.models:
            raise MissingInput(f"{Path(ACTIVATIONS) / model / 'model.json'} is absent")
        layers = self.layers(model)
        match = layers[layers["layer"] == layer]
        if match.empty:
            raise ParameterError(f"layer must be one of {list(layers['layer'])}, got {layer!r}")
        info, row = self.models[model], match.iloc[0]
        path = layer_path(info, row)
        if not path.exists():
            raise MissingInput(f"{path.relative_to(self.run.path)} is absent")
        return read_layer(info, row, len(self.require("clips")), rows=rows)


def descriptor_columns(features: pd.DataFrame) -> list[str]:
    """Return the descriptor columns of a features table (everything but ``clip_id`` and the counts)."""
    return [c for c in features.columns
            if c != "clip_id" and c not in COUNT_COLUMNS and pd.api.types.is_float_dtype(features[c])]


def headline_scores(probes: pd.DataFrame, *, probe: str = "ridge", metric: str = "r2_pooled") -> pd.DataFrame:
    """Rows of ``probes`` with one score per (model, layer, feature).

    Over all folds, trained and evaluated on all clips (:func:`~audioprobe.contract.all_fold_scores`).

    Raises
    ------
    MissingInput
        When ``probes`` has no such rows.
    """
    rows = all_fold_scores(probes, probe=probe, metric=metric)
    if rows.empty:
        raise MissingInput(f"probes.parquet has no {probe} rows with metric {metric!r} over all folds")
    return rows


def layer_names(table: pd.DataFrame) -> dict[int, str]:
    """Tick label of each ``layer_index`` of a table.

    The layer name, or ``"i: a/b"`` when models name the same index differently.
    """
    names = {}
    for index, group in table.groupby("layer_index", sort=True):
        unique = list(dict.fromkeys(group["layer"].astype(str)))
        names[int(index)] = unique[0] if len(unique) == 1 else f"{int(index)}: " + "/".join(unique)
    return names


def descriptor_order(features: pd.Series | list[str], order: list[str] | tuple[str, ...] | None = None
                     ) -> list[str]:
    """Return the distinct descriptors of ``features`` in display order.

    Those in ``order`` first (e.g. features_meta.csv's), then in order of appearance; the aggregate ``all`` last.
    """
    present = list(dict.fromkeys(str(f) for f in features if pd.notna(f)))
    ordered = [f for f in (order or []) if f in present] + [f for f in present if f not in (order or [])]
    return [f for f in ordered if f != "all"] + (["all"] if "all" in present else [])
