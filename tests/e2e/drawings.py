"""Items drawn on the Classify canvas as mouse strokes; points are fractions of the canvas side (0 to 1).

Fashion-MNIST items are solid shapes filling the picture, so the drawings are filled in with a wide brush:
an outline alone reads as a sandal to the model. Each was checked against the shipped model in the browser.
"""

from __future__ import annotations

import math

Point = tuple[float, float]
Stroke = list[Point]

BRUSH_WIDTH = 25  # px on the 280 px canvas; about 2.5 px of the 28x28 input, like a trouser leg's edge


def zigzag(left: float, right: float, top: float, bottom: float, brush: int = BRUSH_WIDTH) -> Stroke:
    """One stroke sweeping left and right down a box, rows closer than the brush: a filled rectangle."""
    step = 0.8 * brush / 280
    points, y, rightwards = [], top, True
    while y <= bottom + 1e-9:
        points += [(left, y), (right, y)] if rightwards else [(right, y), (left, y)]
        y, rightwards = y + step, not rightwards
    return points


# A pair of trousers: a waistband across the top and two long legs, each leg two strokes wide, reaching the bottom.
TROUSER: list[Stroke] = [
    [(0.30, 0.95), (0.33, 0.06), (0.67, 0.06), (0.70, 0.95)],
    [(0.38, 0.95), (0.40, 0.10), (0.60, 0.10), (0.62, 0.95)],
    [(0.35, 0.10), (0.65, 0.10)],
    [(0.35, 0.20), (0.65, 0.20)],
]

# A bag: a wide filled rectangle with a handle standing on its top edge.
BAG: list[Stroke] = [
    zigzag(0.05, 0.95, 0.40, 0.85),
    [(0.30, 0.40), (0.30, 0.20), (0.70, 0.20), (0.70, 0.40)],
]


# ---- outlines, as most people draw first: one closed line around the item, not coloured in -----------------
OUTLINE_BRUSH_WIDTH = 8  # px: a thin pen; the default brush (18 px) is tried too

T_SHIRT_OUTLINE: list[Stroke] = [[
    (0.40, 0.14), (0.25, 0.18), (0.08, 0.38), (0.20, 0.47), (0.28, 0.38), (0.28, 0.90), (0.72, 0.90),
    (0.72, 0.38), (0.80, 0.47), (0.92, 0.38), (0.75, 0.18), (0.60, 0.14), (0.50, 0.22), (0.40, 0.14),
]]

TROUSER_OUTLINE: list[Stroke] = [[
    (0.30, 0.06), (0.70, 0.06), (0.75, 0.94), (0.56, 0.94), (0.50, 0.36), (0.44, 0.94), (0.25, 0.94), (0.30, 0.06),
]]

DRESS_OUTLINE: list[Stroke] = [[
    (0.40, 0.06), (0.60, 0.06), (0.66, 0.10), (0.61, 0.40), (0.80, 0.94), (0.20, 0.94), (0.39, 0.40),
    (0.34, 0.10), (0.40, 0.06),
]]

BAG_OUTLINE: list[Stroke] = [
    [(0.10, 0.40), (0.90, 0.40), (0.90, 0.88), (0.10, 0.88), (0.10, 0.40)],
    [(0.32, 0.40), (0.32, 0.18), (0.68, 0.18), (0.68, 0.40)],
]

SNEAKER_OUTLINE: list[Stroke] = [[
    (0.06, 0.52), (0.06, 0.70), (0.94, 0.70), (0.94, 0.60), (0.62, 0.48), (0.46, 0.36), (0.30, 0.38),
    (0.24, 0.48), (0.06, 0.52),
]]

# Not clothing: a smiley, a closed circle (its inside is filled in like an outline's) with eyes and a mouth.
SMILEY: list[Stroke] = [
    [(0.5 + 0.38 * math.cos(2 * math.pi * step / 32), 0.5 + 0.38 * math.sin(2 * math.pi * step / 32))
     for step in range(33)],
    [(0.38, 0.38), (0.385, 0.385)],
    [(0.62, 0.38), (0.625, 0.385)],
    [(0.5 + 0.2 * math.cos(math.pi * step / 8), 0.55 + 0.14 * math.sin(math.pi * step / 8)) for step in range(1, 8)],
]

# Not clothing: a house drawn without lifting the pen (walls and roof), then its door; filled in, a solid block with
# a pitched top, which a model not taught houses named "Bag" (#29).
HOUSE: list[Stroke] = [
    [(0.20, 0.88), (0.20, 0.45), (0.50, 0.16), (0.80, 0.45), (0.80, 0.88), (0.20, 0.88)],
    [(0.44, 0.88), (0.44, 0.66), (0.58, 0.66), (0.58, 0.88)],
]

# Not clothing: one click of the default brush in the middle of the square.
DOT: list[Stroke] = [[(0.50, 0.50), (0.505, 0.505)]]


# ---- open shapes (#29): what a person left open must stay open -----------------------------------------------
def coloured_in_parts(parts: list[list[Point]], brush: int) -> list[Stroke]:
    """Polygons (fractions of the canvas side) each coloured in with one back-and-forth stroke, as people colour in
    (fmnist_core.open_shapes.coloured_in, on the 280 px canvas)."""
    from fmnist_core.open_shapes import CANVAS_SIDE, coloured_in

    return [[(x / CANVAS_SIDE, y / CANVAS_SIDE) for x, y in coloured_in([(x * CANVAS_SIDE, y * CANVAS_SIDE)
                                                                          for x, y in part], brush)]
            for part in parts]


COLOURING_BRUSH_WIDTH = 18  # px: the canvas's default brush
# Straight trousers coloured in part by part, the legs 12 px apart (as tests/test_drawings.py's TROUSERS): the fill
# once painted the space between the legs grey, and the model answered "Unsure".
TROUSERS_LEGS_APART: list[Stroke] = coloured_in_parts(
    [[(0.30, 0.06), (0.70, 0.06), (0.70, 0.22), (0.30, 0.22)],
     [(0.30, 0.22), (0.479, 0.22), (0.479, 0.94), (0.30, 0.94)],
     [(0.521, 0.22), (0.70, 0.22), (0.70, 0.94), (0.521, 0.94)]], COLOURING_BRUSH_WIDTH)
