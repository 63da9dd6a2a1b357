"""The study runner: one TOML file -> the whole pipeline into one run folder, resumably.

A study file names the clips, the descriptors, the models (spec, pretraining domain, seed),
the probes, the label read-out tasks (``[[tasks]]``: name, column, group) and the statistics.
:func:`run_study` runs features -> activations (per model) -> probes -> domain statistics -> figures ->
report; every stage skips work that a previous, possibly interrupted, call finished.
``study.example.toml`` at the repository root is a documented example; :func:`demo_study` is the
configuration of ``audioprobe demo``.
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .features.config import DEFAULT_F0_CEILING, DEFAULT_F0_FLOOR, DEFAULT_SR
from .log import logger
from .manifest import default_manifest_path

__all__ = ["SECTIONS", "load_study", "run_study", "demo_study"]

#: Allowed keys of each section and their defaults.
SECTIONS: dict[str, dict[str, Any]] = {
    "study": {"name": "study", "manifest": None, "output": None},
    "features": {"descriptors": None, "pitch": "praat", "sr": DEFAULT_SR, "f0_floor": DEFAULT_F0_FLOOR,
                 "f0_ceiling": DEFAULT_F0_CEILING},
    "extract": {"layers": None, "pooling": "mean", "device": "auto", "batch_size": None},
    "probes": {"probes": ["ridge", "rsa", "cka"], "cv": 5, "permutations": 1999, "bootstraps": 500,
               "scaling": "center", "random_state": 0, "task_cs": None, "task_permutations": 199},
    "compare": {"enabled": True, "unit": "auto", "permutations": 10000, "alpha": 0.05, "metric": "r2_pooled",
                "random_state": 0},
    "figures": {"enabled": True, "report": True},
}
MODEL_KEYS = {"spec": None, "name": None, "domain": None, "seed": None}
#: Keys of a ``[[tasks]]`` entry: the task's name, its label column and its group column (default ``group``).
TASK_KEYS = {"name": None, "column": None, "group": "group"}


def _merge(section: str, given: dict[str, Any], allowed: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {unknown} in [{section}]; allowed: {sorted(allowed)}")
    return {**copy.deepcopy(allowed), **given}


def load_study(study: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read and validate a study (a TOML file or an equivalent dict) and fill in the defaults.

    Paths in the file (``study.manifest``, ``study.output``) are relative to the file's folder.

    Returns
    -------
    config : dict
        One dict per section of :data:`SECTIONS` plus ``models``, a list of dicts with
        ``spec``, ``name``, ``domain``, ``seed``, and ``tasks``, a list of dicts with ``name``, ``column``,
        ``group`` (:data:`TASK_KEYS`; empty when the study has none).

    Raises
    ------
    ParameterError
        Unknown sections or keys, no models, a model without ``spec``, or a task without ``name`` or
        ``column`` or with a repeated name.
    """
    if isinstance(study, dict):
        raw, where, base = copy.deepcopy(study), "study", Path.cwd()
    else:
        path = Path(study)
        if not path.is_file():
            raise ParameterError(f"study file {str(path)!r} not found")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"study file {str(path)!r} is not valid TOML: {exc}") from exc
        where, base = str(path), path.resolve().parent
    unknown = sorted(set(raw) - set(SECTIONS) - {"models", "tasks"})
    if unknown:
        raise ParameterError(f"{where}: unknown section(s) {unknown}; allowed: "
                             f"{sorted(SECTIONS) + ['models', 'tasks']}")
    config = {name: _merge(name, raw.get(name, {}), defaults, where) for name, defaults in SECTIONS.items()}
    models = raw.get("models", [])
    if not models:
        raise ParameterError(f"{where}: no [[models]] given; add at least one, e.g. spec = \"byola-v1:random\"")
    config["models"] = []
    for i, model in enumerate(models):
        model = _merge("models", model, MODEL_KEYS, where)
        if not model["spec"]:
            raise ParameterError(f"{where}: [[models]] entry {i} has no spec")
        config["models"].append(model)
    config["tasks"] = _tasks(raw.get("tasks", []), where)
    for key in ("manifest", "output"):
        value = config["study"][key]
        if value is not None:
            config["study"][key] = str((base / value).resolve())
    return config


