"""The probes of one layer: :data:`PROBES` maps each probe's name to a function of a layer's data and the settings.

Each function turns one layer's activations, aligned clips and targets (:class:`LayerData`) into long rows of
``probes.parquet`` (columns among :data:`~audioprobe.contract.PROBE_COLUMNS`; the rows of each probe are listed in
:mod:`audioprobe.probes.driver`). :class:`ProbeConfig` holds the settings they share, and :func:`check_config`
refuses invalid ones before any layer is read.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ParameterError, check_choice
from ..log import logger
from ._targets import variation_note, variation_notes
from .cka import linear_cka
from .partition import VariancePartition
from .rdm import COMPARISONS, RDM_METRICS
from .ridge import RidgeProbe
from .ridge_solver import DEFAULT_RELATIVE_ALPHAS
from .rsa import RSAProbe
from .shared import SharedCache
from .task import DEFAULT_CS, TaskProbe
from .task_design import DEFAULT_TASKS, parse_task, task_labels
from .transfer import DomainTransfer

__all__ = ["PROBES", "ProbeConfig", "LayerData", "CKA_METRICS", "check_config"]

CKA_METRICS = {"linear_cka": False, "debiased_linear_cka": True}


@dataclass
class ProbeConfig:
    """Settings shared by the probes (recorded in ``run.json``)."""

    probes: tuple[str, ...] = ("ridge", "rsa", "cka")
    cv: int = 5
    n_permutations: int = 1999
    n_bootstraps: int = 500
    random_state: int = 0
    scaling: str = "center"
    rdm_metric: str = "correlation"
    rsa_method: str = "spearman"
    partition_by: str = "family"
    n_components: int = 32
    max_missing: float = 0.5
    models: list[str] | None = None
    layers: list[str] | None = None
    tasks: tuple[dict, ...] = ()
    task_cs: tuple[float, ...] = DEFAULT_CS
    task_permutations: int = 199

    def as_dict(self) -> dict:
        """Return the settings as recorded in ``run.json`` (lists for tuples, the ridge alpha grid described)."""
        grid = DEFAULT_RELATIVE_ALPHAS
        return {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()},
                "alpha_grid": f"{grid.size} log-spaced values from {grid.min():g} to {grid.max():g} times the mean "
                              "non-zero eigenvalue of the centred training activations (per layer and fold)"}


@dataclass
class LayerData:
    """One layer's activations with the clips and targets aligned to its usable rows."""

    X: np.ndarray                      # (n_used, n_units), finite
    clips: pd.DataFrame                # clip_id, group, domain of the used clips
    targets: pd.DataFrame              # (n_used, n_descriptors), probe scale, NaN = missing
    meta: pd.DataFrame                 # features_meta rows of the targets
    seed: np.random.SeedSequence
    oof: list[pd.DataFrame] = field(default_factory=list)
    cache: SharedCache | None = None   # descriptor-side results shared by the layers of a stage


