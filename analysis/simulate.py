"""Simulated probe results with the structure of real ones, for calibration and tests.

Seed-level scores (one per model x feature x layer) are::

    score = profile[feature, layer] + effect[domain, layer] + u[seed] + v[seed, feature] + w[seed, feature, layer]

with a descriptor-specific layer profile (each descriptor peaks at its own layer), a seed random
effect ``u``, a seed x descriptor effect ``v``, and ``w`` an AR(1) process along the layers
(neighbouring layers of one network are correlated, ``layer_corr``).

Clip-level out-of-fold errors are built from targets with a group (speaker / recording) effect
and predictions of two models that share each clip's difficulty; the error scale varies between
groups (heteroscedastic, heavy-tailed squared errors) and the errors of one group are correlated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import CONTRAST_DOMAINS

__all__ = ["SeedDesign", "simulate_seed_scores", "simulate_group_errors", "seed_scores_table", "simulate_probes",
           "simulate_oof_run"]


@dataclass(frozen=True)
class SeedDesign:
    """Sizes and variance components of a simulated multi-seed design.

    Attributes
    ----------
    n_domains, n_seeds, n_features, n_layers : int
        Domains (speech, nonspeech, mixed in that order), seeds per domain, descriptors, layers.
    sd_seed, sd_seed_feature, sd_cell : float
        Standard deviations (R^2 units) of ``u``, ``v`` and ``w``.
    layer_corr : float
        Lag-1 correlation of ``w`` along the layers.
    """

    n_domains: int = 3
    n_seeds: int = 5
    n_features: int = 1
    n_layers: int = 6
    sd_seed: float = 0.02
    sd_seed_feature: float = 0.015
    sd_cell: float = 0.01
    layer_corr: float = 0.8


def _profile(n_features: int, n_layers: int) -> np.ndarray:
    peak = np.linspace(0.2, 0.8, n_features)[:, None] * (n_layers - 1)
    layers = np.arange(n_layers)[None, :]
    return 0.2 + 0.5 * np.exp(-0.5 * ((layers - peak) / max(1.0, n_layers / 4)) ** 2)


def simulate_seed_scores(design: SeedDesign, n_sims: int, *, effect: np.ndarray | float = 0.0,
                         random_state: int | np.random.Generator | None = 0) -> np.ndarray:
    """Scores of ``n_sims`` independent multi-seed designs.

    Parameters
    ----------
    design : SeedDesign
    n_sims : int
    effect : float or array_like, shape (n_layers,)
        Added to every score of the first domain (speech), per layer; 0 is the null.
    random_state : int, Generator or None

    Returns
    -------
    ndarray, shape (n_sims, n_domains, n_seeds, n_features, n_layers)
    """
    rng = np.random.default_rng(random_state)
    d = design
    shape = (n_sims, d.n_domains, d.n_seeds)
    u = rng.normal(0.0, d.sd_seed, shape)[..., None, None]
    v = rng.normal(0.0, d.sd_seed_feature, (*shape, d.n_features))[..., None]
    innov = rng.normal(0.0, d.sd_cell, (*shape, d.n_features, d.n_layers))
    w = np.empty_like(innov)
    w[..., 0] = innov[..., 0]
    for layer in range(1, d.n_layers):
        w[..., layer] = d.layer_corr * w[..., layer - 1] + np.sqrt(1.0 - d.layer_corr ** 2) * innov[..., layer]
    scores = _profile(d.n_features, d.n_layers) + u + v + w
    scores[:, 0] += np.broadcast_to(np.asarray(effect, dtype=float), (d.n_layers,))
    return scores


def seed_scores_table(scores: np.ndarray) -> pd.DataFrame:
    """One simulated design (``simulate_seed_scores(...)[i]``) as a long table.

    Returns
    -------
    pd.DataFrame
        Columns ``value, domain, seed, feature, layer`` (the model name is the seed).
    """
    n_domains, n_seeds, n_features, n_layers = scores.shape
    idx = np.indices(scores.shape).reshape(4, -1)
    domains = np.array(CONTRAST_DOMAINS[:n_domains])[idx[0]]
    return pd.DataFrame({
        "value": scores.ravel(), "domain": domains,
        "seed": np.char.add(np.char.add(domains, "-"), idx[1].astype(str)),
        "feature": np.char.add("f", idx[2].astype(str)), "layer": np.char.add("L", idx[3].astype(str))})


def simulate_probes(scores: np.ndarray, *, control: bool = True) -> pd.DataFrame:
    """Return a ``probes.parquet``-shaped table (ridge ``r2_pooled`` rows, plus per-fold ``r2`` rows) from one design.

    Parameters
    ----------
    scores : ndarray, shape (n_domains, n_seeds, n_features, n_layers)
    control : bool
        Add a random-weight control model (``pretrain_domain="none"``) with low scores.
    """
    long = seed_scores_table(scores).rename(columns={"seed": "model", "domain": "pretrain_domain"})
    long["seed"] = long["model"].str.split("-").str[-1].astype("Int64")
    if control:
        ctrl = long[long["model"] == long["model"].iloc[0]].assign(model="random", pretrain_domain="none",
                                                                    seed=pd.NA)
        ctrl["value"] = ctrl["value"] * 0.1
        long = pd.concat([long, ctrl], ignore_index=True)
    long["layer_index"] = long["layer"].str[1:].astype(int)
    pooled = long.assign(metric="r2_pooled", fold=pd.NA)
    per_fold = pd.concat([long.assign(metric="r2", fold=k, value=long["value"] + 0.01 * k) for k in range(2)])
    table = pd.concat([pooled, per_fold], ignore_index=True).assign(
        probe="ridge", pooling="mean", train_domain="all", eval_domain="all", n_clips=100, p_value=np.nan,
        ci_low=np.nan, ci_high=np.nan, model_b=pd.NA, layer_b=pd.NA)
    table["fold"] = table["fold"].astype("Int64")
    return table


def simulate_group_errors(n_sims: int, n_groups: int, *, effect: float = 0.0, clips_per_group: tuple = (2, 8),
                          random_state: int | np.random.Generator | None = 0) -> tuple[np.ndarray, ...]:
    """Per-group sums of targets and two models' squared out-of-fold errors, for ``n_sims`` designs.

    Parameters
    ----------
    n_sims, n_groups : int
    effect : float
        Model a's errors are scaled by ``1 - effect`` (0 is the null: exchangeable models).
    clips_per_group : (int, int)
        Inclusive range of the number of clips per group (drawn per group).
    random_state : int, Generator or None

    Returns
    -------
    n, sum_y, sum_y2, sse_a, sse_b : ndarray, shape (n_sims, n_groups)
        Inputs of :class:`~.bootstrap.GroupSums`.
    """
    rng = np.random.default_rng(random_state)
    sizes = rng.integers(clips_per_group[0], clips_per_group[1] + 1, (n_sims, n_groups))
    sim_of, group_of = np.repeat(np.arange(n_sims), sizes.sum(axis=1)), np.concatenate(
        [np.repeat(np.arange(n_groups), s) for s in sizes])
    n_clips = sim_of.size
    y = rng.normal(0.0, 1.0, (n_sims, n_groups))[sim_of, group_of] + rng.normal(0.0, 1.0, n_clips)
    scale = np.exp(rng.normal(0.0, 0.5, (n_sims, n_groups)))[sim_of, group_of]
    shared = rng.normal(0.0, 0.5, n_clips)

    def errors() -> np.ndarray:
        group_part = rng.normal(0.0, 0.3, (n_sims, n_groups))[sim_of, group_of]
        return (scale * (shared + group_part + rng.normal(0.0, 0.4, n_clips))) ** 2

    err_a, err_b = errors() * (1.0 - effect) ** 2, errors()
    flat = sim_of * n_groups + group_of

    def per_group(v: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=v, minlength=n_sims * n_groups).reshape(n_sims, n_groups)

    return sizes.astype(float), per_group(y), per_group(y * y), per_group(err_a), per_group(err_b)


def simulate_oof_run(n_groups: int = 12, clips_per_group: int = 4, *, layers: int = 3, features: int = 2,
                     effect: float = 0.0, random_state: int | np.random.Generator | None = 0
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``probes.parquet`` and ``oof.parquet`` tables of one model per domain (speech, nonspeech, mixed).

    The speech model's errors are scaled by ``1 - effect`` in every cell. ``r2_pooled`` in the
    probes table is computed from the oof rows (``1 - SSE / SST``).

    Returns
    -------
    probes, oof : pd.DataFrame
    """
    rng = np.random.default_rng(random_state)
    n_clips = n_groups * clips_per_group
    group = np.repeat(np.arange(n_groups), clips_per_group)
    clip_ids = [f"c{i:03d}" for i in range(n_clips)]
    oof_rows, probe_rows = [], []
    for f in range(features):
        y = rng.normal(0, 1, n_groups)[group] + rng.normal(0, 1, n_clips)
        difficulty = rng.normal(0, 0.5, n_clips)
        for lay in range(layers):
            for m, domain in enumerate(CONTRAST_DOMAINS):
                err = difficulty + rng.normal(0, 0.3, n_groups)[group] + rng.normal(0, 0.4, n_clips)
                err = err * (1.0 - effect) if domain == "speech" else err
                pred = y + err
                oof_rows.append(pd.DataFrame({
                    "model": f"{domain}-0", "layer": f"L{lay}", "feature": f"f{f}", "clip_id": clip_ids,
                    "group": [f"g{g}" for g in group], "domain": "speech", "fold": group % 3, "y_true": y,
                    "y_pred": pred}))
                r2 = 1.0 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2)
                probe_rows.append(dict(model=f"{domain}-0", pretrain_domain=domain, seed=0, layer=f"L{lay}",
                                       layer_index=lay, pooling="mean", feature=f"f{f}", probe="ridge",
                                       metric="r2_pooled", fold=pd.NA, train_domain="all", eval_domain="all",
                                       value=r2, n_clips=n_clips, p_value=np.nan, ci_low=np.nan, ci_high=np.nan,
                                       model_b=pd.NA, layer_b=pd.NA))
    probes = pd.DataFrame(probe_rows)
    probes["fold"] = probes["fold"].astype("Int64")
    return probes, pd.concat(oof_rows, ignore_index=True)
