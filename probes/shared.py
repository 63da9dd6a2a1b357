"""Work that depends on the descriptors only, done once per probe stage and shared by the probes of every layer.

The probes of one layer compare its activations with the same descriptors as every other layer's: the
descriptor RDMs of RSA (sorted, ranked), the descriptor-side fits of the variance partition. A
:class:`SharedCache` holds such results for the layers of one stage that one process probes (its threads share
it). Its keys are content digests of the inputs (:func:`digest`), so an entry is only ever returned for the very
inputs it was computed from; the values are exactly those the probe would compute itself.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["SharedCache", "digest", "ONCE", "OncePerStage"]

#: ``extra=`` of a log record that depends on the descriptors or the clips' labels only, not on the layer:
#: inside :class:`OncePerStage` it is said once per stage, not once per layer.
ONCE = {"once_per_stage": True}


def digest(*parts: Any) -> bytes:
    """BLAKE2b digest of arrays (dtype, shape and bytes) and plain values (their ``repr``).

    Parameters
    ----------
    *parts : np.ndarray or any value with a deterministic ``repr`` (str, int, float, tuple of these)

    Returns
    -------
    bytes
        32 bytes.
    """
    h = hashlib.blake2b(digest_size=32)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype.str}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.digest()


def _nbytes(value: Any) -> int:
    """Bytes held by the arrays of ``value`` (an array, a tuple of values, or an object with ``nbytes``)."""
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return int(getattr(value, "nbytes", 0))


class SharedCache:
    """Thread-safe memo of descriptor-side results, bounded in memory.

    Parameters
    ----------
    max_bytes : int, default 1 GiB
        Entries are kept while their arrays total at most this; beyond it a result is computed and returned
        without being kept (the probes stay correct, only slower).

    Examples
    --------
    >>> cache = SharedCache()
    >>> cache.get(("ranks", digest(np.arange(3.0))), lambda: np.arange(3.0) * 2)
    array([0., 2., 4.])
    """

    def __init__(self, max_bytes: int = 2**30):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ParameterError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self._values: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return the value of ``key``, calling ``compute()`` only if no thread has computed it yet.

        Parameters
        ----------
        key : hashable
            Must identify the inputs of ``compute`` completely (use :func:`digest` of them).
        compute : callable () -> value
        """
        with self._lock:
            if key in self._values:
                self.hits += 1
                return self._values[key]
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:  # a second thread asking for the same key waits for the first one's result
            with self._lock:
                if key in self._values:
                    self.hits += 1
                    return self._values[key]
            value = compute()
            with self._lock:
                size = _nbytes(value)
                if self.nbytes + size <= self.max_bytes:
                    self._values[key] = value
                    self.nbytes += size
                self._pending.pop(key, None)
        return value


class OncePerStage(logging.Filter):
    """Context manager: while active, a record marked :data:`ONCE` passes a logger once per distinct message.

    Parameters
    ----------
    logger : logging.Logger
        The logger whose records are filtered (the package's logger).
    """

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged: unmarked ones always, marked ones the first time their message occurs."""
        if not getattr(record, "once_per_stage", False):
            return True
        message = record.getMessage()
        with self._lock:
            first = message not in self._seen
            self._seen.add(message)
        return first

    def __enter__(self) -> OncePerStage:
        self.logger.addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeFilter(self)
