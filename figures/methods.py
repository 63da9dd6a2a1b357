"""The methods paragraph and the parameter / provenance tables of a run.

Written from what the run recorded (run.json and the saved tables), never from defaults.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .blocks import layer_blocks
from .tables import RunTables

__all__ = ["methods_paragraph", "methods_paragraphs", "stage_config", "recorded_parameters", "stage_table",
           "environment_table", "find_parameter"]

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
    """Return the first value recorded in a stage's ``config`` under one of ``names``, or None.

    Nested dicts are searched too.

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


def stage_config(info: dict, stage: str) -> dict | None:
    """Return the ``config`` that stage ``stage`` recorded in run.json, or None when it recorded none."""
    record = info.get("stages", {}).get(stage)
    return None if record is None or not isinstance(record.get("config"), dict) else record["config"]


def _recorded(config: dict | None, *keys: str) -> Any:
    """Return ``config[key]`` of the first of ``keys`` the stage recorded.

    :data:`NOT_RECORDED` when the stage or every key is absent (a recorded None is a value).
    """
    for key in keys:
        if config is not None and key in config:
            return config[key]
    return NOT_RECORDED


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _data_sentences(tables: RunTables) -> list[str]:
    """Clips, descriptors, their analysis settings and how undefined values are kept."""
    info, parts = tables.info, []
    clips = tables.get("clips")
    if clips is not None:
        counts = clips["domain"].astype(str).value_counts().sort_index()
        parts.append(f"The run holds {len(clips)} clips (" + ", ".join(f"{n} {d}" for d, n in counts.items()) + ").")
    meta = tables.get("features_meta")
    config = stage_config(info, "features")
    if meta is not None:
        described = [f"{r.name} [{r.unit}]" if isinstance(r.unit, str) and r.unit else str(r.name)
                     for r in meta.itertuples()]
        logged = [str(n) for n, s in zip(meta["name"], meta.get("probe_scale", [])) if s == "log"]
        parts.append(f"Descriptors ({len(meta)}): {', '.join(described)}"
                     + (f"; probed on a log scale: {', '.join(logged)}." if logged else "."))
    else:
        parts.append(_sentence("Descriptors", find_parameter(info, _KEYS["descriptors"], stages=["features"])) + ".")
    analysis = config.get("analysis") if config and isinstance(config.get("analysis"), dict) else None
    if analysis is not None:
        keys = [k for k in ("sr", "n_fft", "hop_length", "n_mels", "f0_floor", "f0_ceiling") if k in analysis]
        parts.append("Descriptor analysis (features stage): " + ", ".join(f"{k} {_text(analysis[k])}" for k in keys)
                     + ".")
    pitch = analysis.get("pitch") if analysis is not None else find_parameter(info, _KEYS["pitch"],
                                                                              stages=["features"])
    if pitch is None and meta is not None and "family" in meta:
        rows = meta[meta["family"].astype(str).str.contains("pitch|f0", case=False)]
        pitch = "; ".join(f"{r.extractor} {r.parameters}" for r in rows.itertuples()) or None
    parts.append(_sentence("Pitch tracker", pitch) + ".")
    if meta is not None or tables.get("features") is not None:
        parts.append("A descriptor undefined on a clip (e.g. F0 without voiced frames) is NaN in features.parquet; "
                     "its frame counts say why.")
    return parts


def _extract_configs(info: dict) -> dict[str, dict]:
    """Config of every extract stage (``extract:<model>``, or one ``extract``), keyed by stage name."""
    return {name: record["config"] for name, record in info.get("stages", {}).items()
            if (name == "extract" or name.startswith("extract:")) and isinstance(record.get("config"), dict)}


