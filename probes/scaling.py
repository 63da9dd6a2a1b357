"""Column scaling fit on training rows only: a registry of methods.

``center`` (the default for activations) subtracts the training mean; ``standard`` also divides
by the training standard deviation. Per-unit standardisation of ReLU layers is risky: a unit
that is almost always 0 in the training folds and active in the test fold explodes after
scaling (measured during development with the official BYOL-A d512 weights on ~100 real clips,
5 grouped folds, RidgeCV, fc1 -> log spectral centroid: per-fold mean R^2 -39 with per-unit standardisation,
0.56 with centring only), hence centring by default. A column whose training variance is float noise
relative to its mean square (the rule of :func:`~audioprobe.probes._targets.variation_notes`) is
constant and keeps scale 1: dividing by the standard deviation of rounding residue would blow it up to
unit variance.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import check_choice
from ._targets import has_note, variation_notes

__all__ = ["SCALINGS", "fit_scaling"]


def _unit_scale(X: np.ndarray) -> np.ndarray:
    return np.ones(X.shape[1])


def _std_scale(X: np.ndarray) -> np.ndarray:
    scale = X.std(axis=0)
    scale[has_note(variation_notes(X))] = 1.0  # constant up to float noise
    return scale


SCALINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"center": _unit_scale, "standard": _std_scale}


def fit_scaling(X: np.ndarray, method: str = "center") -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the columns of ``X`` (the training rows).

    Parameters
    ----------
    X : np.ndarray, shape (n_train, n_columns)
    method : {"center", "standard"}

    Returns
    -------
    mean, scale : np.ndarray, shape (n_columns,)
        Apply as ``(X - mean) / scale``; columns constant up to float noise get scale 1.
    """
    check_choice("scaling", method, SCALINGS)
    return X.mean(axis=0), SCALINGS[method](X)
