"""Shared fixtures: the real dataset (read once), the shipped model (loaded once) and quiet TensorFlow logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("FMNIST_WORKER_IDLE_EXIT", "5")  # training workers the tests start exit soon after their jobs

import pytest  # noqa: E402

from fmnist_core.data import load_fashion_mnist  # noqa: E402

if TYPE_CHECKING:  # TensorFlow is imported by the fixture, when a test first needs the model
    import keras

    from fmnist_core.inference import Classifier
    from fmnist_core.store import SavedModel

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


# Browser test files that start an app server of their own (and a Ray cluster): they need not wait for the one the
# other browser tests share, so the process that is not running those takes them.
OWN_SERVER_BROWSER_TESTS = ("tests/e2e/test_cluster_in_browser.py",)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without it installed, never called
def pytest_xdist_make_scheduler(config, log):
    """How `make test`'s two pytest-xdist processes share the suite: a test file runs whole on one process (its module
    fixtures made once), and the browser tests that share one app server all run on one, one after another, while
    the other process takes the rest. Files are handed out in the order `pytest_collection_modifyitems` puts them
    (those with slow tests first), not xdist's (most tests first): a file of a few slow tests handed out last kept
    one process busy for minutes after the other had finished. (xdist's own `loadgroup` does not group with pytest 9:
    it renames an item's `_nodeid`, which pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadFileScheduling

    class BrowserTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            shared_server = nodeid.startswith("tests/e2e/") and not nodeid.startswith(OWN_SERVER_BROWSER_TESTS)
            return "browser tests" if shared_server else super()._split_scope(nodeid)

    config.option.loadscopereorder = False
    return BrowserTestsTogether(config, log)


def pytest_collection_modifyitems(config, items: list[pytest.Item]) -> None:
    """The browser tests first, then the files that have slow tests, then the rest; each file's tests in their order
    (a stable sort). Under `make test` this is the order in which the files are handed out to the two processes."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        return 0 if item.nodeid.startswith("tests/e2e/") else 1 if item.path in slow_files else 2

    items.sort(key=rank)


@pytest.fixture(scope="module")
def one_ray_cluster_at_a_time():
    """Held by a module that runs a Ray cluster on this machine, for as long as the module runs: under `make test`'s
    two processes the cluster tests and the cluster browser test could otherwise each run a head and two nodes on
    the same two cores at once. (Their slowest times in CI, 170 s and 134 s, came as often without a second cluster,
    beside the fifteen-tab test.)"""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "fmnist-tests-ray-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session", autouse=True)
def no_workers_left_behind(tmp_path_factory):
    """After the session, stop any training worker still running on one of the tests' model stores."""
    yield
    import subprocess

    subprocess.run(["pkill", "-KILL", "-f", "--", f"--models-dir {tmp_path_factory.getbasetemp()}"], check=False)


@pytest.fixture(scope="session")
def dataset():
    return load_fashion_mnist()


class ShippedModel(NamedTuple):
    """The shipped default model as the app's store gives it. Shared by the whole session, so read-only: a test
    that would change the model (train it, set weights) loads its own copy instead."""

    saved: SavedModel  # its card, hyperparameters and folder
    model: keras.Model  # loaded from models/default/model.keras
    classifier: Classifier  # as the app answers with `model` (its card's mirror_average)


@pytest.fixture(scope="session")
def shipped_model() -> ShippedModel:
    """The shipped default model, loaded once for the whole session (loading it takes seconds)."""
    from fmnist_core.store import DEFAULT_MODEL, ModelStore

    store = ModelStore(REPO_MODELS)
    model = store.load_model(DEFAULT_MODEL)
    return ShippedModel(store.get(DEFAULT_MODEL), model, store.load_classifier(DEFAULT_MODEL))
