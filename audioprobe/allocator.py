"""Keep freed memory in the process, so that large temporaries are reused instead of page-faulted in again.

glibc's malloc serves each allocation above its mmap threshold (128 KiB, raised dynamically up to 32 MiB) by
a fresh ``mmap`` and returns it on ``free``; below it, it trims the free top of the heap back to the system.
Either way the next batch's arrays of the same size are new pages, zero-filled by the kernel on first touch.
A BYOL-A forward pass on a batch of 32 clips allocates ~100 MB activation tensors per block: on the 2-core
test machine the minor page faults (3,800 per clip) made the CPU forward pass 3-5x slower than with the
memory kept (``benchmarks/bench_extract.py``). :func:`retain_freed_memory` sets glibc's ``M_MMAP_MAX`` to 0
(every allocation from the heap) and ``M_TRIM_THRESHOLD`` to :data:`TRIM_THRESHOLD_BYTES` (free memory is
kept up to that size): the process then holds on to its peak memory, which does not grow with the corpus.
Source: ``mallopt(3)``, glibc manual "Memory Allocation Tunables".
"""
from __future__ import annotations

import ctypes
import functools
import sys

__all__ = ["TRIM_THRESHOLD_BYTES", "retain_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Free heap memory kept before glibc returns any to the system, bytes (1 GiB).
TRIM_THRESHOLD_BYTES = 1 << 30


@functools.lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory in this process (once per process; later calls are free).

    Called by the stages that allocate large temporaries (activation extraction, the command line). A no-op
    where the C library is not glibc (macOS, musl: their allocators behave differently).

    Returns
    -------
    bool
        True when both settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # musl's mallopt is a stub
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
