"""Benchmark the probes against the naive loops they replace.

1. Ridge: :func:`audioprobe.probes.ridge.cross_validate_ridge` (one decomposition per fold shared by
   every descriptor and alpha, exact leave-one-out alpha selection) against the naive loop, a
   ``GridSearchCV(Ridge)`` per descriptor (inner GroupKFold) inside the same outer grouped folds, and
   against ``RidgeCV(alpha_per_target=True)`` per fold (scikit-learn's own efficient LOO).
2. RSA permutation null: :func:`audioprobe.probes.rsa_resampling.permutation_null` (rank gather + one matrix
   product per batch) against rsatoolbox (``permute_rdms`` + ``rdm.compare(method="spearman")`` per
   permutation, all descriptors per call); and the group bootstrap against rsatoolbox's
   ``subsample_pattern`` + ``compare`` and against the previous implementation
   (``probes/rsa.py`` at commit :data:`PREVIOUS_RSA`, read with ``git show``: weighted mid-ranks by
   numpy gathers and cumulative sums per sample), on the same resamples (the replicates must agree).

The reference loops can be timed on fewer targets / permutations / bootstraps than the fast code
(``--naive-targets``, ``--reference-permutations``, ``--reference-bootstraps``): their cost is linear
in those counts, and the printed ratio uses the per-item time. Both sides run with the same number
of BLAS threads (``--threads``, default 1). Run::

    python benchmarks/bench_probes.py            # defaults: 300 clips, 512 units, 60 descriptors
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, GroupKFold
from threadpoolctl import threadpool_limits

from audioprobe.probes.rdm import descriptor_rdm, layer_rdm
from audioprobe.probes.ridge import cross_validate_ridge
from audioprobe.probes.rsa_resampling import bootstrap_distribution, permutation_null
from audioprobe.probes.splitters import GroupFolds, fold_labels

#: Commit of ``probes/rsa.py`` before the compiled bootstrap (the previous implementation timed here).
PREVIOUS_RSA = "e96d732a85e20aa1aa915f7aeab49120520518e8"


def _timed(func):
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def _data(args):
    rng = np.random.default_rng(args.random_state)
    latent = rng.normal(size=(args.clips, 8))
    X = np.maximum(latent @ rng.normal(size=(8, args.units)) + rng.normal(size=(args.clips, args.units)), 0)
    Y = latent @ rng.normal(size=(8, args.targets)) + rng.normal(size=(args.clips, args.targets))
    groups = np.arange(args.clips) % (args.clips // 5)
    return X, Y, groups


def bench_ridge(args, X, Y, groups):
    alphas = np.logspace(-2, 6, 17)
    folds = fold_labels(GroupFolds(args.cv), groups)
    t_fast, fast = _timed(lambda: cross_validate_ridge(X, Y, folds, alphas=alphas))
    k = min(args.naive_targets, Y.shape[1])

    def naive():
        pred = np.empty((len(X), k))
        for j in range(k):
            for f in range(args.cv):
                train, test = folds != f, folds == f
                search = GridSearchCV(Ridge(), {"alpha": alphas}, cv=GroupKFold(args.cv),
                                      scoring="neg_mean_squared_error")
                pred[test, j] = search.fit(X[train], Y[train, j], groups=groups[train]).predict(X[test])
        return pred

    def ridgecv():
        pred = np.empty((len(X), k))
        for j in range(k):
            for f in range(args.cv):
                train, test = folds != f, folds == f
                pred[test, j] = RidgeCV(alphas=alphas).fit(X[train], Y[train, j]).predict(X[test])
        return pred

    t_naive, _ = _timed(naive)
    t_ridgecv, pred = _timed(ridgecv)
    assert np.allclose(pred, fast.y_pred[:, :k], atol=1e-6), "fast ridge disagrees with RidgeCV"
    per_target = t_fast / Y.shape[1]
    print(f"ridge  ({len(X)} clips, {X.shape[1]} units, {Y.shape[1]} descriptors, {args.cv} folds, "
          f"{len(alphas)} alphas)")
    print(f"  audioprobe cross_validate_ridge : {t_fast:8.3f} s  ({1e3 * per_target:.2f} ms per descriptor)")
    print(f"  naive GridSearchCV(Ridge) loop  : {t_naive:8.3f} s  for {k} descriptor(s) "
          f"({1e3 * t_naive / k:.1f} ms per descriptor)  -> ratio {t_naive / k / per_target:7.1f}x")
    print(f"  RidgeCV per descriptor per fold : {t_ridgecv:8.3f} s  for {k} descriptor(s) "
          f"({1e3 * t_ridgecv / k:.1f} ms per descriptor)  -> ratio {t_ridgecv / k / per_target:7.1f}x")


def _previous_rsa():
    """``probes/rsa.py`` at :data:`PREVIOUS_RSA` as a module of the installed package (None without git history)."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(["git", "show", f"{PREVIOUS_RSA}:probes/rsa.py"], cwd=root, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("audioprobe.probes._rsa_previous", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "audioprobe.probes"
    exec(compile(source, f"{PREVIOUS_RSA[:7]}:probes/rsa.py", "exec"), module.__dict__)
    return module


