"""Keeping the long-running server small: handing the memory glibc keeps after frees back to the system.

TensorFlow allocates from many threads and glibc gives them up to 8 malloc arenas per core; memory freed in
an arena mostly stays with the process. In the app's server a `quick` run of 16 epochs grew it from 1,089 to
1,450 MB resident (the same run in a bare Python process stays flat at ~1,040 MB: Streamlit's threads had
made many arenas before training began). Trimming after every epoch (3-8 ms, while an epoch takes seconds)
kept that run's peak at 1,048 MB (2-core machine, 2026-11-22). `MALLOC_ARENA_MAX=2` in the server's
environment did about as well (1,113 MB), but only if set before Python starts: `mallopt` from the app's
script comes too late, as glibc fixes its arena limit when the first threads are made.

Training has since moved to its own process (worker.py), which hands its memory back by exiting. In the web server,
`ClosedSessions` frees what the sessions of visitors who left held (their uploads, their state), within a minute of
their leaving, and then calls this.

Elsewhere than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)


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


class ClosedSessions:
    """The sessions of a web server's visitors, and a thread that frees those whose visitors left.

    Streamlit keeps a disconnected session (its uploads: up to 30 MB here; its state) for a reconnect, for
    `server.disconnectedSessionTTL` (120 s), and drops it only when another session disconnects after that: three
    visitors' uploads stayed until the next visitor came and went. Every `interval` seconds, a session `is_active`
    says has been gone for `grace_seconds` is closed (`close`, which frees its uploads and state), and at the next
    pass, once the close has run, the memory is handed back (`release`). Thread-safe; needs no Streamlit itself.
    """

    def __init__(self, is_active: Callable[[str], bool], close: Callable[[str], None], grace_seconds: float = 30.0,
                 release: Callable[[], None] = release_free_memory, clock: Callable[[], float] = time.monotonic):
        self._is_active, self._close, self._release, self._clock = is_active, close, release, clock
        self.grace_seconds = grace_seconds
        self._gone_since: dict[str, float | None] = {}  # session id -> when it was first seen gone (None: active)
        self._release_due = False
        self._lock = threading.Lock()

    def track(self, session_id: str) -> None:
        """Watch the session `session_id` (a new visitor's)."""
        with self._lock:
            self._gone_since.setdefault(session_id, None)

    def sweep(self) -> list[str]:
        """One pass: hand back the memory of the sessions closed at the previous pass, close those gone for
        `grace_seconds`, and return their ids."""
        with self._lock:
            if self._release_due:
                self._release()
                self._release_due = False
            now, closing = self._clock(), []
            for session_id, since in list(self._gone_since.items()):
                if self._is_active(session_id):
                    self._gone_since[session_id] = None  # back (a reconnect within the grace)
                elif since is None:
                    self._gone_since[session_id] = now
                elif now - since >= self.grace_seconds:
                    closing.append(session_id)
                    del self._gone_since[session_id]
            for session_id in closing:
                self._close(session_id)
            self._release_due = bool(closing)
            return closing

    def start(self, interval: float = 5.0) -> threading.Thread:
        """Sweep every `interval` seconds in a daemon thread, for as long as the process runs."""

        def sweep_forever() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.sweep()
                except Exception:  # noqa: BLE001 - a failed pass must not end the thread; the next one tries again
                    _log.exception("freeing the sessions of visitors who left failed")

        thread = threading.Thread(target=sweep_forever, name="closed-sessions", daemon=True)
        thread.start()
        return thread
