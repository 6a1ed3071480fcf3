"""Closed doodles that are no clothing (fmnist_core.doodles): a house, a tree, a star, a heart, drawn on the canvas."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.doodles import DOODLES
from fmnist_core.drawings import CANVAS_SIDE, HELD_OUT_NON_ITEM_KINDS, NON_ITEM_KINDS, non_item_drawing
from fmnist_core.preprocessing import canvas_ink, fill_outlines


def test_houses_and_trees_are_taught_and_stars_and_hearts_held_out():
    assert {"house", "tree"} <= set(NON_ITEM_KINDS)
    assert set(HELD_OUT_NON_ITEM_KINDS) == {"star", "heart"} and not set(HELD_OUT_NON_ITEM_KINDS) & set(NON_ITEM_KINDS)
    assert set(DOODLES) == {"house", "tree", "star", "heart"}


@pytest.mark.parametrize("kind", list(DOODLES))
@pytest.mark.parametrize("brush", [6, 25])
def test_a_doodle_lies_wholly_on_the_canvas_and_is_seeded(kind, brush):
    for seed in range(20):
        strokes = DOODLES[kind](np.random.default_rng(seed), CANVAS_SIDE, brush)
        points = np.concatenate(strokes)
        assert points.min() >= brush / 2 and points.max() <= CANVAS_SIDE - brush / 2, (kind, seed)
    again = DOODLES[kind](np.random.default_rng(19), CANVAS_SIDE, brush)
    assert all(np.array_equal(a, b) for a, b in zip(strokes, again, strict=True))


@pytest.mark.parametrize("kind", ["star", "heart"])
def test_a_star_and_a_heart_are_one_closed_stroke(kind):
    (stroke,) = DOODLES[kind](np.random.default_rng(0), CANVAS_SIDE, 10)
    np.testing.assert_allclose(stroke[0], stroke[-1], atol=1e-6)


@pytest.mark.parametrize("kind", list(DOODLES))
def test_the_classify_page_fills_a_doodle_so_the_model_sees_a_solid_shape_as_it_does_an_items(kind):
    # why the model must be taught them: filled, a house is a solid block with a pitched top, as a bag's silhouette is
    # (a small doodle drawn with a broad brush can be all ink, with nothing inside to fill)
    rng = np.random.default_rng(4)
    solid = []
    for _ in range(20):
        drawing = non_item_drawing(kind, rng)
        drawn = drawing.rgba[..., 3] > 0
        filled, was_filled = fill_outlines(canvas_ink(drawing.rgba))
        solid.append(was_filled and ((filled > 0) & ~drawn).sum() >= 0.05 * drawn.sum())
    assert np.mean(solid) >= 0.85
