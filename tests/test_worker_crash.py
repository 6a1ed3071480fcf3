"""Real worker processes killed with SIGKILL: mid-epoch (the run resumes from its last epoch), mid-save (the model is
saved once, nothing half-written is listed); and the worker the app starts exits when the queue is empty."""

import os
import signal
import sqlite3
import subprocess
from contextlib import closing

import pytest
from test_crash_safety import save_in_progress
from waiting import job_ended, wait_until

from fmnist_core import worker as worker_module
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, JobState
from fmnist_core.settings import Settings
from fmnist_core.store import ModelStore
from fmnist_core.worker import ensure_worker, live_workers, spawn_worker

pytestmark = pytest.mark.slow  # each test starts worker processes that import TensorFlow and train
TIMEOUT = 180


def mid_epoch(snapshot, at_least: int):
    """The snapshot if at least `at_least` epochs are recorded and the next one is under way, else None."""
    batch = snapshot.last_batch
    return snapshot if len(snapshot.epochs) >= at_least and batch and batch.epoch == len(snapshot.epochs) + 1 else None


def kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)


def test_a_worker_killed_mid_epoch_is_replaced_and_the_run_resumes_from_its_last_epoch(tmp_path):
    queue, store, settings = JobQueue(tmp_path), ModelStore(tmp_path), Settings(models_dir=tmp_path)
    job = queue.submit(RUN, "killed", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=6000,
                                                                          epochs=5))
    worker = spawn_worker(Settings(models_dir=tmp_path))
    try:
        wait_until(lambda: mid_epoch(queue.snapshot(job.job_id), at_least=2), TIMEOUT, "the run did not reach epoch 3",
                   interval_seconds=0.02)
    finally:
        kill(worker)
    interrupted = queue.snapshot(job.job_id)
    assert interrupted.state == JobState.TRAINING and live_workers(queue.folder, 1) == 0  # recorded as running, dead
    assert ensure_worker(settings)  # as the app does on its next page view: a worker is started, and it resumes the run
    done = job_ended(queue, job.job_id, TIMEOUT)
    assert done.state == JobState.FINISHED and done.resumes == 1
    assert [epoch["epoch"] for epoch in done.epochs] == [1, 2, 3, 4, 5]  # none twice, none missing
    card = store.get(done.saved_name).card
    # the checkpoint of the last epoch recorded (or of the next, if the kill fell between its checkpoint and its row)
    recorded = len(interrupted.epochs)
    assert card["resumed_at_epochs"] in ([recorded], [recorded + 1])
    assert done.epochs[:recorded] == interrupted.epochs and card["history"] == list(done.epochs)
    assert [saved.name for saved in store.list_models()[0]] == ["killed"]


def test_a_worker_killed_while_saving_leaves_nothing_half_written_and_the_model_is_saved_once(tmp_path):
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = queue.submit(RUN, "saving", "visitor-a", hyperparameters=preset("best", train_subset_size=2000, epochs=1))
    worker = spawn_worker(Settings(models_dir=tmp_path))
    try:
        wait_until(lambda: save_in_progress(tmp_path, None), TIMEOUT, "no save was seen in progress",
                   interval_seconds=0.002)
    finally:
        kill(worker)
    assert queue.snapshot(job.job_id).state == JobState.EVALUATING
    models, warnings = store.list_models()
    assert warnings == [] and all(store.load_model(saved.name) for saved in models)  # nothing broken is listed
    spawn_worker(Settings(models_dir=tmp_path))
    done = job_ended(queue, job.job_id, TIMEOUT)
    assert done.state == JobState.FINISHED and done.resumes == 1 and len(done.epochs) == 1  # not trained again
    models, warnings = store.list_models()
    assert warnings == [] and [saved.card["job_id"] for saved in models] == [job.job_id]
    assert store.load_model(done.saved_name).output_shape == (None, 10)


