"""The methods paragraph and the parameter / provenance tables of a run, written from what the run
recorded (run.json and the saved tables), never from defaults."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .tables import RunTables

__all__ = ["methods_paragraph", "recorded_parameters", "stage_table", "environment_table", "find_parameter"]

NOT_RECORDED = "not recorded"

# Names under which stages may record a parameter in run.json, most specific first.
_KEYS = {
    "descriptors": ("descriptors", "features", "descriptor_names"),
    "pitch": ("pitch_tracker", "f0_tracker", "pitch_method", "f0_method", "pitch", "f0"),
    "pooling": ("pooling",),
    "folds": ("n_splits", "n_folds", "cv_folds", "folds", "cv"),
    "alphas": ("alphas", "alpha_grid"),
    "permutations": ("n_permutations", "permutations", "n_perm"),
    "bootstrap": ("n_bootstrap", "n_bootstraps", "n_boot", "bootstrap"),
    "test": ("test",),
    "correction": ("correction", "fdr", "multiple_comparisons"),
    "unit": ("unit", "unit_of_inference"),
}


def _walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) of a nested dict; lists of scalars are leaves."""
    if isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _walk(obj[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def find_parameter(info: dict, names: Sequence[str], *, stages: Sequence[str] | None = None) -> Any:
    """The first value recorded in a stage's ``config`` under one of ``names`` (searched in nested
    dicts too), or None.

    Parameters
    ----------
    info : dict
        run.json.
    names : sequence of str
        Candidate keys, most specific first.
    stages : sequence of str, optional, keyword-only
        Stages to search, in order; all by default.
    """
    records = info.get("stages", {})
    order = list(stages) if stages is not None else list(records)
    for name in names:
        for stage in order:
            config = records.get(stage, {}).get("config", {})
            for key, value in _walk(config):
                if key.split(".")[-1] == name and value not in (None, "", []):
                    return value
    return None


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _alpha_text(alphas: Any) -> str:
    values = np.asarray(alphas, dtype=float).ravel() if isinstance(alphas, (list, tuple)) else None
    if values is None or values.size < 3 or np.any(values <= 0):
        return _text(alphas)
    return f"{values.size} values from {values.min():g} to {values.max():g} (log-spaced)" if np.allclose(
        np.diff(np.log10(values)), np.log10(values[1] / values[0])) else _text(alphas)


def _unique(table: pd.DataFrame | None, column: str) -> list[str]:
    if table is None or column not in table:
        return []
    return sorted(set(table[column].dropna().astype(str)) - {""})


def _sentence(label: str, value: Any) -> str:
    return f"{label}: {NOT_RECORDED}" if value in (None, "", []) else f"{label}: {_text(value)}"


def methods_paragraph(tables: RunTables) -> str:
    """One paragraph saying what was done, with every parameter the run recorded.

    Facts come from the saved tables where they hold them (clips, descriptors, models and
    their domains and seeds, pooling, folds, tests) and otherwise from the stages' configs
    in run.json; a parameter recorded nowhere is written as "not recorded".
    """
    info = tables.info
    parts = []
    clips = tables.get("clips")
    if clips is not None:
        counts = clips["domain"].astype(str).value_counts().sort_index()
        parts.append(f"The run holds {len(clips)} clips ("
                     + ", ".join(f"{n} {d}" for d, n in counts.items()) + ").")
    meta = tables.get("features_meta")
    if meta is not None:
        described = [f"{r.name} [{r.unit}]" if isinstance(r.unit, str) and r.unit else str(r.name)
                     for r in meta.itertuples()]
        logged = [str(n) for n, s in zip(meta["name"], meta.get("probe_scale", [])) if s == "log"]
        parts.append(f"Descriptors ({len(meta)}): {', '.join(described)}"
                     + (f"; probed on a log scale: {', '.join(logged)}." if logged else "."))
    else:
        parts.append(_sentence("Descriptors", find_parameter(info, _KEYS["descriptors"], stages=["features"]))
                     + ".")
    pitch = find_parameter(info, _KEYS["pitch"], stages=["features"])
    if pitch is None and meta is not None and "family" in meta:
        rows = meta[meta["family"].astype(str).str.contains("pitch|f0", case=False)]
        pitch = "; ".join(f"{r.extractor} {r.parameters}" for r in rows.itertuples()) or None
    parts.append(_sentence("Pitch tracker", pitch) + ".")
    if tables.models:
        by_domain: dict[str, list[str]] = {}
        for name, model in tables.models.items():
            seed = model.get("seed")
            control = f", {model['control']}" if model.get("control") else ""
            by_domain.setdefault(str(model.get("pretrain_domain", "none")), []).append(
                f"{name} ({model.get('spec', '?')}, seed {seed if seed is not None else 'none'}{control})")
        parts.append(f"Models ({len(tables.models)}), by pretraining domain: "
                     + "; ".join(f"{d}: {', '.join(v)}" for d, v in by_domain.items()) + ".")
        poolings = sorted({p for name in tables.models for p in _unique(tables.layers(name), "pooling")})
        parts.append(_sentence("Pooling", poolings or find_parameter(info, _KEYS["pooling"])) + ".")
    probes = tables.get("probes")
    if probes is not None:
        parts.append(f"Probes: {', '.join(_unique(probes, 'probe'))}.")
    folds = find_parameter(info, _KEYS["folds"], stages=["probe"])
    if folds is None and probes is not None:
        ridge_folds = probes.loc[probes["probe"] == "ridge", "fold"].dropna()
        folds = int(ridge_folds.max()) + 1 if len(ridge_folds) else None
    parts.append(_sentence("Cross-validation folds (grouped by the manifest's group)", folds) + ".")
    alphas = find_parameter(info, _KEYS["alphas"], stages=["probe"])
    chosen = (probes.loc[(probes["probe"] == "ridge") & (probes["metric"] == "alpha"), "value"].dropna()
              if probes is not None else pd.Series(dtype=float))
    selected = (f" (alphas selected per fold and target: {chosen.min():.3g} to {chosen.max():.3g})"
                if len(chosen) else "")
    parts.append(_sentence("Ridge alpha grid", None if alphas is None else _alpha_text(alphas)) + selected + ".")
    parts.append(_sentence("Permutations", find_parameter(info, _KEYS["permutations"])) + ".")
    bootstrap = find_parameter(info, _KEYS["bootstrap"])
    if bootstrap is not None:
        parts.append(_sentence("Bootstrap resamples", bootstrap) + ".")
    stats = tables.get("stats")
    for label, key in (("Test", "test"), ("Correction", "correction"), ("Unit of inference", "unit")):
        value = _unique(stats, key) or find_parameter(info, _KEYS[key], stages=["compare"])
        parts.append(_sentence(label, value) + ".")
    if stats is not None and "seed" in _unique(stats, "unit"):
        parts.append("With the seed as the unit, inference generalises to other training runs of each domain.")
    elif stats is not None and "clip" in _unique(stats, "unit"):
        parts.append("With the clip as the unit (one model per domain), inference does not generalise beyond "
                     "these models.")
    seeds = {stage: record.get("seeds") for stage, record in info.get("stages", {}).items() if record.get("seeds")}
    parts.append(_sentence("Random seeds", "; ".join(f"{s}: {_text(v)}" for s, v in seeds.items()) or None) + ".")
    return " ".join(parts)


def _stages(info: dict) -> list[tuple[str, dict]]:
    """Stages of run.json in the order they first started (run.json itself keeps keys sorted)."""
    records = info.get("stages", {})
    return sorted(records.items(), key=lambda item: (str(item[1].get("first_started") or item[1].get("started")
                                                         or ""), item[0]))


def recorded_parameters(info: dict) -> pd.DataFrame:
    """Every parameter of every stage's config in run.json: columns ``stage``, ``parameter``, ``value``."""
    rows = [{"stage": stage, "parameter": key, "value": _text(value)}
            for stage, record in _stages(info)
            for section in ("config", "seeds", "inputs")
            for key, value in _walk(record.get(section, {}), section)]
    return pd.DataFrame(rows, columns=["stage", "parameter", "value"])


def stage_table(info: dict) -> pd.DataFrame:
    """One row per stage of run.json: status, first start, last start, finish, summary."""
    rows = [{"stage": stage, "status": record.get("status"), "first_started": record.get("first_started"),
             "started": record.get("started"), "finished": record.get("finished"),
             "summary": _text(record.get("summary", {}))}
            for stage, record in _stages(info)]
    return pd.DataFrame(rows, columns=["stage", "status", "first_started", "started", "finished", "summary"])


def environment_table(info: dict) -> pd.DataFrame:
    """Provenance of run.json's ``environment``: git hash, Python, platform, host, command line and
    every library version, as ``item``/``value`` rows."""
    env = info.get("environment", {})
    rows = [{"item": key, "value": _text(env.get(key))}
            for key in ("git_hash", "python", "platform", "host", "command_line") if key in env]
    rows.append({"item": "run created", "value": _text(info.get("created"))})
    rows += [{"item": f"version: {name}", "value": _text(version)}
             for name, version in sorted(env.get("versions", {}).items())]
    return pd.DataFrame(rows, columns=["item", "value"])
