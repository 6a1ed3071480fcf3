"""Shared resources and per-session state, set up in one place.

Server-wide (`st.cache_resource`, shared by every session, safe across threads): the dataset, the
job queue, which session has which model active, loaded classifiers and their test-set evaluations, keyed by
model folder and modification time. Per session (`st.session_state`): the visitor's id (kept across reloads by
a cookie), operator status, the active model, flash messages.
TensorFlow is imported only inside the functions that load or run a model, so pages paint first; training
runs in the worker process (fmnist_core/worker.py), never here.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import secrets
import threading
import uuid

import streamlit as st

from fmnist_core.data import FashionMNIST, load_fashion_mnist
from fmnist_core.job_queue import JobQueue, JobQueueError
from fmnist_core.jobs import RUN, JobSnapshot
from fmnist_core.memory import release_free_memory
from fmnist_core.ownership import (
    OPERATOR_PASSWORD_VARIABLE,
    VISITOR_COOKIE,
    ActiveModels,
    SignInThrottle,
    Visitor,
    operator_token,
    owner_key,
    password_matches,
)
from fmnist_core.store import ModelStore, SavedModel
from fmnist_core.worker import ensure_worker, last_worker_failure
from views.text import plain

ACTIVE_MODEL_KEY = "active_model"  # the sidebar selectbox
PENDING_ACTIVE_MODEL_KEY = "pending_active_model"  # set by pages, applied before the selectbox is drawn
_MODELS_KEY = "_saved_models"  # the listing the sidebar made this run, for the pages
_ACTIVE_IDENTITY_KEY = "_active_model_identity"  # the active model as this session last saw it


def init_session() -> None:
    """Defaults every page relies on; called once per run by the entry script."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex[:12]
        _reclaim_closed_sessions()
    st.session_state.setdefault("flash", [])


def _reclaim_closed_sessions() -> None:
    """As a new visitor arrives, free what the sessions of visitors who left still hold.

    A closed session (its uploads, up to 30 MB, and its state) is freed by Python's full garbage collection, which
    this server does not run after each script (`postScriptGC = false` in .streamlit/config.toml). Without this,
    3 visitors uploading 3 pictures of 9.5 MB kept 86 MB each time, for good (#19 item 7).
    """
    release_free_memory()


# ---- who the visitor is -----------------------------------------------------------------------------
_VISITOR_ID_KEY = "_visitor_id"
_OPERATOR_KEY = "_operator"
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
VISITOR_COOKIE_DAYS = 365


def _visitor_id() -> str:
    """This browser's random id: from its cookie, or made now (and given to the browser by `remember_visitor`)."""
    if _VISITOR_ID_KEY not in st.session_state:
        cookie = (st.context.cookies or {}).get(VISITOR_COOKIE, "")
        st.session_state[_VISITOR_ID_KEY] = cookie if _VISITOR_ID.fullmatch(cookie) else secrets.token_urlsafe(18)
    return st.session_state[_VISITOR_ID_KEY]


def remember_visitor() -> None:
    """Keep this browser's visitor id in a cookie, so a reload is the same visitor. Streamlit's cookies are read-only,
    so a script writes it (the id is ours: [A-Za-z0-9_-] only). Drawn on every run, in the same place (the sidebar's
    end): an element that appeared only once would shift the page's elements on the next run, and Streamlit would
    redraw them afresh (a tab chosen, a slider being moved)."""
    st.html(f"<script>document.cookie = '{VISITOR_COOKIE}={_visitor_id()}; path=/; "
            f"max-age={VISITOR_COOKIE_DAYS * 86400}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def operator_password() -> str | None:
    """The operator's password, set in one place: the environment, else `.streamlit/secrets.toml`."""
    password = os.environ.get(OPERATOR_PASSWORD_VARIABLE)
    if password:
        return password
    try:
        return st.secrets.get("operator_password") or None
    except (FileNotFoundError, KeyError, RuntimeError, OSError):  # no secrets file: no operator
        return None
    except Exception:  # noqa: BLE001 - a malformed secrets.toml must not take the app down; it means no operator
        _log.warning("could not read .streamlit/secrets.toml; no operator password is set")
        return None


@st.cache_resource
def _sign_in_throttle() -> SignInThrottle:
    """Wrong operator passwords, server-wide (fmnist_core/ownership.py: a few tries per visitor, then a wait)."""
    return SignInThrottle()


def sign_in_operator(password: str) -> str | None:
    """Make this session the operator's if `password` is right: None; else why not, as the page says it (a wrong
    password, or too many wrong ones lately on this server: how long to wait; the password is then not checked)."""
    expected = operator_password()
    signed_in, wait = _sign_in_throttle().attempt(visitor().key, lambda: password_matches(password, expected))
    if signed_in:
        st.session_state[_OPERATOR_KEY] = operator_token(expected)
        return None
    if wait > 0:
        _log.warning("operator sign-in paused for %.0f s: too many wrong passwords lately", wait)
        return (f"Too many wrong operator passwords were tried on this server lately, so sign-in is paused: try "
                f"again in {_minutes_or_seconds(wait)}.")
    return "That is not the operator password; you can still use everything that is yours."


def _minutes_or_seconds(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)} min" if seconds >= 60 else f"{math.ceil(seconds)} s"


