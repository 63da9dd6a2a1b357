"""Calibration benchmark of the domain-comparison tests (never run in CI).

Prints, for every test of ``audioprobe compare``, its false-positive rate at alpha = 0.05 over
``--sims`` simulated null designs (target: within [0.03, 0.07]) and its power over as many designs
with a planted domain effect, with Monte-Carlo standard errors. The simulated designs have
correlated layers, seed and seed x descriptor random effects (seed unit), and heavy-tailed,
heteroscedastic per-group squared errors with shared clip difficulty (clip unit); see
``audioprobe.analysis.simulate``.

Usage: ``python benchmarks/calibration.py [--sims 2000] [--seed-effect 0.05] [--clip-effect 0.2]
[--permutations 999] [--bootstraps 999] [--groups 24] [--tests NAME ...]``

The mixed models dominate the run time (about 0.05 s and 0.15 s per fit on one core): 2000
designs per test take about 15 minutes on a shared 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from audioprobe.analysis.calibration import CALIBRATION_TESTS, calibrate
from audioprobe.log import set_verbosity

TARGET = (0.03, 0.07)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulated designs per test and condition")
    parser.add_argument("--seed-effect", type=float, default=0.05,
                        help="planted shift of every speech score, R^2 units (seed unit)")
    parser.add_argument("--clip-effect", type=float, default=0.2,
                        help="planted relative reduction of the speech model's errors (clip unit)")
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--bootstraps", type=int, default=999)
    parser.add_argument("--groups", type=int, default=24, help="groups of clips in the clip-unit designs")
    parser.add_argument("--tests", nargs="+", choices=list(CALIBRATION_TESTS), default=list(CALIBRATION_TESTS))
    parser.add_argument("--random-state", type=int, default=2026)
    args = parser.parse_args()
    set_verbosity(0, quiet=True)
    options = dict(n_permutations=args.permutations, n_bootstraps=args.bootstraps, n_groups=args.groups)
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.sims} designs per test; alpha = 0.05; planted effects: seed unit +{args.seed_effect} R^2 for "
          f"speech, clip unit speech errors x {1 - args.clip_effect}; {args.groups} groups of 2-8 clips")
    rows = []
    for i, test in enumerate(args.tests):
        start = time.perf_counter()
        null = calibrate(args.sims, tests=[test], random_state=args.random_state + 2 * i, **options).iloc[0]
        power = calibrate(args.sims, tests=[test], seed_effect=args.seed_effect, clip_effect=args.clip_effect,
                          random_state=args.random_state + 2 * i + 1, **options).iloc[0]
        ok = TARGET[0] <= null["rate"] <= TARGET[1]
        rows.append(dict(test=test, false_positive_rate=null["rate"], fpr_se=null["mc_se"],
                         in_target="yes" if ok else "NO", power=power["rate"], power_se=power["mc_se"],
                         seconds=time.perf_counter() - start))
        print(f"{test:<26} FPR {null['rate']:.4f} (se {null['mc_se']:.4f}) {'in' if ok else 'OUTSIDE'} "
              f"[{TARGET[0]}, {TARGET[1]}]   power {power['rate']:.4f} (se {power['mc_se']:.4f})   "
              f"{time.perf_counter() - start:.0f} s   -- {CALIBRATION_TESTS[test]}", flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
