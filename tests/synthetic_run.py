"""A small synthetic run folder that follows docs/run-folder.md exactly, for figure and report tests.

Every table is built from planted effects so tests know what the figures must show:
speech-pretrained models encode ``f0_mean`` best in their late layers, the random-weight
control encodes nothing beyond the input, ``spectral_centroid`` and ``f0_mean`` are
positively correlated across clips, ``hnr`` differs only between clip domains (its
within-domain R^2 is 0 at every layer while its pooled R^2 rises), the input layer scores the
same for every model, and one clip fails (absent from features.parquet, NaN rows in the
activations, one row in failures.csv). stats.parquet and stats_summary.txt are written by
the real ``compare`` stage (:func:`audioprobe.analysis.stage.compare_run`) on these probe
scores, so the figures and report read what the analysis produces.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from audioprobe.analysis.stage import compare_run
from audioprobe.runstore import Run

CLIP_DOMAINS = ("speech", "music", "environmental")
DESCRIPTORS = ("f0_mean", "spectral_centroid", "hnr", "spectral_flatness")
LAYERS = ("logmel", "conv1", "conv2", "conv3", "fc1")
MODELS = (  # name, pretrain_domain, seed, control
    ("speech-s0", "speech", 0, None), ("speech-s1", "speech", 1, None),
    ("nonspeech-s0", "nonspeech", 0, None), ("nonspeech-s1", "nonspeech", 1, None),
    ("mixed-s0", "mixed", 0, None), ("mixed-s1", "mixed", 1, None),
    ("random", "none", None, "random-weights"),
)
N_FOLDS = 3
FAMILY_SHARES = {"pitch": 1.0, "spectral": 0.6, "periodicity": 0.3}  # unique R^2 scale per descriptor family
CKA_METRICS = {"linear_cka": 0.0, "debiased_linear_cka": 0.2}
FAILED_CLIP = "env-03"
#: Tasks on one clip domain each (``make_run(domain_tasks=True)``): name -> (label column, clip domain).
DOMAIN_TASKS = {"speaker": ("speaker", "speech"), "sound": ("sound", "environmental")}
#: Planted gain in balanced accuracy per layer of in- and out-of-domain models on those tasks (chance 0.5).
DOMAIN_TASK_GAIN = {"in": 0.1, "out": 0.05}
OPTIONAL_PARTS = ("probes", "stats", "features", "activations", "failures", "cka", "partition", "run_json")


def _clips(n_per_domain: int, *, domain_tasks: bool = False) -> pd.DataFrame:
    rows = []
    for domain in CLIP_DOMAINS:
        for i in range(n_per_domain):
            clip_id = f"{domain[:3]}-{i:02d}"
            rows.append({"clip_id": clip_id, "path": f"corpus/{domain}/{clip_id}.flac",
                         "audio_path": f"/data/corpus/{domain}/{clip_id}.flac", "domain": domain,
                         "dataset": f"{domain}-set", "group": f"{domain}-g{i % 4}",
                         "split": "train" if i % 5 else "test"})
            if domain_tasks:  # two classes on one clip domain's clips, no label elsewhere
                for column, clip_domain in DOMAIN_TASKS.values():
                    rows[-1][column] = f"{column}{i % 2}" if domain == clip_domain else None
    table = pd.DataFrame(rows)
    return table.astype({c: "string" for c in table.columns})


def _features(clips: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(clips)
    speech = (clips["domain"] == "speech").to_numpy()
    env = (clips["domain"] == "environmental").to_numpy()
    log_f0 = np.log(np.where(speech, 150.0, 300.0)) + 0.3 * rng.standard_normal(n)
    table = pd.DataFrame({
        "clip_id": clips["clip_id"].astype(str),
        "f0_mean": np.where(env, np.nan, np.exp(log_f0)),
        "spectral_centroid": np.exp(log_f0 + 2.0 + 0.2 * rng.standard_normal(n)),
        "hnr": np.where(speech, 15.0, 5.0) + 3.0 * rng.standard_normal(n),
        "spectral_flatness": rng.uniform(0.01, 0.5, n),
        "n_frames": np.full(n, 100, dtype=np.int64),
        "n_nonsilent_frames": np.full(n, 90, dtype=np.int64),
        "n_voiced_frames": np.where(env, 0, 60).astype(np.int64),
    })
    return table[table["clip_id"] != FAILED_CLIP].reset_index(drop=True)


def _features_meta() -> pd.DataFrame:
    return pd.DataFrame({
        "name": list(DESCRIPTORS),
        "unit": ["Hz", "Hz", "dB", "ratio"],
        "family": ["pitch", "spectral", "periodicity", "spectral"],
        "extractor": ["parselmouth", "librosa", "parselmouth", "librosa"],
        "probe_scale": ["log", "log", "linear", "linear"],
        "parameters": [json.dumps({"method": "praat-ac", "fmin_hz": 75, "fmax_hz": 600}),
                       json.dumps({"n_fft": 1024}), json.dumps({"method": "cc"}), json.dumps({"n_fft": 1024})],
    })


def _score(domain: str, layer_index: int, feature: str) -> float:
    """Planted pooled R^2: rises with depth, most for speech models on F0, flat for the control."""
    if domain == "none":
        return 0.30 if layer_index == 0 else 0.25 - 0.03 * layer_index
    gain = {"speech": 0.12, "nonspeech": 0.06, "mixed": 0.09}[domain]
    if feature != "f0_mean":
        gain *= 0.5
    return 0.30 + gain * layer_index


def within_score(pooled: float, feature: str) -> float:
    """Planted within-domain R^2: 0 for ``hnr`` (it differs only between clip domains), half the
    pooled score otherwise."""
    return 0.0 if feature == "hnr" else pooled / 2


def _domain_task_rows(where: dict, domain: str, index: int, rng: np.random.Generator) -> list[dict]:
    """Pooled task rows of the one-domain tasks: in-domain models gain more per layer than out-of-domain
    ones (speech and mixed on ``speaker``; nonspeech and mixed on ``sound``), the control stays at chance."""
    rows = []
    for task, (_, clip_domain) in DOMAIN_TASKS.items():
        covers = {"speech": "speech", "environmental": "nonspeech"}[clip_domain]
        side = "in" if domain in (covers, "mixed") else "out"
        gain = 0.0 if domain == "none" or index == 0 else DOMAIN_TASK_GAIN[side] * index + 0.01 * rng.standard_normal()
        for metric, value in (("balanced_accuracy_pooled", 0.5 + gain), ("chance", 0.5), ("n_classes", 2.0)):
            rows.append({**where, "feature": task, "probe": "task", "metric": metric, "fold": None, "value": value})
    return rows


def _probes(models: tuple, n_clips: int, rng: np.random.Generator, *, cka: bool, partition: bool,
            domain_tasks: bool = False, task_rng: np.random.Generator | None = None) -> pd.DataFrame:
    rows = []
    base = {"pooling": "mean", "train_domain": "all", "eval_domain": "all", "n_clips": n_clips,
            "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "model_b": pd.NA, "layer_b": pd.NA,
            "note": pd.NA}
    input_noise = {feature: rng.standard_normal() for feature in DESCRIPTORS}
    for model, domain, seed, _ in models:
        ident = {"model": model, "pretrain_domain": domain, "seed": seed}
        for index, layer in enumerate(LAYERS):
            where = {**base, **ident, "layer": layer, "layer_index": index}
            for feature in DESCRIPTORS:
                # the input layer is the same for every model: the same score, no model noise
                noise = rng.standard_normal() if index else input_noise[feature]
                pooled = _score(domain, index, feature) + 0.02 * noise
                for fold in range(N_FOLDS):
                    r2 = pooled + 0.05 * rng.standard_normal()
                    rows.append({**where, "feature": feature, "probe": "ridge", "metric": "r2", "fold": fold,
                                 "value": r2})
                    rows.append({**where, "feature": feature, "probe": "ridge", "metric": "pearson_r",
                                 "fold": fold, "value": np.sqrt(max(r2, 0.0))})
                    rows.append({**where, "feature": feature, "probe": "ridge", "metric": "alpha", "fold": fold,
                                 "value": 10.0 ** rng.integers(-2, 4)})
                rows.append({**where, "feature": feature, "probe": "ridge", "metric": "r2_pooled", "fold": None,
                             "value": pooled, "ci_low": pooled - 0.08, "ci_high": pooled + 0.08})
                rows.append({**where, "feature": feature, "probe": "ridge", "metric": "pearson_r_pooled",
                             "fold": None, "value": np.sqrt(max(pooled, 0.0))})
                rows.append({**where, "feature": feature, "probe": "ridge", "metric": "r2_within", "fold": None,
                             "value": within_score(pooled, feature)})
                for eval_domain in CLIP_DOMAINS:  # per-domain scores of the pooled fit
                    rows.append({**where, "feature": feature, "probe": "ridge", "metric": "r2_pooled",
                                 "fold": None, "eval_domain": eval_domain,
                                 "value": within_score(pooled, feature) - 0.1 * CLIP_DOMAINS.index(eval_domain)})
                for train, test in ((a, b) for a in CLIP_DOMAINS for b in CLIP_DOMAINS):
                    # speech -> music: a score the headline figures must ignore
                    value = -5.0 if (train, test) == ("speech", "music") else (
                        pooled / 2 if train == test else pooled / 4 - 0.2)
                    rows.append({**where, "feature": feature, "probe": "transfer", "metric": "r2", "fold": None,
                                 "train_domain": train, "eval_domain": test, "value": value})
                rows.append({**where, "feature": feature, "probe": "rsa", "metric": "spearman", "fold": None,
                             "value": pooled / 2, "p_value": 0.005 if pooled > 0.5 else 0.4})
            if partition:  # as probes.partition writes it: per descriptor family, per fold and pooled
                full = min(0.95, 0.2 + 0.1 * index)
                for fold in (*range(N_FOLDS), None):
                    rows.append({**where, "feature": "all", "probe": "partition", "metric": "r2_full",
                                 "fold": fold, "value": full})
                    for family, share in FAMILY_SHARES.items():
                        unique = share * _score(domain, index, "f0_mean" if family == "pitch" else "hnr") / 4
                        rows.append({**where, "feature": family, "probe": "partition", "metric": "r2_without",
                                     "fold": fold, "value": full - unique})
                        rows.append({**where, "feature": family, "probe": "partition", "metric": "unique_r2",
                                     "fold": fold, "value": unique})
            # the task probe: a clip-domain read-out, at chance at the input, rising with depth for trained models
            accuracy = 1 / 3 + (0.0 if domain == "none" else 0.1 * index)
            for metric, value, p in (("balanced_accuracy_pooled", accuracy, 0.001 if accuracy > 0.5 else 0.3),
                                     ("macro_f1_pooled", accuracy - 0.02, np.nan), ("chance", 1 / 3, np.nan),
                                     ("n_classes", 3.0, np.nan)):
                rows.append({**where, "feature": "clip_domain", "probe": "task", "metric": metric, "fold": None,
                             "value": value, "p_value": p})
            if domain_tasks:
                rows += _domain_task_rows(where, domain, index, task_rng)
            if cka:  # layer vs descriptor set: no model_b
                for metric in CKA_METRICS:
                    rows.append({**where, "feature": "descriptors", "probe": "cka", "metric": metric, "fold": None,
                                 "value": 0.5})
    if cka:  # every pair of layers once (a < b), as probes.driver writes it
        order = [(m, d, s, i, layer) for m, d, s, _ in models for i, layer in enumerate(LAYERS)]
        for a, (model, domain, seed, index, layer) in enumerate(order):
            for model_b, _, _, index_b, layer_b in order[a + 1:]:
                similar = 0.9 - 0.12 * abs(index - index_b) - (0.0 if model == model_b else 0.15)
                for metric, shift in CKA_METRICS.items():
                    rows.append({**base, "model": model, "pretrain_domain": domain, "seed": seed, "layer": layer,
                                 "layer_index": index, "feature": pd.NA, "probe": "cka", "metric": metric,
                                 "fold": None, "value": max(similar - shift, 0.0), "model_b": model_b,
                                 "layer_b": layer_b})
    table = pd.DataFrame(rows)
    table["fold"] = table["fold"].astype("Int64")
    table["seed"] = table["seed"].astype("Int64")
    table["n_clips"] = table["n_clips"].astype("int64")
    for column in ("model", "pretrain_domain", "layer", "pooling", "feature", "probe", "metric", "train_domain",
                   "eval_domain", "model_b", "layer_b", "note"):
        table[column] = table[column].astype("string")
    return table


def _write_activations(run: Run, models: tuple, clips: pd.DataFrame, features: pd.DataFrame,
                       rng: np.random.Generator) -> None:
    import zarr

    n = len(clips)
    signal = np.log(features.set_index("clip_id").reindex(clips["clip_id"].astype(str))["spectral_centroid"])
    signal = np.nan_to_num(signal.to_numpy() - np.nanmean(signal))
    domain_code = clips["domain"].map({d: i for i, d in enumerate(CLIP_DOMAINS)}).to_numpy()
    failed = (clips["clip_id"] == FAILED_CLIP).to_numpy()
    for model, domain, seed, control in models:
        folder = run.file(Path("activations") / model)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.json").write_text(json.dumps({
            "name": model, "spec": f"byola-v1:{control or model}", "arch": "byola-v1", "d": 16,
            "pretrain_domain": domain, "seed": seed, "control": control,
            "checkpoint_sha256": None if control else hashlib.sha256(model.encode()).hexdigest(),
            "norm_mean": -5.0, "norm_std": 4.0, "norm_source": "corpus", "device": "cpu",
            "timing": {"seconds": 1.0}}))
        layer_rows = []
        for index, layer in enumerate(LAYERS):
            width = 8 + 2 * index
            strength = 0.0 if (control and index) else 1.0 + index
            data = rng.standard_normal((n, width)) + strength * np.outer(signal, rng.standard_normal(width))
            data += (0.0 if control else 2.0) * np.outer(domain_code, rng.standard_normal(width))
            data[failed] = np.nan
            array = zarr.create_array(str(folder / f"{layer}.zarr"), shape=data.shape, chunks=(8, width),
                                      dtype="float32")
            array[:] = data.astype(np.float32)
            layer_rows.append({"layer": layer, "layer_index": index, "kind": "input" if index == 0 else "conv",
                               "output_shape": str([1, width, 10]), "pooling": "mean", "pooled_width": width,
                               "receptive_field_ms": 10.0 * (index + 1), "receptive_field_hz": 50.0 * (index + 1),
                               "file": f"{layer}.zarr"})
        pd.DataFrame(layer_rows).to_csv(folder / "layers.csv", index=False)


#: The probe stage's config, keyed as probes.driver records it.
PROBE_CONFIG = {"alpha_grid": "19 log-spaced values from 0.0001 to 100000 times the mean non-zero eigenvalue of the "
                              "centred training activations (per layer and fold)",
                "cv": N_FOLDS, "layers": None, "max_missing": 0.5, "models": None, "n_bootstraps": 0,
                "n_components": 32, "n_permutations": 200, "partition_by": "family",
                "probes": ["ridge", "rsa", "cka", "partition", "transfer", "task"], "random_state": 0,
                "rdm_metric": "correlation", "rsa_method": "spearman", "scaling": "center",
                "tasks": [{"name": "clip_domain", "column": "domain", "group": "group"}],
                "task_cs": [0.01, 1.0, 100.0], "task_permutations": 199}
MIN_SAMPLES = 15200


def _run_json(models: tuple, n_clips: int, *, domain_tasks: bool = False) -> dict:
    stage = {"status": "complete", "started": "2025-01-01T10:00:00+00:00",
             "finished": "2025-01-01T10:05:00+00:00", "first_started": "2025-01-01T10:00:00+00:00",
             "seeds": {}, "inputs": {"manifest_sha256": "ab" * 32}, "summary": {"n_clips": n_clips, "n_failed": 1}}
    extract = {f"extract:{m}": {**stage, "config": {"spec": f"byola-v1:{c or m}", "layers": list(LAYERS),
                                                    "pooling": {layer: "mean" for layer in LAYERS},
                                                    "min_samples": MIN_SAMPLES, "seed": s},
                                "seeds": {"model_seed": s, "random_state": 0}}
               for m, d, s, c in models}
    return {
        "created": "2025-01-01T10:00:00+00:00",
        "environment": {"versions": {"audioprobe": "0.1.0", "numpy": "2.4.6", "pandas": "3.0.0"},
                        "git_hash": "0123456789abcdef0123456789abcdef01234567", "python": "3.11.2",
                        "platform": "Linux-test", "host": "testhost",
                        "command_line": ["audioprobe", "run", "study.toml"]},
        "stages": {
            "features": {**stage, "config": {"descriptors": list(DESCRIPTORS), "analysis": {
                "sr": 16000, "n_fft": 1024, "hop_length": 160, "n_mels": 64, "pitch": "praat", "f0_floor": 50.0,
                "f0_ceiling": 2000.0}}},
            **extract,
            "probe": {**stage, "config": {**PROBE_CONFIG, "tasks": PROBE_CONFIG["tasks"] + (
                [{"name": name, "column": column, "group": "group"} for name, (column, _) in DOMAIN_TASKS.items()]
                if domain_tasks else [])}, "seeds": {"random_state": 0}},
        },
    }


def make_run(path: str | Path, *, omit: tuple[str, ...] = (), n_per_domain: int = 8, n_seeds: int = 2,
             seed_test: str = "t", random_state: int = 0, domain_tasks: bool = False) -> Run:
    """Write a synthetic run folder at ``path`` and return it.

    Parameters
    ----------
    path : str or Path
        The folder (created).
    omit : tuple of str, keyword-only
        Parts to leave out, among ``OPTIONAL_PARTS``: whole tables (``probes``, ``stats``,
        ``features``, ``activations``, ``failures``, ``run_json``) or the ``cka`` and
        ``partition`` rows of probes.parquet.
    n_per_domain : int, keyword-only
        Clips per clip domain.
    n_seeds : int, keyword-only
        Models per trained pretraining domain (1 or 2), besides the random-weight control; with 1 the
        run has no stats (a comparison of one model per domain needs oof.parquet, which it lacks).
    seed_test : str, keyword-only
        The compare stage's per-cell seed test (``t``, or ``permutation``: an exact test that cannot
        reject with so few seeds).
    random_state : int, keyword-only
        Seed of every random value.
    domain_tasks : bool, keyword-only
        Add the tasks of :data:`DOMAIN_TASKS` (label columns in clips.parquet, tasks in run.json, task rows
        with a planted in-domain advantage, :data:`DOMAIN_TASK_GAIN`) from their own random generator, so
        every other value is the same as without them.
    """
    unknown = set(omit) - set(OPTIONAL_PARTS)
    if unknown:
        raise ValueError(f"omit must be among {OPTIONAL_PARTS}, got {sorted(unknown)}")
    rng = np.random.default_rng(random_state)
    models = tuple(m for m in MODELS if m[2] is None or m[2] < n_seeds)
    run = Run(path)
    clips = _clips(n_per_domain, domain_tasks=domain_tasks)
    run.write_clips(clips)
    features = _features(clips, rng)
    if "features" not in omit:
        run.write_table("features.parquet", features)
        run.write_table("features_meta.csv", _features_meta())
    if "activations" not in omit:
        _write_activations(run, models, clips, features, rng)
    if "probes" not in omit:
        run.write_table("probes.parquet", _probes(models, len(features), rng, cka="cka" not in omit,
                                                  partition="partition" not in omit, domain_tasks=domain_tasks,
                                                  task_rng=np.random.default_rng([random_state, 14])))
    if "failures" not in omit:
        run.write_table("failures.csv", pd.DataFrame([{
            "clip_id": FAILED_CLIP, "path": f"corpus/environmental/{FAILED_CLIP}.flac", "stage": "features",
            "error_type": "ClipError", "message": "clip is silent <all zeros>"}]))
    if "run_json" not in omit:
        run.write_json("run.json", _run_json(models, len(clips), domain_tasks=domain_tasks))
    if "stats" not in omit and "probes" not in omit and n_seeds >= 2:  # one model per domain: no oof.parquet
        compare_run(run, unit="seed", seed_test=seed_test, random_state=random_state)
    return run
