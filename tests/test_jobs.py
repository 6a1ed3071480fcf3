"""The job queue on disk and the worker's handling of a job: order, limits, cancel and stop, failures, the time
limit, estimated starts, and giving up on a job that keeps killing its worker. The worker's own functions run here
in the test's process; tests/test_worker_crash.py kills real worker processes."""

import threading
import time
from contextlib import closing

import pytest

from fmnist_core import job_queue, worker
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import (
    MAX_RESUMES,
    RUN,
    SCORE_AND_SAVE_SECONDS,
    SWEEP,
    JobState,
    QueueFullError,
    estimated_room,
    estimated_starts,
    images_to_train,
)
from fmnist_core.ownership import NotYoursError, Visitor
from fmnist_core.reporting import progress_text
from fmnist_core.settings import Settings
from fmnist_core.store import ModelStore
from fmnist_core.sweep import SweepSpec

TINY = preset("seed-004", train_subset_size=1000, epochs=1)
OPERATOR = Visitor("operator", is_operator=True, operator_configured=True)  # may stop and cancel any job


DEFAULTS = Settings()


def run_next(queue: JobQueue, store: ModelStore, dataset, slot: int = 0, settings: Settings = DEFAULTS):
    """What a worker does with the next job: claim it, run it (with `settings`' limits); its final snapshot."""
    job = queue.claim_next(slot, pid=1)
    assert job is not None
    worker.run_job(queue, store, job, lambda: dataset, settings)
    return queue.snapshot(job.job_id)


def end_job(queue: JobQueue, job_id: str, state: JobState = JobState.FINISHED, **outcome) -> None:
    """As a worker (pid 7) would: claim `job_id`, the first waiting job, and record how it ended."""
    assert queue.claim_next(0, pid=7).job_id == job_id
    queue.finish(job_id, 7, state, **outcome)


@pytest.mark.slow
def test_a_queued_run_is_trained_evaluated_and_saved_with_its_progress_on_disk(tmp_path, dataset):
    store = ModelStore(tmp_path)
    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "tiny run", "visitor-a", preset="seed-004", hyperparameters=TINY)
    assert job.state == JobState.QUEUED and job.owner == "visitor-a" and job.hyperparameters == TINY
    seen, done = [], threading.Event()

    def watch():  # as a page would, from another thread
        while not done.wait(0.02):
            seen.append(queue.snapshot(job.job_id, with_curves=False).state)

    watcher = threading.Thread(target=watch)
    watcher.start()
    snapshot = run_next(queue, store, dataset)
    done.set()
    watcher.join()
    assert snapshot.state == JobState.FINISHED and snapshot.error is None and not queue.active()
    assert JobState.TRAINING in seen and JobState.EVALUATING in seen
    assert snapshot.saved_name == "tiny-run" and (tmp_path / "tiny-run" / "model.keras").is_file()
    assert 0.1 < snapshot.test_accuracy <= 1.0
    assert len(snapshot.epochs) == 1 and snapshot.batch_points[-1][0] == pytest.approx(1.0)
    card = store.get("tiny-run").card
    assert card["job_id"] == job.job_id and card["owner"] == "visitor-a" and card["resumed_at_epochs"] == []
    assert not queue.checkpoint_dir(job.job_id).exists()  # removed once the model is saved
    assert queue.latest().job_id == job.job_id


def test_jobs_wait_in_order_and_two_workers_claiming_at_once_never_take_the_same(tmp_path):
    queue = JobQueue(tmp_path)
    submitted = [queue.submit(RUN, f"run {n}", f"visitor-{n}", hyperparameters=TINY).job_id for n in range(6)]
    assert [job.job_id for job in queue.active()] == submitted
    barrier, claimed = threading.Barrier(2), []

    def claim(slot):
        barrier.wait()
        for _ in range(3):
            claimed.append(JobQueue(tmp_path).claim_next(slot, pid=slot).job_id)

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in (0, 1)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert sorted(claimed) == sorted(submitted) and len(set(claimed)) == 6
    assert queue.claim_next(0, pid=0) is None