def test_the_worker_the_app_starts_exits_once_the_queue_is_empty(tmp_path, monkeypatch):
    queue, settings = JobQueue(tmp_path), Settings(models_dir=tmp_path, worker_idle_exit_seconds=1)
    assert not ensure_worker(settings)  # nothing waits: no worker
    job = queue.submit(RUN, "tiny", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=1000, epochs=1))
    assert ensure_worker(settings)
    wait_until(lambda: live_workers(queue.folder, 1) == 1, 30, "the worker did not take its slot")
    monkeypatch.setattr(worker_module, "SPAWN_GRACE_SECONDS", 0.0)  # no grace: only the live worker stops a second
    assert not ensure_worker(settings)
    assert job_ended(queue, job.job_id, TIMEOUT).state == JobState.FINISHED
    wait_until(lambda: live_workers(queue.folder, 1) == 0, 30, "the idle worker did not exit within 30 s")


def test_a_worker_that_fails_to_start_is_reported_and_not_started_again_at_once(tmp_path, monkeypatch):
    settings = Settings(models_dir=tmp_path)
    JobQueue(tmp_path).submit(RUN, "tiny", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=1000,
                                                                             epochs=1))
    monkeypatch.setattr(worker_module.sys, "executable", "/bin/false")  # a Python that exits at once with code 1
    monkeypatch.setattr(worker_module, "SPAWN_GRACE_SECONDS", 0.0)
    assert ensure_worker(settings)
    wait_until(lambda: worker_module.last_worker_failure(settings), 10, "the failure was not noticed")
    assert "exited with code 1" in worker_module.last_worker_failure(settings)
    assert not ensure_worker(settings)  # backs off for FAILED_SPAWN_BACKOFF_SECONDS instead of one every page view


def test_a_sweep_whose_worker_was_killed_resumes_with_the_trials_that_had_ended(tmp_path):
    from fmnist_core.jobs import SWEEP
    from fmnist_core.sweep import SweepSpec

    queue = JobQueue(tmp_path)
    spec = SweepSpec(vary={"learning_rate": (1e-3, 2e-3, 3e-3)}, max_trials=3, epochs_per_trial=2, subset_size=3000,
                     base_preset="seed-004")
    job = queue.submit(SWEEP, "sweep", "visitor-a", spec=spec)
    worker = spawn_worker(Settings(models_dir=tmp_path))
    try:  # one trial over, the second under way
        wait_until(lambda: (s := queue.snapshot(job.job_id)).trials and s.last_batch, TIMEOUT,
                   "the second trial did not start", interval_seconds=0.02)
    finally:
        kill(worker)
    first_trial = queue.snapshot(job.job_id).trials[0]
    spawn_worker(Settings(models_dir=tmp_path))
    done = job_ended(queue, job.job_id, TIMEOUT)
    assert done.state == JobState.FINISHED and done.resumes == 1
    assert done.trials[0] == first_trial  # kept, not trained again
    assert sorted(trial.values["learning_rate"] for trial in done.trials) == [1e-3, 2e-3, 3e-3]
    assert all(trial.status == "completed" for trial in done.trials)


