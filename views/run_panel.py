"""The Train page's run: its heading, its live progress and Stop button, its outcome with "Use this model", and its
curves; and a visitor's own last run when another visitor's is the one shown."""

from __future__ import annotations

import streamlit as st

from fmnist_core.jobs import JobSnapshot, JobState
from fmnist_core.reporting import outcome_text, progress_fraction, progress_text, summarize
from views import charts, queue_panel, resources, session
from views.fragments import timed_fragment_home
from views.text import plain, trial_number

# While a run trains, an open Train page redraws its progress every second and its curves every 3 s: redrawing
# three plotly charts every second in the browser slowed training on a 2-core machine to 0.3x (make bench).
PROGRESS_REFRESH_SECONDS, CURVES_REFRESH_SECONDS = 1.0, 3.0
ENDED_RUN_STATES = (JobState.FINISHED, JobState.STOPPED, JobState.FAILED)


def anchor(job_id: str) -> str:
    """The id of a run's heading on the Train page, for links to it ("#…")."""
    return f"run-{job_id}"


def _show_job(job_id: str, was_running: bool) -> None:
    snapshot = resources.job_queue().snapshot(job_id, with_curves=False)
    if snapshot is None or (was_running and not snapshot.is_running):
        # a full run: the sidebar lists the new model and the auto refresh stops (or, for a record the queue has
        # since deleted as old, the page shows the latest run instead)
        st.rerun()
    whose = session.whose(snapshot.owner)
    if snapshot.from_sweep:
        whose += f" · retrains trial {trial_number(snapshot.from_sweep[1])} of the last sweep on all training images"
    st.subheader(f"Run “{plain(snapshot.run_name)}”", anchor=anchor(snapshot.job_id))
    st.caption(f"{snapshot.preset or 'custom'} · {summarize(snapshot.hyperparameters)} · "
               f"{snapshot.hyperparameters.parameter_count():,} parameters · {whose}")
    if snapshot.resumes:
        times = "" if snapshot.resumes == 1 else f" ({snapshot.resumes} times)"
        st.info(f"This run was interrupted (its training process stopped: a crash or a restart of the server) and "
                f"taken up again from its last finished epoch{times}: at most the epoch in progress was lost.",
                icon=":material/restart_alt:")
    if snapshot.state == JobState.QUEUED:
        st.caption("Waiting in the queue to be taken up again; it starts by itself (see the queue below).")
    elif snapshot.is_running:
        st.progress(progress_fraction(snapshot), text=progress_text(snapshot))
        queue_panel.stop_button(snapshot, "Stop training", "stop_training",
                                disabled=snapshot.stop_requested or snapshot.state == JobState.EVALUATING,
                                help_text="Stops after the current batch; the best weights so far are evaluated and "
                                          "saved.")
    else:
        _outcome(snapshot, "use_trained_model")


def _outcome(snapshot: JobSnapshot, use_key: str) -> None:
    """How an ended run ended: its accuracy and saved name with "Use this model" (button `use_key`), or why it
    failed."""
    if snapshot.state in (JobState.FINISHED, JobState.STOPPED):
        outcome = outcome_text(snapshot, resources.settings().max_train_minutes)
        st.success(f"{outcome} Test accuracy **{snapshot.test_accuracy:.2%}**, saved as **{snapshot.saved_name}**.")
        if st.session_state.get(session.ACTIVE_MODEL_KEY) == snapshot.saved_name:
            st.caption("This is the active model: try it on the Evaluate and Classify pages.")
        elif not _still_saved(snapshot.saved_name):  # also in place of the button it was when it is clicked
            st.caption(f"Its model {plain(snapshot.saved_name)} has since been deleted from the saved runs, so it "
                       "cannot be used; the sidebar lists the models there are.")
        elif st.button("Use this model", key=use_key, icon=":material/check_circle:"):
            session.use_model(snapshot.saved_name)
            st.rerun()
    elif snapshot.state == JobState.FAILED:
        st.error(f"Training failed: {plain(snapshot.error, 400)}")
        if snapshot.traceback:
            with st.expander("Technical details"):
                st.code(snapshot.traceback, language=None)


def _still_saved(name: str) -> bool:
    """Whether the store still holds the model `name` (another visitor, or the operator, may have deleted it)."""
    models, _ = session.list_models()
    return any(saved.name == name for saved in models)


def your_last_run(snapshot: JobSnapshot) -> None:
    """This visitor's last run, ended, when the page shows another visitor's run in full: how it ended."""
    st.subheader(f"Your last run “{plain(snapshot.run_name)}”", anchor=anchor(snapshot.job_id))
    st.caption(f"{snapshot.preset or 'custom'} · {summarize(snapshot.hyperparameters)} · "
               f"{snapshot.hyperparameters.parameter_count():,} parameters · yours")
    _outcome(snapshot, "use_your_last_model")


def _show_curves(job_id: str) -> None:
    snapshot = resources.job_queue().snapshot(job_id)
    if snapshot is None or not snapshot.batch_points or snapshot.last_batch is None:
        return
    batches, loss, accuracy = st.columns(3)
    batches.plotly_chart(charts.batch_curves(snapshot.batch_points, snapshot.last_batch.batches_per_epoch),
                         key="batch_chart", config=charts.CONFIG)
    if snapshot.epochs:
        loss.plotly_chart(charts.epoch_curves(snapshot.epochs, "loss"), key="epoch_loss_chart",
                          config=charts.CONFIG)
        accuracy.plotly_chart(charts.epoch_curves(snapshot.epochs, "accuracy"), key="epoch_accuracy_chart",
                              config=charts.CONFIG)
    else:
        loss.caption("Training and validation curves appear after the first epoch.")


def run_section(run: JobSnapshot) -> None:
    """A run's heading, progress or outcome, and curves; redrawn on timers while it is running."""
    running = run.is_running
    with timed_fragment_home():
        st.fragment(run_every=PROGRESS_REFRESH_SECONDS if running else None)(_show_job)(run.job_id, running)
    with timed_fragment_home():
        st.fragment(run_every=CURVES_REFRESH_SECONDS if running else None)(_show_curves)(run.job_id)
