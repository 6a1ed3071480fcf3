"""Where jobs run: one small interface between the queue (which stays on the web server: order, ownership, limits)
and whatever trains its jobs.

`LocalWorkers` is the embedded default: worker processes on this machine (worker.py), started when jobs wait,
nothing to install or start by hand. `RayCluster` trains runs on a Ray cluster's nodes (ray_dispatch.py,
ray_cluster.py), chosen by `Settings.ray_address`; the pages only ever talk to `JobExecutor`.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Protocol

from .job_queue import JobQueue
from .ray_cluster import STATUS_STALE_SECONDS, read_status
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

    def node_of(self, job_id: str) -> str | None:
        """The machine a running job trains on, where that is worth saying (a cluster's node); else None."""


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

    def node_of(self, job_id: str) -> str | None:
        return None


class RayCluster:
    """Runs trained on the Ray cluster at `settings.ray_address`, through the dispatcher the app starts like a local
    worker (one per model store: a single slot lock)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def _dispatcher_settings(self) -> Settings:
        return self.settings.with_changes(concurrent_jobs=1)  # one dispatcher; the cluster gives the parallelism

    def keep_running(self, queue: JobQueue) -> bool:
        from .worker import ensure_worker

        if importlib.util.find_spec("ray") is None:
            return False  # problem() says so
        return ensure_worker(self._dispatcher_settings(), queue)

    def problem(self) -> str | None:
        from .worker import last_worker_failure

        if importlib.util.find_spec("ray") is None:
            return (f"this server is set to train on the Ray cluster at {self.settings.ray_address}, but Ray is not "
                    "installed here: run `make setup-cluster` (or `pip install -r requirements-cluster.lock`) and "
                    "restart the app. The jobs wait in the queue.")
        failure = last_worker_failure(self._dispatcher_settings())
        if failure is not None:
            return failure.replace("training worker", "cluster's dispatcher")
        status = read_status(self.settings.models_dir)
        if status is None or status.address != self.settings.ray_address:
            return None  # not started yet: nothing to say
        if status.problem:
            return status.problem
        if time.time() - status.written_at > STATUS_STALE_SECONDS and status.running:
            return (f"the dispatcher of the Ray cluster at {status.address} has not been heard from for "
                    f"{time.time() - status.written_at:.0f} s; the next page view starts another, which takes "
                    "its jobs up again from their last checkpoints.")
        return None

    def capacity(self, queue: JobQueue) -> Capacity:
        status = read_status(self.settings.models_dir)
        where = f"the Ray cluster at {self.settings.ray_address}"
        if status is None or not status.reachable:
            return Capacity(total_slots=0, free_slots=0, where=where)
        alive = sum(node.alive and node.cpus >= self.settings.cpus_per_job for node in status.nodes)  # that train
        return Capacity(total_slots=status.total_slots, free_slots=status.free_slots,
                        where=f"{where} ({alive} node{'s' if alive != 1 else ''})")

    def node_of(self, job_id: str) -> str | None:
        """The node a running job trains on, as the dispatcher last said."""
        status = read_status(self.settings.models_dir)
        return None if status is None else status.running.get(job_id)


def executor_for(settings: Settings) -> JobExecutor:
    """The executor `settings` choose: a Ray cluster's (`ray_address`), else the local workers."""
    return RayCluster(settings) if settings.ray_address else LocalWorkers(settings)

