"""Keeping the long-running server small: handing the memory glibc keeps after frees back to the system.

TensorFlow allocates from many threads and glibc gives them up to 8 malloc arenas per core; memory freed in
an arena mostly stays with the process. In the app's server a `quick` run of 16 epochs grew it from 1,089 to
1,450 MB resident (the same run in a bare Python process stays flat at ~1,040 MB: Streamlit's threads had
made many arenas before training began). Trimming after every epoch (3-8 ms, while an epoch takes seconds)
kept that run's peak at 1,048 MB (2-core machine, 2026-11-22). `MALLOC_ARENA_MAX=2` in the server's
environment did about as well (1,113 MB), but only if set before Python starts: `mallopt` from the app's
script comes too late, as glibc fixes its arena limit when the first threads are made.

Training has since moved to its own process (worker.py), which hands its memory back by exiting; the server calls
this when a new visitor arrives, to free what the sessions of visitors who left held (views/state.py).

Elsewhere than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory(collect_garbage: bool = True) -> None:
    """Give glibc's free pages back to the system, after collecting Python's garbage unless told not to.

    The collection pauses every Python thread for up to a tenth of a second in the server: do it once a run
    has ended. The trim alone takes a few milliseconds and can run after every epoch.
    """
    if collect_garbage:
        gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
