"""Dataset statistics for the Dataset page (fmnist_core.dataset_stats), on the real Fashion-MNIST."""

from __future__ import annotations

import numpy as np

from fmnist_core.data import CLASS_NAMES
from fmnist_core.dataset_stats import class_counts, class_mean_images, random_examples


def test_class_counts_and_mean_images(dataset):
    assert class_counts(dataset.train_labels).tolist() == [6000] * 10
    assert class_counts(dataset.test_labels).tolist() == [1000] * 10
    assert class_counts(np.array([2, 2, 9])).tolist() == [0, 0, 2, 0, 0, 0, 0, 0, 0, 1]
    means = class_mean_images(dataset.train_images, dataset.train_labels)
    assert means.shape == (10, 28, 28) and means.dtype == np.float32
    bags = dataset.train_images[dataset.train_labels == CLASS_NAMES.index("Bag")]
    np.testing.assert_allclose(means[8], bags.astype(np.float64).mean(axis=0), rtol=1e-6)
    trousers = means[CLASS_NAMES.index("Trouser")]
    assert trousers[14:, 13:15].mean() < trousers[14:, 9:11].mean()  # the gap between the legs is dark


def test_random_examples_are_of_their_class_and_fixed_by_the_seed(dataset):
    chosen = random_examples(dataset.train_labels, 12, seed=3)
    assert [len(indices) for indices in chosen] == [12] * 10
    assert all((dataset.train_labels[indices] == label).all() for label, indices in enumerate(chosen))
    assert all(len(set(indices)) == 12 for indices in chosen)
    again = random_examples(dataset.train_labels, 12, seed=3)
    assert all((a == b).all() for a, b in zip(chosen, again, strict=True))
    other = random_examples(dataset.train_labels, 12, seed=4)
    assert any((a != b).any() for a, b in zip(chosen, other, strict=True))
