"""Sweep page: choose what varies and the budget, watch Keras Tuner's trials live, retrain the best one."""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import datetime

import streamlit as st

from fmnist_core.events import COMPLETED_TRIAL
from fmnist_core.hyperparameters import MAX_EPOCHS, PRESETS, TRAIN_SET_SIZE, HyperParameterError, field_specs
from fmnist_core.jobs import RUN, SWEEP, JobSnapshot, JobState, QueueFullError
from fmnist_core.reporting import format_duration, outcome_text, progress_text
from fmnist_core.store import StoreFullError
from fmnist_core.sweep import MAX_TRIALS, NOT_SWEPT, STRATEGIES, SweepSpec, parse_vary, retrain_hyperparameters
from views import charts, queue_panel, resources, session, submission
from views.fragments import timed_fragment_home
from views.run_panel import PROGRESS_REFRESH_SECONDS as REFRESH_SECONDS  # one refresh rate for every job
from views.text import count, hyperparameter_label, hyperparameter_values, plain, shown_value, trial_number

SPECS = field_specs()
SWEEPABLE = [name for name in SPECS if name not in NOT_SWEPT]
RETRAIN_REFUSAL_KEY = "retrain_refusal"  # why the last Retrain click started nothing, said once beside the button
RETRAIN_JOB_KEY = "retrain_job"  # the retraining this session started last
DEFAULTS = {spec.name: spec.default for spec in fields(SweepSpec)}  # the budget a sweep gets unless changed
# The grid of the Fashion-MNIST projects this app grew from; other fields start from their default.
STARTING_VALUES = {"learning_rate": "1e-3,1e-4,1e-5", "batch_size": "32,64,128", "dropout_rate": "0.1,0.3,0.5"}


def _spec_from_widgets() -> SweepSpec:
    """The SweepSpec the widgets describe; raises HyperParameterError (SweepError) naming a bad value."""
    vary = tuple(parse_vary(f"{name}={st.session_state[f'sweep_values_{name}']}")
                 for name in st.session_state["sweep_fields"])
    return SweepSpec(vary=vary, strategy=st.session_state["sweep_strategy"],
                     max_trials=int(st.session_state["sweep_max_trials"]),
                     epochs_per_trial=int(st.session_state["sweep_epochs"]),
                     subset_size=int(st.session_state["sweep_subset"]), base_preset=st.session_state["sweep_preset"])


def _form() -> SweepSpec | None:
    left, right = st.columns(2, gap="large")
    with left:
        st.selectbox("Base preset", list(PRESETS), key="sweep_preset",
                     help="Every trial starts from this preset and changes only the fields that vary.")
        st.multiselect("Hyperparameters that vary", SWEEPABLE, key="sweep_fields", format_func=hyperparameter_label,
                       default=list(STARTING_VALUES), max_selections=4)
        for name in st.session_state["sweep_fields"]:
            st.text_input(f"Values of {hyperparameter_label(name).lower()}", key=f"sweep_values_{name}",
                          value=STARTING_VALUES.get(name, str(SPECS[name]["default"])),
                          help=f"{SPECS[name]['help']} Comma-separated values, or LOW..HIGH for random/hyperband.")
    with right:
        st.radio("Strategy", STRATEGIES, key="sweep_strategy", horizontal=True,
                 help="grid: every combination in turn; random: random combinations; "
                      "hyperband: many short trials, the best continue for more epochs.")
        st.number_input("Trials (at most)", min_value=1, max_value=MAX_TRIALS, value=DEFAULTS["max_trials"],
                        key="sweep_max_trials")
        st.number_input("Epochs per trial (Hyperband: the most)", min_value=1, max_value=MAX_EPOCHS,
                        value=DEFAULTS["epochs_per_trial"], key="sweep_epochs")
        st.number_input("Training images per trial (0: all)", min_value=0, max_value=TRAIN_SET_SIZE,
                        value=DEFAULTS["subset_size"], step=1000, key="sweep_subset")
    try:
        spec = _spec_from_widgets()
    except HyperParameterError as error:
        st.error(f"This sweep cannot run: {plain(error, 600)}")
        return None
    size = spec.grid_size()
    st.caption(f"{'up to ' if spec.strategy != 'grid' else ''}{count(spec.trials_at_most(), 'trial')}"
               + (f" of {count(size, 'combination')}" if size else "")
               + f" · {count(spec.epochs_per_trial, 'epoch')} on {spec.subset_size or TRAIN_SET_SIZE:,} images each")
    return spec


def _retrain_best(spec: SweepSpec, sweep_id: str, trial_id: str, values: dict) -> bool:
    """Start retraining a trial on the full training set: True if it was queued, else False after saying why beside
    the button."""
    hp = retrain_hyperparameters(spec, values)
    name = f"sweep-best-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        job = submission.submit(RUN, name, hyperparameters=hp, from_sweep=(sweep_id, trial_id))
    except QueueFullError as error:
        st.session_state[RETRAIN_REFUSAL_KEY] = submission.queue_full_message(error, "The retraining")
    except StoreFullError as error:
        st.session_state[RETRAIN_REFUSAL_KEY] = submission.store_full_message(error, "The retraining")
    else:
        st.session_state[RETRAIN_JOB_KEY] = job.job_id
        return True
    return False


