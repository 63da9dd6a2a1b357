"""Calibration of every test of the domain comparison under a simulated null (and power under a planted effect).

Each test runs on ``n_sims`` independent simulated designs (:mod:`.simulate`) through the same
functions :func:`~.compare.compare_domains` uses; the rejection rate at ``alpha`` estimates the
false-positive rate (no effect planted) or the power (effect planted).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import check_choice
from ..log import progress
from .bootstrap import GroupSums, wild_r2_difference_test
from .mixed import domain_contrast, fit_domain_model
from .permutation import label_permutation_test, sign_flip_test
from .seed_unit import student_t, welch_interval
from .simulate import SeedDesign, seed_scores_table, simulate_group_errors, simulate_seed_scores

__all__ = ["calibrate", "CALIBRATION_TESTS"]

_PAIRS = [("speech", "nonspeech"), ("speech", "mixed"), ("nonspeech", "mixed")]
_CHUNK = 20  # designs sharing one set of Monte-Carlo draws (vectorised); more chunks, less shared-draw noise


def _chunked(test: Callable, *arrays: np.ndarray) -> np.ndarray:
    """Apply a vectorised test to chunks of designs (leading axis), so that chunks use independent draws."""
    return np.concatenate([test(*(x[i:i + _CHUNK] for x in arrays)) for i in range(0, len(arrays[0]), _CHUNK)])


def _grid_rejections(scores: np.ndarray, test: Callable, alpha: float) -> np.ndarray:
    """Per-sim fraction of rejected layer cells for a two-domain grid test (first feature, domains 0 and 1)."""
    def chunk(part: np.ndarray) -> np.ndarray:
        n_sims, _, n_seeds, _, n_layers = part.shape
        a = part[:, 0, :, 0, :].transpose(1, 0, 2).reshape(n_seeds, -1)
        b = part[:, 1, :, 0, :].transpose(1, 0, 2).reshape(n_seeds, -1)
        return test(a, b, alpha).reshape(n_sims, n_layers).mean(axis=1)
    return _chunked(chunk, scores)


def _permutation(n_permutations: int, rng: np.random.Generator) -> Callable:
    def test(a, b, alpha):
        return label_permutation_test(a, b, n_permutations=n_permutations, random_state=rng).pvalue <= alpha
    return test


def _student(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return student_t(a, b, alpha=alpha)[0] <= alpha


def _welch(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    low, high = welch_interval(a, b, alpha=alpha)
    return (low > 0) | (high < 0)


def _mixed(scores: np.ndarray, alpha: float, pairs: list[tuple[str, str]], *, across: bool, desc: str) -> np.ndarray:
    """Per-sim fraction of ``pairs`` (domain contrasts) rejected by one mixed-model fit."""
    out = np.zeros(len(scores))
    for i, one in enumerate(progress(scores, desc=desc, unit="sim", leave=False)):
        fit = fit_domain_model(seed_scores_table(one), across_features=across)
        out[i] = np.mean([domain_contrast(fit, pair, alpha=alpha)["p_value"] <= alpha for pair in pairs])
    return out


def _sign_flip(sums: GroupSums, alpha: float, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    def chunk(d: np.ndarray) -> np.ndarray:
        return sign_flip_test(d, n_permutations=n_permutations, random_state=rng).pvalue <= alpha
    return _chunked(chunk, sums.sse_b - sums.sse_a)


def _bootstrap(sums: GroupSums, alpha: float, n_bootstraps: int, rng: np.random.Generator) -> np.ndarray:
    def chunk(*arrays: np.ndarray) -> np.ndarray:
        return wild_r2_difference_test(GroupSums(*arrays), alpha=alpha, n_bootstraps=n_bootstraps,
                                       random_state=rng)[3] <= alpha
    return _chunked(chunk, *sums.arrays())


CALIBRATION_TESTS = {
    "permutation-exact": "seed label permutation, exact (5 vs 5 seeds, 6 correlated layers)",
    "permutation-monte-carlo": "seed label permutation, Monte Carlo (10 vs 10 seeds, 6 correlated layers)",
    "student-t": "Student t-test, the default per-cell test (3 vs 3 seeds, 6 correlated layers)",
    "welch-t": "Welch t interval excludes 0, for comparison (3 vs 3 seeds, 6 correlated layers)",
    "mixed-per-descriptor": "mixed model per descriptor (3 domains x 5 seeds x 6 layers; 3 contrasts per design)",
    "mixed-across-descriptors": "mixed model across descriptors (3 domains x 5 seeds x 3 descriptors x 4 layers; "
                                "3 contrasts per design)",
    "sign-flip": "sign-flip permutation over groups (clip unit)",
    "bootstrap": "paired wild cluster bootstrap test of the R^2 difference over groups (clip unit; p <= alpha iff "
                 "its interval excludes 0)",
}


def calibrate(n_sims: int = 500, *, tests: Iterable[str] | None = None, seed_effect: float = 0.0,
              clip_effect: float = 0.0, alpha: float = 0.05, n_permutations: int = 999, n_bootstraps: int = 999,
              n_groups: int = 24, random_state: int | None = 0) -> pd.DataFrame:
    """Rejection rate of each test over ``n_sims`` simulated designs.

    Parameters
    ----------
    n_sims : int
        Simulated designs per test.
    tests : iterable of str, optional
        Keys of :data:`CALIBRATION_TESTS` (default: all).
    seed_effect : float
        Shift of every speech score (R^2 units) in the seed-unit designs; 0 = null. With an effect,
        the mixed-model rates count only the two contrasts that involve speech.
    clip_effect : float
        Relative reduction of the speech model's errors in the clip-unit designs; 0 = null.
    alpha : float
        Level of every test.
    n_permutations, n_bootstraps : int
        Resamples per test (exact enumeration where the design has fewer rearrangements).
    n_groups : int
        Groups of clips in the clip-unit designs.
    random_state : int or None

    Returns
    -------
    pd.DataFrame
        One row per test: ``test``, ``description``, ``n_sims``, ``rate`` (rejections / tests),
        ``mc_se`` (its Monte-Carlo standard error, from the per-design rejection fractions).
    """
    tests = list(CALIBRATION_TESTS) if tests is None else [check_choice("tests", t, CALIBRATION_TESTS) for t in tests]
    rng = np.random.default_rng(random_state)
    # all three contrasts are null without an effect; with one, the two that involve speech carry it
    pairs = [pair for pair in _PAIRS if seed_effect == 0 or "speech" in pair]

    def seed_design(**sizes) -> np.ndarray:
        return simulate_seed_scores(SeedDesign(**sizes), n_sims, effect=seed_effect, random_state=rng)

    def group_sums() -> GroupSums:
        return GroupSums(*simulate_group_errors(n_sims, n_groups, effect=clip_effect, random_state=rng))

    runners = {
        "permutation-exact": lambda: _grid_rejections(seed_design(n_domains=2), _permutation(n_permutations, rng),
                                                      alpha),
        "permutation-monte-carlo": lambda: _grid_rejections(seed_design(n_domains=2, n_seeds=10),
                                                            _permutation(n_permutations, rng), alpha),
        "student-t": lambda: _grid_rejections(seed_design(n_domains=2, n_seeds=3), _student, alpha),
        "welch-t": lambda: _grid_rejections(seed_design(n_domains=2, n_seeds=3), _welch, alpha),
        "mixed-per-descriptor": lambda: _mixed(seed_design(), alpha, pairs, across=False, desc="mixed per descriptor"),
        "mixed-across-descriptors": lambda: _mixed(seed_design(n_features=3, n_layers=4), alpha, pairs, across=True,
                                                   desc="mixed across descriptors"),
        "sign-flip": lambda: _sign_flip(group_sums(), alpha, n_permutations, rng),
        "bootstrap": lambda: _bootstrap(group_sums(), alpha, n_bootstraps, rng),
    }
    rows = []
    for name in tests:
        rejected = np.asarray(runners[name](), dtype=float)
        rows.append(dict(test=name, description=CALIBRATION_TESTS[name], n_sims=n_sims, rate=rejected.mean(),
                         mc_se=rejected.std(ddof=1) / np.sqrt(n_sims)))
    return pd.DataFrame(rows)
