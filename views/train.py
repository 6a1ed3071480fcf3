"""Train page: a hyperparameter form built from the dataclass, the server's training run live, share links."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import streamlit as st

from fmnist_core.hyperparameters import (
    FILTER_CHOICES,
    MAX_CONV_BLOCKS,
    PRESETS,
    HyperParameterError,
    HyperParameters,
    field_specs,
    filters_for_blocks,
    parse_int_list,
)
from fmnist_core.jobs import RUN, SWEEP, JobSnapshot, JobState, QueueFullError
from fmnist_core.reporting import format_duration, summarize
from fmnist_core.sharing import from_query, shown, to_query
from fmnist_core.store import StoreFullError
from views import queue_panel, resources, run_panel, scroll, session, submission, touch
from views.fragments import timed_fragment_home
from views.text import count, hyperparameter_label, plain

SPECS = field_specs()
DEFAULT_PRESET = "quick"
FILTER_KEYS = [f"hp_filters_{block}" for block in range(1, MAX_CONV_BLOCKS + 1)]
DRAFT_KEY = "train_form_draft"  # the form's values, kept while other pages are shown (their widgets are gone)
# The hyperparameters a learner meets first, in two columns (the architecture; how it learns), and the rest one
# click away under "More settings".
ESSENTIALS = (["num_conv_blocks", "filters", "dense_units"], ["learning_rate", "batch_size", "epochs", "dropout_rate"])
MORE_SETTINGS = {
    "Layers": ["convs_per_block", "kernel_size", "padding", "batch_norm", "extra_dense_units"],
    "Optimisation": ["optimizer", "lr_schedule", "early_stopping_patience", "precision", "label_smoothing"],
    "Data": ["augment", "mirror_average", "sketch_fraction", "non_item_fraction", "train_subset_size",
             "validation_fraction", "seed"],
}
SETTINGS_GROUP_WIDTH = 250  # px: one group of More settings, wide enough for its labels
CONV_ONLY = ("convs_per_block", "kernel_size", "padding", "batch_norm")  # unused by an MLP (0 conv blocks)
STARTED_KEY = "started_job"  # the run this session's Start button queued last: under the button, what became of it
SHOW_RUN_KEY = "show_started_job"  # that run until the page has brought it into view, once
JUST_STARTED_KEY = "just_started_job"  # that run in the page's first run after Start
WATCHED_KEY = "watched_run"  # the run this session saw training: it stays at the top of the page when it ends


# ---- form state ----------------------------------------------------------------------------------
def form_values(hp: HyperParameters) -> dict[str, object]:
    """The session-state values of the form's widgets for `hp` (four filter sliders, extra ones doubling)."""
    values: dict[str, object] = {f"hp_{name}": getattr(hp, name) for name in SPECS if name != "filters"}
    values["hp_extra_dense_units"] = ",".join(map(str, hp.extra_dense_units))  # a text input
    values.update(zip(FILTER_KEYS, filters_for_blocks(hp.filters, MAX_CONV_BLOCKS), strict=True))
    return values


def hyperparameters_from_form() -> HyperParameters:
    """The dataclass from the form's widgets; raises HyperParameterError for an impossible combination."""
    values = {name: st.session_state[f"hp_{name}"] for name in SPECS if name != "filters"}
    values["seed"] = int(values["seed"])
    text = str(values["extra_dense_units"] or "")
    try:
        values["extra_dense_units"] = parse_int_list(text, example="128,100")
    except ValueError as error:
        raise HyperParameterError(f"extra dense layers {text!r}: {error}, or nothing for none.") from None
    filters = tuple(st.session_state[key] for key in FILTER_KEYS[: values["num_conv_blocks"]])
    return HyperParameters(**values, filters=filters)


def _fill_from_preset() -> None:
    name = st.session_state.get("preset")
    if name in PRESETS:
        st.session_state.update(form_values(PRESETS[name]))


def _form_preset(hp: HyperParameters | None) -> str | None:
    """The preset the form shows unchanged, or None once it is edited (the run is then labelled custom)."""
    name = st.session_state.get("preset")
    return name if name in PRESETS and hp == PRESETS[name] else None


def _first_values() -> tuple[dict[str, object], list[str]]:
    """The form on a session's first visit: from the link's query parameters if any, else the default preset."""
    params = st.query_params.to_dict()
    preset_name = params.pop("preset", DEFAULT_PRESET)
    warnings = []
    if preset_name not in PRESETS:
        warnings.append(f"Unknown preset `{shown(preset_name)}` in the link; starting from `{DEFAULT_PRESET}`.")
        preset_name = DEFAULT_PRESET
    if not any(name in SPECS for name in params):
        return {"preset": preset_name, **form_values(PRESETS[preset_name])}, warnings
    hp, link_warnings = from_query(params, base=PRESETS[preset_name])
    chosen = preset_name if hp == PRESETS[preset_name] else None
    return {"preset": chosen, **form_values(hp)}, warnings + link_warnings


