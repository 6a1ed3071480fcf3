"""Drawings made up from Fashion-MNIST (fmnist_core.drawings): sketches and non-items for training, and the fixed
benchmark of 570 generated drawings scored with the shipped model against the targets of bench/drawings.py.

How a drawn canvas is prepared (outlines filled) is in test_preprocessing.py; how drawings join the training data
in test_training.py; the shipped model's "unsure" threshold in test_shipped_model.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fmnist_core.data import CLASS_NAMES
from fmnist_core.drawings import (
    HELD_OUT_NON_ITEM_KINDS,
    ITEM_KINDS,
    NON_ITEM_KINDS,
    OPEN_FRONT_LABELS,
    _to_rgba,
    benchmark_set,
    draw_strokes,
    non_item_inputs,
    score_drawings,
    sketch_inputs,
)
from fmnist_core.open_shapes import JACKET as JACKET_KIND
from fmnist_core.open_shapes import OPEN_KINDS, coloured_in, open_benchmark_set
from fmnist_core.preprocessing import canvas_ink, fill_outlines, prepare_drawing

T_SHIRT_OUTLINE = [[(0.40, 0.14), (0.25, 0.18), (0.08, 0.38), (0.20, 0.47), (0.28, 0.38), (0.28, 0.90), (0.72, 0.90),
                    (0.72, 0.38), (0.80, 0.47), (0.92, 0.38), (0.75, 0.18), (0.60, 0.14), (0.50, 0.22), (0.40, 0.14)]]


def test_sketch_and_non_item_inputs_are_model_inputs_and_seeded(dataset):
    sketches = sketch_inputs(dataset.train_images[:20], dataset.train_labels[:20], seed=3)
    assert sketches.shape == (20, 28, 28) and sketches.dtype == np.uint8
    assert all(image.max() == 255 for image in sketches)
    np.testing.assert_array_equal(sketches, sketch_inputs(dataset.train_images[:20], dataset.train_labels[:20], 3))
    assert not np.array_equal(non_item_inputs(10, seed=1), non_item_inputs(10, seed=2))


def test_coats_are_sketched_open_in_about_half_their_sketches_with_paper_down_the_front_and_shirts_never(dataset):
    def open_share(label: int) -> float:
        items = dataset.train_images[dataset.train_labels == label][:40]
        sketches = sketch_inputs(items, np.full(len(items), label), seed=5)
        # the middle column of the body's lower half: dark paper in an open sketch, item in a closed one
        return float(np.mean([sketch[14:24, 13:15].mean() < 40 for sketch in sketches]))

    assert OPEN_FRONT_LABELS == (CLASS_NAMES.index("Coat"),)
    assert 0.3 <= open_share(CLASS_NAMES.index("Coat")) <= 0.7
    # an open front says Coat: shirts (and T-shirts) are never drawn open, bar a rare outline left unfilled
    assert open_share(CLASS_NAMES.index("Shirt")) <= 0.05 and open_share(0) <= 0.05


# ---- the benchmark ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def benchmark_scores(shipped_model, dataset):
    return score_drawings(shipped_model.classifier, benchmark_set(dataset.test_images, dataset.test_labels),
                          shipped_model.saved.unsure_below)


def test_the_benchmark_has_300_item_drawings_and_270_non_items_60_of_them_of_kinds_never_trained(dataset):
    drawings = benchmark_set(dataset.test_images, dataset.test_labels)
    kinds = [drawing.kind for drawing in drawings]
    assert sum(kind in ITEM_KINDS for kind in kinds) == 300 and sum(kind in NON_ITEM_KINDS for kind in kinds) == 210
    assert sum(kind in HELD_OUT_NON_ITEM_KINDS for kind in kinds) == 60
    assert not set(HELD_OUT_NON_ITEM_KINDS) & set(NON_ITEM_KINDS)
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


def test_houses_and_trees_are_flagged_as_not_clothing(benchmark_scores):
    # a house was named "Bag" 89 %, a tree "Bag" 76 % before they were among the training non-items (#29)
    assert benchmark_scores["house"]["flagged"] >= 0.90 and benchmark_scores["tree"]["flagged"] >= 0.90


def test_open_shapes_are_named_right_and_the_open_jacket_is_a_coat(shipped_model):
    # the jacket was named Shirt (0 of 30) while shirts were sketched open as often as coats in training (#29)
    scores = score_drawings(shipped_model.classifier, open_benchmark_set(), shipped_model.saved.unsure_below)
    assert np.mean([scores[kind]["right"] for kind in OPEN_KINDS]) >= 0.85
    assert scores[JACKET_KIND]["right"] >= 0.85 and min(scores[kind]["right"] for kind in OPEN_KINDS) >= 0.70


# A house and a tree as a person draws them on the canvas (fractions of its side): walls, a roof, a door, a window;
# a trunk under a round crown.
HOUSE = [[(0.22, 0.45), (0.78, 0.45), (0.78, 0.88), (0.22, 0.88), (0.22, 0.45)],
         [(0.16, 0.47), (0.50, 0.15), (0.84, 0.47)],
         [(0.42, 0.88), (0.42, 0.66), (0.55, 0.66), (0.55, 0.88)],
         [(0.28, 0.55), (0.37, 0.55), (0.37, 0.64), (0.28, 0.64), (0.28, 0.55)]]
_TURN = np.linspace(0, 2 * np.pi, 40)
TREE = [[(0.45, 0.62), (0.45, 0.92), (0.55, 0.92), (0.55, 0.62)],
        [(float(0.5 + 0.27 * np.cos(t)), float(0.38 + 0.25 * np.sin(t))) for t in _TURN]]


@pytest.mark.parametrize(("strokes", "brush"), [(HOUSE, 8), (HOUSE, 18), (TREE, 8), (TREE, 18)],
                         ids=["house-8", "house-18", "tree-8", "tree-18"])
def test_a_house_and_a_tree_drawn_by_hand_are_not_named_as_clothing(shipped_model, strokes, brush):
    assert named(shipped_model, canvas(strokes, brush)) is None


# ---- open shapes, drawn by hand: what a person left open stays open -----------------------------------------
# Strokes as on the Classify canvas (280 px, round brush); points are fractions of the canvas side, as in
# tests/e2e/drawings.py. Parts coloured in are swept left and right row by row (open_shapes.coloured_in).
SIDE = 280


def canvas(outlines: list[list[tuple[float, float]]], brush: int, coloured: list[list[tuple[float, float]]] = ()):
    """The canvas's image_data for `outlines` drawn as strokes and `coloured` polygons coloured in, with `brush`."""
    def on_canvas(points):
        return [(x * SIDE, y * SIDE) for x, y in points]
    strokes = [on_canvas(stroke) for stroke in outlines] + [coloured_in(on_canvas(part), brush) for part in coloured]
    return _to_rgba(draw_strokes(strokes, brush))


