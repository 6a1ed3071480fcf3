"""Where jobs run: one small interface between the queue (which stays on the web server: order, ownership, limits)
and whatever trains its jobs.

`LocalWorkers` is the embedded default: worker processes on this machine (worker.py), started when jobs wait,
nothing to install or start by hand. A distributed engine (a Ray cluster, the next step of the roadmap) is another
implementation of the same four calls, chosen by a setting; the pages only ever talk to `JobExecutor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .job_queue import JobQueue
from .settings import Settings


@dataclass(frozen=True)
class Capacity:
    """How many jobs can train at once where jobs run, and how many of those slots are free now."""

    total_slots: int
    free_slots: int
    where: str  # "this machine", or a cluster's address


class JobExecutor(Protocol):
    def keep_running(self, queue: JobQueue) -> bool:
        """Make sure waiting (or interrupted) jobs get trained: start what trains them if needed; True if started.
        Cheap when there is nothing to do: pages call it on every view."""

    def problem(self) -> str | None:
        """Why jobs are not being trained right now, in words for the page (None: nothing is wrong)."""

    def capacity(self, queue: JobQueue) -> Capacity:
        """Job slots where jobs run."""


class LocalWorkers:
    """Jobs trained by worker processes on this machine, `settings.concurrent_jobs` at a time (worker.py)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def keep_running(self, queue: JobQueue) -> bool:
        from .worker import ensure_worker

        return ensure_worker(self.settings, queue)

    def problem(self) -> str | None:
        from .worker import last_worker_failure

        return last_worker_failure(self.settings)

    def capacity(self, queue: JobQueue) -> Capacity:
        from .worker import live_workers

        busy = sum(job.is_running for job in queue.active())
        total = max(self.settings.concurrent_jobs, live_workers(queue.folder, self.settings.concurrent_jobs))
        return Capacity(total_slots=total, free_slots=max(total - busy, 0), where="this machine")


def executor_for(settings: Settings) -> JobExecutor:
    """The executor `settings` choose; today the local workers (the only one there is)."""
    return LocalWorkers(settings)
