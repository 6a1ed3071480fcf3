"""Drawings made up from Fashion-MNIST (fmnist_core.drawings): sketches and non-items for training, and the fixed
benchmark of 450 generated drawings scored with the shipped model against the targets of bench/drawings.py.

How a drawn canvas is prepared (outlines filled) is in test_preprocessing.py; how drawings join the training data
in test_training.py; the shipped model's "unsure" threshold in test_shipped_model.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.drawings import (
    ITEM_KINDS,
    NON_ITEM_KINDS,
    benchmark_set,
    non_item_inputs,
    score_drawings,
    sketch_inputs,
)


def test_sketch_and_non_item_inputs_are_model_inputs_and_seeded(dataset):
    sketches = sketch_inputs(dataset.train_images[:20], seed=3)
    assert sketches.shape == (20, 28, 28) and sketches.dtype == np.uint8
    assert all(image.max() == 255 for image in sketches)
    np.testing.assert_array_equal(sketches, sketch_inputs(dataset.train_images[:20], seed=3))
    assert not np.array_equal(non_item_inputs(10, seed=1), non_item_inputs(10, seed=2))


# ---- the benchmark ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def benchmark_scores(shipped_model, dataset):
    return score_drawings(shipped_model.classifier, benchmark_set(dataset.test_images, dataset.test_labels),
                          shipped_model.saved.unsure_below)


def test_the_benchmark_has_300_item_drawings_and_150_non_items(dataset):
    drawings = benchmark_set(dataset.test_images, dataset.test_labels)
    kinds = [drawing.kind for drawing in drawings]
    assert sum(kind in ITEM_KINDS for kind in kinds) == 300 and sum(kind in NON_ITEM_KINDS for kind in kinds) == 150
    assert {drawing.label for drawing in drawings if drawing.label is not None} == set(range(10))


def test_outlines_are_named_right(benchmark_scores):
    # the benchmark's outlines: 100 closed outlines and 100 with a few inner lines
    outlines = [benchmark_scores[kind]["right"] for kind in ("outline", "outline+lines")]
    assert np.mean(outlines) >= 0.85 and min(outlines) >= 0.80


def test_coloured_in_drawings_are_named_right(benchmark_scores):
    assert benchmark_scores["filled"]["right"] >= 0.80


def test_non_items_are_flagged_as_not_clothing(benchmark_scores):
    flagged = [benchmark_scores[kind]["flagged"] for kind in NON_ITEM_KINDS]
    assert np.mean(flagged) >= 0.90
    assert benchmark_scores["dot"]["flagged"] == 1.0  # the dot that once got "Bag 93 %"
