"""Synthetic canvas drawings, the way people draw on the Classify page: outlines, sketches and non-items.

Each drawing is the RGBA array the canvas hands back (`st_canvas(...).image_data`): black strokes on a
transparent 280x280 square, which `preprocessing.prepare_drawing` composites onto white. Items are made
from real Fashion-MNIST images (their silhouette's contour drawn with a round brush, at several sizes and
positions, optionally with a few inner lines); non-items are dots, lines, scribbles, letters and smileys (and, for
training, crops of real photos: `photos.py`).
They are the benchmark of `bench/drawings.py` and the known answers of `tests/test_drawings.py`; smaller
renderings of training items (`sketch_inputs`) teach a model what drawings look like (`sketch_fraction`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from .doodles import DOODLES
from .photos import photo_non_item_inputs
from .preprocessing import canvas_ink, drawing_input, prepare_drawing

CANVAS_SIDE = 280  # px, as on the Classify page
BRUSH_RANGE = (4, 40)  # px: the Classify page's brush slider
BRUSH_WIDTHS = (6, 10, 14, 18, 25)  # px: widths people draw with, within BRUSH_RANGE (the slider's default is 18)
# Non-items taught to the model (drawn), and closed doodles it is never taught, kept for the benchmark (doodles.py).
NON_ITEM_KINDS = ("dot", "line", "scribble", "letter", "smiley", "house", "tree")
HELD_OUT_NON_ITEM_KINDS = ("star", "heart")
# The benchmark: 100 drawings of each item kind (10 test items of each class) and 30 of each non-item kind, held-out
# kinds too.
BENCHMARK_ITEMS_PER_KIND, BENCHMARK_NON_ITEMS_PER_KIND, BENCHMARK_SEED = 100, 30, 1
# The share of the training non-items that are crops of real photos (fmnist_core/non_item_photos/) rather than
# drawings: without them a model names bricks, gravel or a page of text "Bag" (#29; bench/photos.py).
NON_ITEM_PHOTO_SHARE = 0.5
# A Fashion-MNIST pixel above this (of 255) is part of the item's silhouette once upsampled.
SILHOUETTE_LEVEL = 40
# Coats (jackets) are worn open, and people draw them so: two halves with the paper between them. Fashion-MNIST
# shows them closed; this share of the coats' sketches is drawn open. Coats only: with shirts drawn open as often,
# an open front said nothing of which of the two it was and a model named the open jacket "Shirt" (10 % right for
# `quick` + sketches, 0 % for the shipped model); with coats only, 93 % (bench/drawings.py, #29).
OPEN_FRONT_LABELS, OPEN_FRONT_SHARE = (4,), 0.5


@dataclass(frozen=True)
class Drawing:
    """One synthetic drawing and what it shows."""

    rgba: np.ndarray  # (280, 280, 4) uint8, black strokes, alpha 255 where drawn
    kind: str  # "outline", "outline+lines", "filled", or one of NON_ITEM_KINDS
    label: int | None  # the Fashion-MNIST class it was drawn from; None for a non-item
    brush: int  # px


def _to_rgba(ink: np.ndarray) -> np.ndarray:
    """Black strokes where `ink` (bool, 280x280) is set, transparent elsewhere, as the canvas returns them."""
    rgba = np.zeros((CANVAS_SIDE, CANVAS_SIDE, 4), dtype=np.uint8)
    rgba[..., 3] = ink * np.uint8(255)
    return rgba


def silhouette(image: np.ndarray, side: int) -> np.ndarray:
    """The item of a 28x28 Fashion-MNIST image as a solid bool mask of side x side pixels (holes filled)."""
    upsampled = Image.fromarray(image.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR)
    mask = np.asarray(upsampled) > SILHOUETTE_LEVEL
    return ndimage.binary_fill_holes(mask)


def _brush(path_mask: np.ndarray, brush: int) -> np.ndarray:
    """Every pixel within half a brush width of `path_mask`: the path drawn with a round brush."""
    return ndimage.distance_transform_edt(~path_mask) <= brush / 2


def _contour(mask: np.ndarray) -> np.ndarray:
    """The one-pixel boundary of a bool mask."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _inner_lines(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two straight lines across the inside of the item: a zip or seam, a collar or waistband."""
    lines = np.zeros_like(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    middle = (cols[0] + cols[-1]) // 2
    column = np.flatnonzero(mask[:, middle])
    if column.size:  # a vertical line down the middle, over the part of it inside the item
        lines[column[0] : column[0] + int(0.7 * (column[-1] - column[0])), middle] = True
    if rng.random() < 0.6:  # and a horizontal one a quarter of the way down
        row = rows[0] + (rows[-1] - rows[0]) // 4
        inside = np.flatnonzero(mask[row])
        if inside.size:
            lines[row, inside[0] : inside[-1] + 1] = True
    return lines & ndimage.binary_erosion(mask, iterations=3)


def _place(shape_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`shape_mask` pasted at a random position on the canvas, wholly inside it."""
    canvas = np.zeros((CANVAS_SIDE, CANVAS_SIDE), dtype=bool)
    height, width = shape_mask.shape
    top = int(rng.integers(0, CANVAS_SIDE - height + 1))
    left = int(rng.integers(0, CANVAS_SIDE - width + 1))
    canvas[top : top + height, left : left + width] = shape_mask
    return canvas


ITEM_KINDS = ("outline", "outline+lines", "filled")


def _open_front(mask: np.ndarray, brush: float, rng: np.random.Generator) -> np.ndarray:
    """`mask` with its front left open: paper down the middle from the neck to the hem, wider at the neck, and half
    a brush wider on each side so that the halves drawn around it leave it open."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    width = cols[-1] - cols[0] + 1
    neck = brush / 2 + rng.uniform(0.05, 0.12) * width  # half the opening's width, at the top and at the hem
    hem = brush / 2 + rng.uniform(0.005, 0.06) * width
    down = np.clip((np.arange(mask.shape[0]) - rows[0]) / max(rows[-1] - rows[0], 1), 0.0, 1.0)[:, None]
    across = np.abs(np.arange(mask.shape[1]) - (cols[0] + cols[-1]) / 2)[None, :]
    return mask & ~(across < neck + (hem - neck) * down)


def _item_ink(image: np.ndarray, kind: str, side: int, brush: float, rng: np.random.Generator,
              open_front: bool = False) -> np.ndarray:
    """The item of a 28x28 image drawn `side` pixels tall or wide with a `brush`-wide pen, as a bool array; with
    `open_front`, as two halves with the paper between them (a coat worn open)."""
    margin = int(np.ceil(brush / 2)) + 1
    mask = np.pad(silhouette(image, side), margin)
    if open_front:
        mask = _open_front(mask, brush, rng)
    if kind == "filled":
        return _brush(_contour(mask), brush) | mask
    if kind not in ITEM_KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(ITEM_KINDS)}.")
    path = _contour(mask)
    if kind == "outline+lines":
        path |= _inner_lines(mask, rng)
    return _brush(path, brush)


def item_drawing(image: np.ndarray, label: int, kind: str, rng: np.random.Generator) -> Drawing:
    """A drawing of a Fashion-MNIST item on the canvas: its outline, outline with inner lines, or filled."""
    brush = int(rng.choice(BRUSH_WIDTHS))
    side = int(rng.integers(110, CANVAS_SIDE - brush - 3))  # drawn small to nearly the whole square
    return Drawing(_to_rgba(_place(_item_ink(image, kind, side, brush, rng), rng)), kind, label, brush)


def sketch_inputs(images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Model inputs (N, 28, 28) of `images` (of classes `labels`) as drawn on the canvas and prepared as the
    Classify page does: outlines (half), outlines with inner lines (a fifth) and filled shapes, at a smaller scale
    to be quick; coats drawn open in OPEN_FRONT_SHARE of theirs."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(ITEM_KINDS, size=len(images), p=(0.5, 0.2, 0.3))
    opens = np.isin(labels, OPEN_FRONT_LABELS) & (rng.random(len(images)) < OPEN_FRONT_SHARE)
    inputs = np.empty((len(images), 28, 28), dtype=np.uint8)
    for number, (image, kind, open_front) in enumerate(zip(images, kinds, opens, strict=True)):
        side = int(rng.integers(56, 113))
        # the canvas's brushes relative to the drawing's size (a 6-25 px brush on a 110-270 px item)
        brush = side * rng.uniform(0.025, 0.15)
        ink = _item_ink(image, str(kind), side, brush, rng, bool(open_front))
        inputs[number] = drawing_input(ink * np.float32(255.0))[0]
    return inputs


def _polyline(points: np.ndarray, brush: int) -> np.ndarray:
    """A stroke through `points` (N x 2, x and y in canvas pixels) with a round brush, as a bool canvas."""
    image = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    draw = ImageDraw.Draw(image)
    coordinates = [tuple(map(float, point)) for point in points]
    draw.line(coordinates, fill=255, width=brush, joint="curve")
    for x, y in (coordinates[0], coordinates[-1]):  # round ends, like the canvas's brush
        draw.ellipse((x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2), fill=255)
    return np.asarray(image) > 0


def draw_strokes(strokes, brush: int) -> np.ndarray:
    """Strokes, each a sequence of x, y canvas points, drawn with a round brush as the canvas draws them: a bool
    canvas."""
    ink = np.zeros((CANVAS_SIDE, CANVAS_SIDE), dtype=bool)
    for stroke in strokes:
        ink |= _polyline(np.asarray(stroke, dtype=float), brush)
    return ink


def non_item_drawing(kind: str, rng: np.random.Generator) -> Drawing:
    """A drawing that is no item of clothing: a dot, a straight line, a scribble, a letter, a smiley, or a closed
    doodle (a house, a tree, a star, a heart: `doodles.DOODLES`)."""
    brush = int(rng.choice(BRUSH_WIDTHS))
    centre = rng.uniform(70, CANVAS_SIDE - 70, size=2)
    if kind == "dot":  # a click or a tiny circle of strokes
        brush = int(rng.integers(8, 41))
        ink = _polyline(np.array([centre, centre + rng.uniform(-3, 3, size=2)]), brush)
    elif kind == "line":
        angle, length = rng.uniform(0, np.pi), rng.uniform(60, 240)
        offset = 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
        ink = _polyline(np.clip(np.array([centre - offset, centre + offset]), 5, CANVAS_SIDE - 5), brush)
    elif kind == "scribble":  # a smooth random walk of 6-14 turns
        steps = rng.normal(0, 35, size=(int(rng.integers(6, 15)), 2))
        points = np.clip(centre + np.cumsum(steps, axis=0), 10, CANVAS_SIDE - 10)
        ink = _polyline(points, brush)
    elif kind == "letter":
        font = ImageFont.load_default(size=int(rng.integers(90, 220)))
        image = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
        ImageDraw.Draw(image).text((CANVAS_SIDE / 2, CANVAS_SIDE / 2), str(rng.choice(list(string.ascii_letters))),
                                   fill=255, font=font, anchor="mm", stroke_width=max(1, brush // 4), stroke_fill=255)
        ink = np.asarray(image) > 0
    elif kind == "smiley":
        radius = rng.uniform(50, 120)
        centre = rng.uniform(radius + 10, CANVAS_SIDE - radius - 10, size=2)
        turn = np.linspace(0, 2 * np.pi, 60)
        face = centre + radius * np.stack([np.cos(turn), np.sin(turn)], axis=1)
        smile_turn = np.linspace(0.2 * np.pi, 0.8 * np.pi, 20)
        smile = centre + 0.6 * radius * np.stack([np.cos(smile_turn), np.sin(smile_turn)], axis=1)
        eyes = [centre + radius * np.array([side * 0.35, -0.3]) for side in (-1, 1)]
        ink = _polyline(face, brush) | _polyline(smile, brush)
        for eye in eyes:
            ink |= _polyline(np.array([eye, eye + 1]), brush + 4)
    elif kind in DOODLES:
        ink = draw_strokes(DOODLES[kind](rng, CANVAS_SIDE, brush), brush)
    else:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(NON_ITEM_KINDS + HELD_OUT_NON_ITEM_KINDS)}.")
    return Drawing(_to_rgba(ink), kind, None, brush)


def non_item_inputs(count: int, seed: int, photo_share: float | None = None) -> np.ndarray:
    """Model inputs (count, 28, 28) of non-items, prepared as the Classify page does: drawings of every kind in turn,
    and a `photo_share` (None: NON_ITEM_PHOTO_SHARE) of crops of real photos of other things, prepared as uploads
    (`photos.photo_non_item_inputs`)."""
    share = NON_ITEM_PHOTO_SHARE if photo_share is None else photo_share
    photos = round(share * count)
    rng = np.random.default_rng(seed + 1)  # not the benchmark's drawings, which use other seeds
    inputs = np.empty((count, 28, 28), dtype=np.uint8)
    for number in range(count - photos):
        drawing = non_item_drawing(NON_ITEM_KINDS[number % len(NON_ITEM_KINDS)], rng)
        inputs[number] = drawing_input(canvas_ink(drawing.rgba))[0]
    if photos:
        inputs[count - photos :] = photo_non_item_inputs(photos, seed)
    return inputs


def drawing_set(images: np.ndarray, labels: np.ndarray, items_per_kind: int, non_items_per_kind: int,
                seed: int = 0) -> list[Drawing]:
    """The benchmark set: outlines, outlines with inner lines and filled drawings of the first items of
    `images` (classes in turn), then `non_items_per_kind` of each non-item kind; seeded, so always the same."""
    rng = np.random.default_rng(seed)
    # The first items of each class in turn, the same ones for every kind, so the kinds compare item by item.
    per_class = [np.flatnonzero(labels == label) for label in range(10)]
    drawings = []
    for kind in ITEM_KINDS:
        for number in range(items_per_kind):
            label = number % 10
            index = per_class[label][number // 10]
            drawings.append(item_drawing(images[index], int(labels[index]), kind, rng))
    for kind in NON_ITEM_KINDS + HELD_OUT_NON_ITEM_KINDS:  # appended kinds leave the earlier drawings as they were
        drawings += [non_item_drawing(kind, rng) for _ in range(non_items_per_kind)]
    return drawings


def benchmark_set(images: np.ndarray, labels: np.ndarray) -> list[Drawing]:
    """The fixed benchmark drawings (570) made from the test set: the same in the bench and in the tests."""
    return drawing_set(images, labels, BENCHMARK_ITEMS_PER_KIND, BENCHMARK_NON_ITEMS_PER_KIND, BENCHMARK_SEED)


def score_drawings(classifier, drawings: list[Drawing], unsure_below: float | None,
                   fill: bool = True) -> dict[str, dict[str, float]]:
    """Per kind of drawing: the share "named" as their class, "right" (named and not flagged as unsure) and
    "flagged" (answered "unsure / not an item"), through the Classify page's preprocessing and answer."""
    inputs = [prepare_drawing(drawing.rgba, fill) for drawing in drawings]
    blank = np.zeros((28, 28), np.uint8)
    answers = [classifier.answer(blank if prepared is None else prepared.model_input, unsure_below)
               for prepared in inputs]
    scores = {}
    for kind in dict.fromkeys(drawing.kind for drawing in drawings):
        mine = [(drawing, answer) for drawing, answer in zip(drawings, answers, strict=True) if drawing.kind == kind]
        named = [answer.top == drawing.label for drawing, answer in mine]
        flagged = [not answer.confident for _, answer in mine]
        scores[kind] = {
            "count": len(mine),
            "named": float(np.mean(named)),
            "right": float(np.mean([n and not f for n, f in zip(named, flagged, strict=True)])),
            "flagged": float(np.mean(flagged)),
        }
    return scores