def _restore_form() -> None:
    """Put the draft back into the widgets' keys; on the first visit, make the draft."""
    if DRAFT_KEY not in st.session_state:
        st.session_state[DRAFT_KEY], st.session_state["link_warnings"] = _first_values()
    st.session_state[DRAFT_KEY].setdefault("run_name", "")
    for key, value in st.session_state[DRAFT_KEY].items():
        st.session_state.setdefault(key, value)


def _keep_draft() -> None:
    st.session_state[DRAFT_KEY] = {key: st.session_state.get(key) for key in st.session_state[DRAFT_KEY]}


# ---- widgets -------------------------------------------------------------------------------------
def _unused_because(name: str) -> str | None:
    """Why a control does not apply to the model the form describes now, or None when it does."""
    blocks = st.session_state.get("hp_num_conv_blocks", 0)
    if name in CONV_ONLY and blocks == 0:
        return "Not used: with 0 conv blocks the model has no convolutions."
    return None


def _control(name: str) -> None:
    spec, key = SPECS[name], f"hp_{name}"
    label, help_text = hyperparameter_label(name), spec["help"]
    unused = _unused_because(name)
    common = dict(key=key, help=f"{help_text} {unused}" if unused else help_text, disabled=unused is not None)
    if name == "filters":
        blocks = st.session_state.get("hp_num_conv_blocks", 0)
        for block, filter_key in enumerate(FILTER_KEYS, start=1):
            st.select_slider(f"Filters in block {block}", options=FILTER_CHOICES, key=filter_key,
                             disabled=block > blocks,
                             help=help_text if block <= blocks else
                             f"Not used: the model has {blocks} conv block{'s' if blocks != 1 else ''}.")
    elif name == "extra_dense_units":
        st.text_input(label, placeholder="none", **common)
    elif spec["type"] == "bool":
        st.toggle(label, **common)
    elif spec["type"] == "str":
        st.selectbox(label, spec["choices"], **common)
    elif "choices" in spec:
        st.select_slider(label, options=spec["choices"], format_func=lambda v: f"{v:g}", **common)
    elif name == "seed":
        st.number_input(label, min_value=spec["min"], max_value=spec["max"], step=1, **common)
    else:
        st.slider(label, min_value=spec["min"], max_value=spec["max"], step=spec["step"], **common)


def _share_link(hp: HyperParameters) -> None:
    with st.expander("Share these settings as a link", icon=":material/link:"):
        preset_name = _form_preset(hp)
        query = {"preset": preset_name} if preset_name else {}
        query_string = urlencode({**query, **to_query(hp)})
        page_url = (st.context.url or "").split("?")[0]
        st.code(f"{page_url}?{query_string}", language=None, wrap_lines=True)
        st.caption("Opening the link shows this page with the form filled in as it is now.")


def _start(hp: HyperParameters) -> bool:
    """Queue a run of `hp`; True if it was queued (what became of it is said under the button), else False after
    saying why."""
    preset_name = _form_preset(hp)
    run_name = st.session_state["run_name"].strip() or f"{preset_name or 'custom'}-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        job = submission.submit(RUN, run_name, preset=preset_name, hyperparameters=hp)
    except QueueFullError as error:
        st.warning(submission.queue_full_message(error))
        return False
    except StoreFullError as error:
        st.warning(submission.store_full_message(error))
        return False
    st.session_state[STARTED_KEY] = st.session_state[SHOW_RUN_KEY] = st.session_state[JUST_STARTED_KEY] = job.job_id
    return True


def _started_text(job: JobSnapshot, active: list[JobSnapshot]) -> tuple[str, str]:
    """What became of the run this session started, in a line for under the Start button, and the kind of message
    ("info", "success", "warning", "error")."""
    name, see = plain(job.run_name), f"(#{run_panel.anchor(job.job_id)})"
    if job.state == JobState.QUEUED:
        waiting, starts = queue_panel.waiting_jobs(active)
        position = next((number for number, other in enumerate(waiting, start=1) if other.job_id == job.job_id), 1)
        ahead = len(active) - len(waiting) + position - 1  # training, then waiting before it
        if not ahead:
            return "info", f"Your run “{name}” starts in a moment: the training worker is getting ready."
        wait = format_duration(max(starts.get(job.job_id, 0) - datetime.now().timestamp(), 0))
        return "info", (f"{count(ahead, 'job')} {'is' if ahead == 1 else 'are'} ahead of yours, so your run “{name}” "
                        f"waits in the queue: number {position}, starting in about {wait}. It starts by itself; you "
                        "may leave this page.")
    if job.is_running:
        return "info", f"Your run “{name}” is training. [See its progress and curves at the top ↑]{see}"
    if job.state in (JobState.FINISHED, JobState.STOPPED):
        return "success", (f"Your run “{name}” has ended: test accuracy **{job.test_accuracy:.2%}**, saved as "
                           f"**{plain(job.saved_name)}**. [See it at the top ↑]{see}")
    return "error", f"Your run “{name}” failed. [See why at the top ↑]{see}"