def _model_sentences(tables: RunTables) -> list[str]:
    """Models, their input and padding, the layers as network blocks, and pooling."""
    if not tables.models:
        return []
    parts = []
    by_domain: dict[str, list[str]] = {}
    for name, model in tables.models.items():
        seed = model.get("seed")
        control = f", {model['control']}" if model.get("control") else ""
        by_domain.setdefault(str(model.get("pretrain_domain", "none")), []).append(
            f"{name} ({model.get('spec', '?')}, seed {seed if seed is not None else 'none'}{control})")
    parts.append(f"Models ({len(tables.models)}), by pretraining domain: "
                 + "; ".join(f"{d}: {', '.join(v)}" for d, v in by_domain.items()) + ".")
    layers = {name: tables.layers(name) for name in tables.models}
    first = next(iter(layers.values()))
    shape = first.loc[first["layer"] == "logmel", "output_shape"] if "output_shape" in first else pd.Series([])
    norms = sorted({str(m.get("norm_source")) for m in tables.models.values() if m.get("norm_source")})
    parts.append("Input: the log-mel spectrogram"
                 + (f" (shape {shape.iloc[0]} for a 1 s clip)" if len(shape) else "")
                 + ", normalised with the mean and standard deviation from: "
                 + (", ".join(norms) if norms else NOT_RECORDED) + ".")
    extract = _extract_configs(tables.info)
    min_samples = sorted({c["min_samples"] for c in extract.values() if c.get("min_samples") is not None})
    features = stage_config(tables.info, "features") or {}
    sr = (features.get("analysis") or {}).get("sr") if isinstance(features.get("analysis"), dict) else None
    if min_samples:
        length = ", ".join(f"{n} samples" + (f" ({n / sr:.2f} s at {sr} Hz)" if sr else "") for n in min_samples)
        parts.append(f"Padding: clips shorter than {length} were zero-padded to that length (extract stage); "
                     "longer clips ran whole.")
    else:
        parts.append(_sentence("Padding", None) + ".")
    blocks = layer_blocks(tables.models, layers)
    for arch, rows in blocks.groupby("arch", sort=False):
        named = [f"{r.layer} = {r.block} ({r.description})" if r.block != "not known" else
                 f"{r.layer} (block not known)" for r in rows.itertuples()]
        parts.append(f"Layers of {arch} ({len(rows)}, in forward order; figures and tables name them by module): "
                     + "; ".join(named) + ".")
    pooling = _unique(blocks, "pooling")
    parts.append(_sentence("Pooling of each layer's output over time (layers.csv)", pooling) + ".")
    return parts


