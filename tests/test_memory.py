"""Handing freed memory back to the system (fmnist_core/memory.py), checked on the real allocator, and closing the
sessions of visitors who left (with a fake clock; tests/e2e/test_strangers.py checks it in the real server).

The allocator check runs in a fresh Python process, so the heap it measures is its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from fmnist_core.memory import ClosedSessions

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


def test_sessions_gone_for_the_grace_period_are_closed_and_their_memory_handed_back_at_the_next_pass():
    now, active, closed, released = [0.0], {"a", "b", "c"}, [], []
    sessions = ClosedSessions(lambda session: session in active, closed.append, grace_seconds=30,
                              release=lambda: released.append(now[0]), clock=lambda: now[0])
    for session in ("a", "b", "c"):
        sessions.track(session)
    assert sessions.sweep() == [] and released == []
    active -= {"a", "b"}  # two tabs closed
    now[0] = 5.0
    assert sessions.sweep() == []  # seen gone from now on
    active.add("b")  # b reconnected within the grace (a reload, a network blip)
    now[0] = 20.0
    assert sessions.sweep() == []
    active.discard("b")
    now[0] = 35.0
    assert sessions.sweep() == ["a"] and closed == ["a"] and released == []  # closing runs on the server's loop
    now[0] = 40.0
    assert sessions.sweep() == [] and released == [40.0]  # then the memory goes back, once
    now[0] = 70.0
    assert sessions.sweep() == ["b"] and closed == ["a", "b"]  # 30 s after it was seen gone again
    now[0] = 75.0
    sessions.sweep()
    now[0] = 80.0
    sessions.sweep()
    assert released == [40.0, 75.0]  # nothing closed: nothing more to hand back
    sessions.track("a")  # a session tracked twice is watched once
    assert "c" not in closed


def test_the_sweeping_thread_closes_a_session_within_its_grace_and_interval():
    gone, closed = threading.Event(), threading.Event()
    sessions = ClosedSessions(lambda session: not gone.is_set(), lambda session: closed.set(), grace_seconds=0.2,
                              release=lambda: None)
    sessions.track("s")
    sessions.start(interval=0.05)
    gone.set()
    assert closed.wait(5)
