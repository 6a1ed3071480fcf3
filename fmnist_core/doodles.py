"""Doodles that are no clothing but closed shapes, as people draw them: a house, a tree, a star, a heart.

Dots, lines, scribbles, letters and smileys (`drawings.non_item_drawing`) taught the model that open marks are no
item; a closed outline, once the Classify page has filled it, is a solid shape like an item's silhouette, and a
house or a tree was named "Bag" (89 %, 76 %; #29). Houses and trees are among the training non-items; stars and
hearts never are, so the drawings benchmark can say how the model does on closed doodles of kinds it never saw.

Each doodle is a list of strokes, each an (N, 2) array of x, y canvas points, drawn by `drawings` with the brush.
"""

from __future__ import annotations

import numpy as np

Strokes = list[np.ndarray]


def _box(rng: np.random.Generator, side: int, brush: int, aspect: float) -> tuple[float, float, float, float]:
    """A random box (left, top, width, height) of the given height-to-width `aspect`, strokes and all inside a
    `side` x `side` canvas, from about two fifths of the canvas to nearly all of it."""
    margin = brush / 2 + 4
    room = side - 2 * margin
    size = rng.uniform(0.4, 0.95) * room
    width, height = (size, size * aspect) if aspect <= 1 else (size / aspect, size)
    left, top = rng.uniform(margin, side - margin - width), rng.uniform(margin, side - margin - height)
    return left, top, width, height


def _rectangle(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    return np.array([(left, top), (right, top), (right, bottom), (left, bottom), (left, top)])


def house(rng: np.random.Generator, side: int, brush: int) -> Strokes:
    """A house: walls, a pitched roof (at times overhanging), a door, often a window, at times a chimney."""
    left, top, width, height = _box(rng, side, brush, rng.uniform(0.8, 1.3))
    right, bottom = left + width, top + height
    eaves = top + height * rng.uniform(0.3, 0.5)
    overhang = width * rng.uniform(0.0, 0.08)
    walls = _rectangle(left + overhang, eaves, right - overhang, bottom)
    roof = np.array([(left, eaves), (left + width * rng.uniform(0.45, 0.55), top), (right, eaves)])
    door_left = left + width * rng.uniform(0.2, 0.55)
    door_width, door_top = width * rng.uniform(0.15, 0.25), bottom - (bottom - eaves) * rng.uniform(0.45, 0.7)
    door = np.array([(door_left, bottom), (door_left, door_top), (door_left + door_width, door_top),
                     (door_left + door_width, bottom)])
    strokes = [walls, roof, door]
    if rng.random() < 0.7:  # a window on the other side of the door
        size = width * rng.uniform(0.12, 0.2)
        x = right - overhang - width * 0.08 - size if door_left < left + width / 2 else left + overhang + width * 0.08
        y = eaves + (bottom - eaves) * 0.2
        strokes.append(_rectangle(x, y, x + size, y + size))
    if rng.random() < 0.4:  # a chimney standing on the roof's right slope
        x = left + width * 0.72
        strokes.append(np.array([(x, top + height * 0.22), (x, top + height * 0.05),
                                 (x + width * 0.08, top + height * 0.05), (x + width * 0.08, top + height * 0.3)]))
    return strokes


def tree(rng: np.random.Generator, side: int, brush: int) -> Strokes:
    """A tree: a trunk under a round, cloudy crown, or a fir of two or three stacked triangles; at times the
    ground drawn under it."""
    left, top, width, height = _box(rng, side, brush, rng.uniform(1.1, 1.6))
    middle, bottom = left + width / 2, top + height
    trunk_half = width * rng.uniform(0.06, 0.12)
    crown_bottom = top + height * rng.uniform(0.6, 0.8)
    strokes = [np.array([(middle - trunk_half, crown_bottom), (middle - trunk_half, bottom),
                         (middle + trunk_half, bottom), (middle + trunk_half, crown_bottom)])]
    if rng.random() < 0.65:  # a round crown, its edge in bumps
        turn = np.linspace(0, 2 * np.pi, 90)
        bumps, depth = int(rng.integers(5, 10)), rng.uniform(0.0, 0.1)
        radius = (1 + depth * np.abs(np.sin(bumps * turn / 2))) / (1 + depth)  # bumps outwards, within the box
        centre_y, half_height = (top + crown_bottom) / 2, (crown_bottom - top) / 2
        strokes.append(np.stack([middle + width / 2 * radius * np.cos(turn),
                                 centre_y + half_height * radius * np.sin(turn)], axis=1))
    else:  # a fir: triangles, each wider and lower than the one above
        tiers = int(rng.integers(2, 4))
        for tier in range(tiers):
            apex = top + (crown_bottom - top) * tier / (tiers + 1)
            base = top + (crown_bottom - top) * (tier + 2) / (tiers + 1)
            half = width / 2 * (tier + 2) / (tiers + 1)
            strokes.append(np.array([(middle - half, base), (middle, apex), (middle + half, base),
                                     (middle - half, base)]))
    if rng.random() < 0.3:  # the ground
        strokes.append(np.array([(left - width * 0.1, bottom), (left + width * 1.1, bottom)]))
    return strokes


def star(rng: np.random.Generator, side: int, brush: int) -> Strokes:
    """A five-pointed star in one closed stroke, turned a little."""
    left, top, width, height = _box(rng, side, brush, 1.0)
    centre, radius = np.array([left + width / 2, top + height / 2]), width / 2
    inner = rng.uniform(0.35, 0.5)
    turn = -np.pi / 2 + rng.uniform(-0.2, 0.2) + np.arange(11) * np.pi / 5
    radii = np.where(np.arange(11) % 2 == 0, 1.0, inner) * radius
    return [centre + np.stack([radii * np.cos(turn), radii * np.sin(turn)], axis=1)]


def heart(rng: np.random.Generator, side: int, brush: int) -> Strokes:
    """A heart in one closed stroke."""
    left, top, width, height = _box(rng, side, brush, rng.uniform(0.85, 1.05))
    turn = np.linspace(0, 2 * np.pi, 80)
    x = 16 * np.sin(turn) ** 3
    y = -(13 * np.cos(turn) - 5 * np.cos(2 * turn) - 2 * np.cos(3 * turn) - np.cos(4 * turn))
    x = left + (x - x.min()) / (x.max() - x.min()) * width
    y = top + (y - y.min()) / (y.max() - y.min()) * height
    return [np.stack([x, y], axis=1)]


DOODLES = {"house": house, "tree": tree, "star": star, "heart": heart}