def test_the_limits_per_visitor_and_in_total_say_which_was_reached(tmp_path):
    queue = JobQueue.from_settings(Settings.from_environment(
        {"FMNIST_MAX_JOBS_PER_VISITOR": "2", "FMNIST_MAX_WAITING_JOBS": "4"}, models_dir=tmp_path))
    first = queue.submit(RUN, "one", "visitor-a", hyperparameters=TINY)
    queue.submit(RUN, "two", "visitor-a", hyperparameters=TINY)
    with pytest.raises(QueueFullError, match=r"you already have 2 jobs waiting or training.*\(2\)\. Cancel one"):
        queue.submit(RUN, "three", "visitor-a", hyperparameters=TINY)
    assert queue.cancel(first.job_id, Visitor("visitor-a"))  # a cancelled job no longer counts
    queue.submit(RUN, "three", "visitor-a", hyperparameters=TINY)
    queue.submit(RUN, "four", "visitor-b", hyperparameters=TINY)
    queue.submit(RUN, "five", "visitor-c", hyperparameters=TINY)
    with pytest.raises(QueueFullError, match=r"the queue is full: 4 jobs are waiting.*\(4\)"):
        queue.submit(RUN, "six", "visitor-d", hyperparameters=TINY)


def test_one_network_address_is_held_to_its_limit_whatever_browser_ids_it_sends(tmp_path):
    """#30 item 1: a script that cleared its cookie between Starts queued 12 jobs with 7 identities."""
    queue = JobQueue.from_settings(Settings(models_dir=tmp_path, max_jobs_per_address=4))
    first = [queue.submit(RUN, f"script {n}", f"cookie-{n}", hyperparameters=TINY, address="addr-x").job_id
             for n in range(4)]
    with pytest.raises(QueueFullError, match=r"4 jobs from your network address are waiting or training.*\(4\), "
                                             r"whichever browsers.*FMNIST_MAX_JOBS_PER_ADDRESS") as refused:
        queue.submit(RUN, "script 5", "cookie-5", hyperparameters=TINY, address="addr-x")
    assert refused.value.waits_for == tuple(first) and refused.value.until == "ended"
    queue.submit(RUN, "an ordinary visitor", "visitor-b", hyperparameters=TINY, address="addr-y")
    queue.submit(RUN, "on this machine", "visitor-c", hyperparameters=TINY)  # no address (loopback): not counted
    assert queue.cancel(first[0], Visitor("cookie-0"))  # a cancelled job no longer counts
    queue.submit(RUN, "script 5", "cookie-5", hyperparameters=TINY, address="addr-x")
    with closing(job_queue.sqlite3.connect(queue.path)) as db:  # only the address's key is stored, with the job
        assert {row[0] for row in db.execute("SELECT address FROM job_addresses")} == {"addr-x", "addr-y"}


def test_the_worker_takes_turns_so_nobody_waits_behind_one_persons_jobs(tmp_path):
    queue = JobQueue.from_settings(Settings(models_dir=tmp_path, max_jobs_per_address=4, max_jobs_per_visitor=3))
    script = [queue.submit(RUN, f"script {n}", f"cookie-{n}", hyperparameters=TINY, address="addr-x").job_id
              for n in range(4)]
    bob = queue.submit(RUN, "bob", "bob", hyperparameters=TINY, address="addr-y").job_id
    carol = [queue.submit(RUN, f"carol {n}", "carol", hyperparameters=TINY, address="addr-z").job_id for n in range(2)]
    dave = queue.submit(RUN, "dave", "dave", hyperparameters=TINY).job_id  # this machine: counted by browser
    expected = [script[0], bob, carol[0], dave, script[1], carol[1], script[2], script[3]]
    assert [job.job_id for job in queue.active()] == expected  # the queue the pages show: the worker's order
    claimed = []
    for _ in expected:
        job = queue.claim_next(0, pid=7)
        claimed.append(job.job_id)
        queue.finish(job.job_id, 7, JobState.FINISHED)
    assert claimed == expected
    erin = queue.submit(RUN, "erin", "erin", hyperparameters=TINY, address="addr-w").job_id
    again = queue.submit(RUN, "bob again", "bob", hyperparameters=TINY, address="addr-y").job_id
    assert queue.claim_next(0, pid=7).job_id == erin  # bob started one in the last hour, erin none
    assert queue.claim_next(0, pid=7).job_id == again