def filled_at(rgba: np.ndarray, x: float, y: float) -> bool:
    """Whether the outline fill put ink at (x, y), fractions of the canvas side, where nothing was drawn."""
    assert rgba[int(y * SIDE), int(x * SIDE), 3] == 0, "the probe must be on paper"
    filled, _ = fill_outlines(canvas_ink(rgba))
    return bool(filled[int(y * SIDE), int(x * SIDE)] > 0)


def named(shipped_model, rgba: np.ndarray) -> str | None:
    """The class the shipped model names for a drawing prepared as the Classify page does; None when unsure."""
    answer = shipped_model.classifier.answer(prepare_drawing(rgba).model_input, shipped_model.saved.unsure_below)
    return CLASS_NAMES[answer.top] if answer.confident else None


# Flared trousers coloured in part by part: the legs 45 px apart below the crotch, the hems 6 px apart (#29).
FLARES = [[(0.30, 0.06), (0.70, 0.06), (0.70, 0.24), (0.30, 0.24)],
          [(0.30, 0.24), (0.42, 0.24), (0.42, 0.75), (0.49, 0.94), (0.26, 0.94)],
          [(0.58, 0.24), (0.70, 0.24), (0.74, 0.94), (0.51, 0.94), (0.58, 0.75)]]
# Straight trousers coloured in, the legs 12 px apart: narrower than the gaps the fill bridges in an outline.
TROUSERS = [[(0.30, 0.06), (0.70, 0.06), (0.70, 0.22), (0.30, 0.22)],
            [(0.30, 0.22), (0.479, 0.22), (0.479, 0.94), (0.30, 0.94)],
            [(0.521, 0.22), (0.70, 0.22), (0.70, 0.94), (0.521, 0.94)]]
# One outline around trousers with the legs apart, the hems 9 px apart.
TROUSERS_OUTLINE = [[(0.30, 0.06), (0.70, 0.06), (0.74, 0.94), (0.525, 0.94), (0.58, 0.75), (0.58, 0.30),
                     (0.42, 0.30), (0.42, 0.75), (0.475, 0.94), (0.26, 0.94), (0.30, 0.06)]]
# An open jacket: each half one closed outline (a sleeve hanging a little apart), the collar across the back of the
# neck, the front open from the neck to the hem, where the halves end 6 px apart.
JACKET = [[(0.44, 0.08), (0.30, 0.10), (0.10, 0.22), (0.05, 0.88), (0.17, 0.90), (0.21, 0.40), (0.22, 0.92),
           (0.475, 0.92), (0.40, 0.08)],
          [(0.56, 0.08), (0.70, 0.10), (0.90, 0.22), (0.95, 0.88), (0.83, 0.90), (0.79, 0.40), (0.78, 0.92),
           (0.525, 0.92), (0.60, 0.08)],
          [(0.40, 0.08), (0.50, 0.13), (0.60, 0.08)]]