def retraining(sweep: JobSnapshot) -> JobSnapshot | None:
    """The run retraining a trial of `sweep` that this session started, else the server's newest one, whether it
    waits in the queue, trains or has ended."""
    queue = resources.job_queue()
    started = st.session_state.get(RETRAIN_JOB_KEY)
    snapshot = queue.snapshot(started, with_curves=False) if started else None
    if snapshot is not None and snapshot.from_sweep and snapshot.from_sweep[0] == sweep.job_id:
        return snapshot
    waiting = [job for job in queue.active() if job.from_sweep and job.from_sweep[0] == sweep.job_id]
    if waiting:
        return waiting[-1]
    snapshot = queue.latest(RUN)
    return snapshot if snapshot and snapshot.from_sweep and snapshot.from_sweep[0] == sweep.job_id else None


def _retraining_text(job: JobSnapshot) -> tuple[str, str]:
    """What became of a retraining, and the kind of message ("info", "success", "warning", "error")."""
    trial, name = trial_number(job.from_sweep[1]), plain(job.run_name)
    if job.state == JobState.QUEUED:
        waiting, starts = queue_panel.waiting_jobs()
        position = next((number for number, other in enumerate(waiting, start=1) if other.job_id == job.job_id), 1)
        wait = format_duration(max(starts.get(job.job_id, time.time()) - time.time(), 0))
        return "info", (f"Retraining trial {trial} on the full training set as “{name}”: waiting in the queue, number "
                        f"{position}, starting in about {wait}. It starts by itself.")
    if job.is_running:
        return "info", f"Retraining trial {trial} on the full training set as “{name}”: {progress_text(job)}"
    if job.state == JobState.FAILED:
        return "error", f"Retraining trial {trial} failed: {plain(job.error, 400)}"
    if job.state == JobState.CANCELLED:
        return "warning", f"Retraining trial {trial} was cancelled before it started."
    if job.state == JobState.STOPPED:
        return "warning", (f"Retraining trial {trial}: {outcome_text(job)} Test accuracy **{job.test_accuracy:.2%}**, "
                           f"saved as **{plain(job.saved_name)}**.")
    return "success", (f"Trial {trial} retrained on the full training set: test accuracy **{job.test_accuracy:.2%}**, "
                       f"saved as **{plain(job.saved_name)}**.")


def _retrain_section(snapshot: JobSnapshot) -> None:
    """The best trial's retraining: what became of the last one (waiting, training, its outcome), redrawn every second
    by the page while it is active, and the button, which is off while it is."""
    spec, best = snapshot.spec, snapshot.best
    job = retraining(snapshot)
    if job is not None:
        kind, text = _retraining_text(job)
        getattr(st, kind)(text, icon=":material/replay:")
        if job.state != JobState.CANCELLED:
            st.page_link("views/train.py", label="See the retraining on the Train page",
                         icon=":material/model_training:")
    refusal = st.session_state.pop(RETRAIN_REFUSAL_KEY, None)
    if refusal:
        st.warning(refusal)
    busy = job is not None and job.state.is_active
    if st.button("Retrain best on the full training set", key="retrain_best", icon=":material/replay:",
                 type="primary", disabled=busy,
                 help="Its retraining is under way." if busy else
                 f"Trains the {spec.base_preset} preset with these values for its full "
                 f"{count(spec.base.epochs, 'epoch')} on all training images, then saves it to the model store. "
                 "If a job is training, the retraining waits in the queue."):
        if _retrain_best(spec, snapshot.job_id, best.trial_id, best.values):
            st.rerun(scope="app")  # the whole page: its timers redraw the retraining and the queue from now on
        st.rerun(scope="fragment")  # the refusal, beside the button


def _timed(sweep: JobSnapshot) -> bool:
    """Whether the sweep's part of the page redraws itself every second: while the sweep, or its retraining, waits or
    trains."""
    if sweep.state.is_active:
        return True
    job = retraining(sweep) if sweep.best is not None else None
    return job is not None and job.state.is_active