def sign_out_operator() -> None:
    st.session_state[_OPERATOR_KEY] = None


def visitor() -> Visitor:
    """Who this session is, for the ownership policy (fmnist_core/ownership.py)."""
    password = operator_password()
    signed_in = password is not None and st.session_state.get(_OPERATOR_KEY) == operator_token(password)
    return Visitor(owner_key(_visitor_id()), is_operator=signed_in, operator_configured=password is not None)


def whose(owner: str) -> str:
    """A job's owner as its page's caption says it."""
    return "yours" if visitor().owns(owner) else "started by another visitor"


def show_load_error(saved: SavedModel, error: Exception) -> None:
    """The one message for a saved model that cannot be loaded (the store's error says why and what to do)."""
    st.error(f"The model {saved.name!r} could not be loaded: {error}")


def store_full_message(error: Exception, yours: str = "Your run") -> str:
    """Why a run was not started when the model store is full, and where to make room."""
    return f"{yours} was not started: {plain(error, 400)} Saved runs can be deleted on the Runs page."


def queue_full_message(error: Exception, yours: str = "Your run") -> str:
    """Why a job was not queued (a limit of the queue, which the error names)."""
    return f"{yours} was not queued: {plain(error, 400)}"


def session_id() -> str:
    init_session()
    return st.session_state["session_id"]


