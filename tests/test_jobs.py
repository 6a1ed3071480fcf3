"""Background jobs: one at a time, stoppable, saved, visible as snapshots, memory handed back after each."""

import threading

import pytest

from fmnist_core import jobs
from fmnist_core.hyperparameters import preset
from fmnist_core.jobs import RUN, JobState, TrainingBusyError, TrainingManager
from fmnist_core.reporting import progress_text
from fmnist_core.store import ModelStore

TINY = preset("seed-004", train_subset_size=1000, epochs=1)
pytestmark = pytest.mark.slow  # every test trains


def test_a_job_trains_evaluates_and_saves_in_the_background(tmp_path, dataset):
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    seen = []
    job = manager.start(TINY, "tiny run", owner="session-a", preset="seed-004")
    while not job.wait(0.05):
        seen.append(job.snapshot().state)
    snapshot = job.snapshot()
    assert snapshot.kind == RUN and snapshot.state == JobState.FINISHED and snapshot.error is None
    assert JobState.TRAINING in seen and not snapshot.is_running and not manager.busy()
    assert snapshot.saved_name == "tiny-run" and (tmp_path / "tiny-run" / "model.keras").is_file()
    assert 0.1 < snapshot.test_accuracy <= 1.0
    assert len(snapshot.epochs) == 1 and snapshot.batch_points[-1][0] == pytest.approx(1.0)
    assert manager.current() is job


def test_only_one_job_at_a_time_even_when_two_sessions_press_start_together(tmp_path, dataset):
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    barrier, started, refused = threading.Barrier(2), [], []

    def press_train(owner):
        barrier.wait()
        try:
            started.append(manager.start(TINY.with_changes(epochs=2), f"run {owner}", owner=owner))
        except TrainingBusyError as error:
            refused.append(error)

    threads = [threading.Thread(target=press_train, args=(owner,)) for owner in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(refused) == 1
    assert manager.busy() and refused[0].busy.job_id == started[0].job_id  # the refusal names the job in the way
    assert "already in progress" in str(refused[0]) and "page" not in str(refused[0])  # the core names no UI page
    started[0].request_stop()
    assert started[0].wait(120)
    assert started[0].snapshot().state == JobState.STOPPED and started[0].snapshot().saved_name


def test_a_failing_run_is_reported_not_raised_and_frees_the_slot(tmp_path, dataset):
    blocker = tmp_path / "models"
    blocker.write_text("a file where the store folder should be")
    manager = TrainingManager(ModelStore(blocker), lambda: dataset)
    job = manager.start(TINY, "doomed", owner="a")
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.state == JobState.FAILED and "cannot create a folder" in snapshot.error
    assert "Traceback" in job.traceback and not manager.busy()
    second = manager.start(TINY.with_changes(train_subset_size=500), "next", owner="a")  # the slot is free again
    second.request_stop()
    assert second.wait(120) and second.snapshot().state == JobState.FAILED  # the same blocked store


def test_a_server_run_stops_at_the_time_limit_and_is_saved_saying_so(tmp_path, dataset, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_TRAIN_MINUTES", 2 / 60)  # 2 s; 10 epochs of 18,000 images take minutes here
    manager = TrainingManager(ModelStore(tmp_path), lambda: dataset)
    job = manager.start(preset("seed-004", train_subset_size=20000, epochs=10), "capped", owner="a")
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.state == JobState.STOPPED and snapshot.stopped_by_time_limit and not snapshot.stop_requested
    assert len(snapshot.epochs) <= 1 and snapshot.last_batch.elapsed_seconds >= 2.0
    assert progress_text(snapshot).startswith("Stopped at the time limit after ")
    card = ModelStore(tmp_path).get("capped").card
    assert card["stopped_by_time_limit"] is True and card["stopped_by_user"] is False
    assert card["train_seconds"] < 30 and 0.1 < card["test_accuracy"] <= 1.0


@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_memory_is_handed_back_after_every_job_however_it_ends(tmp_path, dataset, monkeypatch, outcome):
    releases = []
    monkeypatch.setattr(jobs, "release_free_memory", lambda **options: releases.append(options))
    store = ModelStore(tmp_path / "models")
    if outcome == "failed":
        store = ModelStore(tmp_path / "blocked")
        (tmp_path / "blocked").write_text("not a folder")
    job = TrainingManager(store, lambda: dataset).start(TINY, "run", owner="a")
    assert job.wait(120) and job.snapshot().state.value == outcome
    assert {} in releases  # the full release (garbage collection, then the allocator's free pages) at the end
