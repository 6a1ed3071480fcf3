"""glibc's allocator settings for the long-running server (fmnist_core/memory.py), checked on the real allocator.

Each check runs in a fresh Python process, so the arenas and the heap it counts are its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fmnist_core.memory import limit_allocator_arenas

THREADS = 8

COUNT_ARENAS = """
import ctypes, threading
from fmnist_core.memory import limit_allocator_arenas
if {limit}:
    assert limit_allocator_arenas(2)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
started, release = threading.Barrier({threads} + 1), threading.Event()

def allocate():  # every thread holds memory at the same time, so none can borrow another's arena
    block = libc.malloc(1 << 16)
    started.wait()
    release.wait()
    libc.free(ctypes.c_void_p(block))

threads = [threading.Thread(target=allocate) for _ in range({threads})]
for thread in threads:
    thread.start()
started.wait()
libc.malloc_stats()  # one "Arena N:" paragraph per arena, on stderr
release.set()
for thread in threads:
    thread.join()
"""

FREED_BUT_KEPT = """
import ctypes, sys
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
release_free_memory()
print(freed, resident_mb())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, check=True)


def arenas(limit: bool) -> int:
    stats = run_python(COUNT_ARENAS.format(limit=limit, threads=THREADS)).stderr
    return stats.count("Arena ")


def test_without_a_limit_each_thread_that_allocates_at_once_gets_its_own_arena():
    assert arenas(limit=False) > THREADS  # the main thread's arena and one per thread


def test_with_the_limit_eight_threads_share_two_arenas():
    assert arenas(limit=True) == 2


def test_release_gives_freed_memory_back_to_the_system():
    freed, released = map(float, run_python(FREED_BUT_KEPT).stdout.split())
    assert freed > 190  # glibc keeps the freed 200 MiB resident ...
    assert freed - released > 180  # ... until it is asked to give it back


def test_a_limit_below_one_arena_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"arenas=0: expected at least 1 malloc arena"):
        limit_allocator_arenas(0)