def flash(kind: str, message: str) -> None:
    """A message shown once on the next run (after an st.rerun()), e.g. 'Deleted …'."""
    st.session_state.setdefault("flash", []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop("flash", []):
        getattr(st, kind)(message)
    st.session_state["flash"] = []


# ---- server-wide resources -----------------------------------------------------------------------
@st.cache_resource(show_spinner="Reading Fashion-MNIST…")
def dataset() -> FashionMNIST:
    return load_fashion_mnist()


@st.cache_resource
def _job_queue(models_root: str) -> JobQueue:
    return JobQueue(models_root)


def job_queue() -> JobQueue:
    """The queue of training jobs on disk, beside the model store (one per model folder, so one in practice);
    raises JobQueueError when it cannot be opened."""
    return _job_queue(str(ModelStore().root))


def job_queue_or_stop() -> JobQueue:
    """The job queue, or (for the Train and Sweep pages) an error saying why training is unavailable, and the page
    ends there; the other pages go on working."""
    try:
        return job_queue()
    except JobQueueError as error:
        st.error(f"Training is unavailable on this server: {plain(error, 400)}")
        st.stop()


def worker_failure() -> str | None:
    """Why the training worker this server started last exited with an error, if it did."""
    return last_worker_failure(ModelStore())


def keep_worker_running() -> None:
    """Start the training worker process when jobs wait and none runs (after a crash, too). Cheap otherwise."""
    try:
        ensure_worker(ModelStore(), job_queue())
    except (JobQueueError, OSError) as error:  # the Train page says so; every other page must still work
        _log.warning("cannot check the training worker: %s", error)


def submit(kind: str, run_name: str, **job) -> JobSnapshot:
    """Queue a job of this visitor; raises QueueFullError, or StoreFullError for a run the store has no room for
    (refused now, not after minutes of training)."""
    if kind == RUN:
        ModelStore().check_room()
    snapshot = job_queue().submit(kind, run_name, visitor().key, **job)
    keep_worker_running()
    return snapshot


def _session_alive(session_id: str) -> bool:
    from streamlit import runtime

    return not runtime.exists() or runtime.get_instance().is_active_session(session_id)


@st.cache_resource
def active_models() -> ActiveModels:
    """Which live session has which model active (a delete never takes a model from under another session)."""
    return ActiveModels(_session_alive)


def streamlit_session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return context.session_id if context else session_id()


STREAMLIT_CLEANUP_HOOK = "_clean_problem_modules"  # in streamlit.runtime.scriptrunner.script_runner (1.67)
_log = logging.getLogger(__name__)


def keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Streamlit does it to tidy apps that build models in the script. Ours are loaded once and shared by every
    session (classifiers, explainers), while pages rerun (the Train page every second). When training still ran in
    this process, clearing Keras's state and TensorFlow's kernel cache under a running fit made it 3.5x slower with a
    Train page open (measured: 2,200 vs 7,600 images/s); training now runs in the worker process, and the models
    served here still never rely on Keras's global state between reruns.
    """
    from streamlit.runtime.scriptrunner import script_runner

    # A private hook: tests/test_streamlit_hooks.py fails if a Streamlit release renames it or clears Keras another
    # way, so an upgrade cannot slow training silently.
    if hasattr(script_runner, STREAMLIT_CLEANUP_HOOK):
        script_runner._clean_problem_modules = _no_cleanup
    else:
        _log.warning("Streamlit %s has no script_runner.%s: it may clear Keras's state after every rerun and slow "
                     "training with a Train page open (see views/state.py).", st.__version__, STREAMLIT_CLEANUP_HOOK)


def _no_cleanup() -> None:
    """In place of Streamlit's per-run cleanup of Keras (and of matplotlib, which this app does not use)."""


@st.cache_resource
def warm_up() -> threading.Thread:
    """Once per server, import TensorFlow in a background thread, so the first page that needs a model
    does not wait the 3-4 s it takes; the page that asked for nothing is drawn meanwhile."""
    thread = threading.Thread(target=importlib.import_module, args=("fmnist_core.inference",),
                              name="warm-up-tensorflow", daemon=True)
    thread.start()
    return thread


@st.cache_resource(max_entries=4, show_spinner="Loading TensorFlow and the model…")
def _classifier(models_root: str, name: str, modified_ns: int):
    # imports TensorFlow: only when a model is first needed
    return ModelStore(models_root).load_classifier(name)


def classifier(saved: SavedModel):
    """The compiled, thread-safe classifier of a saved model; raises ModelStoreError if it cannot load."""
    return _classifier(str(saved.path.parent), saved.name, saved.modified_ns)


@st.cache_resource(max_entries=4, show_spinner="Evaluating the model on the 10,000 test images…")
def _evaluation(models_root: str, name: str, modified_ns: int):
    from fmnist_core.evaluation import evaluate

    data = dataset()
    return evaluate(_classifier(models_root, name, modified_ns), data.test_images, data.test_labels)


def evaluation(saved: SavedModel):
    """The test-set evaluation of a saved model, computed once per model version on this server."""
    return _evaluation(str(saved.path.parent), saved.name, saved.modified_ns)


@st.cache_resource(max_entries=4, show_spinner="Preparing Grad-CAM and feature maps…")
def _explainer(models_root: str, name: str, modified_ns: int):
    from fmnist_core.explain import Explainer

    return Explainer(_classifier(models_root, name, modified_ns).network)


def explainer(saved: SavedModel):
    """The thread-safe Explainer (Grad-CAM, feature maps, filters) of a saved model; raises ModelStoreError."""
    return _explainer(str(saved.path.parent), saved.name, saved.modified_ns)


@st.cache_resource(show_spinner="Counting classes and averaging images…")
def dataset_statistics() -> dict:
    """Class counts of both sets and the mean training image of each class, computed once per server."""
    from fmnist_core.dataset_stats import class_counts, class_mean_images

    data = dataset()
    return {"train_counts": class_counts(data.train_labels), "test_counts": class_counts(data.test_labels),
            "mean_images": class_mean_images(data.train_images, data.train_labels)}


def forget_models() -> None:
    """Drop the loaded models and evaluations (after a delete), so nothing stale is served."""
    _classifier.clear()
    _evaluation.clear()
    _explainer.clear()


# ---- the active model ----------------------------------------------------------------------------
def list_models() -> tuple[list[SavedModel], list[str]]:
    """The store's models and broken-folder warnings, read fresh (cheap: a few small JSON cards)."""
    models, warnings = ModelStore().list_models()
    st.session_state[_MODELS_KEY] = models
    return models, warnings


def choose_active_model(models: list[SavedModel]) -> None:
    """Before the sidebar selectbox is drawn: apply a pending choice, or repair a vanished or replaced one and
    say so (another visitor may delete the model this session uses, or save a new one under its name)."""
    identities = {saved.name: saved.identity for saved in models}
    pending = st.session_state.pop(PENDING_ACTIVE_MODEL_KEY, None)
    active = st.session_state.get(ACTIVE_MODEL_KEY)
    seen = st.session_state.get(_ACTIVE_IDENTITY_KEY)
    if pending in identities:
        active = pending
    elif active not in identities:
        fallback = next(iter(identities), None)
        if active is not None:
            flash("warning", f"The model {plain(active)} you were using was deleted by someone else; "
                             + (f"now using {plain(fallback)}." if fallback else "no model is left."))
        active = fallback
    elif seen is not None and seen[0] == active and tuple(seen) != identities[active]:
        flash("warning", f"The model {plain(active)} was replaced by another run saved under the same name; "
                         "the pages now show the new one.")
    st.session_state[ACTIVE_MODEL_KEY] = active
    st.session_state[_ACTIVE_IDENTITY_KEY] = identities.get(active)
    active_models().use(streamlit_session_id(), active)


def use_model(name: str) -> None:
    """Make `name` the active model from the next run on (the selectbox is already drawn in this one)."""
    st.session_state[PENDING_ACTIVE_MODEL_KEY] = name


def active_model() -> SavedModel | None:
    """The model chosen in the sidebar, or None when the store is empty."""
    models = st.session_state.get(_MODELS_KEY)
    if models is None:
        models, _ = list_models()
    name = st.session_state.get(ACTIVE_MODEL_KEY)
    return next((saved for saved in models if saved.name == name), models[0] if models else None)


def point_to_train(message: str) -> None:
    """Tell the user why the page is empty and link to the Train page, where a model is made."""
    st.info(message)
    st.page_link("views/train.py", label="Go to Train", icon=":material/model_training:")
