"""What the server shares with every session (`st.cache_resource`, safe across threads): its settings, the dataset,
the model store and job queue, loaded classifiers, their evaluations and explainers (keyed by model folder and
modification time), which session has which model active, and the sessions whose memory is freed once they close.

TensorFlow is imported only inside the functions that load or run a model, so pages paint first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from fmnist_core.data import FashionMNIST, load_fashion_mnist
from fmnist_core.executors import JobExecutor, executor_for
from fmnist_core.job_queue import JobQueue
from fmnist_core.memory import ClosedSessions
from fmnist_core.ownership import ActiveModels, SignInThrottle
from fmnist_core.settings import Settings
from fmnist_core.store import ModelStore, ModelStoreError, SavedModel
from fmnist_core.subprocesses import CommandFailedError, run_command

_log = logging.getLogger(__name__)
# A visitor's session is closed, and its memory handed back, once it has been disconnected this long (a reload or a
# network blip reconnects sooner and keeps it), checked this often: within a minute of a tab closing in all.
RECONNECT_GRACE_SECONDS = 30.0
CLOSED_SESSIONS_INTERVAL_SECONDS = 5.0
_given: list[Settings] = []  # settings handed in by use_settings (tests, an embedding program); none: the environment's


# ---- settings, read once ---------------------------------------------------------------------------
@st.cache_resource
def _settings_from_environment() -> Settings:
    """The environment's settings, with the operator password from `.streamlit/secrets.toml` when the environment has
    none; read once per server. A setting that cannot be read raises SettingsError (streamlit_app.py shows it)."""
    settings = Settings.from_environment()
    if settings.operator_password is None:
        settings = settings.with_changes(operator_password=_secret_operator_password())
    return settings


def _secret_operator_password() -> str | None:
    try:
        return st.secrets.get("operator_password") or None
    except (FileNotFoundError, KeyError, RuntimeError, OSError):  # no secrets file: no operator
        return None
    except Exception:  # noqa: BLE001 - a malformed secrets.toml must not take the app down; it means no operator
        _log.warning("could not read .streamlit/secrets.toml; no operator password is set")
        return None


def settings() -> Settings:
    """The settings this server runs with: those given to `use_settings`, else the environment's (read once)."""
    return _given[-1] if _given else _settings_from_environment()


def given_settings() -> Settings | None:
    """The settings given to `use_settings`, if any."""
    return _given[-1] if _given else None


def use_settings(settings: Settings | None) -> None:
    """Run this server with `settings` from now on (None: the environment's again): for tests and for a program that
    embeds the app. What is cached stays valid: it is keyed by folder (and the queue by its limits too)."""
    _given.clear()
    if settings is not None:
        _given.append(settings)


# ---- shared things ---------------------------------------------------------------------------------
def executor() -> JobExecutor:
    """Where this server's jobs train (fmnist_core/executors.py): its worker processes, by default (cheap to make:
    the local workers keep their state in worker.py)."""
    return executor_for(settings())


def model_store() -> ModelStore:
    """The server's model store (cheap: a folder and its limits)."""
    return ModelStore.from_settings(settings())


@st.cache_resource(show_spinner="Reading Fashion-MNIST…")
def _dataset(preferred: str | None) -> FashionMNIST:
    return load_fashion_mnist(preferred=None if preferred is None else Path(preferred))


def dataset() -> FashionMNIST:
    data_dir = settings().data_dir
    return _dataset(None if data_dir is None else str(data_dir))


@st.cache_resource
def _job_queue(models_root: str, limits: tuple[int, ...], _settings: Settings) -> JobQueue:
    return JobQueue.from_settings(_settings)  # keyed by the folder and the limits, not the rest of the settings


def job_queue() -> JobQueue:
    """The queue of training jobs on disk, beside the model store; raises JobQueueError when it cannot be opened."""
    current = settings()
    limits = (current.max_jobs_per_visitor, current.max_jobs_per_address, current.max_waiting_jobs,
              current.max_training_memory_mb)
    return _job_queue(str(current.models_dir), limits, current)


@st.cache_resource
def sign_in_throttle() -> SignInThrottle:
    """Wrong operator passwords, server-wide (fmnist_core/ownership.py: a few tries per visitor, then a wait)."""
    return SignInThrottle()


def _session_alive(session_id: str) -> bool:
    from streamlit import runtime

    return not runtime.exists() or runtime.get_instance().is_active_session(session_id)


def _close_session(session_id: str) -> None:
    """Close a session whose visitor left, freeing its uploads and state. Streamlit's public, thread-safe way:
    `clear_user_info_for_session` closes a disconnected session on the server's event loop so that it cannot be
    resumed (tests/test_streamlit_hooks.py checks that it still does)."""
    from streamlit import runtime

    if runtime.exists():
        runtime.get_instance().clear_user_info_for_session(session_id)


@st.cache_resource
def closed_sessions() -> ClosedSessions:
    """The sessions of this server's visitors; a thread frees those whose visitors left for RECONNECT_GRACE_SECONDS,
    without waiting for the next visitor (fmnist_core/memory.py). No thread without a real server (AppTest runs
    scripts with a stand-in runtime)."""
    from streamlit import runtime

    sessions = ClosedSessions(_session_alive, _close_session, grace_seconds=RECONNECT_GRACE_SECONDS)
    if runtime.exists() and type(runtime.get_instance()) is runtime.Runtime:
        sessions.start(interval=CLOSED_SESSIONS_INTERVAL_SECONDS)
    return sessions


@st.cache_resource
def active_models() -> ActiveModels:
    """Which live session has which model active (a delete never takes a model from under another session)."""
    return ActiveModels(_session_alive)


@st.cache_resource(max_entries=4, show_spinner="Loading TensorFlow and the model…")
def _classifier(models_root: str, name: str, modified_ns: int):
    # imports TensorFlow: only when a model is first needed
    return ModelStore(models_root).load_classifier(name)


def classifier(saved: SavedModel):
    """The compiled, thread-safe classifier of a saved model; raises ModelStoreError if it cannot load."""
    return _classifier(str(saved.path.parent), saved.name, saved.modified_ns)


@st.cache_resource(max_entries=4, show_spinner="Scoring the model on the 10,000 test images…")
def _evaluation(models_root: str, name: str, modified_ns: int):
    from fmnist_core.evaluation import evaluate_probabilities

    store, labels = ModelStore(models_root), dataset().test_labels
    probabilities = store.test_probabilities(store.get(name), len(labels))
    if probabilities is None:  # saved before they were kept, or copied in: scored once, by a process of its own
        score_test_set(models_root, name)
        probabilities = store.test_probabilities(store.get(name), len(labels))
    return evaluate_probabilities(probabilities, labels)


def evaluation(saved: SavedModel):
    """The test-set evaluation of a saved model: from the probabilities kept beside it (numpy only, no model runs
    here); a model without them is scored once by `python -m fmnist_core evaluate` in a process of its own, which
    keeps them. Raises ModelStoreError when that fails."""
    return _evaluation(str(saved.path.parent), saved.name, saved.modified_ns)


SCORING_TIMEOUT_SECONDS = 900


def score_test_set(models_root: str, name: str) -> None:
    """Run the model `name` over the test set in a process of its own (TensorFlow's memory and CPU stay out of the
    web server) and keep its probabilities beside it; ModelStoreError in words when that fails."""
    try:
        run_command(["evaluate", name, "--save-probabilities"], models_root,
                    {**os.environ, **settings().to_environment()}, SCORING_TIMEOUT_SECONDS)
    except CommandFailedError as error:
        raise ModelStoreError(f"scoring it on the test set failed: {error}") from None


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