def test_visitors_behind_one_address_take_turns_too(tmp_path):
    queue = JobQueue.from_settings(Settings(models_dir=tmp_path, max_jobs_per_address=10))
    alice = [queue.submit(RUN, f"alice {n}", "alice", hyperparameters=TINY, address="school").job_id
             for n in range(2)]
    bob = queue.submit(RUN, "bob", "bob", hyperparameters=TINY, address="school").job_id
    assert [job.job_id for job in queue.active()] == [alice[0], bob, alice[1]]


def test_a_refusal_names_the_jobs_to_wait_for(tmp_path):
    queue = JobQueue.from_settings(Settings(models_dir=tmp_path, max_waiting_jobs=2))
    mine = [queue.submit(RUN, f"mine {n}", "me", hyperparameters=TINY).job_id for n in range(2)]
    with pytest.raises(QueueFullError) as refused:
        queue.submit(RUN, "third", "me", hyperparameters=TINY)
    assert refused.value.waits_for == tuple(mine) and refused.value.until == "ended"
    with pytest.raises(QueueFullError, match="the queue is full") as refused:
        queue.submit(RUN, "yours", "you", hyperparameters=TINY)
    assert refused.value.waits_for == tuple(mine) and refused.value.until == "started"


def test_the_queue_refuses_a_run_that_needs_more_memory_to_train_than_the_server_allows(tmp_path):
    """#30 item 6: a model the form allowed took 3.3 GB in the worker."""
    large = preset("seed-004").with_changes(filters=(256, 256), convs_per_block=3, batch_norm=True, batch_size=512,
                                            num_conv_blocks=2, dense_units=64)
    assert large.training_memory_bytes() > 4e9
    queue = JobQueue.from_settings(Settings(models_dir=tmp_path, max_training_memory_mb=2000))
    with pytest.raises(QueueFullError, match=r"training this model would take about 4\.\d GB of memory at batch size "
                                             r"512, over this server's limit of 2\.0 GB for one run "
                                             r"\(FMNIST_MAX_TRAINING_MEMORY_MB\)\. Use a smaller batch size, fewer "
                                             r"filters in the first blocks"):
        queue.submit(RUN, "large", "me", hyperparameters=large)
    assert queue.active() == []
    queue.submit(RUN, "smaller", "me", hyperparameters=large.with_changes(batch_size=64))


def test_only_a_waiting_job_can_be_cancelled_and_only_a_running_one_stopped(tmp_path):
    queue = JobQueue(tmp_path)
    running = queue.submit(RUN, "running", "a", hyperparameters=TINY)
    waiting = queue.submit(RUN, "waiting", "b", hyperparameters=TINY)
    queue.claim_next(0, pid=1)
    assert not queue.cancel(running.job_id, OPERATOR) and queue.snapshot(running.job_id).state == JobState.STARTING
    queue.request_stop(waiting.job_id, OPERATOR)  # not running: nothing to stop
    assert not queue.snapshot(waiting.job_id).stop_requested
    queue.request_stop(running.job_id, OPERATOR)
    assert queue.stop_requested(running.job_id)
    assert queue.cancel(waiting.job_id, OPERATOR) and queue.snapshot(waiting.job_id).state == JobState.CANCELLED
    assert not queue.cancel(waiting.job_id, OPERATOR)  # already out of the queue


def test_the_queue_itself_lets_only_a_jobs_owner_or_the_operator_stop_or_cancel_it(tmp_path):
    """Whatever front end calls it (a page, the CLI, a future API): the queue refuses a stranger."""
    queue = JobQueue(tmp_path)
    running = queue.submit(RUN, "alice's", "alice", hyperparameters=TINY)
    waiting = queue.submit(RUN, "bob's", "bob", hyperparameters=TINY)
    queue.claim_next(0, pid=1)
    mallory = Visitor("mallory", operator_configured=True)
    with pytest.raises(NotYoursError, match="Only the visitor who started it, or the operator, can stop it"):
        queue.request_stop(running.job_id, mallory)
    with pytest.raises(NotYoursError, match="can cancel it"):
        queue.cancel(waiting.job_id, mallory)
    assert not queue.stop_requested(running.job_id) and queue.snapshot(waiting.job_id).state == JobState.QUEUED
    queue.request_stop(running.job_id, Visitor("alice"))
    assert queue.cancel(waiting.job_id, Visitor("bob"))
    assert queue.stop_requested(running.job_id)


