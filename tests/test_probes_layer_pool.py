"""Layers on worker processes: every result once, the workers' log messages said by the stage, one BLAS thread."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from audioprobe.errors import ParameterError
from audioprobe.log import logger
from audioprobe.probes.layer_pool import collect_records, map_layers
from audioprobe.probes.shared import ONCE, OncePerStage


def _layer(k: int, *, cache) -> dict:
    """A stand-in layer: says one shared and one own message, returns its square, process and BLAS threads."""
    logger.info("descriptor %s left out", "f0", extra=ONCE)
    logger.info("layer %d: %d clip(s) left out", k, k + 1)
    logger.debug("layer %d: detail", k)  # below the stage's level: not said
    if k < 0:
        raise ParameterError(f"layer {k} refused")
    shared = cache.get("descriptor side", lambda: np.arange(3.0))
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return {"value": k * k + shared.sum(), "pid": os.getpid(), "blas": blas}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_every_layer_once_with_its_messages_said_by_the_stage(caplog, n_jobs):
    caplog.set_level(logging.INFO, logger="audioprobe")
    with OncePerStage(logger):
        results = dict(map_layers(_layer, [(k,) for k in range(5)], n_jobs))
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert [results[k]["value"] for k in range(5)] == [k * k + 3.0 for k in range(5)]
    pids = {r["pid"] for r in results.values()}
    assert (pids == {os.getpid()}) if n_jobs == 1 else (os.getpid() not in pids)  # n_jobs=1: in this process
    assert all(r["blas"] and set(r["blas"]) == {1} for r in results.values())
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("descriptor f0 left out") == 1  # once per stage, from whichever worker said it first
    assert sorted(m for m in messages if m.startswith("layer")) == [f"layer {k}: {k + 1} clip(s) left out"
                                                                    for k in range(5)]
    assert not any("detail" in m for m in messages)


def test_a_failing_layer_raises_in_the_stage():
    with pytest.raises(ParameterError, match="layer -1 refused"):
        list(map_layers(_layer, [(0,), (-1,), (2,)], 2))


def test_collected_records_are_kept_picklable_and_the_logger_restored():
    import pickle

    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    with collect_records(logger, logging.INFO) as records:
        logger.info("array %s", np.zeros(2), extra=ONCE)
        logger.debug("not kept")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.warning("failed", exc_info=True)
    assert [r.getMessage().splitlines()[0] for r in records] == ["array [0. 0.]", "failed"]
    assert records[1].getMessage().splitlines()[-1] == "ValueError: boom"  # the traceback's text kept
    back = pickle.loads(pickle.dumps(records))
    assert back[0].once_per_stage and back[0].args is None and back[1].levelno == logging.WARNING
    assert (logger.handlers, logger.level, logger.propagate) == (handlers, level, propagate)
