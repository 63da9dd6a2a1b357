"""Linear read-out of the sound domain (speech / music / environmental) and of the sound category from model embeddings.

Evidence of what the shipped pretrained models learned: the clip embeddings (BYOL-A's mean +
max over time of the last layer) of every shipped model on the default corpus
(``data_manifest.csv``), GroupKFold over the manifest's ``group`` (no speaker / source
recording / sound event straddles train and test), two standardised linear read-outs on the
same folds (see :func:`readout`), scored on held-out clips. Controls: the same architecture
with seeded random weights (one per seed, normalised with the stats of the ``mixed`` model of
the same seed, or another domain's when there is none) and the normalised log-mel input itself
(mean + max over time of the 64 bands).

Per layer (``--layers``): the same read-out (ridge only) from every conv block and fc layer of
BYOL-A v1 (``features.3``, ``features.7``, ``features.11``: the block's (C, F, T) map as frames of
F x C values; ``fc.1``, ``fc.4``: the fc frames; each mean + max over time; ``fc.4`` is the clip
embedding). The task read-out (``category``): the same ridge read-out of the manifest's
``category`` (letters, words, animals, drums, midi, ...) over the categories with at least
``--min-category`` clips. Both tables end with the margin of each pretraining domain over the
random-weight control, in units of the seed standard deviation (mean of the two groups' sds).

Usage::

    python benchmarks/domain_readout.py [--manifest data_manifest.csv] [--weights-dir DIR] [--folds 5]
                                        [--layers] [--min-category 8]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audioprobe.audio import load_audio
from audioprobe.manifest import default_manifest_path, read_manifest
from audioprobe.models.pipeline import MIN_SAMPLES
from audioprobe.models.specs import WEIGHTS_DIR, load_model, shipped_models

#: BYOL-A v1 layers of the per-layer read-out, input side first (``fc.4`` pooled = the clip embedding).
LAYERS = ("features.3", "features.7", "features.11", "fc.1", "fc.4")


def _waveforms(manifest: pd.DataFrame) -> list[torch.Tensor]:
    waves = []
    for row in manifest.itertuples():
        y = load_audio(row.audio_path, sr=16000, clip_id=row.clip_id)
        if len(y) < MIN_SAMPLES:
            short = MIN_SAMPLES - len(y)
            y = np.pad(y, (short // 2, short - short // 2))
        waves.append(torch.from_numpy(y))
    return waves


@torch.no_grad()
def embeddings(pipeline: torch.nn.Module, waves: list[torch.Tensor], *, logmel_only: bool = False,
               batch_size: int = 50) -> np.ndarray:
    """(n_clips, d) clip embeddings; with ``logmel_only``, mean + max over time of the normalised log-mel (128).

    Clips of equal length run together, ``batch_size`` at a time.
    """
    out: list[np.ndarray | None] = [None] * len(waves)
    by_length: dict[int, list[int]] = {}
    for i, y in enumerate(waves):
        by_length.setdefault(len(y), []).append(i)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            x = torch.stack([waves[i] for i in chunk])
            if logmel_only:
                lm = pipeline.logmel(x)[:, 0]  # (B, 64, T)
                rows = torch.cat([lm.mean(dim=2), lm.amax(dim=2)], dim=1)
            else:
                rows = pipeline(x)
            for i, row in zip(chunk, rows.numpy().astype(np.float64)):
                out[i] = row
    return np.stack(out)


@torch.no_grad()
def layer_embeddings(pipeline: torch.nn.Module, waves: list[torch.Tensor], layers: tuple[str, ...] = LAYERS,
                     *, batch_size: int = 50) -> dict[str, np.ndarray]:
    """(n_clips, width) clip embedding of each layer: mean + max over time of its frames.

    A conv map (B, C, F, T) becomes frames of F x C values (frequency-major, as the encoder's
    own flattening); an fc output is already (B, T, D).
    """
    modules = dict(pipeline.encoder.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: store.__setitem__(name, out))
               for name in layers]
    out: dict[str, list] = {name: [None] * len(waves) for name in layers}
    by_length: dict[int, list[int]] = {}
    for i, y in enumerate(waves):
        by_length.setdefault(len(y), []).append(i)
    try:
        for indices in by_length.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                pipeline(torch.stack([waves[i] for i in chunk]))
                for name in layers:
                    frames = store[name]
                    if frames.ndim == 4:
                        frames = frames.permute(0, 3, 2, 1).reshape(frames.shape[0], frames.shape[3], -1)
                    pooled = (frames.mean(dim=1) + frames.amax(dim=1)).numpy().astype(np.float64)
                    for i, row in zip(chunk, pooled):
                        out[name][i] = row
    finally:
        for handle in handles:
            handle.remove()
    return {name: np.stack(rows) for name, rows in out.items()}


def ridge_readout(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, n_splits: int) -> float:
    """Out-of-fold balanced accuracy of the standardised ridge classifier (alpha by LOO on the training folds)."""
    pred = np.empty(len(y), dtype=object)
    for train, test in GroupKFold(n_splits=n_splits).split(X, y, groups):
        model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-1, 4, 11)))
        pred[test] = model.fit(X[train], y[train]).predict(X[test])
    return balanced_accuracy_score(y, pred.astype(str))


def margins(table: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """Mean and sd over seeds per kind (and ``by``), and each kind's margin over the random-weight control.

    ``margin_sd``: (mean - control mean) / (mean of the two sds over seeds).
    """
    stats = table.groupby(["kind", *by], sort=False)[value].agg(["mean", "std"]).reset_index()
    control = stats.loc[stats["kind"] == "random-weights", [*by, "mean", "std"]].rename(
        columns={"mean": "control_mean", "std": "control_sd"})
    out = stats.merge(control, on=by, how="left") if by else stats.assign(
        control_mean=control["control_mean"].iloc[0], control_sd=control["control_sd"].iloc[0])
    out["margin"] = out["mean"] - out["control_mean"]
    pooled_sd = (out["std"] + out["control_sd"]) / 2
    out["margin_sd"] = (out["margin"] / pooled_sd).where(pooled_sd > 0)
    return out.drop(columns=["control_mean", "control_sd"])


def readout(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, n_splits: int) -> dict[str, float]:
    """Out-of-fold scores of two standardised linear read-outs on the same GroupKFold folds.

    ``ridge_bacc``: balanced accuracy of a ridge classifier whose alpha is chosen on the training
    folds by efficient leave-one-out (``RidgeClassifierCV``, alphas 1e-1 .. 1e4).
    ``logreg_bacc``, ``logreg_logloss``: balanced accuracy and log-loss of a logistic regression
    with C = 0.1.
    """
    classes = np.unique(y)
    proba = np.zeros((len(y), len(classes)))
    ridge = np.empty(len(y), dtype=object)
    for train, test in GroupKFold(n_splits=n_splits).split(X, y, groups):
        logreg = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(X[train], y[train])
        proba[test] = logreg.predict_proba(X[test])
        ridge_model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-1, 4, 11)))
        ridge[test] = ridge_model.fit(X[train], y[train]).predict(X[test])
    return {"ridge_bacc": balanced_accuracy_score(y, ridge.astype(str)),
            "logreg_bacc": balanced_accuracy_score(y, classes[proba.argmax(axis=1)]),
            "logreg_logloss": log_loss(y, proba, labels=classes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=None, help="default: the shipped data_manifest.csv")
    parser.add_argument("--weights-dir", default=str(WEIGHTS_DIR), help="shipped weights folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--layers", action="store_true", help="also the per-layer domain and category read-outs")
    parser.add_argument("--min-category", type=int, default=8, help="categories with fewer clips are left out")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    parser.add_argument("--rows", default=None, help="with --layers: write every per-layer score to this CSV")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    manifest = read_manifest(args.manifest or default_manifest_path())
    y, groups = manifest["domain"].to_numpy(), manifest["group"].to_numpy()
    waves = _waveforms(manifest)
    names = shipped_models(weights_dir=args.weights_dir)
    if not names:
        raise SystemExit(f"no shipped models under {args.weights_dir}")
    rows, layer_rows = [], []
    keep = manifest["category"].map(manifest["category"].value_counts()) >= args.min_category

    def add(model: str, kind: str, seed: int, pipeline: torch.nn.Module) -> None:
        per_layer = layer_embeddings(pipeline, waves) if args.layers else {}
        clip_embedding = per_layer["fc.4"] if args.layers else embeddings(pipeline, waves)  # the same numbers
        rows.append({"model": model, "kind": kind, "seed": seed,
                     **readout(clip_embedding, y, groups, n_splits=args.folds)})
        print(f"  done: {model}", file=sys.stderr, flush=True)
        if args.layers:
            for layer, X in per_layer.items():
                layer_rows.append({"model": model, "kind": kind, "seed": seed, "layer": layer,
                                   "domain_ridge_bacc": ridge_readout(X, y, groups, n_splits=args.folds),
                                   "category_ridge_bacc": ridge_readout(
                                       X[keep], manifest["category"].to_numpy()[keep], groups[keep],
                                       n_splits=args.folds)})

    for name in names:
        loaded = load_model(name, weights_dir=args.weights_dir)
        add(name, loaded.pretrain_domain, loaded.seed, loaded.pipeline)
    for seed in sorted({r["seed"] for r in rows}):
        sidecars = sorted(Path(args.weights_dir).glob(f"*/seed{seed}.json"), key=lambda p: p.parent.name != "mixed")
        stats = json.loads(sidecars[0].read_text())
        control = load_model("byola-v1:random", random_state=seed, norm_mean=stats["norm_mean"],
                             norm_std=stats["norm_std"])
        add(f"byola-v1:random seed{seed}", "random-weights", seed, control.pipeline)
    rows.append({"model": "log-mel mean+max", "kind": "log-mel", "seed": None,
                 **readout(embeddings(control.pipeline, waves, logmel_only=True), y, groups, n_splits=args.folds)})
    table = pd.DataFrame(rows).astype({"seed": "Int64"})
    pd.set_option("display.width", 120)
    print(f"domain read-out on {len(manifest)} clips ({dict(manifest['domain'].value_counts())}), "
          f"GroupKFold({args.folds}) over {manifest['group'].nunique()} groups, standardised ridge "
          "classifier (alpha by LOO on the training folds) and logistic regression (C=0.1), out-of-fold scores")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = table.groupby("kind", sort=False)[["ridge_bacc", "logreg_bacc", "logreg_logloss"]].agg(["mean", "std"])
    print("\nby kind (mean and sd over seeds):")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nmargin over the random-weight control (ridge balanced accuracy; margin_sd in seed sds):")
    print(margins(table[table["kind"] != "log-mel"], "ridge_bacc", []).to_string(
        index=False, float_format=lambda v: f"{v:.3f}"))
    if layer_rows:
        layers = pd.DataFrame(layer_rows)
        if args.rows:
            layers.to_csv(args.rows, index=False)
        n_cat = int(keep.sum())
        for value, title in (("domain_ridge_bacc", "domain (3 classes)"),
                             ("category_ridge_bacc", f"category ({manifest['category'][keep].nunique()} classes, "
                                                     f"{n_cat} clips)")):
            print(f"\nper layer, {title}: ridge balanced accuracy, mean and sd over seeds, margin over the control")
            print(margins(layers, value, ["layer"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