def test_a_stale_workers_writes_are_refused_once_another_worker_holds_its_job(tmp_path, caplog):
    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "contested", "a", hyperparameters=TINY)
    queue.claim_next(0, pid=101)  # the first worker, then taken for dead: its job goes back and another claims it
    queue.requeue_interrupted(slot=0)
    queue.claim_next(1, pid=202)
    with pytest.raises(job_queue.StaleWorkerError, match="no longer held by worker 101"):
        queue.record_progress(job.job_id, 101, None, [(0.5, 9.0, 0.1)], epochs=[{"epoch": 1, "images_per_second": 1}])
    with pytest.raises(job_queue.StaleWorkerError):
        queue.finish(job.job_id, 101, JobState.FAILED, error="the stale worker's word")
    with pytest.raises(job_queue.StaleWorkerError):
        queue.set_state(job.job_id, JobState.EVALUATING, 101)
    assert "was refused" in caplog.text
    snapshot = queue.snapshot(job.job_id)
    assert snapshot.state == JobState.STARTING and snapshot.epochs == () and snapshot.batch_points == ()
    queue.record_progress(job.job_id, 202, None, [(0.5, 1.0, 0.5)])  # the holder's writes go through
    queue.finish(job.job_id, 202, JobState.FINISHED)
    assert queue.snapshot(job.job_id).state == JobState.FINISHED


def test_a_stored_row_that_todays_rules_refuse_is_still_listed(tmp_path):
    """A job queued by an earlier version, whose settings a rule tightened since refuses: every page still lists it."""
    import sqlite3

    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "old", "a", hyperparameters=TINY)
    sweep = queue.submit(SWEEP, "old sweep", "b", spec=SweepSpec(vary=(("learning_rate", (0.001, 0.01)),)))
    with closing(sqlite3.connect(queue.path)) as db, db:
        db.execute("UPDATE jobs SET hyperparameters=? WHERE job_id=?",
                   (TINY.to_json().replace('"epochs": 1', '"epochs": 999'), job.job_id))
        db.execute("UPDATE jobs SET spec=replace(spec, '\"max_trials\": 6', '\"max_trials\": 5000') WHERE job_id=?",
                   (sweep.job_id,))
    listed = {snapshot.job_id: snapshot for snapshot in queue.active()}
    assert listed[job.job_id].hyperparameters.epochs == 999 and images_to_train(listed[job.job_id]) > 0
    assert listed[sweep.job_id].spec.max_trials == 5000


def test_a_job_that_ends_deletes_the_oldest_ended_jobs_beyond_the_kept_number_with_their_rows(tmp_path,
                                                                                                  monkeypatch):
    import sqlite3

    monkeypatch.setattr(job_queue, "KEEP_ENDED_JOBS", 3)
    queue = JobQueue(tmp_path, max_jobs_per_visitor=10)
    ended = [queue.submit(RUN, f"run {n}", "visitor-a", hyperparameters=TINY).job_id for n in range(6)]
    waiting = queue.submit(RUN, "waits", "visitor-a", hyperparameters=TINY)  # still waiting when the others ended
    for job_id in ended:
        assert queue.claim_next(0, pid=7).job_id == job_id
        queue.record_progress(job_id, 7, None, [(0.5, 1.0, 0.5)], epochs=[{"epoch": 1, "images_per_second": 1.0}])
        queue.finish(job_id, 7, JobState.FINISHED)

    assert [job.job_id for job in queue.recent(10)] == [*ended[-3:], waiting.job_id]  # the waiting one stays
    with closing(sqlite3.connect(queue.path)) as db:
        for table in ("epochs", "batch_points"):
            assert {row[0] for row in db.execute(f"SELECT job_id FROM {table}")} == set(ended[-3:]), table
    assert queue.recent_images_per_second() == 1.0


