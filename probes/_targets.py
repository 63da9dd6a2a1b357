"""Turn the ``Y`` argument of the probes into a float matrix and feature names."""
from __future__ import annotations

import numpy as np
import pandas as pd


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
