"""Map a pure per-clip function over clip rows: local processes on all cores, or Dask.

A per-clip function takes one clip row (a dict with at least ``clip_id`` and
``audio_path``) and returns a dict of results (one output row). The runner

* runs it in-process (``n_jobs=1``), in a pool of local processes (default: all cores),
  or on a ``dask.distributed`` scheduler (``scheduler="local"`` starts a LocalCluster,
  ``scheduler="tcp://host:port"`` connects to a running one);
* records an exception raised for a clip as a failure (clip id, path, error type,
  message) and carries on with the rest, but stops at once with :class:`StageError` when the
  first clips all fail with the same error (a setting or a function that cannot work on any
  clip is not a per-clip failure);
* writes finished rows in chunks as they complete, so a re-run of a killed stage skips
  finished clips;
* shows a progress bar with clips done, rate and ETA.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import pandas as pd
from joblib import Parallel, delayed

from .errors import ParameterError, StageError
from .log import logger, progress
from .runstore import ChunkStore, Run
from .workers import ClipFunction, blas_threads, call_safely

__all__ = ["map_clips", "MapResult", "resolve_n_jobs", "blas_threads", "FAIL_FAST_CLIPS"]

#: When this many first clips (or all clips, if fewer) fail with one identical error and none
#: succeeded, the error is about the stage, not about a clip: the run stops.
FAIL_FAST_CLIPS = 8


@dataclass
class MapResult:
    """Output of :func:`map_clips`.

    Attributes
    ----------
    table : pd.DataFrame
        One row per successful clip, in the order of the input rows; ``clip_id`` first.
    failures : pd.DataFrame
        One row per failed clip: ``clip_id``, ``path``, ``error_type``, ``message``.
    """

    table: pd.DataFrame
    failures: pd.DataFrame


def resolve_n_jobs(n_jobs: int | None) -> int:
    """``None`` or ``-1`` -> all cores; a positive int is kept; anything else is refused."""
    if n_jobs is None or n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ParameterError(f"n_jobs must be a positive integer, -1 or None (all cores), got {n_jobs!r}")
    return n_jobs


def _run_inline(func: ClipFunction, rows: list[dict]) -> Iterator[tuple[str, dict]]:
    for row in rows:
        yield call_safely(func, row)


def _run_processes(func: ClipFunction, rows: list[dict], n_jobs: int) -> Iterator[tuple[str, dict]]:
    # joblib's loky backend pickles with cloudpickle and never re-imports __main__, so a user's script needs no
    # `if __name__ == "__main__"` guard; it dispatches 2 * n_jobs clips ahead (pre_dispatch) and, when the consumer
    # stops early (fail-fast, interrupt) and the generator is closed, cancels the clips not yet started.
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered", pre_dispatch="2 * n_jobs")
    yield from parallel(delayed(call_safely)(func, row) for row in rows)


def _run_dask(func: ClipFunction, rows: list[dict], scheduler: str, n_jobs: int) -> Iterator[tuple[str, dict]]:
    from distributed import Client, LocalCluster, as_completed

    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        window = 4 * max(n_jobs, len(client.scheduler_info().get("workers", {})) or 1)
        queue = iter(rows)
        futures = as_completed(client.submit(call_safely, func, row, pure=False)
                               for row in [r for _, r in zip(range(window), queue)])
        for future in futures:
            yield future.result()
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                futures.add(client.submit(call_safely, func, nxt, pure=False))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _stop_if_systematic(stage: str, failed: list[dict]) -> None:
    """Raise :class:`StageError` when every failure so far is one and the same error."""
    kinds = {(f["error_type"], f["message"]) for f in failed}
    if len(kinds) == 1:
        error_type, message = kinds.pop()
        raise StageError(f"{stage}: the first {len(failed)} clips all failed with the same error, so the "
                         f"cause is a setting or the code, not a clip; stopped. {error_type}: {message}")


def map_clips(func: ClipFunction, clips: pd.DataFrame, *, run: Run | None = None, stage: str = "clips",
              n_jobs: int | None = None, scheduler: str | None = None, chunk_size: int = 32,
              desc: str | None = None) -> MapResult:
    """Apply ``func`` to every clip row, in parallel, resumably.

    Parameters
    ----------
    func : callable(dict) -> dict
        A picklable, pure per-clip function (module-level function or functools.partial).
    clips : pd.DataFrame
        One row per clip with at least ``clip_id`` and ``audio_path``.
    run : Run, optional
        When given, finished rows are written to ``RUN/partial/<stage>/`` in chunks of
        ``chunk_size`` and clips finished by an earlier, interrupted call are skipped;
        failures are recorded in ``failures.csv`` (and cleared for clips that now succeed).
    stage : str
        Name of the stage (for the chunk folder and failures).
    n_jobs : int, optional
        Worker processes; default all cores. ``1`` runs in this process.
    scheduler : str, optional
        ``"local"`` (a dask LocalCluster of ``n_jobs`` workers) or a dask scheduler address
        ``"tcp://host:port"``. Default: local processes.
    chunk_size : int
        Rows per chunk written to disk.
    desc : str, optional
        Progress-bar label.

    Returns
    -------
    MapResult
        ``table`` (successful rows, input order) and ``failures`` of this call and of earlier
        interrupted calls.

    Raises
    ------
    StageError
        The first :data:`FAIL_FAST_CLIPS` clips (or all, if fewer) failed with one identical
        error: nothing more is computed, and these failures are not recorded as clip failures
        (the stage's lifecycle records the stage as failed with this error).
    """
    if "clip_id" not in clips.columns:
        raise ParameterError(f"clips must have a 'clip_id' column, got {list(clips.columns)}")
    if chunk_size < 1:
        raise ParameterError(f"chunk_size must be >= 1, got {chunk_size!r}")
    n_jobs = resolve_n_jobs(n_jobs)
    rows = [{**row, "clip_id": str(row["clip_id"])} for row in clips.to_dict("records")]
    store = ChunkStore(run, stage) if run is not None else None
    done = store.done_ids() if store is not None else set()
    todo = [row for row in rows if row["clip_id"] not in done]
    if done:
        logger.info("%s: resuming, %d of %d clips already done", stage, len(done & {r["clip_id"] for r in rows}),
                    len(rows))

    if scheduler is not None:
        outcomes = _run_dask(func, todo, scheduler, n_jobs)
    elif n_jobs == 1 or len(todo) <= 1:
        outcomes = _run_inline(func, todo)
    else:
        outcomes = _run_processes(func, todo, n_jobs)

    finished: list[dict] = []
    failed: list[dict] = []
    buffer_ok: list[dict] = []
    buffer_failed: list[dict] = []

    def flush() -> None:
        if store is not None and (buffer_ok or buffer_failed):
            if buffer_ok:
                store.write_chunk(pd.DataFrame(buffer_ok))
            run.record_failures(stage, pd.DataFrame(buffer_failed), succeeded=[r["clip_id"] for r in buffer_ok])
        buffer_ok.clear()
        buffer_failed.clear()

    fail_fast_at = min(len(todo), FAIL_FAST_CLIPS)
    with progress(total=len(todo), desc=desc or stage) as bar, closing(outcomes):  # a stop cancels queued clips
        for status, record in outcomes:
            (finished if status == "ok" else failed).append(record)
            if not finished and len(failed) == fail_fast_at and fail_fast_at > 1:
                _stop_if_systematic(stage, failed)
            (buffer_ok if status == "ok" else buffer_failed).append(record)
            if len(buffer_ok) + len(buffer_failed) >= chunk_size:
                flush()
            bar.update(1)
        flush()

    table = store.collect() if store is not None else pd.DataFrame(finished)
    order = {clip_id: i for i, clip_id in enumerate(r["clip_id"] for r in rows)}
    if not table.empty:
        table = table[table["clip_id"].isin(order)]
        table = table.iloc[table["clip_id"].map(order).argsort(kind="stable")].reset_index(drop=True)
    if run is not None:
        all_failures = run.failures()
        failures = all_failures[(all_failures["stage"] == stage) & all_failures["clip_id"].astype(str).isin(order)]
        failures = failures.drop(columns="stage").reset_index(drop=True)
    else:
        failures = pd.DataFrame(failed, columns=["clip_id", "path", "error_type", "message"])
    if len(failures) and not table.empty:  # none succeeded: the stage says so, as its error
        logger.warning("%s: %d of %d clips failed (see failures.csv)", stage, len(failures), len(rows))
    return MapResult(table=table, failures=failures)
