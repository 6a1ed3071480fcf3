"""Shared fixtures: the real dataset (read once), the shipped model (loaded once) and quiet TensorFlow logs."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from fmnist_core.data import load_fashion_mnist  # noqa: E402

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="session")
def dataset():
    return load_fashion_mnist()


@pytest.fixture(scope="session")
def shipped_model():
    """The shipped default model's SavedModel (card) and a Classifier of it."""
    from fmnist_core.inference import Classifier
    from fmnist_core.store import DEFAULT_MODEL, ModelStore

    store = ModelStore(REPO_MODELS)
    return store.get(DEFAULT_MODEL), Classifier(store.load_model(DEFAULT_MODEL))
