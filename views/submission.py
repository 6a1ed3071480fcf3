"""Jobs as a page submits and watches them: queueing a visitor's run or sweep (with the queue's and the store's
limits), keeping a training worker running while jobs wait, and saying why training is unavailable."""

from __future__ import annotations

import logging
import time

import streamlit as st

from fmnist_core.hyperparameters import HyperParameters, check_training_memory
from fmnist_core.job_queue import JobQueue, JobQueueError
from fmnist_core.jobs import DEFAULT_IMAGES_PER_SECOND, RUN, JobSnapshot, QueueFullError, estimated_room
from fmnist_core.reporting import format_duration
from fmnist_core.settings import setting_variable
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
    me = session.visitor()
    snapshot = resources.job_queue().submit(kind, run_name, me.key, store=store, address=me.address, **job)
    keep_worker_running()
    return snapshot


def store_full_message(error: Exception, yours: str = "Your run") -> str:
    """Why a run was not started when the model store is full, and where to make room."""
    return f"{yours} was not started: {plain(error, 400)} Saved runs can be deleted on the Runs page."


def queue_full_message(error: QueueFullError, yours: str = "Your run") -> str:
    """Why a job was not queued (a limit of the queue, which the error names), and when to try again."""
    return f"{yours} was not queued: {plain(error, 600)}{_when_to_try_again(error)}"


def _when_to_try_again(error: QueueFullError) -> str:
    """' You can try again in about 4 min 10 s, …' from the queue's estimates; '' when there is nothing to wait for
    (a run too large for this server) or the jobs it waited for have gone meanwhile."""
    if not error.waits_for:
        return ""
    queue = resources.job_queue()
    now = time.time()
    room = estimated_room(error.waits_for, error.until, queue.active(),
                          queue.recent_images_per_second() or DEFAULT_IMAGES_PER_SECOND, now, resources.settings())
    if room is None:
        return " Those jobs have just left the queue: try again now."
    event = "the next waiting job has started" if error.until == "started" else "one of those jobs has ended"
    return f" You can try again in about {format_duration(room - now)}, when {event} (an estimate)."


def check_memory(hp: HyperParameters) -> None:
    """Raise TrainingMemoryError (a HyperParameterError) when training `hp` would need more memory than this server
    allows, as the queue would refuse it; for the Train form's check."""
    check_training_memory(hp, resources.settings().max_training_memory_mb * 1e6,
                          setting_variable("max_training_memory_mb"))