def test_pruning_keeps_the_jobs_that_ended_last_so_a_long_run_ending_after_many_cancelled_jobs_stays(tmp_path,
                                                                                                    monkeypatch):
    monkeypatch.setattr(job_queue, "KEEP_ENDED_JOBS", 3)
    queue = JobQueue(tmp_path, max_jobs_per_visitor=10)
    long_run = queue.submit(RUN, "long", "visitor-a", hyperparameters=TINY)
    queue.claim_next(0, pid=1)
    sweep_folder = tmp_path / job_queue.SWEEPS_FOLDER
    cancelled = []
    for n in range(5):  # submitted after the long run and cancelled before it ends: each cancel prunes too
        job = queue.submit(RUN, f"changed my mind {n}", "visitor-b", hyperparameters=TINY)
        (sweep_folder / job.job_id).mkdir(parents=True)  # as a sweep's keras-tuner folder would be
        assert queue.cancel(job.job_id, Visitor("visitor-b"))
        cancelled.append(job.job_id)
    assert [job.job_id for job in queue.recent(10)] == [long_run.job_id, *cancelled[-3:]]

    queue.finish(long_run.job_id, 1, JobState.FINISHED, saved_name="long", test_accuracy=0.9)
    assert queue.snapshot(long_run.job_id).state == JobState.FINISHED  # ended last: kept, though submitted first
    assert queue.latest().job_id == long_run.job_id
    assert [job.job_id for job in queue.recent(10)] == [long_run.job_id, *cancelled[-2:]]
    assert sorted(path.name for path in sweep_folder.iterdir()) == sorted(cancelled[-2:])  # pruned with their rows


def test_a_sweep_spec_survives_the_trip_through_the_database(tmp_path):
    from fmnist_core.sweep import Range

    spec = SweepSpec(vary={"learning_rate": Range(1e-4, 1e-2), "batch_size": (32, 64)}, strategy="random",
                     max_trials=5, epochs_per_trial=2, subset_size=3000, base_preset="seed-004")
    queue = JobQueue(tmp_path)
    job = queue.submit(SWEEP, "sweep", "a", spec=spec)
    assert queue.snapshot(job.job_id).spec == spec and job.kind == SWEEP


@pytest.mark.slow
def test_a_stop_written_to_the_queue_stops_the_run_after_a_batch_and_keeps_it(tmp_path, dataset):
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    job = queue.submit(RUN, "stopped", "a", hyperparameters=preset("seed-004", train_subset_size=20000, epochs=5))

    def stop_when_training():
        while not (queue.snapshot(job.job_id).last_batch or 0):
            time.sleep(0.05)
        queue.request_stop(job.job_id, Visitor("a"))

    threading.Thread(target=stop_when_training, daemon=True).start()
    snapshot = run_next(queue, store, dataset)
    assert snapshot.state == JobState.STOPPED and snapshot.stop_requested and len(snapshot.epochs) <= 1
    assert store.get(snapshot.saved_name).card["stopped_by_user"] is True


@pytest.mark.slow
def test_a_failing_run_is_recorded_with_its_reason_and_the_next_job_still_runs(tmp_path, dataset):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's models should go")
    queue = JobQueue(tmp_path / "queue")
    queue.submit(RUN, "doomed", "a", hyperparameters=TINY)
    snapshot = run_next(queue, ModelStore(blocked), dataset)
    assert snapshot.state == JobState.FAILED and "cannot create a folder" in snapshot.error
    assert "Traceback" in snapshot.traceback and progress_text(snapshot) == "Failed."
    queue.submit(RUN, "next", "a", hyperparameters=TINY)
    assert run_next(queue, ModelStore(tmp_path / "store"), dataset).state == JobState.FINISHED


@pytest.mark.slow
def test_a_run_stops_at_the_time_limit_and_is_saved_saying_so(tmp_path, dataset):
    two_seconds = Settings(models_dir=tmp_path, max_train_minutes=2 / 60)  # 10 epochs of 18,000 images take minutes
    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    queue.submit(RUN, "capped", "a", hyperparameters=preset("seed-004", train_subset_size=20000, epochs=10))
    snapshot = run_next(queue, store, dataset, settings=two_seconds)
    assert snapshot.state == JobState.STOPPED and snapshot.stopped_by_time_limit and not snapshot.stop_requested
    assert len(snapshot.epochs) <= 1 and snapshot.last_batch.elapsed_seconds >= 2.0
    assert progress_text(snapshot).startswith("Stopped at the time limit after ")
    card = store.get("capped").card
    assert card["stopped_by_time_limit"] is True and card["stopped_by_user"] is False


