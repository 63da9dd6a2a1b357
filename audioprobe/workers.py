"""What runs inside a worker process: the failure-recording call of a per-clip function, and the BLAS thread limit.

Worker processes (joblib's loky, dask) import the module of every function they are sent. This module and
the per-clip functions of the stages (:mod:`features.describe`) import neither pandas nor joblib, so that a
worker is ready about 0.5 s sooner (``tests/test_imports.py`` pins it); :mod:`audioprobe.runner` dispatches.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from threadpoolctl import ThreadpoolController

from .errors import ParameterError

__all__ = ["call_safely", "blas_threads"]

ClipFunction = Callable[[dict], dict]


@functools.lru_cache(maxsize=1)
def _thread_controller() -> ThreadpoolController:
    """One controller per process: scanning the loaded libraries costs ~5 ms, too much per clip."""
    return ThreadpoolController()


def blas_threads(limit: int = 1):
    """Context manager: at most ``limit`` BLAS threads inside it (threadpoolctl), restored on exit.

    The one way the stages limit BLAS threads: small matrices in many parallel units gain nothing from
    threaded BLAS but contention. The library scan runs once per process (a cached
    :class:`threadpoolctl.ThreadpoolController`), so the limit is cheap enough to set per clip.

    Parameters
    ----------
    limit : int
        Maximum number of BLAS threads, >= 1.

    Raises
    ------
    ParameterError
        ``limit`` is not a positive integer.
    """
    if not isinstance(limit, int) or limit < 1:
        raise ParameterError(f"limit must be a positive integer, got {limit!r}")
    return _thread_controller().limit(limits=limit, user_api="blas")


def call_safely(func: ClipFunction, row: dict) -> tuple[str, dict]:
    """Run ``func(row)``; turn an exception into a failure record instead of raising.

    Returns
    -------
    ("ok", {"clip_id": ..., **func(row)}) or ("failed", {"clip_id", "path", "error_type", "message"})
    """
    try:
        result = func(row)
    except Exception as exc:  # a failing clip must not stop the batch
        return "failed", {"clip_id": str(row["clip_id"]), "path": str(row.get("audio_path", row.get("path", ""))),
                          "error_type": type(exc).__name__, "message": str(exc)}
    return "ok", {"clip_id": str(row["clip_id"]), **result}
