"""Power analysis of the two-sample t-tests of a domain contrast (statsmodels' noncentral t power).

For a contrast estimated from ``n_a`` and ``n_b`` seeds whose scores spread with a between-seed
standard deviation ``sd`` (pooled within the two domains), the two-sided Student t-test at level
``alpha`` has power ``TTestIndPower().power(delta / sd, n_a, alpha, ratio=n_b / n_a)`` against a
true difference ``delta``. Two planning numbers follow (Cohen 1988, ch. 2):

* the *minimum detectable effect* (MDE): the ``delta`` with power 0.8 at the design's seed counts,
  in the score's units (``mde`` column of stats.parquet);
* the *seeds per domain needed* for a chosen ``delta`` (``audioprobe compare --power DELTA``).

Both use the per-test ``alpha``; a Benjamini-Hochberg family needs somewhat more. For a contrast
with a standard error ``se`` and ``df`` degrees of freedom (mixed models), the MDE is ``se`` times
the noncentrality with power 0.8 (:func:`statsmodels.stats.power.ttest_power` with ``nobs = 1``).
"""
from __future__ import annotations

import numpy as np
from scipy import optimize
from statsmodels.stats.power import TTestIndPower, ttest_power

from ..errors import ParameterError

__all__ = ["POWER", "standardized_mde", "minimum_detectable_effect", "mde_from_se", "seeds_needed"]

POWER = 0.8
_MAX_SEEDS = 1_000_000


def _power_or_one(values: np.ndarray | float) -> np.ndarray | float:
    """Scipy's noncentral t returns NaN far in its tail (noncentrality > ~30), where the power is 1."""
    return np.where(np.isnan(values), 1.0, values) if np.ndim(values) else (1.0 if np.isnan(values) else
                                                                              float(values))


def _check_power(power: float) -> float:
    if not isinstance(power, (int, float)) or not 0.0 < power < 1.0:
        raise ParameterError(f"power must be a number in (0, 1), got {power!r}")
    return float(power)


def standardized_mde(n_a: int, n_b: int, *, alpha: float, power: float = POWER) -> float:
    """Cohen's d detectable with ``power`` by a two-sided Student t-test of ``n_a`` vs ``n_b`` units.

    Returns
    -------
    float
        ``TTestIndPower().solve_power(None, nobs1=n_a, alpha=alpha, power=power, ratio=n_b / n_a)``;
        NaN with fewer than 2 units in a sample.
    """
    power = _check_power(power)
    if n_a < 2 or n_b < 2:
        return np.nan
    return float(TTestIndPower().solve_power(effect_size=None, nobs1=n_a, alpha=alpha, power=power,
                                             ratio=n_b / n_a, alternative="two-sided"))


def minimum_detectable_effect(sd: np.ndarray, n_a: int, n_b: int, *, alpha: float,
                              power: float = POWER) -> np.ndarray:
    """Smallest true difference a two-sided Student t-test detects with ``power``, in the scores' units.

    Parameters
    ----------
    sd : array_like, shape (n_cells,)
        Between-seed standard deviation of each cell (pooled over the two domains, ddof 1 each).
    n_a, n_b : int
        Seeds in each domain.
    alpha : float
        Level of the test.
    power : float
        Target power, in (0, 1).

    Returns
    -------
    ndarray, shape (n_cells,)
        ``sd * standardized_mde(n_a, n_b)``.
    """
    return np.asarray(sd, dtype=float) * standardized_mde(n_a, n_b, alpha=alpha, power=power)


def mde_from_se(se: float, df: float, *, alpha: float, power: float = POWER) -> float:
    """Smallest true difference a two-sided t-test with standard error ``se`` and ``df`` detects with ``power``.

    Solves ``ttest_power(delta / se, nobs=1, alpha=alpha, df=df) = power`` for ``delta``
    (statsmodels' noncentral t power); NaN when ``se`` is not positive or ``df < 1``.
    """
    power = _check_power(power)
    if not (np.isfinite(se) and se > 0 and df >= 1):
        return np.nan

    def gap(d: float) -> float:
        return _power_or_one(ttest_power(d, nobs=1, alpha=alpha, df=df, alternative="two-sided")) - power
    return float(se * optimize.brentq(gap, 1e-8, 100.0, xtol=1e-12))


def seeds_needed(delta: float, sd: np.ndarray, *, alpha: float, power: float = POWER) -> np.ndarray:
    """Seeds per domain (equal in both) for a two-sided Student t-test to detect ``delta`` with ``power``.

    Parameters
    ----------
    delta : float
        The difference to detect, in the scores' units (its sign does not matter), nonzero.
    sd : array_like, shape (n_cells,)
        Between-seed standard deviation of each cell.
    alpha : float
        Level of the test.
    power : float
        Target power.

    Returns
    -------
    ndarray of float, shape (n_cells,)
        The smallest integer ``n >= 2`` whose power reaches ``power`` (equals
        ``ceil(TTestIndPower().solve_power(delta / sd, None, alpha, power))``); NaN where ``sd``
        is NaN, inf beyond a million seeds, 2 where ``sd`` is 0.

    Raises
    ------
    ParameterError
        For a zero or non-finite ``delta``.
    """
    power = _check_power(power)
    if not (isinstance(delta, (int, float)) and np.isfinite(delta) and delta != 0):
        raise ParameterError(f"the difference for the power analysis (--power) must be a nonzero number in the "
                             f"score's units, got {delta!r}")
    sd = np.asarray(sd, dtype=float)
    with np.errstate(divide="ignore"):
        d = np.where(sd > 0, abs(delta) / np.where(sd > 0, sd, 1.0), np.inf)
    finite = np.isfinite(sd)
    lo, hi = np.full(sd.shape, 1.0), np.full(sd.shape, float(_MAX_SEEDS))  # power(lo) < target <= power(hi)
    analysis = TTestIndPower()
    reach = np.ones(sd.shape, dtype=bool)
    reach[finite & np.isfinite(d)] = _power_or_one(analysis.power(d[finite & np.isfinite(d)], _MAX_SEEDS,
                                                                  alpha)) >= power
    active = finite & np.isfinite(d) & reach
    while np.any(active):  # integer bisection, vectorised over the cells not yet bracketed to one seed
        mid = np.floor((lo + hi) / 2)
        ok = _power_or_one(analysis.power(d[active], mid[active], alpha)) >= power
        hi[active], lo[active] = np.where(ok, mid[active], hi[active]), np.where(ok, lo[active], mid[active])
        active &= hi - lo > 1
    hi = np.where(np.isinf(d), 2.0, np.maximum(hi, 2.0))  # no spread: the smallest design detects any delta
    return np.where(~finite, np.nan, np.where(reach, hi, np.inf))
