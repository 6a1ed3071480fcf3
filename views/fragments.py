"""Where a page puts a fragment that redraws itself on a timer (a training run's progress, a sweep's trials)."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def timed_fragment_home() -> DeltaGenerator:
    """An empty container for one timed fragment, written by the page's full run; use it as `with …:`.

    When a busy server has not yet sent a full run's messages as a fragment's next timed run begins, Streamlit
    (1.67) drops that fragment's unsent messages, including the ones the full run wrote. The fragment's run then
    writes at its place in the page, past the end of what the browser has: the browser fails with "Cannot set a
    node at a delta path" and the page turns white (15 Train pages open as a run ended, issue 19). Alone in a
    container that the full run writes, a fragment is its container's first child, a place that always exists.
    """
    return st.container()