def bench_rsa(args, X, Y, groups):
    import rsatoolbox
    from rsatoolbox.rdm.rdms import permute_rdms

    rdm = layer_rdm(X)
    n_desc = min(args.rsa_targets, Y.shape[1])
    targets = np.stack([descriptor_rdm(Y[:, j]) for j in range(n_desc)], axis=1)
    bootstrap_distribution(rdm[:45], targets[:45], groups[:10], n_bootstraps=1)  # compile (or load) the kernels
    permutation_null(rdm[:45], targets[:45], n_permutations=1)
    t_fast, null = _timed(lambda: permutation_null(rdm, targets, n_permutations=args.permutations, random_state=0))
    layer = rsatoolbox.rdm.RDMs(rdm[None])
    models = rsatoolbox.rdm.RDMs(targets.T.copy())
    rng = np.random.default_rng(0)

    def reference():
        return [rsatoolbox.rdm.compare(permute_rdms(layer, rng.permutation(len(X))), models,
                                       method="spearman") for _ in range(args.reference_permutations)]

    t_ref, _ = _timed(reference)
    per_fast, per_ref = t_fast / args.permutations, t_ref / args.reference_permutations
    print(f"RSA permutation null ({len(X)} clips = {len(rdm)} pairs, {n_desc} descriptors, Spearman)")
    print(f"  audioprobe permutation_null     : {t_fast:8.3f} s  for {args.permutations} permutations "
          f"({1e3 * per_fast:.2f} ms each)")
    print(f"  rsatoolbox permute + compare    : {t_ref:8.3f} s  for {args.reference_permutations} permutations "
          f"({1e3 * per_ref:.2f} ms each)  -> ratio {per_ref / per_fast:7.1f}x")
    previous = _previous_rsa()
    if previous is not None:
        k = min(args.previous_permutations, args.permutations)
        t_prev, null_prev = _timed(lambda: previous.permutation_null(rdm, targets, n_permutations=k, random_state=0))
        difference = np.max(np.abs(null_prev - null[:k]))
        assert difference < 1e-9, f"the permutation null differs from the previous implementation by {difference:g}"
        print(f"  previous ({PREVIOUS_RSA[:7]}) same permutations: {t_prev:5.3f} s  for {k} permutations "
              f"({1e3 * t_prev / k:.2f} ms each)  -> ratio {t_prev / k / per_fast:7.1f}x")

    t_boot, boot = _timed(lambda: bootstrap_distribution(rdm, targets, groups, n_bootstraps=args.bootstraps,
                                                         random_state=0))
    index = {"index": np.arange(len(X))}
    layer_p = rsatoolbox.rdm.RDMs(rdm[None], pattern_descriptors=index)
    models_p = rsatoolbox.rdm.RDMs(targets.T.copy(), pattern_descriptors=index)
    n_groups = groups.max() + 1

    def reference_boot():
        for _ in range(args.reference_bootstraps):
            drawn = rng.integers(0, n_groups, n_groups)
            sample = np.concatenate([np.flatnonzero(groups == g) for g in drawn])
            rsatoolbox.rdm.compare(layer_p.subsample_pattern("index", sample),
                                   models_p.subsample_pattern("index", sample), method="spearman")

    t_boot_ref, _ = _timed(reference_boot)
    per_fast, per_ref = t_boot / args.bootstraps, t_boot_ref / args.reference_bootstraps
    print(f"RSA group bootstrap ({len(np.unique(groups))} groups)")
    print(f"  audioprobe bootstrap_distribution: {t_boot:7.3f} s  for {args.bootstraps} samples "
          f"({1e3 * per_fast:.2f} ms each)")
    print(f"  rsatoolbox subsample + compare  : {t_boot_ref:8.3f} s  for {args.reference_bootstraps} samples "
          f"({1e3 * per_ref:.2f} ms each)  -> ratio {per_ref / per_fast:7.1f}x")
    if previous is None:
        print(f"  previous implementation         : skipped (no git history with {PREVIOUS_RSA[:7]})")
        return
    k = min(args.previous_bootstraps, args.bootstraps)
    t_prev, boot_prev = _timed(lambda: previous.bootstrap_distribution(rdm, targets, groups, n_bootstraps=k,
                                                                       random_state=0))
    difference = np.nanmax(np.abs(boot_prev - boot[:k]))
    assert difference < 1e-9, f"the bootstrap replicates differ from the previous implementation by {difference:g}"
    per_prev = t_prev / k
    print(f"  previous ({PREVIOUS_RSA[:7]}) same resamples: {t_prev:6.3f} s  for {k} samples "
          f"({1e3 * per_prev:.2f} ms each; max |difference| {difference:.1e})  -> ratio {per_prev / per_fast:7.1f}x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--naive-targets", type=int, default=8)
    parser.add_argument("--rsa-targets", type=int, default=60)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--reference-permutations", type=int, default=20)
    parser.add_argument("--bootstraps", type=int, default=200)
    parser.add_argument("--reference-bootstraps", type=int, default=20)
    parser.add_argument("--previous-permutations", type=int, default=200,
                        help="permutations timed with the previous implementation (the first of the fast run's)")
    parser.add_argument("--previous-bootstraps", type=int, default=50,
                        help="samples timed with the previous implementation (the first of the fast run's)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both sides (default 1)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--skip", choices=("ridge", "rsa"), action="append", default=[])
    args = parser.parse_args(argv)
    X, Y, groups = _data(args)
    with threadpool_limits(limits=args.threads):
        if "ridge" not in args.skip:
            bench_ridge(args, X, Y, groups)
        if "rsa" not in args.skip:
            bench_rsa(args, X, Y, groups)


if __name__ == "__main__":
    main()
