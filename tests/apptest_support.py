"""What the AppTest modules share: the app's path, a model store for the app (empty or with a copy of the shipped
model), opening a page, the training job slot and reading elements' text."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from fmnist_core.settings import Settings

APP = "../streamlit_app.py"
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"
SCRIPT_TIMEOUT = 120  # seconds for one run of a page's script on a busy machine (Grad-CAM pages take the longest)


@contextmanager
def serving_models_from(root: Path, **settings) -> Iterator[Path]:
    """While inside, the app runs with the settings `Settings(models_dir=root, **settings)` (a test's own, not the
    environment's), with no classifier or explainer cached from another store."""
    from views import resources

    before = resources.given_settings()  # an outer serving_models_from's, restored after
    st.cache_resource.clear()
    resources.use_settings(Settings(models_dir=root, **settings))
    try:
        yield root
    finally:
        resources.use_settings(before)
        st.cache_resource.clear()


@contextmanager
def changed_settings(**changes) -> Iterator[Settings]:
    """While inside (within `serving_models_from`), the app runs with these settings changed, e.g. an operator
    password or a shorter time limit; the settings before are restored after."""
    from views import resources

    before = resources.settings()
    resources.use_settings(before.with_changes(**changes))
    try:
        yield resources.settings()
    finally:
        resources.use_settings(before)


def with_shipped_model(root: Path) -> Path:
    """`root` as a model store holding a copy of the shipped model as 'default' (tests may add, break or delete
    models there; the repository's models/ is never written)."""
    shutil.copytree(SHIPPED_MODEL_DIR, root / "default")
    return root


def open_page(page: str | None = None, query: dict | None = None, model: str | None = None) -> AppTest:
    """The app run once (with `query` as the link's parameters), `model` chosen in the sidebar, then switched to
    `page`; no exception."""
    at = AppTest.from_file(APP, default_timeout=SCRIPT_TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    if model:
        at.sidebar.selectbox(key="active_model").set_value(model).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def job_queue():
    """The app's job queue (views.resources.job_queue), on disk beside the model store the test serves."""
    from views import resources

    return resources.job_queue()


def texts(elements) -> str:
    """The text of AppTest elements as a reader sees it: one per line, user text's Markdown escapes undone and the
    invisible word joiner plain() puts before an address left out."""
    return "\n".join(re.sub(r"\\(.)", r"\1", str(element.value)).replace("\u2060", "") for element in elements)
