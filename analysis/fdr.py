"""Benjamini-Hochberg false discovery rate adjustment that tolerates untested cells."""
from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import ParameterError

__all__ = ["fdr_bh", "FDR_METHOD"]

FDR_METHOD = "fdr_bh"  # the name statsmodels.stats.multitest.multipletests gives the procedure


def fdr_bh(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1).

    Parameters
    ----------
    p_values : array_like, shape (n,)
        Unadjusted p-values in [0, 1]; NaN marks a cell that was not tested: it stays NaN and
        does not count in the family size.

    Returns
    -------
    ndarray, shape (n,)
        Adjusted p-values, equal to ``multipletests(p, method="fdr_bh")[1]`` on the tested cells.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    tested = ~np.isnan(p)
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ParameterError(f"p_values must lie in [0, 1], got values from {p[tested].min()} to {p[tested].max()}")
    out = np.full(p.shape, np.nan)
    if tested.any():
        out[tested] = stats.false_discovery_control(p[tested], method="bh")
    return out
