"""Runs trained on a real Ray cluster of two nodes on this machine (`ray.cluster_utils.Cluster`: a head with no CPUs
for jobs, two nodes of one CPU each), dispatched from the queue by the worker process the app starts
(`spawn_worker` with `Settings.ray_address`): two at a time, one on each node, stopped on request, resumed on the
other node when a node dies; and the app's words when the cluster cannot be reached."""

from __future__ import annotations

import socket
import time

import pytest
from waiting import job_ended, wait_until

from fmnist_core.executors import RayCluster, executor_for
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, SWEEP, JobState
from fmnist_core.ownership import Visitor
from fmnist_core.ray_cluster import read_status
from fmnist_core.settings import Settings
from fmnist_core.store import ModelStore
from fmnist_core.sweep import SweepSpec
from fmnist_core.worker import spawn_worker

# a Ray cluster, and Ray worker processes that import TensorFlow and train; one cluster on the machine at a time
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_ray_cluster_at_a_time")]
TIMEOUT = 240
TINY = preset("seed-000", train_subset_size=2000, epochs=2, batch_size=64)  # seconds per run, TensorFlow's start aside


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    yield cluster
    cluster.shutdown()


def cluster_settings(cluster, models_dir, **changes) -> Settings:
    return Settings(models_dir=models_dir, ray_address=cluster.address, cpus_per_job=1,
                    worker_idle_exit_seconds=5, **changes)


@pytest.fixture
def dispatchers():
    """The dispatcher processes a test starts; ended after it (they exit by themselves when idle)."""
    started = []
    yield started
    for process in started:
        process.kill()
        process.wait(30)


def submit(queue: JobQueue, name: str, hyperparameters=TINY):
    return queue.submit(RUN, name, f"visitor-{name}", hyperparameters=hyperparameters)


def test_four_runs_train_two_at_a_time_one_on_each_node_each_saved_once_in_queue_order(cluster, tmp_path,
                                                                                          dispatchers):
    settings = cluster_settings(cluster, tmp_path)
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    jobs = [submit(queue, f"run-{number}") for number in range(4)]
    assert isinstance(executor_for(settings), RayCluster)
    dispatchers.append(spawn_worker(settings))
    done = [job_ended(queue, job.job_id, TIMEOUT) for job in jobs]
    assert [job.state for job in done] == [JobState.FINISHED] * 4
    cards = [store.get(job.saved_name).card for job in done]
    assert sorted(card["job_id"] for card in cards) == sorted(job.job_id for job in jobs)
    assert len(store.list_models()[0]) == 4  # each saved once
    assert {len(card["trained_on"]) for card in cards} == {1} and len({card["trained_on"][0] for card in cards}) == 2
    assert all(card["test_accuracy"] > 0.5 and len(card["history"]) == 2 for card in cards)
    starts = [job.started_at for job in done]
    assert starts == sorted(starts)  # taken in the queue's order
    assert done[1].started_at < done[0].ended_at  # two at a time
    capacity = wait_until(lambda: (found := RayCluster(settings).capacity(queue)).free_slots == 2 and found, 10,
                          "the dispatcher did not say its two slots were free")  # it writes its status every 2 s
    assert capacity.total_slots == 2 and "(2 nodes)" in capacity.where
    assert RayCluster(settings).problem() is None


def test_a_run_stopped_on_the_other_node_stops_at_once_and_keeps_what_it_trained(cluster, tmp_path, dispatchers):
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = submit(queue, "stopped", preset("seed-000", train_subset_size=6000, epochs=40, batch_size=64))
    dispatchers.append(spawn_worker(cluster_settings(cluster, tmp_path)))
    wait_until(lambda: queue.snapshot(job.job_id).epochs, TIMEOUT, "the run did not end an epoch")
    node = RayCluster(cluster_settings(cluster, tmp_path)).node_of(job.job_id)
    asked = time.monotonic()
    queue.request_stop(job.job_id, Visitor(job.owner))
    wait_until(lambda: queue.snapshot(job.job_id).state != JobState.TRAINING, 30, "the run did not stop",
               interval_seconds=0.05)
    stopped_after = time.monotonic() - asked
    done = job_ended(queue, job.job_id, TIMEOUT)
    card = store.get(done.saved_name).card
    assert done.state == JobState.STOPPED and card["stopped_by_user"] and 1 <= len(card["history"]) < 40
    assert card["trained_on"] == [node]
    assert stopped_after < 10, stopped_after  # at the next batch, not at the end (bench/cluster.py times it)


def test_a_node_killed_mid_run_costs_at_most_the_epoch_in_progress_and_the_run_ends_on_the_other(cluster, tmp_path,
                                                                                                  dispatchers):
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = submit(queue, "survivor", preset("seed-000", train_subset_size=6000, epochs=6, batch_size=64))
    settings = cluster_settings(cluster, tmp_path)
    dispatchers.append(spawn_worker(settings))
    wait_until(lambda: len(queue.snapshot(job.job_id).epochs) >= 2, TIMEOUT, "the run did not end two epochs",
               interval_seconds=0.05)
    name = RayCluster(settings).node_of(job.job_id)
    victim = next(node for node in cluster.worker_nodes if name.endswith(f"({node.node_id[:6]})"))
    recorded = len(queue.snapshot(job.job_id).epochs)
    cluster.remove_node(victim, allow_graceful=False)  # its raylet and workers killed, as a machine lost
    try:
        done = job_ended(queue, job.job_id, TIMEOUT)
        assert done.state == JobState.FINISHED and done.resumes == 1
        assert [epoch["epoch"] for epoch in done.epochs] == [1, 2, 3, 4, 5, 6]  # none twice, none missing
        card = store.get(done.saved_name).card
        assert card["resumed_at_epochs"] in ([recorded], [recorded + 1])  # at most the epoch in progress lost
        assert card["trained_on"][0] == name and card["trained_on"][1] != name and len(card["trained_on"]) == 2
    finally:
        cluster.add_node(num_cpus=1)  # two nodes again, for the tests after this one


