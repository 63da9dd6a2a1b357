"""The layers of a probe stage on worker processes, their log messages brought back to the stage's process.

scikit-learn's logistic fits (task probe) and pandas hold the GIL, so threads reached ~1.4 of 2 cores; the layers
run on joblib's loky processes instead (measured on a quiet 2-core machine, demo run: see ``run_probes``).
:func:`map_layers` yields each layer's result as soon as it finishes, so that the stage writes its unit at once.

A worker keeps the log records the probes emit (:class:`RecordCollector`; message formatted, arguments dropped, as
:class:`logging.handlers.QueueHandler` does) and returns them with the result; the stage's process hands them to
its logger, whose filters (:class:`~audioprobe.probes.shared.OncePerStage`) and handlers then apply as to its own
records. Each worker process computes the descriptor-side results itself, in a
:class:`~audioprobe.probes.shared.SharedCache` kept for the layers of one stage. ``n_jobs=1`` (or a single layer)
runs in the stage's process, on one cache.
"""
from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from joblib import Parallel, delayed

from ..log import logger
from ..workers import blas_threads
from .shared import SharedCache

__all__ = ["map_layers", "RecordCollector", "collect_records"]

#: The worker process's cache: the id of the stage it belongs to, and the cache.
_WORKER_CACHE: dict[str, Any] = {"stage": None, "cache": None}


class RecordCollector(logging.Handler):
    """A handler that keeps picklable copies of the records it is given (``records``)."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep a copy of ``record``, as QueueHandler.prepare: message formatted (traceback's text included)."""
        kept = copy.copy(record)
        kept.msg, kept.args = self.format(record), None  # the unpicklable parts dropped
        kept.exc_info, kept.exc_text, kept.stack_info = None, None, None
        self.records.append(kept)


@contextmanager
def collect_records(log: logging.Logger, level: int) -> Iterator[list[logging.LogRecord]]:
    """Context manager: ``log``'s records at ``level`` or above are kept in the yielded list, not emitted.

    Parameters
    ----------
    log : logging.Logger
    level : int
        Lowest level kept (the stage process's effective level).
    """
    collector = RecordCollector()
    saved = log.handlers[:], log.level, log.propagate
    log.handlers, log.propagate = [collector], False
    log.setLevel(level)
    try:
        yield collector.records
    finally:
        log.handlers, log.propagate = saved[0], saved[2]
        log.setLevel(saved[1])


def _stage_cache(stage: str) -> SharedCache:
    """Return the worker's cache for ``stage`` (a new one when the worker starts serving another stage)."""
    if _WORKER_CACHE["stage"] != stage:
        _WORKER_CACHE.update(stage=stage, cache=SharedCache())
    return _WORKER_CACHE["cache"]


def _in_worker(k: int, func: Callable, args: tuple, stage: str, level: int) -> tuple[int, Any, list]:
    """Run ``func(*args, cache=...)`` in a worker process: ``(k, result, log records)``.

    The worker keeps glibc's default of returning freed memory (no
    :func:`audioprobe.allocator.retain_freed_memory`): with psutil installed, loky restarts a worker whose resident
    memory stays 300 MB above its start after a garbage collection, taking it for a leak.
    """
    with blas_threads(1), collect_records(logger, level) as records:
        result = func(*args, cache=_stage_cache(stage))
    return k, result, records


def map_layers(func: Callable[..., Any], calls: Sequence[tuple], n_jobs: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(k, func(*calls[k], cache=cache))`` for every call, in the order they finish.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it) taking a ``cache`` keyword
        (:class:`~audioprobe.probes.shared.SharedCache`).
    calls : sequence of tuple
        The positional arguments of each call (picklable).
    n_jobs : int
        Worker processes (loky); 1, or a single call, runs in this process.

    Notes
    -----
    Every call runs with one BLAS thread. The log records of a worker are handed to this process's logger when
    its call's result arrives (before it is yielded); a call that raises re-raises here and cancels the calls not
    yet started.
    """
    n_jobs = min(n_jobs, len(calls))
    if n_jobs <= 1:
        cache = SharedCache()
        with blas_threads(1):
            for k, args in enumerate(calls):
                yield k, func(*args, cache=cache)
        return
    stage, level = uuid.uuid4().hex, logger.getEffectiveLevel()
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    for k, result, records in parallel(delayed(_in_worker)(k, func, args, stage, level)
                                       for k, args in enumerate(calls)):
        for record in records:
            logger.handle(record)
        yield k, result