def test_an_interrupted_job_goes_back_to_its_place_and_one_that_keeps_killing_its_worker_fails(tmp_path):
    queue = JobQueue(tmp_path)
    first = queue.submit(RUN, "first", "a", hyperparameters=TINY)
    second = queue.submit(RUN, "second", "b", hyperparameters=TINY)
    for attempt in range(MAX_RESUMES):
        assert queue.claim_next(0, pid=1).job_id == first.job_id  # first in the queue again after each crash
        assert queue.requeue_interrupted(slot=0) == [first.job_id]
        assert queue.snapshot(first.job_id).resumes == attempt + 1
    queue.claim_next(0, pid=1)
    assert queue.requeue_interrupted(slot=0) == []  # the worker died once more: it is not tried again
    failed = queue.snapshot(first.job_id)
    assert failed.state == JobState.FAILED and f"died or hung {MAX_RESUMES + 1} times" in failed.error
    assert queue.claim_next(0, pid=1).job_id == second.job_id


def test_each_waiting_job_is_given_the_time_the_jobs_before_it_leave(tmp_path):
    queue = JobQueue(tmp_path)
    hp = preset("seed-004", train_subset_size=10000, epochs=2)  # 2 x 9,000 training images
    running, second, third = (queue.submit(RUN, name, "a" + name, hyperparameters=hp) for name in "123")
    queue.claim_next(0, pid=1)
    active = queue.active()
    assert [job.job_id for job in active] == [running.job_id, second.job_id, third.job_id]
    assert images_to_train(active[1]) == 18000
    now = active[0].started_at + 5.0  # the running job started 5 s ago and has no batch yet: estimated like the rest
    starts = estimated_starts(active, images_per_second=1000.0, now=now, settings=Settings())
    one_job = 18000 / 1000.0 + SCORE_AND_SAVE_SECONDS
    assert starts == {second.job_id: pytest.approx(now + one_job - 5),
                      third.job_id: pytest.approx(now + 2 * one_job - 5)}


def test_a_refused_visitor_is_told_when_the_jobs_they_wait_for_should_end_or_start(tmp_path):
    queue = JobQueue(tmp_path)
    hp = preset("seed-004", train_subset_size=10000, epochs=2)  # 2 x 9,000 training images
    running, second, third = (queue.submit(RUN, name, "a" + name, hyperparameters=hp) for name in "123")
    queue.claim_next(0, pid=1)
    active = queue.active()
    now = active[0].started_at + 5.0
    one_job = 18000 / 1000.0 + SCORE_AND_SAVE_SECONDS

    def room(waits_for, until):
        return estimated_room(waits_for, until, active, images_per_second=1000.0, now=now, settings=Settings())

    assert room((running.job_id, third.job_id), "ended") == pytest.approx(now + one_job - 5)  # the first to end
    assert room((third.job_id,), "ended") == pytest.approx(now + 3 * one_job - 5)
    assert room((second.job_id, third.job_id), "started") == pytest.approx(now + one_job - 5)  # a place frees
    assert room(("gone",), "ended") is None


@pytest.mark.slow
def test_a_run_waiting_to_resume_can_be_stopped_and_is_saved_with_the_epochs_it_had(tmp_path, dataset):
    from test_checkpoints import Crash, crash_after_epoch

    from fmnist_core.training import train

    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    hp = preset("seed-004", train_subset_size=2000, epochs=5)
    job = queue.submit(RUN, "interrupted", "a", hyperparameters=hp)
    claimed = queue.claim_next(0, pid=1)
    with pytest.raises(Crash):  # the worker dies after epoch 2
        train(hp, dataset, [worker._Recorder(queue, claimed), crash_after_epoch(2)],
              checkpoint_dir=queue.checkpoint_dir(job.job_id))
    queue.requeue_interrupted(slot=0)
    queue.request_stop(job.job_id, Visitor("a"))  # its owner presses Stop while it waits to resume
    assert queue.snapshot(job.job_id).stop_requested
    snapshot = run_next(queue, store, dataset)
    assert snapshot.state == JobState.STOPPED and [epoch["epoch"] for epoch in snapshot.epochs] == [1, 2]
    assert store.get(snapshot.saved_name).card["resumed_at_epochs"] == [2]
    assert not queue.checkpoint_dir(job.job_id).exists()