def test_a_job_hung_recording_its_end_ends_its_worker_and_the_next_worker_records_it_once(tmp_path):
    """Another process holds the queue's write lock from mid-run on: training goes on (its progress waits), the model
    is saved, and then recording the end waits for the lock, using no CPU: hung, as far as anyone can tell. The
    watchdog ends the worker; the next one finds the model saved under the job's id and records it, not twice."""
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = queue.submit(RUN, "hangs", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=2000, epochs=2))
    worker = spawn_worker(Settings(models_dir=tmp_path, worker_stall_seconds=3.0))  # instead of 10 minutes
    wait_until(lambda: queue.snapshot(job.job_id).last_batch, TIMEOUT, "the run did not start training")
    with closing(sqlite3.connect(queue.path, isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")
        try:
            code = worker.wait(TIMEOUT)
        finally:
            db.execute("ROLLBACK")
    assert code == worker_module.STALL_EXIT_CODE
    assert queue.snapshot(job.job_id).is_running  # recorded as running by a dead worker: to be taken up again
    log = (tmp_path / ".jobs" / worker_module.WORKER_LOG).read_text()
    assert f"job {job.job_id} sent nothing for" in log and "it is hung" in log
    assert [saved.name for saved in store.list_models()[0]] == ["hangs"]

    spawn_worker(Settings(models_dir=tmp_path))
    done = job_ended(queue, job.job_id, TIMEOUT)
    assert done.state == JobState.FINISHED and done.resumes == 1 and done.saved_name == "hangs"
    assert [saved.name for saved in store.list_models()[0]] == ["hangs"]  # saved once


def test_a_queue_locked_by_another_program_while_a_run_trains_costs_the_run_nothing(tmp_path):
    """Another process holds the queue's write lock for 12 s mid-run: the run keeps training (its progress is written
    once the lock is gone), is not failed, and every epoch is recorded."""
    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "locked out", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=6000,
                                                                              epochs=4))
    worker = spawn_worker(Settings(models_dir=tmp_path))
    try:
        wait_until(lambda: queue.snapshot(job.job_id).last_batch, TIMEOUT, "the run did not start training")
        with closing(sqlite3.connect(queue.path, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(subprocess.TimeoutExpired):
                    worker.wait(12)  # alive all along: it did not fail the run nor exit
            finally:
                db.execute("ROLLBACK")
        done = job_ended(queue, job.job_id, TIMEOUT)
    finally:
        if worker.poll() is None:
            kill(worker)
    assert done.state == JobState.FINISHED and done.resumes == 0 and done.error is None
    assert [epoch["epoch"] for epoch in done.epochs] == [1, 2, 3, 4]
    assert "the job queue is busy" in (tmp_path / ".jobs" / worker_module.WORKER_LOG).read_text()


def test_a_queue_database_deleted_while_a_run_trains_loses_no_run(tmp_path):
    """The queue's database deleted (with -wal and -shm) mid-run: pages see an empty queue, not an error; the run stops
    after its batch and what it trained is saved; the next worker removes its orphaned checkpoint."""
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = queue.submit(RUN, "orphan", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=6000,
                                                                         epochs=20))
    worker = spawn_worker(Settings(models_dir=tmp_path, worker_idle_exit_seconds=1))
    wait_until(lambda: queue.snapshot(job.job_id).epochs, TIMEOUT, "the run did not finish an epoch")
    for suffix in ("", "-wal", "-shm"):
        queue.path.with_name(queue.path.name + suffix).unlink(missing_ok=True)
    assert queue.active() == []
    worker.wait(TIMEOUT)
    saved = store.find_by_job(job.job_id)
    assert saved is not None and saved.card["stopped_by_user"] is True and len(saved.card["history"]) < 20
    spawn_worker(Settings(models_dir=tmp_path, worker_idle_exit_seconds=1)).wait(TIMEOUT)
    assert not queue.checkpoint_dir(job.job_id).exists()


def test_a_worker_the_app_started_and_a_signal_killed_is_replaced_on_the_next_page_view(tmp_path):
    """A kill -9 (or the OOM killer) is no failure to start: no back-off, the next page view starts another."""
    settings = Settings(models_dir=tmp_path)
    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "killed", "visitor-a", hyperparameters=preset("seed-004", train_subset_size=6000,
                                                                          epochs=4))
    assert ensure_worker(settings)
    process = worker_module._spawned[str(queue.folder)][1]
    wait_until(lambda: queue.snapshot(job.job_id).epochs, TIMEOUT, "the run did not finish its first epoch")
    kill(process)
    assert "was killed (signal 9" in worker_module.last_worker_failure(settings)
    assert ensure_worker(settings)  # at once: it did not fail on its own
    done = job_ended(queue, job.job_id, TIMEOUT)
    assert done.state == JobState.FINISHED and done.resumes == 1
