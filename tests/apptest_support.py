"""What the AppTest modules share: the app's path, pointing the app at a model store, opening a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import fmnist_core.store

APP = "../streamlit_app.py"


@contextmanager
def serving_models_from(root: Path) -> Iterator[Path]:
    """While inside, the app's ModelStore() is `root`, with no manager, classifier or explainer cached from
    another store."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmnist_core.store, "MODELS_DIR", root)
        patch.setenv("FMNIST_MODELS_DIR", str(root))
        st.cache_resource.clear()
        yield root
    st.cache_resource.clear()


def open_page(page: str | None = None, query: dict | None = None) -> AppTest:
    """The app run once (with `query` as the link's parameters), then switched to `page`; no exception."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query or {})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    """The text of AppTest elements as a reader sees it: one per line, user text's Markdown escapes undone."""
    return "\n".join(re.sub(r"\\(.)", r"\1", str(element.value)) for element in elements)
