"""The app's server and its training worker killed with SIGKILL (a crash, an out-of-memory kill, a reboot) while one
run trains and two wait: the run goes on while only the server is down, resumes from its last epoch after both were
killed, the waiting runs still start, in their order, and every run is saved exactly once."""

from __future__ import annotations

import os
import signal
import subprocess

from app_actions import RUN_SECONDS, current, open_page, run_heading
from app_server import VIEWPORT, AppServer, copy_shipped_model
from playwright.sync_api import expect
from test_worker_crash import mid_epoch
from waiting import job_ended, wait_until

from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, JobState
from fmnist_core.store import ModelStore

RUNS = {"first": preset("seed-004", train_subset_size=8000, epochs=8),  # about 1-2 s an epoch here
        "second": preset("seed-004", train_subset_size=2000, epochs=2),
        "third": preset("seed-004", train_subset_size=2000, epochs=2)}


def worker_pids(models_dir) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "--", f"--models-dir {models_dir} worker"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def sigkill_server(server: AppServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(30)
    server.log.close()


def test_runs_survive_the_server_and_the_worker_being_killed(browser, tmp_path, artifacts):
    models_dir = copy_shipped_model(tmp_path / "models")
    queue = JobQueue(models_dir)
    jobs = [queue.submit(RUN, name, f"visitor-{name}", hyperparameters=hp) for name, hp in RUNS.items()]
    first = jobs[0].job_id
    server = AppServer(models_dir, artifacts / "restarts-server.log")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        server.wait_until_healthy()
        page = context.new_page()
        open_page(page, server.url)  # the app finds jobs waiting and no worker: it starts one
        expect(run_heading(page, "first")).to_be_visible(timeout=RUN_SECONDS * 1000)
        wait_until(lambda: queue.snapshot(first).epochs, RUN_SECONDS, "the first run finished no epoch")

        # 1. only the server dies: the worker, in a session of its own, trains on
        sigkill_server(server)
        epochs_then = len(queue.snapshot(first).epochs)
        wait_until(lambda: len(queue.snapshot(first).epochs) > epochs_then, RUN_SECONDS,
                   "the run made no progress while the server was down")
        server = AppServer(models_dir, artifacts / "restarts-server-2.log", port=server.port)
        server.wait_until_healthy()

        # 2. both die mid-epoch, as in a reboot
        wait_until(lambda: mid_epoch(queue.snapshot(first), at_least=1), RUN_SECONDS, "no epoch was under way",
                   interval_seconds=0.02)
        workers = worker_pids(models_dir)
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        sigkill_server(server)
        wait_until(lambda: not worker_pids(models_dir), 30, "the worker did not die")
        interrupted = queue.snapshot(first)
        assert interrupted.state == JobState.TRAINING  # as the dead worker left it

        server = AppServer(models_dir, artifacts / "restarts-server-3.log", port=server.port)
        server.wait_until_healthy()
        open_page(page, server.url)  # the first page view starts a worker again, which resumes the run
        expect(current(page).get_by_text("This run was interrupted")).to_be_visible(timeout=RUN_SECONDS * 1000)
        for job in jobs:
            assert job_ended(queue, job.job_id, RUN_SECONDS).state == JobState.FINISHED, job.run_name
    finally:
        context.close()
        server.stop()
        for pid in worker_pids(models_dir):
            os.kill(pid, signal.SIGKILL)

    done = [queue.snapshot(job.job_id) for job in jobs]
    assert [job.resumes for job in done] == [1, 0, 0]
    assert [epoch["epoch"] for epoch in done[0].epochs] == list(range(1, 9))  # none twice, none missing
    assert done[0].started_at < done[1].started_at < done[2].started_at  # in the queue's order
    store = ModelStore(models_dir)
    models, warnings = store.list_models()
    assert warnings == [] and sorted(saved.card.get("job_id", "") for saved in models) == sorted(
        ["", *(job.job_id for job in jobs)])  # the shipped model and each run once
    recorded = len(interrupted.epochs)  # at most the epoch in progress was lost (see test_worker_crash.py)
    assert store.get("first").card["resumed_at_epochs"] in ([recorded], [recorded + 1])