def _start_status(active: list[JobSnapshot]) -> None:
    """Under the Start button, where the person who pressed it is looking: what became of the run this session
    started (waiting, training, ended) with a link to it; otherwise whether a new run would wait, and behind whose."""
    started_id = st.session_state.get(STARTED_KEY)
    started = resources.job_queue().snapshot(started_id, with_curves=False) if started_id else None
    status = st.container(key="start_status")
    if started is not None and started.state != JobState.CANCELLED:
        kind, text = _started_text(started, active)
        getattr(status, kind)(text)
        return
    me = session.visitor()
    running = [job for job in active if job.is_running]
    mine = next((job for job in running if me.owns(job.owner)), None)
    if mine is not None:
        status.caption(f"Your {mine.kind} “{plain(mine.run_name)}” is training on this server: another run of yours "
                       "would wait in the queue until it ends, and start by itself.")
    elif running:
        status.caption(f"Another visitor's {running[0].kind} is training on this server: yours will wait in the queue "
                       "and start by itself.")
    elif active:
        status.caption("Jobs are waiting for the training worker: yours will wait in the queue and start by itself.")


def _preset_summary(line, hp: HyperParameters | None) -> None:
    """Beside the preset box: what the preset is, or that the form was edited from it and a way back."""
    name = st.session_state.get("preset")
    if name not in PRESETS:
        return
    if _form_preset(hp) == name:
        line.caption(summarize(PRESETS[name]))
        return
    with line.container(horizontal=True, wrap=True, vertical_alignment="center", gap="small"):
        st.caption(f"Edited from the {name} preset: this run will be labelled custom.", width="content")
        st.button(f"Back to {name}", key="back_to_preset", icon=":material/undo:", on_click=_fill_from_preset,
                  type="tertiary", help=f"Puts every setting back to the {name} preset's.")


def _form(active: list[JobSnapshot]) -> None:
    """The hyperparameter form: everything derived from it (parameter count, feature maps, whether it can be
    trained, the share link) follows the widgets as they move; Start trains what it shows."""
    # The preset box only ever holds what the person picked: the page never writes it (a value the page wrote was
    # sometimes not yet in the browser when the next slider moved, and the browser's old pick then came back as a
    # new one and filled the whole form with the preset again). Edited, the form says so beside it.
    picker, summary = st.columns([1, 2], vertical_alignment="bottom")
    picker.selectbox("Preset", list(PRESETS), key="preset", on_change=_fill_from_preset,
                     index=None, placeholder="Custom",
                     help="Fills the form with a tested set of hyperparameters; change any of them before starting.")
    summary_line = summary.container()

    for column, names in zip(st.columns(2, gap="large"), ESSENTIALS, strict=True):
        with column:
            for name in names:
                _control(name)
    with st.expander("More settings: layers, optimiser, data", icon=":material/tune:"):
        with st.container(horizontal=True, wrap=True, gap="large"):  # groups side by side where they fit
            for title, names in MORE_SETTINGS.items():
                with st.container(width=SETTINGS_GROUP_WIDTH):
                    st.markdown(f"**{title}**")
                    for name in names:
                        _control(name)
    _keep_draft()

    try:
        hp = hyperparameters_from_form()
        submission.check_memory(hp)
    except HyperParameterError as error:
        st.error(f"These settings cannot be trained: {plain(error, 600)}")
        hp = None
    _preset_summary(summary_line, hp)
    if hp is not None:
        sizes = " → ".join(map(str, hp.feature_map_sizes()))
        layout = f"feature maps {sizes} px" if sizes else f"no convolutions: {hp.family} on the 784 pixels"
        limit = resources.settings().max_train_minutes
        st.caption(f"**{hp.parameter_count():,} parameters** · {layout} · "
                   f"runs on this server stop after {limit:g} minutes of training at most")
    name_box, button = st.columns([2, 1], vertical_alignment="bottom")
    name_box.text_input("Run name", key="run_name", max_chars=48,
                        placeholder="e.g. wide-dropout",
                        help="Left blank, the run is named after its preset and the time, e.g. "
                             "quick-20261126-183000.")
    if button.button("Start training", key="start_training", type="primary", icon=":material/play_arrow:",
                     disabled=hp is None, width="stretch") and hp is not None and _start(hp):
        st.rerun()  # the new run shows at the top of the page, and what became of it under this button
    _start_status(active)
    if hp is not None:
        _share_link(hp)