def _probe_sentences(tables: RunTables, figures: dict[str, str]) -> list[str]:
    """Return the probe stage's recorded settings, what each score is, and which figure shows it."""
    info, probes = tables.info, tables.get("probes")
    config = stage_config(info, "probe")
    names = _recorded(config, "probes")
    if names == NOT_RECORDED and probes is not None:
        names = _unique(probes, "probe")
    parts = [_sentence("Probes (probe stage)", names) + "."]
    folds = _setting(config, "cross-validation folds (grouped by the manifest's group)", "cv", "n_splits")
    parts.append(f"Ridge: {folds}"
                 f"; {_setting(config, 'activation scaling', 'scaling')}; alpha chosen per fold and descriptor "
                 f"from the {_setting(config, 'alpha grid', 'alpha_grid', 'alphas', text=_alpha_text)}"
                 + _chosen_alphas(probes) + ".")
    pooled = [title for name, title in figures.items() if name != "layer_profiles_within"]
    within = figures.get("layer_profiles_within")
    parts.append("The pooled R^2 (r2_pooled) scores the out-of-fold predictions of all clips of all clip domains "
                 "together, so it counts variance between clip domains as well as within them"
                 + (f"; it is the score of: {', '.join(pooled)}" if pooled else "") + ". "
                 "The within-domain R^2 (r2_within) subtracts the training folds' clip-domain means from "
                 "activations and descriptor and scores the held-out deviations: a descriptor that differs only "
                 "between clip domains scores ~0 there"
                 + (f"; it is shown in: {within}" if within else
                    (" (not in this run's probes.parquet)" if probes is not None
                     and not (probes["metric"] == "r2_within").any() else ""))
                 + ". The report's tables give both, and R^2 per clip domain.")
    parts.append("Undefined descriptors: ridge and RSA use, per descriptor, the clips where it is defined (ridge "
                 "n_dropped rows count those left out); CKA and variance partitioning use the descriptors missing "
                 "on at most a fraction of the clips ("
                 + _setting(config, "max_missing", "max_missing") + ") and the clips where all of them are defined.")
    parts.append(f"RSA: rank correlation between each layer's RDM and each descriptor's RDM (absolute difference); "
                 f"{_setting(config, 'correlation', 'rsa_method')}; "
                 f"{_setting(config, 'layer RDM metric between clips', 'rdm_metric')}; "
                 f"{_setting(config, 'clip-label permutations for p', 'n_permutations')}; "
                 f"{_setting(config, 'bootstraps over groups for intervals', 'n_bootstraps', 'n_bootstrap')}"
                 + (" (no intervals)" if _recorded(config, "n_bootstraps", "n_bootstrap") == 0 else "") + ".")
    parts.append(f"Variance partitioning: {_setting(config, 'principal components per layer', 'n_components')}; "
                 f"{_setting(config, 'unique parts by', 'partition_by')}.")
    if isinstance(names, list) and "task" in names:
        permutations = _recorded(config, "task_permutations")
        if permutations is None:  # recorded before the task probe had its own default: it used n_permutations
            permutations = f"{_text(_recorded(config, 'n_permutations'))} (the probe stage's n_permutations)"
        tasks = _recorded(config, "tasks")
        tasks = (", ".join(f"{t.get('name')} (labels {t.get('column')}, grouped by {t.get('group')})"
                           for t in tasks) if isinstance(tasks, list) and tasks else tasks)
        parts.append(f"Task read-out (grouped logistic regression, balanced accuracy): tasks: {_text(tasks)}; "
                     f"{_setting(config, 'relative C grid', 'task_cs')}; group-respecting label permutations for p: "
                     f"{_text(permutations)}.")
    return parts


def _setting(config: dict | None, label: str, *keys: str, text: Callable[[Any], str] = _text) -> str:
    """``"<label>: <value>"`` of the first recorded key, or ``"<label>: not recorded"``."""
    value = _recorded(config, *keys)
    return f"{label}: {NOT_RECORDED}" if value == NOT_RECORDED else f"{label}: {text(value)}"


def _chosen_alphas(probes: pd.DataFrame | None) -> str:
    if probes is None:
        return ""
    chosen = probes.loc[(probes["probe"] == "ridge") & (probes["metric"] == "alpha"), "value"].dropna()
    return f" (alphas selected: {chosen.min():.3g} to {chosen.max():.3g})" if len(chosen) else ""


