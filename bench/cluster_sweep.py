"""A sweep on a Ray cluster (#27), on this machine: a grid of four trials from the queue, dispatched by the worker
the app starts (`spawn_worker` with `Settings.ray_address`), on one node of one CPU and on two; the speed-up, and
that the two sweeps give the same trials.

On one 2-core machine the two nodes share its two cores with the head and the dispatcher (which runs the oracle), so
the speed-up measured here is a floor of what two machines give.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import SWEEP, JobState
from fmnist_core.sweep import SweepSpec

from .cluster import _dispatching, _ended, _wait
from .measure import Row

GRID = {"learning_rate": (1e-3, 3e-3), "dropout_rate": (0.0, 0.3)}
# quick's trials of 2 epochs on 20,000 images: long enough that training, not each node's start, takes the time
SPEC = SweepSpec(vary=GRID, strategy="grid", max_trials=4, subset_size=20_000)


def _sweep(cluster) -> tuple[float, list[tuple]]:
    """Seconds from submit to the sweep's end, and its trials' values."""
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(folder)
        start = time.monotonic()
        job = queue.submit(SWEEP, "bench-sweep", "visitor", spec=SPEC)
        with _dispatching(Path(folder), cluster):
            done = _wait(lambda: _ended(queue, job.job_id))
        seconds = time.monotonic() - start
        assert done.state == JobState.FINISHED and len(done.trials) == 4, (done.state, done.error, done.trials)
        return seconds, sorted(tuple(sorted(trial.values.items())) for trial in done.trials)


def run() -> list[Row]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        cluster.add_node(num_cpus=1)
        one_node, one_trials = _sweep(cluster)
        cluster.add_node(num_cpus=1)
        two_nodes, two_trials = _sweep(cluster)
    finally:
        cluster.shutdown()
    speed_up = one_node / two_nodes
    same = "the same four trials" if one_trials == two_trials else "different trials"
    return [
        Row("cluster_sweep", "grid sweep of 4 trials (quick, 2 epochs of 20,000 images), one node of 1 CPU",
            f"{one_node:.1f} s"),
        Row("cluster_sweep", "the same sweep, two nodes of 1 CPU (trials two at a time)",
            f"{two_nodes:.1f} s: {speed_up:.2f}x; {same}", "≥ 1.7x", speed_up >= 1.7 and one_trials == two_trials,
            "both nodes on this one 2-core machine, with the head and the dispatcher"),
    ]
