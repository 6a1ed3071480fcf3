"""Background training jobs: one at a time, stoppable, saved, visible as snapshots."""

import threading

import pytest

from fmnist_core import jobs
from fmnist_core.hyperparameters import preset
from fmnist_core.jobs import FAILED, FINISHED, STOPPED, TrainingBusyError, TrainingManager
from fmnist_core.reporting import progress_text
from fmnist_core.store import ModelStore

TINY = preset("seed-004", train_subset_size=1000, epochs=1)


def test_a_job_trains_evaluates_and_saves_in_the_background(tmp_path, dataset):
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    job = manager.start(TINY, "tiny run", owner="session-a", preset="seed-004")
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.state == FINISHED and snapshot.phase == "done" and snapshot.error is None
    assert snapshot.saved_name == "tiny-run" and (tmp_path / "tiny-run" / "model.keras").is_file()
    assert 0.1 < snapshot.test_accuracy <= 1.0
    assert len(snapshot.epochs) == 1 and snapshot.batch_points[-1][0] == pytest.approx(1.0)
    assert manager.current() is job


def test_only_one_run_at_a_time_even_when_two_sessions_press_train_together(tmp_path, dataset):
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    barrier, started, refused = threading.Barrier(2), [], []

    def press_train(owner):
        barrier.wait()
        try:
            started.append(manager.start(TINY.with_changes(epochs=2), f"run {owner}", owner=owner))
        except TrainingBusyError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=press_train, args=(owner,)) for owner in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(refused) == 1
    assert "already in progress" in refused[0]
    started[0].request_stop()
    assert started[0].wait(120)
    assert started[0].snapshot().state == STOPPED and started[0].snapshot().saved_name


def test_a_failing_run_is_reported_not_raised(tmp_path, dataset):
    blocker = tmp_path / "models"
    blocker.write_text("a file where the store folder should be")
    manager = TrainingManager(ModelStore(blocker), lambda: dataset)
    job = manager.start(TINY, "doomed", owner="a")
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.state == FAILED and "cannot create a folder" in snapshot.error
    manager.start(TINY.with_changes(train_subset_size=500), "next", owner="a").request_stop()  # slot is free again


def test_a_server_run_stops_at_the_time_limit_and_is_saved_saying_so(tmp_path, dataset, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_TRAIN_MINUTES", 2 / 60)  # 2 s; 10 epochs of 18,000 images take minutes here
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    job = manager.start(preset("seed-004", train_subset_size=20000, epochs=10), "capped", owner="a")
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.state == STOPPED and snapshot.stopped_by_time_limit and not snapshot.stop_requested
    assert len(snapshot.epochs) <= 1 and snapshot.last_batch.elapsed_seconds >= 2.0
    assert progress_text(snapshot).startswith("Stopped at the time limit after ")
    card = ModelStore(tmp_path).get("capped").card
    assert card["stopped_by_time_limit"] is True and card["stopped_by_user"] is False
    assert card["train_seconds"] < 30 and 0.1 < card["test_accuracy"] <= 1.0


def test_the_time_limit_is_thirty_minutes():
    assert jobs.MAX_TRAIN_MINUTES == 30
