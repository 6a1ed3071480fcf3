"""Two things this app changes in how Streamlit runs it, each with the reason it still holds.

1. Streamlit's per-run cleanup calls `keras.backend.clear_session()` after every script run, to tidy apps that build
   models in their script. Ours are loaded once and shared by every session (classifiers, explainers), while pages
   rerun often (a watched run's fragments every second, every widget change). With the TensorFlow backend
   `clear_session` also clears TensorFlow's kernel cache, so each rerun would make the next answer of every shared
   model rebuild its kernels. Training runs in the worker process now, so this no longer slows training (it made a
   fit in this process 3.5x slower when training ran here), but it still costs every page that answers.
2. TensorFlow takes 3-4 s to import: a thread imports it once per server, so the first page that needs a model does
   not wait that long and the pages that need none paint meanwhile (cold start, README's Performance table).
"""

from __future__ import annotations

import importlib
import logging
import threading

import streamlit as st

STREAMLIT_CLEANUP_HOOK = "_clean_problem_modules"  # in streamlit.runtime.scriptrunner.script_runner (1.67)
_log = logging.getLogger(__name__)


def keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run (reason 1 above)."""
    from streamlit.runtime.scriptrunner import script_runner

    # A private hook: tests/test_streamlit_hooks.py fails if a Streamlit release renames it or clears Keras another
    # way, so an upgrade cannot undo this silently.
    if hasattr(script_runner, STREAMLIT_CLEANUP_HOOK):
        script_runner._clean_problem_modules = _no_cleanup
    else:
        _log.warning("Streamlit %s has no script_runner.%s: it may clear Keras's state after every rerun and slow "
                     "every answer (see views/streamlit_patches.py).", st.__version__, STREAMLIT_CLEANUP_HOOK)


def _no_cleanup() -> None:
    """In place of Streamlit's per-run cleanup of Keras (and of matplotlib, which this app does not use)."""


@st.cache_resource
def warm_up() -> threading.Thread:
    """Once per server, import TensorFlow in a background thread (reason 2 above). Modules that Plotly looks up in
    `sys.modules` (pandas) are imported by views/charts.py itself before any figure: an import statement waits for
    this thread's import of the same module, a `sys.modules` look-up does not."""
    thread = threading.Thread(target=importlib.import_module, args=("fmnist_core.inference",),
                              name="warm-up-tensorflow", daemon=True)
    thread.start()
    return thread