def _tasks(tasks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    out = []
    for i, task in enumerate(tasks):
        task = _merge("tasks", task, TASK_KEYS, where)
        if not task["name"] or not task["column"]:
            raise ParameterError(f"{where}: [[tasks]] entry {i} needs a name and a column, got {task}")
        out.append(task)
    names = [t["name"] for t in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"{where}: [[tasks]] names must be unique, got {names}")
    return out


def demo_study() -> dict[str, Any]:
    """Return the study ``audioprobe demo`` runs: the shipped corpus, every shipped model, a random-weight control.

    Every probe runs, with 200 RSA permutations and no RSA bootstrap (the demo's time budget is
    two minutes on 2 cores; a study file sets ``bootstraps`` for confidence intervals). Three label read-out
    tasks run on the shipped corpus's label columns: the sound domain, the GM instrument of the melody clips
    (each clip its own group: every clip is a separate rendering at its own pitch) and the kind of the
    environmental clips, at one relative C (0.01) and without task permutations
    (each permutation repeats the whole cross-validation: about 0.2 s per layer for these tasks on 2 cores;
    a study file sets ``task_permutations`` for p-values). The corpus's ``language`` column is not a demo task:
    each language has one voice per source package, so a read-out grouped by voice learns the package, not the
    language (balanced accuracy 0.00-0.03 against chance 0.053 on the shipped models).
    """
    from .models.specs import shipped_models

    models = [{"spec": name} for name in shipped_models()]
    if not models:
        raise ParameterError("no shipped models found: the demo needs models/weights/ from the repository")
    models.append({"spec": "byola-v1:random", "name": "random-seed0", "domain": "none", "seed": 0})
    return {
        "study": {"name": "demo"},
        "probes": {"probes": ["ridge", "rsa", "cka", "partition", "transfer", "task"], "cv": 5,
                   "permutations": 200, "bootstraps": 0, "task_cs": [0.01], "task_permutations": 0},
        "tasks": [{"name": "domain", "column": "domain", "group": "group"},
                  {"name": "instrument", "column": "instrument", "group": "clip_id"},
                  {"name": "source_category", "column": "source_category", "group": "group"}],
        "compare": {"permutations": 10000},
        "models": models,
    }


def run_study(study: str | Path | dict[str, Any], *, output: str | Path | None = None, n_jobs: int | None = None,
              scheduler: str | None = None, device: str | None = None) -> Path:
    """Run a whole study into one run folder; finished stages are skipped on a re-run.

    Parameters
    ----------
    study : path to a study TOML file, or the equivalent dict
    output : str or Path, optional
        The run folder; overrides ``study.output``.
    n_jobs : int, optional
        Worker processes for per-clip work; default all cores.
    scheduler : str, optional
        Dask scheduler for descriptor extraction (``local`` or ``tcp://host:port``).
    device : {"auto", "cpu", "cuda"}, optional
        Overrides ``extract.device``.

    Returns
    -------
    run_folder : Path
    """
    from .analysis.stage import compare_run
    from .features import extract_features
    from .figures import build_report, make_all
    from .models.extract import extract_activations
    from .models.specs import load_model
    from .probes import run_probes
    from .runstore import Run

    config = load_study(study)
    out = output or config["study"]["output"]
    if out is None:
        raise ParameterError("no run folder: give study.output in the study file or output=/-o")
    run = Run(out)
    manifest = config["study"]["manifest"] or default_manifest_path()
    run.write_json("study.json", config)

    feats = config["features"]
    logger.info("study %s: descriptors", config["study"]["name"])
    extract_features(manifest, descriptors=feats["descriptors"], pitch=feats["pitch"], sr=feats["sr"],
                     f0_floor=feats["f0_floor"], f0_ceiling=feats["f0_ceiling"], n_jobs=n_jobs, scheduler=scheduler,
                     run=run)

    ext = config["extract"]
    for model in config["models"]:
        seed = model["seed"]
        loaded = load_model(model["spec"], random_state=0 if seed is None else seed, seed=seed,
                            pretrain_domain=model["domain"], name=model["name"])
        logger.info("study %s: activations of %s", config["study"]["name"], loaded.name)
        extract_activations(loaded, manifest, run=run, layers=ext["layers"], pooling=ext["pooling"],
                            device=device or ext["device"], batch_size=ext["batch_size"], n_jobs=n_jobs)

    prb = config["probes"]
    logger.info("study %s: probes", config["study"]["name"])
    task_options = {} if prb["task_cs"] is None else {"task_cs": prb["task_cs"]}
    run_probes(run, probes=prb["probes"], cv=prb["cv"], n_permutations=prb["permutations"],
               n_bootstraps=prb["bootstraps"], scaling=prb["scaling"], random_state=prb["random_state"],
               tasks=config["tasks"] or None, task_permutations=prb["task_permutations"], **task_options)

    cmp = config["compare"]
    if cmp["enabled"]:
        logger.info("study %s: statistics across pretraining domains", config["study"]["name"])
        compare_run(run, unit=cmp["unit"], n_permutations=cmp["permutations"], alpha=cmp["alpha"],
                    metric=cmp["metric"], random_state=cmp["random_state"])

    if config["figures"]["enabled"]:
        make_all(run)
        if config["figures"]["report"]:
            build_report(run)
    return run.path
