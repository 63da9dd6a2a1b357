"""Reproduce the shipped domain models: every domain x seed, trained with ``SHIPPED_RECIPE``.

The weights go to ``<out_dir>/<domain>/seed<k>.pt`` + ``.json`` (the package's
``models/weights`` by default, where ``speech/seed0``-style names find them), and a long table
of all loss curves to ``<out_dir>/loss_curves.csv``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..log import logger
from ..models.specs import WEIGHTS_DIR
from ..runstore import atomic_path
from .recipe import SHIPPED_DOMAINS, SHIPPED_RECIPE, SHIPPED_SEEDS
from .train import pretrain

__all__ = ["WEIGHTS_DIR", "pretrain_shipped", "loss_curves"]


def loss_curves(weights_dir: str | Path = WEIGHTS_DIR) -> pd.DataFrame:
    """Loss per epoch of every ``<domain>/seed<k>.json`` under ``weights_dir``.

    Returns
    -------
    pd.DataFrame
        Columns ``domain``, ``seed``, ``epoch`` (1-based), ``loss``, sorted.
    """
    rows = []
    for sidecar in sorted(Path(weights_dir).glob("*/seed*.json")):
        info = json.loads(sidecar.read_text())
        rows += [{"domain": info["domain"], "seed": info["seed"], "epoch": i + 1, "loss": loss}
                 for i, loss in enumerate(info["loss_per_epoch"])]
    return pd.DataFrame(rows, columns=["domain", "seed", "epoch", "loss"]).sort_values(
        ["domain", "seed", "epoch"], ignore_index=True)


def pretrain_shipped(manifests: str | Path | Sequence[str | Path], *, work_dir: str | Path,
                     out_dir: str | Path | None = None, domains: Sequence[str] = SHIPPED_DOMAINS,
                     seeds: Sequence[int] = SHIPPED_SEEDS, init_dir: str | Path | None = None,
                     device: str = "auto") -> pd.DataFrame:
    """Train the shipped models one after the other (each resumes if interrupted).

    Parameters
    ----------
    manifests : path or sequence of paths
        The pretraining pools' manifests (``audioprobe corpus build-pools``).
    work_dir : str or Path, keyword-only
        Training states, ``<work_dir>/<domain>/seed<k>`` (a re-run resumes from them).
    out_dir : str or Path, optional, keyword-only
        Default :data:`WEIGHTS_DIR`.
    domains, seeds : sequences, keyword-only
    init_dir : str or Path, optional, keyword-only
        Continue pretraining from ``<init_dir>/<domain>/seed<k>.pt`` (e.g. a copy of earlier
        shipped weights; see ``init_weights`` of :func:`.train.pretrain`).
    device : str, keyword-only

    Returns
    -------
    pd.DataFrame
        :func:`loss_curves` of ``out_dir``.
    """
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    work_dir = Path(work_dir)
    for seed in seeds:  # seed-major: an interrupted run has whole seeds of every domain
        for domain in domains:
            logger.info("shipped model %s/seed%d", domain, seed)
            init = None if init_dir is None else Path(init_dir) / domain / f"seed{seed}.pt"
            pretrain(manifests, out_dir / domain, domain=domain, seed=seed, device=device, init_weights=init,
                     state_dir=work_dir / domain / f"seed{seed}", **SHIPPED_RECIPE)
    curves = loss_curves(out_dir)
    with atomic_path(out_dir / "loss_curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.5f")
    return curves
