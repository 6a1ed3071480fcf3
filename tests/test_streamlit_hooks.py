"""The Streamlit internals this app relies on: a Streamlit upgrade that changes them fails here, not in production.

views/streamlit_patches.py replaces Streamlit's private per-run cleanup, which calls `keras.backend.clear_session()`
after every script run (and with it clears TensorFlow's kernel cache under the models every session shares).
views/resources.py closes the sessions of visitors who left through the runtime's `clear_user_info_for_session`.
"""

import inspect
import subprocess
import sys

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from views.streamlit_patches import STREAMLIT_CLEANUP_HOOK as HOOK
from views.streamlit_patches import _no_cleanup as no_cleanup


def test_streamlit_still_has_the_private_cleanup_hook_we_replace():
    assert hasattr(script_runner, HOOK), (
        f"streamlit.runtime.scriptrunner.script_runner.{HOOK} is gone: find where this "
        "Streamlit release clears Keras's state after a script run and update keep_keras_state_between_reruns()."
    )


def test_a_script_run_of_the_app_never_clears_keras_state(monkeypatch):
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(1))
    # as in a fresh server, whatever ran before in this process: a cleanup that clears Keras, until the app replaces it
    monkeypatch.setattr(script_runner, HOOK, lambda: keras.backend.clear_session())
    at = AppTest.from_file("../streamlit_app.py", default_timeout=60)
    at.switch_page("views/dataset.py").run()
    at.run()
    assert not at.exception and getattr(script_runner, HOOK) is no_cleanup
    assert cleared == []


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_without_our_replacement_streamlit_would_clear_keras_state_after_a_run():
    """The control, in a fresh interpreter where the app has not replaced the hook: Streamlit's own hook does call
    clear_session. If a release stops doing so, the replacement can go, and this test says so."""
    probe = (
        "import keras\n"
        "from streamlit.runtime.scriptrunner import script_runner\n"
        "cleared = []\n"
        "keras.backend.clear_session = lambda *args, **kwargs: cleared.append(1)\n"
        f"getattr(script_runner, {HOOK!r})()\n"
        "print('cleared', len(cleared))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["cleared", "1"]


def test_streamlit_still_closes_a_disconnected_session_through_clear_user_info_for_session():
    """views/resources.py closes the sessions of visitors who left with Runtime.clear_user_info_for_session, which
    closes a session kept for a reconnect (AppSession.shutdown: its uploads and state go) on the event loop. If a
    release changes that, the closed tabs' memory would stay again (tests/e2e/test_strangers.py would fail too)."""
    from streamlit.runtime.runtime import Runtime

    assert callable(getattr(Runtime, "clear_user_info_for_session", None))
    closing = inspect.getsource(Runtime._close_inactive_session_on_event_loop)
    assert "self._session_mgr.close_session(session_id)" in closing and "call_soon_threadsafe" in closing
