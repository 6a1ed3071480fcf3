"""Dataset statistics for the explorer: class balance, the mean image of each class, random examples.

Pure numpy, so the Dataset page never needs TensorFlow.
"""

from __future__ import annotations

import numpy as np

from .data import NUM_CLASSES


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many images each of the 10 classes has, as an (10,) int array."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=NUM_CLASSES)


def class_mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pixel-wise mean image of each class, (10, 28, 28) float32 in 0..255 (zeros for an absent class)."""
    labels = np.asarray(labels)
    means = np.zeros((NUM_CLASSES, *images.shape[1:]), dtype=np.float32)
    for label in range(NUM_CLASSES):
        members = labels == label
        if members.any():
            means[label] = images[members].mean(axis=0, dtype=np.float64)
    return means


def random_examples(labels: np.ndarray, per_class: int, seed: int) -> list[np.ndarray]:
    """Indices of up to `per_class` random images of each class (sorted within a class), fixed by `seed`."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        chosen.append(np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False)))
    return chosen