def _queue_section(active: list[JobSnapshot]) -> None:
    with timed_fragment_home():
        st.fragment(run_every=run_panel.PROGRESS_REFRESH_SECONDS if active else None)(queue_panel.show_queue)(
            queue_panel.running_ids(active))


def _orientation() -> None:
    """One line for a newcomer: what the app is, that a trained model is ready, and where to try it."""
    saved = session.active_model()
    with st.container(horizontal=True, wrap=True, vertical_alignment="center", gap="small"):
        if saved is None:
            st.caption("Train a small CNN to recognise clothing and watch it learn; then draw an item for it to name.")
            return
        accuracy = f" ({saved.test_accuracy:.1%} on the test set)" if saved.test_accuracy else ""
        st.caption(f"Train a small CNN to recognise clothing and watch it learn. A trained model{accuracy} is "
                   "ready:", width="content")
        st.page_link("views/classify.py", label="draw an item for it on Classify", icon=":material/draw:")


def _scroll_once(run: JobSnapshot | None, shown_first: bool, yours_apart: JobSnapshot | None) -> None:
    """After Start: bring the new run into view once, where the person is looking. Right after the click, the line
    under the button (the run may wait a moment for the worker); when the run then shows at the top of the page, its
    heading. Drawn last on the page, so that its coming and going shifts no other element."""
    job_id = st.session_state.get(SHOW_RUN_KEY)
    if job_id is None:
        return
    shown = {job.job_id for job in ([run] if shown_first else []) + ([yours_apart] if yours_apart else [])}
    if job_id in shown:
        st.session_state.pop(SHOW_RUN_KEY)
        st.session_state.pop(JUST_STARTED_KEY, None)
        scroll.scroll_to(f'[id="{run_panel.anchor(job_id)}"]', "start")
        return
    if st.session_state.pop(JUST_STARTED_KEY, None) == job_id:
        scroll.scroll_to(".st-key-start_status", "nearest")
    job = resources.job_queue().snapshot(job_id, with_curves=False)
    if job is None or not job.state.is_active:  # cancelled, or gone: nothing to bring into view
        st.session_state.pop(SHOW_RUN_KEY)


def render() -> None:
    st.title("Train a CNN")
    _orientation()
    touch.swipes_scroll_over_sliders()
    _restore_form()
    for warning in st.session_state.pop("link_warnings", []):
        st.warning(warning)
    queue = submission.job_queue_or_stop()
    me = session.visitor()
    # The jobs running now, read before the run to show is chosen: the queue's part of the page reruns it when they
    # change, so a run that begins while this page is drawn is shown on the next run of it, not missed (read after
    # the choice, a run beginning in between was in both and the page kept showing another visitor's run).
    active = queue.active()
    own = queue.latest(RUN, owner=me.key)
    # This visitor's own run while it trains (several train at once on a cluster), else the newest job on the server.
    job = own if own is not None and own.is_running else queue.latest()
    run = job if job is not None and job.kind != SWEEP else None
    if job is not None and run is None:
        st.info("A hyperparameter sweep " + ("is running" if job.is_running else "ran last") + " on this server.")
        st.page_link("views/sweep.py", label="Go to Sweep", icon=":material/tune:")
    # This visitor's last run, if it ended and is not the run shown below, then a run in progress, this visitor's
    # latest one, or the one this session watched train (it stays where it was when it ends): first, in view without
    # scrolling.
    mine = run if run is not None and me.owns(run.owner) else queue.latest(RUN, owner=me.key)
    yours_apart = mine is not None and mine is not run and mine.state in run_panel.ENDED_RUN_STATES
    if yours_apart:
        run_panel.your_last_run(mine)
    first = run is not None and (run.is_running or me.owns(run.owner)
                                 or st.session_state.get(WATCHED_KEY) == run.job_id)
    if first:
        if run.is_running:
            st.session_state[WATCHED_KEY] = run.job_id
        run_panel.run_section(run)
    _queue_section(active)
    if first or yours_apart:
        st.divider()
    _form(active)
    st.divider()
    if job is None:
        st.caption("No training run on this server yet. Pick a preset, adjust, and press **Start training**.")
    elif run is not None and not first:
        run_panel.run_section(run)
    _scroll_once(run, first, mine if yours_apart else None)


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
