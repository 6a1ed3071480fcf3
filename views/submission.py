"""Jobs as a page submits and watches them: queueing a visitor's run or sweep (with the queue's and the store's
limits), keeping a training worker running while jobs wait, and saying why training is unavailable."""

from __future__ import annotations

import logging

import streamlit as st

from fmnist_core.job_queue import JobQueue, JobQueueError
from fmnist_core.jobs import RUN, JobSnapshot
from views import resources, session
from views.text import plain

_log = logging.getLogger(__name__)


def job_queue_or_stop() -> JobQueue:
    """The job queue, or (for the Train and Sweep pages) an error saying why training is unavailable, and the page
    ends there; the other pages go on working."""
    try:
        return resources.job_queue()
    except JobQueueError as error:
        st.error(f"Training is unavailable on this server: {plain(error, 400)}")
        st.stop()


def worker_failure() -> str | None:
    """Why the training worker this server started last exited with an error, if it did."""
    return resources.executor().problem()


def keep_worker_running() -> None:
    """Start the training worker process when jobs wait and none runs (after a crash, too). Cheap otherwise."""
    try:
        resources.executor().keep_running(resources.job_queue())
    except (JobQueueError, OSError) as error:  # the Train page says so; every other page must still work
        _log.warning("cannot check the training worker: %s", error)


def submit(kind: str, run_name: str, **job) -> JobSnapshot:
    """Queue a job of this visitor; raises QueueFullError, or StoreFullError for a run the store has no room for
    (refused now, counting the room queued runs hold, not after minutes of training)."""
    store = resources.model_store() if kind == RUN else None
    snapshot = resources.job_queue().submit(kind, run_name, session.visitor().key, store=store, **job)
    keep_worker_running()
    return snapshot


def store_full_message(error: Exception, yours: str = "Your run") -> str:
    """Why a run was not started when the model store is full, and where to make room."""
    return f"{yours} was not started: {plain(error, 400)} Saved runs can be deleted on the Runs page."


def queue_full_message(error: Exception, yours: str = "Your run") -> str:
    """Why a job was not queued (a limit of the queue, which the error names)."""
    return f"{yours} was not queued: {plain(error, 400)}"
