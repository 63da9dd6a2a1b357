"""Descriptor-side work shared by the layers of a probe stage: the cache and the once-per-stage messages."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from audioprobe.errors import ParameterError
from audioprobe.log import logger
from audioprobe.probes.shared import ONCE, OncePerStage, SharedCache, digest


def test_digest_tells_apart_values_dtypes_and_shapes():
    a = np.arange(6.0)
    assert digest(a) == digest(a.copy())
    assert digest(a) != digest(a.reshape(2, 3))  # same bytes, other shape
    assert digest(a) != digest(a.astype(np.float32))
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)  # one ulp
    assert digest(a) != digest(b)
    assert digest(a, "spearman") != digest(a, "tau-a")
    assert digest(a.reshape(2, 3).T) == digest(np.ascontiguousarray(a.reshape(2, 3).T))  # layout does not matter


def test_cache_computes_each_key_once_even_when_threads_ask_together():
    cache = SharedCache()
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.05)  # the other threads ask while this one computes
        return np.ones(4)

    results = [None] * 4

    def ask(i):
        results[i] = cache.get("k", compute)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.hits == 3 and len(cache) == 1 and cache.nbytes == 32
    assert all(r is results[0] for r in results)


def test_cache_over_its_budget_computes_without_keeping():
    cache = SharedCache(max_bytes=16)
    assert cache.get("big", lambda: np.zeros(4)).tolist() == [0.0] * 4  # 32 bytes > 16: not kept
    assert len(cache) == 0 and cache.nbytes == 0
    assert cache.get("small", lambda: np.zeros(2)).tolist() == [0.0, 0.0]
    assert len(cache) == 1 and cache.nbytes == 16
    with pytest.raises(ParameterError, match="max_bytes"):
        SharedCache(max_bytes=-1)


def test_marked_messages_are_said_once_per_stage(caplog):
    caplog.set_level(logging.INFO, logger="audioprobe")
    with OncePerStage(logger):
        for layer in ("a", "b", "c"):  # three layers say the same things
            logger.info("partition: %d of %d clips lack a descriptor", 32, 300, extra=ONCE)
            logger.info("partition: %d of %d clips lack a descriptor", 5, 300, extra=ONCE)  # another message
            logger.info("layer %s done", layer)  # unmarked: always said
    logger.info("partition: %d of %d clips lack a descriptor", 32, 300, extra=ONCE)  # outside a stage: said
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("partition: 32 of 300 clips lack a descriptor") == 2
    assert messages.count("partition: 5 of 300 clips lack a descriptor") == 1
    assert [m for m in messages if m.startswith("layer")] == ["layer a done", "layer b done", "layer c done"]
    assert not [f for f in logger.filters if isinstance(f, OncePerStage)]  # removed on exit