# A sandal: a sole coloured in, and four straps over the foot, each stopping 3 px short of the sole.
SOLE = [[(0.05, 0.66), (0.95, 0.66), (0.95, 0.74), (0.05, 0.74)]]
STRAPS = [[(left, 0.625), (left + 0.03, top + 0.04), (left + 0.08, top), (left + 0.13, top + 0.04),
           (left + 0.16, 0.625)] for left, top in ((0.10, 0.50), (0.30, 0.42), (0.50, 0.40), (0.70, 0.46))]


def test_the_paper_between_trouser_legs_coloured_in_is_not_filled():
    # the hems 6 px apart enclose the space between the legs once the gap is bridged; it is narrower than the legs
    assert not filled_at(canvas([], 18, FLARES), 0.50, 0.60)


def test_a_spot_missed_in_colouring_in_is_filled_but_not_the_slit_between_the_legs(shipped_model):
    rgba = canvas([], 18, TROUSERS)
    rgba[40:58, 120:150, 3] = 0  # a spot in the waistband left white
    assert filled_at(rgba, 0.48, 0.17)
    assert not filled_at(rgba, 0.50, 0.60)
    assert named(shipped_model, rgba) == "Trouser"


def test_outlined_trousers_with_the_legs_apart_are_named_trouser_and_not_filled_between_the_legs(shipped_model):
    rgba = canvas(TROUSERS_OUTLINE, 8)
    assert filled_at(rgba, 0.35, 0.50)  # a leg: inside the outline
    assert not filled_at(rgba, 0.50, 0.60)
    assert named(shipped_model, rgba) == "Trouser"


def test_an_open_jacket_keeps_its_front_open_and_is_named_coat(shipped_model):
    rgba = canvas(JACKET, 8)
    assert filled_at(rgba, 0.32, 0.50) and filled_at(rgba, 0.68, 0.50)  # the two halves
    assert not filled_at(rgba, 0.50, 0.60)
    assert named(shipped_model, rgba) == "Coat"


def test_an_outline_with_a_small_gap_is_still_filled_and_named_right(shipped_model):
    rgba = canvas(T_SHIRT_OUTLINE, 8)
    rgba[int(0.86 * SIDE) : int(0.94 * SIDE), int(0.45 * SIDE) : int(0.50 * SIDE), 3] = 0  # a 14 px gap in the hem
    assert filled_at(rgba, 0.50, 0.60)
    assert named(shipped_model, rgba) == "T-shirt/top"


@pytest.mark.xfail(strict=True, reason="a strap stopping just short of the sole is, pixel for pixel, an outline whose "
                   "strokes stop short of meeting (below): the space under it is filled (#29, open)")
def test_the_space_under_sandal_straps_is_not_filled():
    assert not filled_at(canvas(STRAPS, 14, SOLE), 0.18, 0.60)


def test_a_strap_that_touches_the_sole_at_one_end_is_one_stroke_and_what_it_nearly_closes_is_filled():
    # pixel for pixel an outline whose end stops short of its start
    touching = [[(0.10, 0.66), *strap[1:]] for strap in STRAPS[:1]]
    assert filled_at(canvas(touching, 14, SOLE), 0.18, 0.60)


def test_an_outline_drawn_as_two_strokes_that_overlap_at_one_join_and_not_the_other_is_filled():
    left = [(0.50, 0.14), (0.25, 0.18), (0.08, 0.38), (0.20, 0.47), (0.28, 0.38), (0.28, 0.90), (0.52, 0.90)]
    right = [(0.50, 0.14), (0.75, 0.18), (0.92, 0.38), (0.80, 0.47), (0.72, 0.38), (0.72, 0.90), (0.56, 0.90)]
    assert filled_at(canvas([left, right], 8), 0.50, 0.60)  # joined at the neck, 10 px apart at the hem


def test_an_outline_drawn_as_four_strokes_whose_joins_all_stop_short_is_filled():
    # shoulders and sleeves, the two sides, the hem: each stroke ends 11 px before the next begins. Requiring one
    # stroke to enclose the region (tried for the sandal straps above, 2026-12-04) left this unfilled: put back.
    top = [(0.28, 0.415), (0.20, 0.47), (0.08, 0.38), (0.25, 0.18), (0.40, 0.14), (0.50, 0.22), (0.60, 0.14),
           (0.75, 0.18), (0.92, 0.38), (0.80, 0.47), (0.72, 0.415)]
    left, right = [(0.28, 0.484), (0.28, 0.811)], [(0.72, 0.484), (0.72, 0.811)]
    hem = [(0.28, 0.88), (0.72, 0.88)]
    rgba = canvas([top, left, right, hem], 8)
    assert ndimage.label(rgba[..., 3] > 0, structure=np.ones((3, 3)))[1] == 4  # four strokes, none touching
    assert filled_at(rgba, 0.50, 0.60)
