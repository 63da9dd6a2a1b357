"""Targets of the probes: the ``Y`` argument as a float matrix, and the one rule for variation that is float noise.

Every score that divides by a target's (or a representation's) variance -- R^2, Pearson r, an RDM
comparison, CKA, the variance partition -- is undefined when that variance is numerical residue.
:func:`variation_notes` decides it, in one place, for all of them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COMPUTED_NOISE_RTOL", "FLOAT_NOISE_RTOL", "as_targets", "has_note", "variation_note", "variation_notes"]

#: Variation of measured values (descriptors, activations) below this fraction of the mean square is float noise:
#: ``var <= FLOAT_NOISE_RTOL * mean(x^2)``, a standard deviation below one float32 ulp (``eps32 = 1.19e-7``) of
#: the root mean square (audio is decoded and activations are stored as float32).
FLOAT_NOISE_RTOL = float(np.finfo(np.float32).eps) ** 2

#: The same for values computed in float64 from measured ones (a probe's predictions): a standard deviation below
#: 64 float64 ulps (``64 eps64 = 1.4e-14``) of the root mean square. A heavily shrunk ridge prediction varies
#: genuinely far below float32 resolution (its slope is tiny, not noisy) and keeps its correlation.
COMPUTED_NOISE_RTOL = (64 * float(np.finfo(np.float64).eps)) ** 2


def as_targets(Y) -> tuple[np.ndarray, list[str]]:
    """``Y`` (DataFrame, Series or array, shape (n_clips,) or (n_clips, n_targets)) -> (float64 matrix, names).

    Unnamed columns are called ``y0, y1, ...``.
    """
    if isinstance(Y, pd.DataFrame):
        return Y.to_numpy(dtype=np.float64), [str(c) for c in Y.columns]
    if isinstance(Y, pd.Series):
        return Y.to_numpy(dtype=np.float64)[:, None], [str(Y.name)]
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    return Y, [f"y{j}" for j in range(Y.shape[1])]


def _as_columns(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def variation_notes(values, reference=None, *, what: str = "target", min_count: int = 2,
                    rtol: float = FLOAT_NOISE_RTOL) -> np.ndarray:
    """Why the variation of each column cannot carry a score (``None`` where it can).

    The rule: a column whose variance over its finite rows is at most :data:`FLOAT_NOISE_RTOL` times the mean
    square of ``reference`` (its finite rows) varies by float noise only: its standard deviation is below one
    float32 ulp of the reference's root mean square. Audio is decoded and activations are stored as float32
    (eps 1.19e-7), so nothing measured from them resolves a smaller relative variation; a score that divides by
    such a variance (R^2 ``1 - SS_res / SS_tot``, a correlation) returns numbers like -1e16 that describe the
    rounding, not the data.

    *Scale* is the mean square, not the variance and not the mean: a descriptor of 1000 +- 1e-6 has variance
    1e-12 but mean square 1e6, so its variation (1e-9 relative) is noise; a small-valued but genuine descriptor
    (1e-10 .. 2e-9 spread over its range) has a variance of about a fifth of its mean square and is kept,
    however small its values. What is measured against what matters: a modulation band that is 1e-10 .. 2e-9
    (filter residue) on the clips of one domain and 0.02 .. 0.3 on the others is genuine when scored on its
    own, but float noise inside that domain relative to the descriptor's scale over all clips. Callers that
    score a subset of clips (a fold, a domain) therefore pass the descriptor over all clips as ``reference``.

    Parameters
    ----------
    values : np.ndarray, shape (n_rows,) or (n_rows, n_columns)
        The scored rows; NaN = missing.
    reference : np.ndarray, shape (n_ref,) or (n_ref, n_columns), optional
        Rows whose mean square sets each column's scale (e.g. the descriptor over all clips of the run);
        default ``values``.
    what : str
        The subject of the note ("target", "descriptor", "layer", ...).
    min_count : int
        Fewer finite rows than this: undefined.
    rtol : float
        :data:`FLOAT_NOISE_RTOL` for measured values, :data:`COMPUTED_NOISE_RTOL` for values computed from them.

    Returns
    -------
    np.ndarray of object, shape (n_columns,)
        ``None`` or the reason, e.g. ``"target variance is float noise (var 3.2e-19 = 3.1e-17 of the mean
        square 0.01; tolerance 1.4e-14)"``.
    """
    values = _as_columns(values)
    reference = values if reference is None else _as_columns(reference)
    finite, ref_finite = np.isfinite(values), np.isfinite(reference)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, values, 0.0).sum(axis=0) / count
        var = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0) / count
        scale = np.where(ref_finite, reference**2, 0.0).sum(axis=0) / np.maximum(ref_finite.sum(axis=0), 1)
    return np.array([_judge(float(v), float(m), int(c), what, min_count, rtol) for v, m, c in zip(var, scale, count)],
                    dtype=object)


def _judge(var: float, scale: float, count: int, what: str, min_count: int,
           rtol: float = FLOAT_NOISE_RTOL) -> str | None:
    """Return the rule of :func:`variation_notes` for one variance and one mean square."""
    if count < min_count:
        return f"{what} has {count} finite value(s), fewer than {min_count}"
    if var == 0 or scale == 0:
        return f"{what} is constant"
    if var <= rtol * scale:
        return (f"{what} variance is float noise (var {var:.2g} = {var / scale:.2g} of the mean square {scale:.2g}; "
                f"tolerance {rtol:.2g})")
    return None


def variation_note(values, reference=None, *, what: str = "target", min_count: int = 2) -> str | None:
    """:func:`variation_notes` of a whole representation (all columns together).

    The variance is the total over columns (``sum_j var(x_j)``, the trace of the covariance) and the scale the
    total mean square: the rule for a layer or a descriptor set as one representation (RSA, CKA, the
    variance partition).

    Parameters
    ----------
    values : np.ndarray, shape (n_rows, n_columns)
    reference : np.ndarray, shape (n_ref, n_columns), optional
        Default ``values``.
    what, min_count
        As in :func:`variation_notes`; rows with a non-finite value are left out.

    Returns
    -------
    str or None
    """
    values = _as_columns(values)
    reference = values if reference is None else _as_columns(reference)
    v = values[np.all(np.isfinite(values), axis=1)]
    r = reference[np.all(np.isfinite(reference), axis=1)]
    var = float(np.sum(np.var(v, axis=0))) if len(v) else np.nan
    scale = float(np.mean(np.sum(r**2, axis=1))) if len(r) else 0.0
    return _judge(var, scale, len(v), what, min_count)


def has_note(notes) -> np.ndarray:
    """Boolean mask of the entries of a notes array (from :func:`variation_notes`) that hold a reason."""
    notes = np.asarray(notes, dtype=object)
    return np.array([note is not None for note in notes.ravel()], dtype=bool).reshape(notes.shape)
