"""Shared fixtures: the real dataset (read once) and quiet TensorFlow logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from fmnist_core.data import load_fashion_mnist  # noqa: E402


@pytest.fixture(scope="session")
def dataset():
    return load_fashion_mnist()
