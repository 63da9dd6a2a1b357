"""The probe stage: every probe on every layer of every model of a run folder.

:func:`run_probes` reads ``clips.parquet``, ``features.parquet``, ``features_meta.csv`` and
``activations/<model>/`` (one layer in memory per worker at a time), runs the probes named in
:data:`PROBES`, and writes ``probes.parquet`` (long format, columns :data:`COLUMNS`) and, with the
ridge probe, ``oof.parquet`` (per-clip out-of-fold predictions), both as in docs/run-folder.md.
Layer-by-layer CKA (across layers and models) keeps three clips x clips matrices per layer (the Gram matrix,
double- and U-centred), so each is centred once for all its pairs. Work that depends on the descriptors only
(RSA's descriptor RDMs, the variance partition's descriptor fits) is done once per stage and shared by the
layers (:mod:`audioprobe.probes.shared`).

Rows of ``probes.parquet`` by probe (``fold`` <NA> = over all folds; ``eval_domain`` ``all`` unless said):

========== ============================================ =========================================================
probe      feature                                      metrics
========== ============================================ =========================================================
ridge      descriptor                                   ``r2``, ``pearson_r``, ``alpha`` per fold; ``r2_pooled``,
                                                        ``pearson_r_pooled`` (also per ``eval_domain``: the pooled
                                                        out-of-fold predictions of that domain's clips);
                                                        ``n_dropped``
rsa        descriptor                                   ``spearman`` or ``tau_a`` with ``p_value`` (permutation)
                                                        and ``ci_low``/``ci_high`` (group bootstrap)
cka        ``descriptors`` (z-scored descriptor set)    ``linear_cka``, ``debiased_linear_cka``
cka        <NA>, with ``model_b``/``layer_b``           the same, for every unordered pair of layers (all models)
partition  ``all`` / descriptor family (or descriptor)  ``r2_full`` / ``r2_without``, ``unique_r2`` per fold and
                                                        pooled (variance of the layer explained by descriptors)
transfer   descriptor                                   ``r2``, ``pearson_r`` for ``train_domain`` ->
                                                        ``eval_domain`` (same domain: grouped CV inside it)
task       task name                                    ``balanced_accuracy``, ``macro_f1``, ``C`` per fold;
                                                        ``balanced_accuracy_pooled`` (with ``p_value``),
                                                        ``macro_f1_pooled``, ``chance``, ``n_classes``,
                                                        ``n_left_out`` (:mod:`audioprobe.probes.task`)
========== ============================================ =========================================================

The descriptor set of ``cka`` and ``partition`` holds the descriptors missing on at most
``max_missing`` (0.5) of the clips; clips missing any of them are left out (``n_clips`` says how many
remain).
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..allocator import retain_freed_memory
from ..contract import (
    CLIPS,
    FEATURES,
    FEATURES_META,
    OOF,
    OOF_COLUMNS,
    PROBE_COLUMNS,
    UNITS,
    check_table,
    list_models,
    model_layers,
    read_layer,
)
from ..contract import PROBES as PROBES_FILE
from ..errors import ParameterError
from ..log import logger, progress
from ..runner import resolve_n_jobs
from ..runstore import Run, atomic_path, fingerprint
from ._targets import variation_note
from .cka import center_gram, cka_from_centred, gram_linear
from .inputs import probe_targets
from .layer_pool import map_layers
from .layer_probes import CKA_METRICS, PROBES, LayerData, ProbeConfig, check_config
from .shared import OncePerStage, SharedCache
from .task import DEFAULT_CS
from .task_design import DEFAULT_TASKS, TaskSpec, parse_task, task_labels

__all__ = ["run_probes", "COLUMNS", "STAGE"]

STAGE = "probe"
COLUMNS = PROBE_COLUMNS


def _layer_seed(random_state: int, model: str, layer: str) -> np.random.SeedSequence:
    """Derive a seed from the layer's identity, not from the order or subset of layers processed."""
    return np.random.SeedSequence([random_state, zlib.crc32(model.encode()), zlib.crc32(layer.encode())])