def _compare_sentences(tables: RunTables) -> list[str]:
    """Return the tests compare actually ran (from stats.parquet), with their counts and recorded settings."""
    stats, config = tables.get("stats"), stage_config(tables.info, "compare")
    if stats is None:
        return ["Comparison of pretraining domains: not run (no stats.parquet)."]
    tested = stats[stats["p_value"].notna()] if "p_value" in stats else stats
    units = _unique(stats, "unit")
    parts = [f"Comparison of pretraining domains (compare stage; unit of inference: "
             f"{', '.join(units) or NOT_RECORDED}; "
             f"score: {', '.join(_unique(stats, 'probe'))} {', '.join(_unique(stats, 'metric'))}; "
             f"alpha {_text(_recorded(config, 'alpha'))}; seed test: {_text(_recorded(config, 'seed_test'))}). "
             "Tests run: " + "; ".join(f"{test} ({_count(int(n), 'test')})" for test, n in
                                        tested["test"].astype(str).value_counts().sort_index().items()) + "."]
    parts.append("Correction: " + "; ".join(_unique(tested, "correction") or [NOT_RECORDED]) + ".")
    tests = [t.lower() for t in _unique(tested, "test")]
    used = {"n_permutations": any("permutation" in t and "exact" not in t for t in tests),
            "n_bootstraps": any("bootstrap" in t for t in tests), "n_bootstrap": any("bootstrap" in t for t in tests)}
    unused = [f"{key} {_text(config[key])}" for key, in_use in used.items() if config and key in config and not in_use]
    if unused:
        parts.append(f"Recorded compare settings not used by these tests: {', '.join(unused)}.")
    if "status" in stats:
        counts = stats["status"].value_counts()
        if counts.get("identical", 0):
            layers = ", ".join(_unique(stats[stats["status"] == "identical"], "layer"))
            parts.append(f"{counts['identical']} cells are identical for every model by construction ({layers}): "
                         "described, not tested, and left out of the FDR families and layer averages.")
        if counts.get("cannot_reject", 0):
            parts.append(f"{counts['cannot_reject']} tested cells cannot reject: their smallest attainable p "
                         "exceeds alpha, so a cell without a star there is not evidence of no difference.")
        if counts.get("not_tested", 0):
            parts.append(f"{counts['not_tested']} cells have no valid test (reason in stats.parquet's note).")
    if "fit" in stats:
        fits = stats["fit"].fillna("").astype(str).value_counts()
        fits = fits[fits.index != ""]
        if len(fits):
            parts.append("Mixed-model fits: " + ", ".join(f"{k} {v}" for k, v in fits.sort_index().items()) + ".")
    if "seed" in units:
        parts.append("With the seed as the unit, inference generalises to other training runs of each domain.")
    elif "clip" in units:
        parts.append("With the clip as the unit (one model per domain), inference does not generalise beyond "
                     "these models.")
    return parts


def methods_paragraphs(tables: RunTables, *, figures: dict[str, str] | None = None) -> list[str]:
    """Return the methods, one paragraph per part, written from what the run recorded.

    The parts: data and descriptors, models and layers, probes, comparison and seeds.

    Facts come from the saved tables (clips, descriptors, models, layers, pooling, the tests
    that ran and their counts) and each stage's own ``config`` in run.json (features: analysis
    settings; extract: padding length; probe: folds, alpha grid, permutations, bootstraps, RDM
    metric; compare: alpha, seed test). A setting a stage did not record is written
    "not recorded", never a default; compare settings its tests did not use are named as unused.

    Parameters
    ----------
    tables : RunTables
    figures : dict of str to str, optional, keyword-only
        Figure name -> title of the figures in the report (to say which score each shows).
    """
    parts = [_data_sentences(tables), _model_sentences(tables), _probe_sentences(tables, figures or {}),
             _compare_sentences(tables) + [_seed_sentence(tables.info)]]
    return [" ".join(part) for part in parts if part]


def methods_paragraph(tables: RunTables, *, figures: dict[str, str] | None = None) -> str:
    """:func:`methods_paragraphs` as one string."""
    return " ".join(methods_paragraphs(tables, figures=figures))


def _seed_sentence(info: dict) -> str:
    """Return the recorded seeds, stages with the same seeds named together."""
    groups: dict[str, list[str]] = {}
    for stage, record in info.get("stages", {}).items():
        if record.get("seeds"):
            groups.setdefault(_text(record["seeds"]), []).append(stage)
    return _sentence("Random seeds", "; ".join(f"{', '.join(stages)}: {seeds}" for seeds, stages in groups.items())
                     or None) + "."


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
    """Provenance of run.json's ``environment``.

    Git hash, Python, platform, host, command line and every library version, as ``item``/``value`` rows.
    """
    env = info.get("environment", {})
    rows = [{"item": key, "value": _text(env.get(key))}
            for key in ("git_hash", "python", "platform", "host", "command_line") if key in env]
    rows.append({"item": "run created", "value": _text(info.get("created"))})
    rows += [{"item": f"version: {name}", "value": _text(version)}
             for name, version in sorted(env.get("versions", {}).items())]
    return pd.DataFrame(rows, columns=["item", "value"])
