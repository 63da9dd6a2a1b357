"""The descriptor metadata table, ``features_meta.csv``: unit, family, extractor, probe scale, parameters."""
from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from .config import AnalysisConfig
from .registry import REGISTRY, resolve_descriptors

__all__ = ["META_COLUMNS", "descriptor_table"]

META_COLUMNS = ("name", "unit", "family", "extractor", "probe_scale", "parameters")


def descriptor_table(descriptors: Iterable[str] | str | None = None, *,
                     config: AnalysisConfig | None = None) -> pd.DataFrame:
    """Build the ``features_meta.csv`` table: one row per descriptor column.

    Parameters
    ----------
    descriptors : iterable of str, optional
        As in :func:`resolve_descriptors`; default all.
    config : AnalysisConfig, optional
        The settings whose values are recorded; default the defaults.

    Returns
    -------
    pd.DataFrame
        Columns ``name``, ``unit``, ``family``, ``extractor``, ``probe_scale``, ``parameters``
        (JSON object of every parameter the values depend on).
    """
    config = config or AnalysisConfig()
    rows = [{"name": d.name, "unit": d.unit, "family": d.family, "extractor": d.extractor,
             "probe_scale": d.probe_scale, "parameters": json.dumps(d.parameters(config), sort_keys=True)}
            for d in (REGISTRY[n] for n in resolve_descriptors(descriptors))]
    return pd.DataFrame(rows, columns=list(META_COLUMNS))
