"""Handing freed memory back to the system (fmnist_core/memory.py), checked on the real allocator.

The check runs in a fresh Python process, so the heap it measures is its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

FREED_BUT_KEPT = """
import ctypes
from fmnist_core.memory import release_free_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

blocks = [libc.malloc(1 << 16) for _ in range(3200)]  # 200 MiB in 64 KiB blocks: below the mmap threshold
for block in blocks:
    ctypes.memset(ctypes.c_void_p(block), 1, 1 << 16)
for block in blocks[:-1]:  # the last block stays, so the freed space is not at the top of the heap
    libc.free(ctypes.c_void_p(block))
freed = resident_mb()
release_free_memory(collect_garbage={collect_garbage})
print(freed, resident_mb())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, check=True)


@pytest.mark.parametrize("collect_garbage", [True, False], ids=["after a run", "after an epoch"])
def test_release_gives_freed_memory_back_to_the_system(collect_garbage):
    freed, released = map(float, run_python(FREED_BUT_KEPT.format(collect_garbage=collect_garbage)).stdout.split())
    assert freed > 190  # glibc keeps the freed 200 MiB resident ...
    assert freed - released > 180  # ... until it is asked to give it back