def _ridge(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    probe = RidgeProbe(cfg.cv, scaling=cfg.scaling).fit(data.X, data.targets, data.clips["group"], data.clips["domain"])
    res = probe.result_
    Y = data.targets.to_numpy(dtype=np.float64)
    ok = np.isfinite(res.y_pred)
    clip_idx, target_idx = np.nonzero(ok)
    data.oof.append(pd.DataFrame({
        "feature": np.asarray(probe.feature_names_, dtype=object)[target_idx],
        "clip_id": data.clips["clip_id"].to_numpy()[clip_idx],
        "group": data.clips["group"].to_numpy()[clip_idx],
        "domain": data.clips["domain"].to_numpy()[clip_idx],
        "fold": res.folds[clip_idx],
        "y_true": Y[clip_idx, target_idx],
        "y_pred": res.y_pred[clip_idx, target_idx],
    }))
    return pd.concat([probe.to_frame(), probe.domain_frame()], ignore_index=True)


def _rsa(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    probe = RSAProbe(metric=cfg.rdm_metric, method=cfg.rsa_method, n_permutations=cfg.n_permutations,
                     n_bootstraps=cfg.n_bootstraps, random_state=np.random.default_rng(data.seed), cache=data.cache)
    return probe.fit(data.X, data.targets, data.clips["group"].to_numpy()).results_


def _descriptor_set(data: LayerData, cfg: ProbeConfig) -> tuple[list[str], np.ndarray]:
    """Select the descriptor set of the CKA and partition probes and the clips that have all of it.

    The set holds the descriptors missing on at most ``cfg.max_missing`` of the clips and not constant.
    """
    frac = data.targets.isna().mean()
    noise = variation_notes(data.targets.to_numpy(dtype=np.float64))  # constant or float-noise descriptors
    names = [c for j, c in enumerate(data.targets.columns) if frac[c] <= cfg.max_missing and noise[j] is None]
    left_out = [c for c in data.targets.columns if c not in names]
    if left_out:
        logger.debug("descriptor set: %s left out (missing on > %.0f%% of clips, constant or varying by float "
                     "noise only)", left_out, 100 * cfg.max_missing)
    return names, data.targets[names].notna().all(axis=1).to_numpy()


def _cka(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    names, rows_ok = _descriptor_set(data, cfg)
    D = data.targets.loc[rows_ok, names].to_numpy(dtype=np.float64)
    D = (D - D.mean(axis=0)) / D.std(axis=0)
    ok = bool(names) and rows_ok.sum() >= 4
    note = (variation_note(data.X[rows_ok], what="layer", min_count=4) if names
            else "no descriptor is defined on enough clips")
    rows = [("descriptors", metric, linear_cka(data.X[rows_ok], D, debiased=debiased) if ok and note is None
             else np.nan, int(rows_ok.sum()), note) for metric, debiased in CKA_METRICS.items()]
    return pd.DataFrame(rows, columns=["feature", "metric", "value", "n_clips", "note"])


def _partition(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    names, _ = _descriptor_set(data, cfg)
    meta = data.meta.set_index("name").loc[names]
    sets = ({fam: list(meta.index[meta["family"] == fam]) for fam in pd.unique(meta["family"])}
            if cfg.partition_by == "family" else None)
    probe = VariancePartition(cfg.cv, sets=sets, n_components=cfg.n_components, cache=data.cache)
    return probe.fit(data.X, data.targets[names], data.clips["group"].to_numpy()).to_frame()


def _transfer(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    probe = DomainTransfer(cfg.cv, scaling=cfg.scaling)
    return probe.fit(data.X, data.targets, data.clips["domain"].to_numpy(), data.clips["group"].to_numpy()).results_


def _task(data: LayerData, cfg: ProbeConfig) -> pd.DataFrame:
    n_perm = cfg.task_permutations
    frames = []
    for task in map(parse_task, cfg.tasks):
        labels, groups = task_labels(data.clips, task)
        seed = np.random.SeedSequence(list(data.seed.entropy) + [zlib.crc32(task.name.encode())])
        probe = TaskProbe(cfg.cv, Cs=cfg.task_cs, scaling=cfg.scaling, n_permutations=n_perm,
                          random_state=np.random.default_rng(seed))
        frames.append(probe.fit(data.X, labels, groups).to_frame(task.name))
    return pd.concat(frames, ignore_index=True)


#: name -> function(layer data, config) -> long rows (columns among :data:`COLUMNS`) of one layer.
PROBES: dict[str, Callable[[LayerData, ProbeConfig], pd.DataFrame]] = {
    "ridge": _ridge, "rsa": _rsa, "cka": _cka, "partition": _partition, "transfer": _transfer, "task": _task,
}


def check_config(cfg: ProbeConfig) -> None:
    """Refuse invalid settings (:class:`~audioprobe.errors.ParameterError` naming the setting and its valid values)."""
    unknown = [p for p in cfg.probes if p not in PROBES]
    if unknown or not cfg.probes:
        raise ParameterError(f"probes must be a non-empty selection of {list(PROBES)}, got {list(cfg.probes)}")
    check_choice("rdm_metric", cfg.rdm_metric, RDM_METRICS)
    check_choice("rsa_method", cfg.rsa_method, COMPARISONS)
    check_choice("partition_by", cfg.partition_by, ("family", "descriptor"))
    for name in ("n_permutations", "n_bootstraps", "task_permutations"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 0:
            raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
    names = [t["name"] for t in cfg.tasks]
    if "task" in cfg.probes and not names:
        raise ParameterError("the task probe needs tasks (NAME=COLUMN[:GROUP_COLUMN]); none given and none of the "
                             f"default task columns {[t.column for t in DEFAULT_TASKS]} holds two labels")
    if len(set(names)) != len(names):
        raise ParameterError(f"task names must be unique, got {names}")
    TaskProbe(cfg.cv, Cs=cfg.task_cs)._check()
