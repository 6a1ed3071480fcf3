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


# Test files by their time in a fresh clone's `make test` (2026-12-04, 2-core AMD EPYC), the slowest first: under
# pytest-xdist each file runs whole on one process, and those handed out last should be short. The cluster browser
# test goes last: it waits for test_ray_cluster's cluster (one_ray_cluster_at_a_time), which starts first.
SLOWEST_FILES = (
    "test_ray_cluster.py", "e2e/test_strangers.py", "test_worker_crash.py", "e2e/test_concurrency.py",
    "test_export.py", "e2e/test_drawings_in_browser.py", "e2e/test_restarts.py", "e2e/test_click_feedback.py",
    "e2e/test_widths.py", "test_app.py", "e2e/test_classify.py", "e2e/test_live_run.py", "test_serving.py",
    "test_sweep_distributed.py", "e2e/test_train.py", "test_training.py",
)
LAST_FILES = ("e2e/test_cluster_in_browser.py",)


def _file_order(item: pytest.Item) -> int:
    name = item.path.relative_to(Path(__file__).resolve().parent).as_posix()
    if name in LAST_FILES:
        return len(SLOWEST_FILES) + 1
    return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (a stable sort: the tests of a file keep their order), for `make test`'s processes."""
    items.sort(key=_file_order)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without it installed, never called
def pytest_xdist_make_scheduler(config, log):
    """How `make test`'s pytest-xdist processes share the suite: a test file runs whole on one process (its module
    fixtures made once; a browser test file with the process's own app server and Chromium), handed out in the
    order of SLOWEST_FILES, not xdist's default of the files with the most tests first."""
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


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