def test_a_sweeps_trials_train_two_at_a_time_one_on_each_node_and_give_the_local_sweeps_results(cluster, tmp_path,
                                                                                                 dispatchers):
    settings = cluster_settings(cluster, tmp_path)
    queue = JobQueue(tmp_path)
    grid = {"learning_rate": (1e-3, 3e-3), "dropout_rate": (0.0, 0.3)}  # four trials
    spec = SweepSpec(vary=grid, strategy="grid", max_trials=4, epochs_per_trial=2, subset_size=2000,
                     base_preset="seed-000")
    job = queue.submit(SWEEP, "on-two-nodes", "visitor-sweep", spec=spec)
    dispatchers.append(spawn_worker(settings))
    # what the page says of the sweep's node while it trains: both nodes, a trial on each
    both = wait_until(lambda: "(2 trials at once)" in (found := RayCluster(settings).node_of(job.job_id) or "")
                      and found, TIMEOUT, "the sweep's trials did not train on both nodes at once",
                      interval_seconds=0.2)
    names = both.removesuffix(" (2 trials at once)").split(", ")
    assert len(set(names)) == 2 and all(name in {node.name for node in read_status(tmp_path).nodes} for name in names)
    done = job_ended(queue, job.job_id, TIMEOUT)
    # as a local sweep of the grid ends: each combination once, each trial its two epochs, the best the highest
    assert done.state == JobState.FINISHED and done.error is None
    assert sorted(tuple(sorted(trial.values.items())) for trial in done.trials) == sorted(
        (("dropout_rate", dropout), ("learning_rate", rate)) for rate in grid["learning_rate"]
        for dropout in grid["dropout_rate"])
    assert all(trial.status == "completed" and trial.epochs == 2 and trial.val_accuracy > 0.5 for trial in done.trials)
    assert done.best.val_accuracy == max(trial.val_accuracy for trial in done.trials)
    assert len({trial.trial_id for trial in done.trials}) == 4
    assert not list((tmp_path).glob("*/saved_model.keras"))  # a sweep saves no model


def test_a_sweep_stopped_on_the_cluster_stops_its_trials_on_both_nodes_and_keeps_those_that_ended(cluster, tmp_path,
                                                                                                   dispatchers):
    settings = cluster_settings(cluster, tmp_path)
    queue = JobQueue(tmp_path)
    spec = SweepSpec(vary={"learning_rate": (1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3)}, strategy="grid", max_trials=6,
                     epochs_per_trial=20, subset_size=4000, base_preset="seed-000")  # minutes without a stop
    job = queue.submit(SWEEP, "stopped-sweep", "visitor-sweep", spec=spec)
    dispatchers.append(spawn_worker(settings))
    wait_until(lambda: "(2 trials at once)" in (RayCluster(settings).node_of(job.job_id) or "")
               and queue.snapshot(job.job_id).last_batch, TIMEOUT, "the sweep's trials did not train on both nodes")
    asked = time.monotonic()
    queue.request_stop(job.job_id, Visitor(job.owner))
    done = job_ended(queue, job.job_id, 60)
    stopped_after = time.monotonic() - asked
    assert done.state == JobState.STOPPED and not done.stopped_by_time_limit
    assert [trial.status for trial in done.trials] == ["stopped", "stopped"]  # the two under way, cut short
    assert all(trial.epochs < 20 for trial in done.trials)
    assert stopped_after < 20, stopped_after  # the trials' next batch, then the sweep's end recorded
    assert RayCluster(settings).node_of(job.job_id) is None or wait_until(
        lambda: RayCluster(settings).node_of(job.job_id) is None, 10, "the page still names the sweep's nodes")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_cluster_that_cannot_be_reached_is_said_in_words_and_its_jobs_wait_until_it_can(tmp_path, dispatchers):
    from ray.cluster_utils import Cluster

    port = free_port()
    settings = Settings(models_dir=tmp_path, ray_address=f"127.0.0.1:{port}", cpus_per_job=1,
                        worker_idle_exit_seconds=600)
    queue = JobQueue(tmp_path)
    job = submit(queue, "patient")
    executor = RayCluster(settings)
    assert executor.keep_running(queue)  # as a page view does: the dispatcher starts, and finds no cluster
    dispatchers.append(executor_started_process(settings))
    problem = wait_until(executor.problem, 60, "the page was not told that the cluster cannot be reached")
    assert problem.startswith(f"the Ray cluster at 127.0.0.1:{port} cannot be reached")
    assert "ray start --head" in problem
    assert queue.snapshot(job.job_id).state == JobState.QUEUED and executor.capacity(queue).total_slots == 0
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "gcs_server_port": port})
    try:
        done = job_ended(queue, job.job_id, TIMEOUT)  # the dispatcher tries again, and the run trains
        assert done.state == JobState.FINISHED and executor.problem() is None
        assert read_status(tmp_path).total_slots == 1
    finally:
        cluster.shutdown()


def executor_started_process(settings: Settings):
    """The dispatcher process `RayCluster.keep_running` started (worker._spawned), for the fixture to end."""
    from fmnist_core import worker

    return worker._spawned[str(settings.models_dir / ".jobs")][1]