def test_the_workers_log_is_rotated_when_large_so_it_never_holds_more_than_two_files(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "WORKER_LOG_BYTES", 100)
    log = tmp_path / worker.WORKER_LOG
    worker._rotate_if_large(log)  # none yet: nothing to do
    log.write_bytes(b"small\n")
    worker._rotate_if_large(log)
    assert log.read_bytes() == b"small\n"
    for text in (b"first " * 20, b"second " * 20):
        log.write_bytes(text)
        worker._rotate_if_large(log)
        assert not log.exists() and (tmp_path / "worker.log.1").read_bytes() == text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["worker.log.1"]


def test_a_quiet_job_counts_as_hung_only_while_its_process_does_no_work():
    class Quiet:  # a job that has sent no event since it started
        last_event = time.monotonic()

    def watch_while(activity, seconds: float):
        clock, found, end = worker._StallClock(Quiet(), stall_seconds=0.5), None, time.monotonic() + seconds
        while time.monotonic() < end and not found:
            activity()
            found = clock.hung()
        return found

    busy = watch_while(lambda: sum(range(200_000)), 1.5)  # computing without events: scoring a large model, say
    assert busy is None
    idle = watch_while(lambda: time.sleep(0.05), 1.5)  # waiting on something that does not come
    assert idle is not None and idle[0] > 0.5 and idle[1] < 0.05 * 0.5


def test_a_queue_held_by_another_program_says_it_is_busy_in_words_and_writes_nothing(tmp_path):
    import sqlite3

    queue = JobQueue(tmp_path, busy_seconds=0.3)
    waiting = queue.submit(RUN, "waiting", "a", hyperparameters=TINY)
    with closing(sqlite3.connect(queue.path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # a backup tool, or a person in the sqlite3 shell
        started = time.monotonic()
        with pytest.raises(job_queue.QueueBusyError, match="the job queue is busy: another program has held") as error:
            queue.submit(RUN, "refused", "b", hyperparameters=TINY)
        assert time.monotonic() - started < 3 and isinstance(error.value, QueueFullError)  # the page says why
        assert "OperationalError" not in str(error.value) and str(tmp_path) not in str(error.value)
        with pytest.raises(job_queue.QueueBusyError):
            queue.cancel(waiting.job_id, Visitor("a"))
        assert [job.job_id for job in queue.active()] == [waiting.job_id]  # reading goes on (WAL)
        other.execute("ROLLBACK")
    assert queue.cancel(waiting.job_id, Visitor("a"))


def test_a_deleted_queue_database_is_made_anew_and_orphaned_checkpoints_are_removed(tmp_path, caplog):
    queue = JobQueue(tmp_path)
    job = queue.submit(RUN, "lost", "a", hyperparameters=TINY)
    queue.claim_next(0, pid=5)
    queue.checkpoint_dir(job.job_id).mkdir(parents=True)
    (queue.checkpoint_dir(job.job_id) / "checkpoint.npz").write_bytes(b"weights")
    for suffix in ("", "-wal", "-shm"):
        queue.path.with_name(queue.path.name + suffix).unlink(missing_ok=True)
    assert queue.active() == [] and "made anew, empty" in caplog.text  # pages go on, with an empty queue
    with pytest.raises(job_queue.JobGoneError):  # the worker of the lost job is told, and keeps what it trained
        queue.record_progress(job.job_id, 5, None, [(0.5, 1.0, 0.5)])
    assert queue.remove_orphaned_checkpoints() == [job.job_id] and not queue.checkpoint_dir(job.job_id).exists()
    assert queue.submit(RUN, "next", "a", hyperparameters=TINY).state == JobState.QUEUED
