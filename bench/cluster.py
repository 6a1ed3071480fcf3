"""Runs on a Ray cluster (#27), on this machine: `ray.cluster_utils.Cluster` with a head that trains nothing and one or
two nodes of one CPU each, the dispatcher the app starts (`spawn_worker` with `Settings.ray_address`).

- Eight tiny runs: wall time from the first submit to the last save, on one node and on two (the speed-up).
- A run's overhead on the cluster against the local worker: from submit to its first batch, with no run before it.
- Stop: from the request written to the queue to the run's training ending (its state leaving "training").

On one 2-core machine the two nodes share its two cores with the head and the dispatcher, so the speed-up measured
here is a floor of what two machines give.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, JobState
from fmnist_core.ownership import Visitor
from fmnist_core.settings import Settings
from fmnist_core.worker import spawn_worker

from .measure import Row

TINY = preset("seed-000", train_subset_size=2000, epochs=2, batch_size=64)
JOBS = 8
TIMEOUT = 900


def _wait(condition, timeout: float = TIMEOUT, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster benchmark waited too long")
        time.sleep(interval)
    return result


def _ended(queue: JobQueue, job_id: str):
    snapshot = queue.snapshot(job_id, with_curves=False)
    return snapshot if not snapshot.state.is_active else None


def _settings(models_dir: Path, cluster=None) -> Settings:
    address = None if cluster is None else cluster.address
    return Settings(models_dir=models_dir, ray_address=address, cpus_per_job=1, worker_idle_exit_seconds=60)


@contextlib.contextmanager
def _dispatching(models_dir: Path, cluster):
    """The worker the app would start for `models_dir` (a cluster's dispatcher, or the local worker), ended after."""
    process = spawn_worker(_settings(models_dir, cluster))
    try:
        yield process
    finally:
        process.kill()
        process.wait(30)


def _eight_runs(cluster, nodes: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(folder)
        start = time.monotonic()
        jobs = [queue.submit(RUN, f"bench-{n}", f"visitor-{n}", hyperparameters=TINY) for n in range(JOBS)]
        with _dispatching(Path(folder), cluster):
            done = [_wait(lambda job=job: _ended(queue, job.job_id)) for job in jobs]
        assert all(job.state == JobState.FINISHED for job in done), [job.error for job in done]
        return time.monotonic() - start


def _first_batch_seconds(cluster) -> float:
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(folder)
        with _dispatching(Path(folder), cluster):
            time.sleep(8 if cluster is not None else 1)  # the dispatcher connected, or the worker waiting
            submitted = time.monotonic()
            job = queue.submit(RUN, "first-batch", "visitor", hyperparameters=TINY)
            _wait(lambda: queue.snapshot(job.job_id, with_curves=False).last_batch)
            seconds = time.monotonic() - submitted
            _wait(lambda: _ended(queue, job.job_id))
        return seconds


def _stop_seconds(cluster) -> float:
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(folder)
        job = queue.submit(RUN, "stopped", "visitor", hyperparameters=TINY.with_changes(train_subset_size=6000,
                                                                                       epochs=40))
        with _dispatching(Path(folder), cluster):
            _wait(lambda: queue.snapshot(job.job_id).epochs)
            asked = time.monotonic()
            queue.request_stop(job.job_id, Visitor(job.owner))
            _wait(lambda: queue.snapshot(job.job_id, with_curves=False).state != JobState.TRAINING, 60, 0.01)
            seconds = time.monotonic() - asked
            _wait(lambda: _ended(queue, job.job_id))
        return seconds


def run() -> list[Row]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        cluster.add_node(num_cpus=1)
        one_node = _eight_runs(cluster, 1)
        cluster.add_node(num_cpus=1)
        two_nodes = _eight_runs(cluster, 2)
        cluster_first = _first_batch_seconds(cluster)
        stop = _stop_seconds(cluster)
    finally:
        cluster.shutdown()
    local_first = _first_batch_seconds(None)
    speed_up = one_node / two_nodes
    return [
        Row("cluster", f"{JOBS} tiny runs, one node of 1 CPU", f"{one_node:.1f} s"),
        Row("cluster", f"{JOBS} tiny runs, two nodes of 1 CPU", f"{two_nodes:.1f} s: {speed_up:.2f}x", "≥ 1.7x",
            speed_up >= 1.7, "both nodes on this one 2-core machine, with the head and the dispatcher"),
        Row("cluster", "submit to first batch, cluster vs local worker",
            f"{cluster_first:.1f} s vs {local_first:.1f} s (+{cluster_first - local_first:.1f} s)", "≤ 3 s more",
            cluster_first - local_first <= 3.0, "a fresh Ray worker process per run imports TensorFlow"),
        Row("cluster", "Stop to training ended, on a node", f"{stop:.2f} s", "≤ 1 s", stop <= 1.0),
    ]
