"""The server's job queue as every visitor sees it (Train and Sweep pages): what trains, what waits, whose it is,
when it should start; Stop and Cancel for what is yours (or for the operator)."""

from __future__ import annotations

import time

import streamlit as st

from fmnist_core.executors import Capacity
from fmnist_core.job_queue import NOT_YOURS, JobQueueError
from fmnist_core.jobs import (
    DEFAULT_IMAGES_PER_SECOND,
    SWEEP,
    JobSnapshot,
    JobState,
    estimated_starts,
)
from fmnist_core.ownership import NotYoursError
from fmnist_core.reporting import format_duration
from views import resources, session, submission
from views.text import count, plain


def describe(job: JobSnapshot) -> str:
    """'run “wide” (quick)' or 'sweep “sweep” (grid over learning rate)'."""
    if job.kind == SWEEP:
        return f"sweep “{plain(job.run_name)}” ({job.spec.strategy}, up to {job.spec.max_trials} trials)"
    return f"run “{plain(job.run_name)}” ({job.preset or 'custom'})"


def stop(job_id: str) -> None:
    """Button callback: stop a running job of this visitor's (or any, for the operator; the queue refuses others)."""
    try:
        resources.job_queue().request_stop(job_id, session.visitor())
    except (NotYoursError, JobQueueError) as error:
        session.flash("warning", plain(error, 400))


def stop_button(job: JobSnapshot, label: str, key: str, disabled: bool, help_text: str) -> None:
    """A running job's Stop button for its owner (or the operator); for anyone else, that they may only watch."""
    if session.visitor().may_control(job.owner):
        st.button(label, key=key, icon=":material/stop_circle:", on_click=stop, args=(job.job_id,),
                  disabled=disabled, help=help_text)
    else:
        st.caption(f"You can watch this {job.kind}. {NOT_YOURS.format(verb='stop').capitalize()}")


def cancel(job_id: str) -> None:
    """Take a waiting job out of the queue, if it is this visitor's (or for the operator); the outcome is flashed."""
    queue = resources.job_queue()
    job = queue.snapshot(job_id, with_curves=False)
    try:
        cancelled = job is not None and queue.cancel(job_id, session.visitor())
    except (NotYoursError, JobQueueError) as error:
        session.flash("warning", plain(error, 400))
        return
    if job is None:
        session.flash("warning", "That job is no longer in the queue.")
    elif cancelled:
        session.flash("info", f"Cancelled: the {describe(job)} left the queue.")
    else:
        session.flash("warning", f"The {describe(job)} had already started, so it was not cancelled; stop it instead.")


def waiting_jobs(active: list[JobSnapshot] | None = None) -> tuple[list[JobSnapshot], dict[str, float]]:
    """The waiting jobs in queue order, and when each should start (a time); of `active` if given."""
    queue = resources.job_queue()
    active = queue.active() if active is None else active
    rate = queue.recent_images_per_second() or DEFAULT_IMAGES_PER_SECOND
    slots = resources.executor().capacity(queue).total_slots  # this machine's, or a cluster's as it is now
    starts = estimated_starts(active, rate, time.time(), resources.settings().with_changes(
        concurrent_jobs=max(slots, 1)))
    return [job for job in active if job.state == JobState.QUEUED], starts


def running_ids(active: list[JobSnapshot] | None = None) -> tuple[str, ...]:
    active = resources.job_queue().active() if active is None else active
    return tuple(job.job_id for job in active if job.is_running)


def show_queue(was_running: tuple[str, ...]) -> None:
    """The waiting jobs, one line each; redrawn every second by the page while any job is active."""
    submission.keep_worker_running()
    active = resources.job_queue().active()
    if running_ids(active) != was_running:  # a job ended or began: the page above shows the new one
        st.rerun()
    failure = submission.worker_failure() if active else None
    if failure:  # also with nothing waiting: a hung run's page would otherwise show its frozen progress only
        st.warning(f"Training is held up: {plain(failure, 600)}")
    capacity = resources.executor().capacity(resources.job_queue())
    if capacity.where != "this machine":
        _show_cluster(capacity, [job for job in active if job.is_running])
    waiting, starts = waiting_jobs(active)
    if not waiting:
        return
    me = session.visitor()
    limits = resources.settings()
    at_once = ("one job trains at a time" if capacity.total_slots == 1
               else f"{capacity.total_slots} jobs train at a time")
    st.markdown(f"**Waiting in the queue** ({len(waiting)} of at most {limits.max_waiting_jobs}; {at_once}, "
                f"each visitor may have {limits.max_jobs_per_visitor} waiting or training)")
    for position, job in enumerate(waiting, start=1):
        # the line and its button side by side where they fit, the button under the line where they do not
        row = st.container(horizontal=True, vertical_alignment="center", gap="medium", key=f"queued_{job.job_id}")
        line, action = row.container(width="stretch"), row.container(width="content")
        start_in = max(starts.get(job.job_id, time.time()) - time.time(), 0)
        resumed = (f" · interrupted after {count(len(job.epochs), 'epoch')}, resumes from there" if job.resumes
                   else "")
        line.markdown(f"**{position}.** {describe(job)} · {'**yours**' if me.owns(job.owner) else 'another visitor'}"
                      f" · starts in about {format_duration(start_in)}{resumed}")
        if not me.may_control(job.owner):
            continue
        if job.resumes and job.epochs:  # trained before: stopping keeps that, as Stop does for a running run
            if action.button("Stop", key=f"stop_{job.job_id}", icon=":material/stop_circle:",
                             disabled=job.stop_requested,
                             help="It will not train on: the epochs it trained are evaluated and saved."):
                stop(job.job_id)
                st.rerun(scope="app")
        elif action.button("Cancel", key=f"cancel_{job.job_id}", icon=":material/close:",
                           help="Takes it out of the queue; nothing was trained yet."):
            cancel(job.job_id)
            st.rerun(scope="app")  # the whole page: the message, and the form's note about the queue


def _show_cluster(capacity: Capacity, running: list[JobSnapshot]) -> None:
    """Where jobs train when that is a cluster: its free and total job slots, and each running job's node."""
    nodes = [f"{describe(job)} on {plain(resources.executor().node_of(job.job_id) or 'a node not known yet')}"
             for job in running]
    training = f" Training: {'; '.join(nodes)}." if nodes else ""
    st.caption(f"Jobs train on {plain(capacity.where)}: {capacity.free_slots} of "
               f"{count(capacity.total_slots, 'job slot')} free.{training}")
