"""Linear read-out of the sound domain (speech / music / environmental) from model embeddings.

Evidence of what the shipped pretrained models learned: the clip embeddings (BYOL-A's mean +
max over time of the last layer) of every shipped model on the default corpus
(``data_manifest.csv``), GroupKFold over the manifest's ``group`` (no speaker / source
recording / sound event straddles train and test), two standardised linear read-outs on the
same folds (see :func:`readout`), scored on held-out clips. Controls: the same architecture
with seeded random weights (one per seed, normalised with the stats of the ``mixed`` model of
the same seed, or another domain's when there is none) and the normalised log-mel input itself
(mean + max over time of the 64 bands).

Usage::

    python benchmarks/domain_readout.py [--manifest data_manifest.csv] [--weights-dir DIR] [--folds 5]
"""
from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()
    torch.set_num_threads(2)
    manifest = read_manifest(args.manifest or default_manifest_path())
    y, groups = manifest["domain"].to_numpy(), manifest["group"].to_numpy()
    waves = _waveforms(manifest)
    names = shipped_models(weights_dir=args.weights_dir)
    if not names:
        raise SystemExit(f"no shipped models under {args.weights_dir}")
    rows = []
    for name in names:
        loaded = load_model(name, weights_dir=args.weights_dir)
        rows.append({"model": name, "kind": loaded.pretrain_domain, "seed": loaded.seed,
                     **readout(embeddings(loaded.pipeline, waves), y, groups, n_splits=args.folds)})
    for seed in sorted({r["seed"] for r in rows}):
        sidecars = sorted(Path(args.weights_dir).glob(f"*/seed{seed}.json"), key=lambda p: p.parent.name != "mixed")
        stats = json.loads(sidecars[0].read_text())
        control = load_model("byola-v1:random", random_state=seed, norm_mean=stats["norm_mean"],
                             norm_std=stats["norm_std"])
        rows.append({"model": f"byola-v1:random seed{seed}", "kind": "random-weights", "seed": seed,
                     **readout(embeddings(control.pipeline, waves), y, groups, n_splits=args.folds)})
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


if __name__ == "__main__":
    main()
