"""Runs on a Ray cluster (#27), on this machine: `ray.cluster_utils.Cluster` with a head that trains nothing and one or
two nodes of one CPU each, the dispatcher the app starts (`spawn_worker` with `Settings.ray_address`).

- Eight tiny runs: wall time from the first submit to the last save, on one node and on two (the speed-up).
- A run's overhead on the cluster against the local worker: from submit to its first batch, with no run before it.
- Stop: from the request written to the queue to the run's training ending (its state leaving "training").
- Twenty tiny runs while a node training one of them is killed twice (`remove_node` without grace, as a machine lost,
  then a new node added): every run ends finished, each epoch recorded once, each model saved once, and the epochs
  the kills cost.

On one 2-core machine the two nodes share its two cores with the head and the dispatcher, so the speed-up measured
here is a floor of what two machines give.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from pathlib import Path

from fmnist_core.executors import RayCluster
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, JobState
from fmnist_core.ownership import Visitor
from fmnist_core.settings import Settings
from fmnist_core.store import ModelStore
from fmnist_core.worker import spawn_worker

from .measure import Row

TINY = preset("seed-000", train_subset_size=2000, epochs=2, batch_size=64)
JOBS = 8
TIMEOUT = 900
KILLED_RUN = TINY.with_changes(train_subset_size=4000, epochs=4)  # a few seconds an epoch: a kill lands mid-run
RUNS_UNDER_KILLS, KILLS = 20, 2


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


def _kill_a_busy_node(cluster, queue: JobQueue, jobs, rng: random.Random) -> tuple[str, int]:
    """Kill the node of a run that has ended at least one epoch, at a random moment of its next; a new node takes its
    place. Returns the run's job id and the epochs it had recorded."""
    def training():
        busy = [job for job in jobs if (snapshot := queue.snapshot(job.job_id, with_curves=False)).state
                == JobState.TRAINING and snapshot.epochs]
        return busy and rng.choice(busy)

    job = _wait(training, interval=0.2)
    time.sleep(rng.uniform(0, 1))
    name = RayCluster(_settings(queue.folder.parent, cluster)).node_of(job.job_id)
    victim = next((node for node in cluster.worker_nodes if name and name.endswith(f"({node.node_id[:6]})")), None)
    if victim is None:  # the run ended meanwhile: try another
        return _kill_a_busy_node(cluster, queue, jobs, rng)
    recorded = len(queue.snapshot(job.job_id, with_curves=False).epochs)
    cluster.remove_node(victim, allow_graceful=False)
    cluster.add_node(num_cpus=1)
    return job.job_id, recorded


def _twenty_runs_two_kills(cluster) -> tuple[float, list[int], str]:
    """Wall time, the epochs each kill cost its run, and what went wrong ('' when nothing did)."""
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(folder, max_waiting_jobs=RUNS_UNDER_KILLS)  # a class's runs: more than the default 12
        start = time.monotonic()
        jobs = [queue.submit(RUN, f"kill-{n}", f"visitor-{n}", hyperparameters=KILLED_RUN)
                for n in range(RUNS_UNDER_KILLS)]
        with _dispatching(Path(folder), cluster):
            killed = [_kill_a_busy_node(cluster, queue, jobs, rng) for _ in range(KILLS)]
            done = [_wait(lambda job=job: _ended(queue, job.job_id)) for job in jobs]
        seconds = time.monotonic() - start
        wrong = [f"{job.run_name} {job.state.value}: {job.error}" for job in done if job.state != JobState.FINISHED]
        wrong += [f"{job.run_name} epochs {[e['epoch'] for e in job.epochs]}" for job in done
                  if [epoch["epoch"] for epoch in job.epochs] != list(range(1, KILLED_RUN.epochs + 1))]
        models, _ = ModelStore(folder).list_models()
        saved = sorted(model.card.get("job_id", "") for model in models)
        if saved != sorted(job.job_id for job in jobs):
            wrong.append(f"{len(saved)} models saved for {len(jobs)} runs")
        lost = []
        for job_id, recorded in killed:
            card = next(model.card for model in models if model.card.get("job_id") == job_id)
            resumed = card.get("resumed_at_epochs", [])
            lost.append(recorded + 1 - resumed[0] if resumed else -1)  # the epoch under way when killed, or none
        return seconds, lost, "; ".join(wrong)


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
        under_kills, lost, wrong = _twenty_runs_two_kills(cluster)
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
        Row("cluster", f"{RUNS_UNDER_KILLS} tiny runs, a node killed {KILLS} times",
            f"{under_kills:.0f} s; {wrong or 'all finished, each epoch once, each saved once'}; epochs lost per kill "
            f"{lost}", "no run lost; ≤ 1 epoch per kill", not wrong and all(0 <= n <= 1 for n in lost),
            "a new node added after each kill; 4-epoch runs of 4,000 images"),
    ]
