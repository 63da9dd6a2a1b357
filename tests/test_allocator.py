"""retain_freed_memory: a freed large array's memory is reused by the next one instead of page-faulted in again."""
from __future__ import annotations

import subprocess
import sys

import pytest

_CHILD = """
import resource, sys
from audioprobe.allocator import retain_freed_memory

def faults_of_three_64mb_arrays():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        a = bytearray(64 << 20)  # 64 MiB = 16384 pages of 4 KiB, zero-filled by malloc (numpy would ask for huge pages)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults_of_three_64mb_arrays()
applied = retain_freed_memory()
faults_of_three_64mb_arrays()  # the first one after the change still grows the heap
print(default, applied, faults_of_three_64mb_arrays())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_arrays_are_reused_instead_of_page_faulted_in_again():
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=True)
    default, applied, retained = out.stdout.split()
    assert applied == "True"
    assert int(default) >= 3 * 16384 * 0.9  # by default every 64 MiB array is mmapped afresh: 16384 faults each
    assert int(retained) < 0.05 * int(default)