def _show_sweep(job_id: str, was_timed: bool) -> None:
    snapshot = resources.job_queue().snapshot(job_id)
    if snapshot is None or was_timed != _timed(snapshot):  # it (or its retraining) began or ended: refresh the
        st.rerun()  # page's timing and buttons (or, deleted as old by the queue meanwhile, show the latest sweep)
    spec = snapshot.spec
    whose = session.whose(snapshot.owner)
    varied = ", ".join(hyperparameter_label(name).lower() for name, _ in spec.vary)
    st.subheader(f"Sweep: {spec.strategy} over {varied}")
    st.caption(f"base preset {spec.base_preset} · {count(len(snapshot.trials), 'trial')} done · {whose}")
    if snapshot.resumes:
        st.info("This sweep was interrupted (its training process stopped) and resumed: the trials that had ended "
                "are kept; the one in progress ran again.", icon=":material/restart_alt:")
    if snapshot.state == JobState.QUEUED:
        st.info("Waiting in the queue: it starts by itself when the jobs before it have ended.")
    elif snapshot.is_running:
        batch = snapshot.last_batch
        text = (f"Trial {len(snapshot.trials) + 1}: epoch {batch.epoch}/{batch.epochs}, "
                f"batch {batch.batch}/{batch.batches_per_epoch}" if batch else f"Trial {len(snapshot.trials) + 1}")
        st.progress(batch.batch / batch.batches_per_epoch if batch else 0.0, text=text)
        queue_panel.stop_button(snapshot, "Stop sweep", "stop_sweep", disabled=snapshot.stop_requested,
                                help_text="Stops the trial in progress after its current batch.")
    elif snapshot.state == JobState.FAILED:
        st.error(f"The sweep failed: {plain(snapshot.error, 400)}")
    elif snapshot.stopped_by_time_limit:
        limit = resources.settings().max_train_minutes
        st.warning(f"Sweep stopped at the server's limit of {limit:g} minutes of training; the trials below are kept.")
    else:
        st.success(f"Sweep {snapshot.state.value}.")
    if not snapshot.trials:
        st.caption("Each trial appears here when it ends.")
        return
    names = [name for name, _ in spec.vary]
    _trials_table(snapshot.trials, names)
    st.plotly_chart(charts.parallel_coordinates(snapshot.trials, names), key="sweep_parcoords", config=charts.CONFIG)
    if snapshot.best is not None:
        best = snapshot.best
        st.markdown(f"Best: trial **{trial_number(best.trial_id)}**, validation accuracy "
                    f"**{best.val_accuracy:.2%}**, with {hyperparameter_values(best.values)}.")
        if not snapshot.is_running and snapshot.state != JobState.QUEUED:
            _retrain_section(snapshot)


def _trials_table(trials: list, names: list[str]) -> None:
    """One row per trial, narrow enough for a phone (390 px): headers wrap, and the epochs and status columns are
    shown only where they tell something (Hyperband's trials differ in epochs; a trial failed or was stopped)."""
    with_epochs = len({trial.epochs for trial in trials}) > 1
    with_status = any(trial.status != COMPLETED_TRIAL for trial in trials)
    rows = []
    for trial in trials:
        row = {"Trial": trial_number(trial.trial_id)}
        row.update({hyperparameter_label(name): shown_value(trial.values.get(name)) for name in names})
        row["Validation accuracy"] = "–" if trial.val_accuracy is None else f"{trial.val_accuracy:.2%}"
        if with_epochs:
            row["Epochs"] = trial.epochs
        row["Time"] = f"{trial.seconds:.0f} s"
        if with_status:
            row["Status"] = trial.status
        rows.append(row)
    with st.container(key="sweep_table"):
        st.table(rows, hide_index=True)


def _shown_sweep() -> JobSnapshot | None:
    """The sweep running now, else this visitor's newest waiting one, else the last that ran."""
    queue = resources.job_queue()
    latest = queue.latest(SWEEP)
    if latest is not None and latest.is_running:
        return latest
    mine = [job for job in queue.active() if job.kind == SWEEP and session.visitor().owns(job.owner)]
    return mine[-1] if mine else latest


def render() -> None:
    st.title("Sweep hyperparameters")
    if resources.settings().ray_address:
        where = ("Jobs train on a Ray cluster: a sweep's trials train on several nodes at once, as many as had room "
                 "when it started; jobs queued after it wait until it ends.")
    elif resources.settings().concurrent_jobs > 1:
        where = (f"{resources.settings().concurrent_jobs} jobs train at a time on this server, sweeps or training "
                 "runs; the others wait in the queue.")
    else:
        where = "One job trains at a time on this server, a sweep or a training run; the others wait in the queue."
    st.caption(f"Keras Tuner picks each trial's values; every trial is a short training run on a subset. {where}")
    submission.job_queue_or_stop()
    spec = _form()
    if st.button("Start sweep", key="sweep_start", type="primary", icon=":material/play_arrow:",
                 disabled=spec is None) and spec is not None:
        try:
            submission.submit(SWEEP, "sweep", spec=spec)
        except QueueFullError as error:
            st.warning(submission.queue_full_message(error, "Your sweep"))
    st.divider()
    active = bool(resources.job_queue().active())
    with timed_fragment_home():
        st.fragment(run_every=REFRESH_SECONDS if active else None)(queue_panel.show_queue)(queue_panel.running_ids())
    job = _shown_sweep()
    if job is None:
        st.caption("Jobs are training or waiting; a training run shows on the Train page." if active
                   else "No sweep on this server yet.")
        return
    timed = _timed(job)
    with timed_fragment_home():
        st.fragment(run_every=REFRESH_SECONDS if timed else None)(_show_sweep)(job.job_id, timed)


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