def _probe_layer(model: dict, layer: pd.Series, clips: pd.DataFrame, targets: pd.DataFrame, meta: pd.DataFrame,
                 cfg: ProbeConfig, cache: SharedCache | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """All probes of one layer: its ``probes.parquet`` rows and its out-of-fold predictions (or None).

    ``cache`` shares descriptor-side results between the layers of a stage (:mod:`audioprobe.probes.shared`).
    """
    X = read_layer(model, layer, len(clips))
    usable = np.all(np.isfinite(X), axis=1)
    if (~usable).any():
        logger.info("%s/%s: %d clip(s) without activations left out", model["name"], layer["layer"],
                    int((~usable).sum()))
    data = LayerData(X=X[usable], clips=clips[usable].reset_index(drop=True),
                     targets=targets[usable].reset_index(drop=True), meta=meta,
                     seed=_layer_seed(cfg.random_state, model["name"], layer["layer"]), cache=cache)
    frames = []
    for name in cfg.probes:
        rows = PROBES[name](data, cfg)
        frames.append(rows.assign(probe=name))
    table = pd.concat(frames, ignore_index=True)
    table = table.assign(**_layer_columns(model, layer))
    oof = None
    if data.oof:
        oof = pd.concat(data.oof, ignore_index=True).assign(model=model["name"], layer=layer["layer"])[OOF_COLUMNS]
    return _finish(table), oof


def _layer_columns(model: dict, layer: pd.Series) -> dict:
    """Return the columns of ``probes.parquet`` that identify a model's layer."""
    seed = model.get("seed")
    return {"model": model["name"], "pretrain_domain": model.get("pretrain_domain", "none"),
            "seed": seed if seed is not None else pd.NA, "layer": layer["layer"],
            "layer_index": int(layer["layer_index"]), "pooling": layer.get("pooling", pd.NA)}


def _layer_pairs_cka(jobs: list[tuple[dict, pd.Series]], n_clips: int) -> pd.DataFrame:
    """Linear and debiased CKA of every unordered pair of layers (all models), from one Gram matrix per layer.

    Each layer's centred Gram matrices (double- and U-centred) and their squared norms are computed once and
    reused for every pair over the same clips (all of them, usually); a pair whose layers lack different clips
    centres the Gram matrices of the clips both have. The values equal :func:`cka_from_grams` of the pair.
    """
    grams, notes = [], []
    for model, layer in jobs:
        X = read_layer(model, layer, n_clips)
        usable = np.all(np.isfinite(X), axis=1)
        note = variation_note(X[usable], what="layer", min_count=4)
        notes.append(None if note is None else f"{model['name']}/{layer['layer']}: {note}")
        gram = np.full((n_clips, n_clips), np.nan)
        gram[np.ix_(usable, usable)] = gram_linear(X[usable])
        grams.append(gram)
    centred = {}

    def centred_gram(k: int, ok: np.ndarray, debiased: bool) -> tuple[np.ndarray, float]:
        """Layer ``k``'s Gram matrix over the clips ``ok``, centred, and its squared norm (cached for all clips)."""
        key = (k, debiased)
        every = ok.all()
        if not every or key not in centred:
            Kc = center_gram(grams[k][np.ix_(ok, ok)], debiased=debiased)
            if not every:
                return Kc, np.vdot(Kc, Kc)
            centred[key] = Kc, np.vdot(Kc, Kc)
        return centred[key]

    rows = []
    for a, (model_a, layer_a) in enumerate(jobs):
        for b in range(a + 1, len(jobs)):
            model_b, layer_b = jobs[b]
            ok = np.isfinite(np.diag(grams[a])) & np.isfinite(np.diag(grams[b]))
            note = notes[a] or notes[b] or (None if ok.sum() >= 4 else "fewer than 4 clips with both layers")
            for metric, debiased in CKA_METRICS.items():
                value = np.nan
                if note is None:
                    (Kc, kk), (Lc, ll) = centred_gram(a, ok, debiased), centred_gram(b, ok, debiased)
                    value = cka_from_centred(Kc, Lc, kk, ll)
                rows.append({**_layer_columns(model_a, layer_a), "metric": metric, "value": value,
                             "n_clips": int(ok.sum()), "model_b": model_b["name"], "layer_b": layer_b["layer"],
                             "note": note})
    return _finish(pd.DataFrame(rows).assign(probe="cka")) if rows else _finish(pd.DataFrame(columns=COLUMNS))


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    """Every column of :data:`COLUMNS`, with defaults and the contract's dtypes."""
    defaults = {"fold": pd.NA, "train_domain": "all", "eval_domain": "all", "p_value": np.nan, "ci_low": np.nan,
                "ci_high": np.nan, "model_b": pd.NA, "layer_b": pd.NA, "feature": pd.NA, "note": pd.NA}
    for col, value in defaults.items():
        if col not in table:
            table[col] = value
        elif not isinstance(value, type(pd.NA)):
            table[col] = table[col].fillna(value)
    table = table[COLUMNS].copy()
    for col in ("fold", "seed", "layer_index", "n_clips"):
        table[col] = pd.array(table[col], dtype="Int64")
    for col in ("value", "p_value", "ci_low", "ci_high"):
        table[col] = table[col].astype(np.float64)
    for col in ("model", "pretrain_domain", "layer", "pooling", "feature", "probe", "metric", "train_domain",
                "eval_domain", "model_b", "layer_b", "note"):
        table[col] = table[col].astype("string")
    return table.reset_index(drop=True)


def resolve_tasks(tasks, clips: pd.DataFrame) -> tuple[dict, ...]:
    """Resolve the tasks of a run.

    The given ones (each checked against the clips' columns), or else the
    :data:`~audioprobe.probes.task_design.DEFAULT_TASKS` whose label and group columns the clips have, with at
    least two labels.

    Raises
    ------
    ParameterError
        A task names a column the clips do not have, or is malformed.
    """
    if tasks:
        specs = [parse_task(t) for t in tasks]
        for spec in specs:
            task_labels(clips, spec)
        return tuple(s.as_dict() for s in specs)
    found = []
    for spec in DEFAULT_TASKS:
        if spec.column in clips.columns and spec.group in clips.columns:
            labels, _ = task_labels(clips, spec)
            if len(set(labels) - {None}) >= 2:
                found.append(spec.as_dict())
    logger.info("task probe: default tasks %s", [t["name"] for t in found])
    return tuple(found)


def _model_identity(model: dict) -> dict:
    """Return what a model's activations depend on: its ``model.json`` without run-time details."""
    return {k: v for k, v in model.items() if k not in ("timing", "device", "folder")}


class _Units:
    """The finished (model, layer) units of the probe stage: ``units/probe/<model>/<layer>[.oof].parquet``."""

    def __init__(self, run: Run):
        self.run = run

    def path(self, model: dict, layer: pd.Series, kind: str = "") -> Path:
        return self.run.file(Path(UNITS) / STAGE / model["name"] / f"{layer['layer']}{kind}.parquet")

    def write(self, model: dict, layer: pd.Series, table: pd.DataFrame, oof: pd.DataFrame | None) -> None:
        if oof is not None:
            with atomic_path(self.path(model, layer, ".oof")) as tmp:
                oof.to_parquet(tmp, index=False)
        with atomic_path(self.path(model, layer)) as tmp:
            table.to_parquet(tmp, index=False)

    def read(self, model: dict, layer: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        oof = self.path(model, layer, ".oof")
        return pd.read_parquet(self.path(model, layer)), (pd.read_parquet(oof) if oof.exists() else None)


def run_probes(run: Run | str, *, probes: Sequence[str] = ("ridge", "rsa", "cka"), cv: int = 5,
               n_permutations: int = 1999, random_state: int = 0, models: Sequence[str] | None = None,
               layers: Sequence[str] | None = None, n_bootstraps: int = 500, scaling: str = "center",
               rdm_metric: str = "correlation", rsa_method: str = "spearman", partition_by: str = "family",
               tasks: Sequence[str | dict | TaskSpec] | None = None, task_cs: Sequence[float] = DEFAULT_CS,
               task_permutations: int = 199, n_jobs: int | None = None,
               force: bool = False) -> pd.DataFrame:
    """Run the probes on every (selected) layer of every (selected) model and write ``probes.parquet``.

    The stage is incremental: its unit of work is one layer of one model, recorded with a
    fingerprint of the settings, the descriptors and the model's activations. A re-run probes only
    the layers that are new (a model or layer extracted since) or changed, resumes a killed stage at
    its first unfinished layer, and keeps the rows of every other layer byte-identical; each layer's
    random stream depends only on ``random_state`` and the layer's identity.

    Parameters
    ----------
    run : Run or str
        The run folder (needs ``clips.parquet``, ``features.parquet``, ``features_meta.csv``, ``activations/``).
    probes : sequence of {"ridge", "rsa", "cka", "partition", "transfer", "task"}
    cv : int
        Grouped folds over the clips' ``group`` (at least this many groups are required); the task probe's
        folds are over each task's group column.
    n_permutations : int
        Clip-label permutations of the RSA p-values. The default 1999 makes the smallest attainable p,
        ``1 / (n_permutations + 1)`` = 5e-4, no larger than the Benjamini-Hochberg threshold of a single
        discovery among a layer's D descriptors at q = 0.05 (``q / D``) for up to D = 100 descriptors (60 on
        the shipped corpus; with 1000 permutations, 1/1001 > 0.05/60, a lone effect could never pass). The
        Monte Carlo standard error of a p-value near 0.05 is ``sqrt(0.05 * 0.95 / 2000)`` = 0.005.
    random_state : int
        Seed of permutations and bootstraps; each layer derives its own stream from it and its name.
    models, layers : sequence of str, optional
        Restrict to these model folders / layer names.
    n_bootstraps : int
        Group bootstrap samples of the RSA confidence intervals (95% percentile intervals). With the default
        500 the tail level of each endpoint has a Monte Carlo standard error of ``sqrt(0.025 * 0.975 / 500)``
        = 0.7 percentage points, so the coverage is 95 +- 1 point (1000 samples: +- 0.7) and an endpoint
        moves by 0.12 bootstrap standard deviations (1000: 0.085), at half the cost.
    scaling : {"center", "standard"}
        Activation scaling of the ridge probes (centring by default: see :mod:`audioprobe.probes.scaling`).
    rdm_metric : {"correlation", "euclidean"}
    rsa_method : {"spearman", "tau-a"}
    partition_by : {"family", "descriptor"}
        Descriptor sets of the variance partition.
    tasks : sequence of "NAME=COLUMN[:GROUP_COLUMN]", dict or TaskSpec, optional
        Label read-out tasks on columns of ``clips.parquet`` (the manifest's); the group column defaults to
        ``group``. Giving tasks adds ``"task"`` to ``probes``; the task probe without tasks runs the default
        tasks whose columns the clips have (:data:`~audioprobe.probes.task_design.DEFAULT_TASKS`).
    task_cs : sequence of float
        Relative C grid of the task probes (one value: no inner selection).
    task_permutations : int
        Permutations of the task p-values; each repeats the whole cross-validation (C selection included), so
        the default is smaller than ``n_permutations``: 199 reach p = 0.005, which survives Benjamini-Hochberg
        at q = 0.05 over up to 10 tasks per layer.
    n_jobs : int, optional
        Layers probed at the same time (worker processes, :mod:`~audioprobe.probes.layer_pool`; each holds one
        layer in memory); default all cores; 1 probes in this process. Threads reached ~1.4 of 2 cores
        (scikit-learn's logistic fits and pandas hold the GIL): the demo's probe stage (60 layers) took 65 s on
        threads (140% CPU) and 43-50 s on processes (177-189% CPU) on a near-quiet 2-core machine, with equal
        tables. Each worker runs single-threaded BLAS: the decompositions here are small, and multi-threaded BLAS
        on a busy machine was measured 20-100x slower (busy-waiting OpenBLAS threads).
    force : bool
        Recompute every layer, even those finished with the same settings and inputs.

    Returns
    -------
    pd.DataFrame
        The ``probes.parquet`` table (columns :data:`COLUMNS`).

    Raises
    ------
    ParameterError
        Invalid settings, or a run folder without descriptors or activations.
    """
    retain_freed_memory()
    run = run if isinstance(run, Run) else Run(run, create=False)
    probes = tuple(probes) + (("task",) if tasks and "task" not in probes else ())
    resolved = resolve_tasks(tasks, run.clips()) if "task" in probes and run.exists(CLIPS) else ()
    cfg = ProbeConfig(probes=probes, cv=cv, n_permutations=n_permutations, n_bootstraps=n_bootstraps,
                      random_state=random_state, scaling=scaling, rdm_metric=rdm_metric, rsa_method=rsa_method,
                      partition_by=partition_by, models=None if models is None else list(models),
                      layers=None if layers is None else list(layers), tasks=resolved,
                      task_cs=tuple(float(c) for c in np.atleast_1d(task_cs)), task_permutations=task_permutations)
    check_config(cfg)
    n_jobs = resolve_n_jobs(n_jobs)
    for name in (FEATURES, FEATURES_META):
        if not run.exists(name):
            raise ParameterError(f"{str(run.file(name))!r} does not exist: run `audioprobe features` into this run "
                                 "folder first")
    model_infos = list_models(run, cfg.models)
    jobs = [(m, row) for m in model_infos for _, row in model_layers(m, cfg.layers).iterrows()]
    if not jobs:
        raise ParameterError(f"no layer to probe: none of the layers {cfg.layers} was extracted")
    settings = {k: v for k, v in cfg.as_dict().items() if k not in ("models", "layers")}
    inputs = {"features_sha256": run.sha256(FEATURES), "features_meta_sha256": run.sha256(FEATURES_META),
              "models": {m["name"]: fingerprint(_model_identity(m)) for m in model_infos}}
    keys = [f"{m['name']}/{row['layer']}" for m, row in jobs]
    prints = [fingerprint({"settings": settings, "features": inputs["features_sha256"],
                           "meta": inputs["features_meta_sha256"], "model": _model_identity(m),
                           "layer": {k: str(v) for k, v in row.items()}}) for m, row in jobs]
    units = _Units(run)
    with run.stage(STAGE, config=cfg.as_dict(), inputs=inputs, seeds={"random_state": random_state},
                   outputs=(PROBES_FILE,), force=force) as stage:
        if stage.up_to_date:
            logger.info("probe: up to date (same settings, descriptors and activations); reading %s",
                        run.file(PROBES_FILE))
            return run.read_table(PROBES_FILE)
        todo = [k for k in range(len(jobs)) if not (stage.unit_done(keys[k], prints[k])
                                                    and units.path(*jobs[k]).exists())]
        logger.info("probe: %d of %d layer(s) to compute (%d up to date)", len(todo), len(jobs),
                    len(jobs) - len(todo))
        if todo:
            _probe_layers(run, stage, [jobs[k] for k in todo], [(keys[k], prints[k]) for k in todo], cfg, n_jobs,
                          units)
        n_clips = len(run.clips())
        finished = [units.read(m, row) for m, row in jobs]
        tables = [t for t, _ in finished]
        if "cka" in cfg.probes:
            tables.append(_layer_pairs_cka(jobs, n_clips))
        result = check_table(PROBES_FILE, pd.concat(tables, ignore_index=True))
        run.write_table(PROBES_FILE, result)
        oofs = [o for _, o in finished if o is not None]
        if oofs:
            run.write_table(OOF, pd.concat(oofs, ignore_index=True))
        stage.complete(n_rows=len(result), n_models=len(model_infos), n_layers=len(jobs), n_layers_computed=len(todo),
                       probes=list(cfg.probes))
    logger.info("probes: %d rows for %d layer(s) of %d model(s) (%d computed now) -> %s", len(result), len(jobs),
                len(model_infos), len(todo), run.file(PROBES_FILE))
    return result


def _probe_layers(run: Run, stage, jobs: list[tuple[dict, pd.Series]], keys: list[tuple[str, str]],
                  cfg: ProbeConfig, n_jobs: int, units: _Units) -> None:
    """Probe ``jobs`` on ``n_jobs`` worker processes, writing each layer's unit as soon as it finishes.

    Descriptor-side work is shared by the layers of each process (:class:`~audioprobe.probes.shared.SharedCache`),
    and a message about the descriptors or the clips' labels is logged once, not once per layer
    (:mod:`audioprobe.probes.layer_pool` brings the workers' messages back).
    """
    clips = run.clips()
    base = ["clip_id", "group", "domain"]
    task_columns = [c for t in cfg.tasks for c in (t["column"], t["group"]) if c not in base]
    clips = clips.assign(clip_id=clips["clip_id"].astype(str), group=clips["group"].astype(str),
                         domain=clips["domain"].astype(str))[base + list(dict.fromkeys(task_columns))]
    targets, meta = probe_targets(run, clips)
    calls = [(*job, clips, targets, meta, cfg) for job in jobs]
    with OncePerStage(logger), progress(total=len(jobs), desc="probe", unit="layer") as bar:
        for k, (table, oof) in map_layers(_probe_layer, calls, n_jobs):
            units.write(*jobs[k], table, oof)
            stage.finish_unit(*keys[k])
            bar.update()
