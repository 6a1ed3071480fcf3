"""Drawings as people make them: outlines are filled, sketches are named, non-items get "not clothing / unsure".

Known answers: hand-made canvases for the fill, and the fixed benchmark of 450 generated drawings
(fmnist_core.drawings.benchmark_set) scored with the shipped model against the targets of bench/drawings.py.
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
from fmnist_core.hyperparameters import preset
from fmnist_core.inference import UNSURE_BELOW, Answer
from fmnist_core.preprocessing import OUTLINE_FILL_LEVEL, prepare_drawing
from fmnist_core.training import NON_ITEM_LABEL, ItemAccuracy, _targets, select_training_data

SIDE = 280


def canvas_with(*boxes: tuple[int, int, int, int], thickness: int = 12) -> np.ndarray:
    """A transparent canvas with black rectangle outlines (top, left, bottom, right), `thickness` px wide."""
    rgba = np.zeros((SIDE, SIDE, 4), np.uint8)
    for top, left, bottom, right in boxes:
        rgba[top:bottom, left:right, 3] = 255
        rgba[top + thickness : bottom - thickness, left + thickness : right - thickness, 3] = 0
    return rgba


# ---- the fill ----------------------------------------------------------------------------------------
def test_a_closed_outline_is_filled_inside_and_its_strokes_stay_brightest():
    prepared = prepare_drawing(canvas_with((40, 40, 240, 240)))
    assert prepared.filled
    image = prepared.model_input
    centre, edge = image[10:18, 10:18], image[:, 0]  # inside the square / its left stroke
    assert np.ptp(centre) == 0  # evenly filled
    # at OUTLINE_FILL_LEVEL of the strokes' brightness (the resampling's overshoot at the edge sets the 255)
    assert abs(int(centre[0, 0]) - OUTLINE_FILL_LEVEL * 255) <= 8
    assert edge[3:-3].min() >= 250


def test_a_gap_in_the_outline_narrower_than_the_closing_is_bridged():
    rgba = canvas_with((40, 40, 240, 240))
    rgba[40:52, 135:145, 3] = 0  # a 10 px gap in the top side, 5 % of the drawing
    prepared = prepare_drawing(rgba)
    assert prepared.filled and prepared.model_input[14, 14] > 150


def test_an_open_shape_and_a_coloured_in_one_are_left_as_drawn():
    open_u = canvas_with((40, 40, 240, 240))
    open_u[40:52, 52:228, 3] = 0  # no top side: a U, nothing enclosed
    assert not prepare_drawing(open_u).filled
    solid = np.zeros((SIDE, SIDE, 4), np.uint8)
    solid[60:200, 80:180, 3] = 255
    prepared = prepare_drawing(solid)
    assert not prepared.filled and prepared.model_input.max() == 255


def test_without_the_fill_an_outline_stays_a_ring():
    prepared = prepare_drawing(canvas_with((40, 40, 240, 240)), fill=False)
    assert not prepared.filled and prepared.model_input[10:18, 10:18].max() == 0


# ---- training on drawings ---------------------------------------------------------------------------
def test_sketches_and_non_items_are_added_to_the_training_images_only(dataset):
    hp = preset("quick", train_subset_size=2000, sketch_fraction=0.5, non_item_fraction=0.1)
    plain = select_training_data(hp.with_changes(sketch_fraction=0.0, non_item_fraction=0.0), dataset)
    data = select_training_data(hp, dataset)
    train_count = len(plain.train_labels)
    sketches = round(0.5 * train_count)
    non_items = round(0.1 * (train_count + sketches))
    assert len(data.train_labels) == train_count + sketches + non_items
    assert np.sum(data.train_labels == NON_ITEM_LABEL) == non_items
    np.testing.assert_array_equal(data.validation_images, plain.validation_images)  # validation stays real items
    np.testing.assert_array_equal(data.train_images[:train_count], plain.train_images)


def test_sketch_and_non_item_inputs_are_model_inputs_and_seeded(dataset):
    sketches = sketch_inputs(dataset.train_images[:20], seed=3)
    assert sketches.shape == (20, 28, 28) and sketches.dtype == np.uint8
    assert all(image.max() == 255 for image in sketches)
    np.testing.assert_array_equal(sketches, sketch_inputs(dataset.train_images[:20], seed=3))
    assert not np.array_equal(non_item_inputs(10, seed=1), non_item_inputs(10, seed=2))


def test_a_non_item_is_taught_no_class_and_is_left_out_of_the_accuracy():
    labels = np.array([2, NON_ITEM_LABEL], np.int32)
    targets = _targets(labels).numpy()
    np.testing.assert_allclose(targets, [np.eye(10)[2], np.full(10, 0.1)])
    metric = ItemAccuracy()
    predictions = np.array([np.eye(10)[2], np.eye(10)[0]], np.float32)  # the item right; the non-item "class 0"
    metric.update_state(targets, predictions)
    assert float(metric.result()) == 1.0  # 1 of 1 items, not 2 of 2 (nor 1 of 2)


# ---- the answer -------------------------------------------------------------------------------------
def test_an_answer_is_confident_only_at_or_above_the_threshold():
    probabilities = np.full(10, 0.05, np.float32)
    probabilities[4] = 0.55
    assert Answer(probabilities, 4, 0.5).confident
    assert not Answer(probabilities, 4, 0.6).confident
    assert UNSURE_BELOW == 0.5


def test_the_shipped_model_has_its_own_threshold_that_flags_few_test_items(shipped_model, dataset):
    saved, classifier = shipped_model
    assert 0.2 < saved.unsure_below < 0.9
    top = classifier.probabilities(dataset.test_images).max(axis=1)
    assert np.mean(top < saved.unsure_below) <= 0.03


# ---- the benchmark ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def benchmark_scores(shipped_model, dataset):
    saved, classifier = shipped_model
    return score_drawings(classifier, benchmark_set(dataset.test_images, dataset.test_labels), saved.unsure_below)


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
