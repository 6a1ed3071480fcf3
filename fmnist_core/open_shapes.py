"""Drawings of items that are open shapes, as people draw them on the Classify canvas: trousers with their legs
apart (coloured in, or one outline around them), an open jacket (two closed halves, the front left open) and a
sandal (a sole and straps). Their open parts (between the legs, the jacket's front, under the straps) reach the
paper, often through a gap as narrow as those `preprocessing.fill_outlines` bridges in an outline, and must stay
unfilled: Fashion-MNIST shows them dark.

Drawn with the canvas's brush widths at several sizes and positions, seeded: the open kinds of the drawings
benchmark (`bench/drawings.py`) and known answers of `tests/test_drawings.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from .drawings import BRUSH_WIDTHS, CANVAS_SIDE, Drawing, _to_rgba, draw_strokes

TROUSERS, OUTLINED_TROUSERS, JACKET, SANDAL = (
    "trousers apart, coloured in", "trousers apart, outline", "open jacket", "sandal straps")
OPEN_KINDS = (TROUSERS, OUTLINED_TROUSERS, JACKET, SANDAL)
OPEN_LABELS = {TROUSERS: 1, OUTLINED_TROUSERS: 1, JACKET: 4, SANDAL: 5}  # Trouser, Coat, Sandal
BENCHMARK_OPEN_PER_KIND, BENCHMARK_OPEN_SEED = 30, 2

Points = list[tuple[float, float]]  # x, y in canvas pixels (or in the unit box before placing)


def coloured_in(polygon: Points, brush: int, step: float = 0.8) -> Points:
    """One stroke sweeping left and right across `polygon` (canvas points), rows `step` brush widths apart, turning
    half a brush inside its edges: a shape coloured in as people do it (its edges come out a little scalloped)."""
    image = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    ImageDraw.Draw(image).polygon(polygon, fill=1)
    mask = np.asarray(image) > 0
    rows = np.flatnonzero(mask.any(axis=1))
    points: Points = []
    last = rows[-1] - brush / 2
    # rows from the top, then one along the bottom edge, so parts coloured in one after another meet
    ys = [*np.arange(rows[0] + brush / 2, last, step * brush), last] if last >= rows[0] + brush / 2 else []
    rightwards = True
    for y in ys:
        inside = np.flatnonzero(mask[int(y)])
        left, right = inside[0] + brush / 2, inside[-1] - brush / 2
        if right < left:  # narrower than the brush: one dab in the middle
            left = right = (left + right) / 2
        points += [(left, y), (right, y)] if rightwards else [(right, y), (left, y)]
        rightwards = not rightwards
    if not points:  # lower than the brush is wide: one line along its middle
        middle = int((rows[0] + rows[-1]) / 2)
        inside = np.flatnonzero(mask[middle])
        points = [(inside[0] + brush / 2, middle), (max(inside[-1] - brush / 2, inside[0] + brush / 2), middle)]
    return points


def _placed(rng: np.random.Generator, width: float, height: float, brush: int) -> Callable[[Points], Points]:
    """Unit-box points (0-1 across, 0-1 down) to canvas points of a `width` x `height` box placed at random,
    strokes and all inside the canvas."""
    margin = brush / 2 + 4
    left = rng.uniform(margin, CANVAS_SIDE - width - margin)
    top = rng.uniform(margin, CANVAS_SIDE - height - margin)
    return lambda points: [(left + x * width, top + y * height) for x, y in points]


def trousers_apart(rng: np.random.Generator, outline: bool) -> Drawing:
    """Trousers whose legs stand apart below the crotch, their hems at times nearer than the legs are above them
    (flares, or a hand's wobble): coloured in part by part, or one closed outline around them."""
    brush = int(rng.choice(BRUSH_WIDTHS if outline else BRUSH_WIDTHS[1:]))
    height = rng.uniform(160, CANVAS_SIDE - brush - 12)
    width = height * rng.uniform(0.42, 0.58)
    splay = rng.uniform(0.0, 0.06)  # the legs' outer edges lean out by this share of the width
    width_out = width * (1 + 2 * splay)
    place = _placed(rng, width_out, height, brush)
    to_canvas = lambda points: place([((x + splay) / (1 + 2 * splay), y) for x, y in points])  # noqa: E731
    crotch = rng.uniform(0.2, 0.32)
    gap_top = rng.uniform(0.08, 0.22)  # the paper between the legs below the crotch, a share of the width
    gap_hem = gap_top * rng.uniform(0.15, 1.5)  # and between the hems
    if outline:  # one line along the item's edge, round the waist and down and up each leg
        path = [(0.0, 0.0), (1.0, 0.0), (1.0 + splay, 1.0), (0.5 + gap_hem / 2, 1.0), (0.5 + gap_top / 2, crotch),
                (0.5 - gap_top / 2, crotch), (0.5 - gap_hem / 2, 1.0), (-splay, 1.0), (0.0, 0.0)]
        strokes = [to_canvas(path)]
    else:  # the waistband, then each leg, coloured in inside the item's edge
        left_leg = [(0.0, crotch), (0.5 - gap_top / 2, crotch), (0.5 - gap_hem / 2, 1.0), (-splay, 1.0)]
        right_leg = [(1.0 - x, y) for x, y in left_leg]
        waist = [(0.0, 0.0), (1.0, 0.0), (1.0, crotch), (0.0, crotch)]
        step = rng.uniform(0.7, 1.0)
        strokes = [coloured_in(to_canvas(part), brush, step) for part in (waist, left_leg, right_leg)]
    return Drawing(_to_rgba(draw_strokes(strokes, brush)), OUTLINED_TROUSERS if outline else TROUSERS, 1, brush)


def open_jacket(rng: np.random.Generator) -> Drawing:
    """A jacket with long sleeves, worn open: each half one closed outline, the front between them left open from
    the neck to the hem, at times joined at the back of the neck by the collar; a sleeve may hang apart."""
    brush = int(rng.choice(BRUSH_WIDTHS[:4]))
    height = rng.uniform(170, CANVAS_SIDE - brush - 12)
    place = _placed(rng, height * rng.uniform(0.85, 1.0), height, brush)
    neck = rng.uniform(0.16, 0.3)  # the opening at the neck and at the hem, shares of the width
    front = rng.uniform(0.0, 0.12)
    slit = rng.uniform(0.0, 0.05) if rng.random() < 0.5 else 0.0  # the space between sleeve and body at the cuff
    cuff, armpit = rng.uniform(0.12, 0.17), rng.uniform(0.28, 0.38)
    half = [(0.5 - neck / 2, 0.0), (0.2, 0.04), (0.0, rng.uniform(0.85, 0.95)), (cuff, 0.93), (cuff + 0.04, armpit),
            (cuff + slit, 1.0), (0.5 - front / 2, 1.0), (0.5 - neck / 2, 0.0)]
    # the strokes' width is part of the gaps: the lines run half a brush further from the opening
    shift = brush / 2 / height
    half = [(x - shift, y) if x >= 0.5 - neck / 2 - 1e-9 else (x, y) for x, y in half]
    strokes = [place(half), place([(1.0 - x, y) for x, y in half])]
    if rng.random() < 0.5:  # the collar across the back of the neck
        strokes.append(place([(0.5 - neck / 2, 0.0), (0.5, 0.06), (0.5 + neck / 2, 0.0)]))
    return Drawing(_to_rgba(draw_strokes(strokes, brush)), JACKET, 4, brush)


def sandal(rng: np.random.Generator) -> Drawing:
    """A sandal from the side: a sole (a line, or a band coloured in), a heel, and two to four straps arching over
    the foot from the sole, touching it or stopping a little short of it; the toe to the left or to the right."""
    brush = int(rng.choice(BRUSH_WIDTHS[:4]))
    width = rng.uniform(170, CANVAS_SIDE - brush - 12)
    height = width * rng.uniform(0.35, 0.5)
    place = _placed(rng, width, height, brush)
    sole_top = 1.0 - rng.uniform(0.0, 0.12)  # a band from here to the bottom, or just the line at the bottom
    strokes = [coloured_in(place([(0.0, sole_top), (1.0, sole_top), (1.0, 1.0), (0.0, 1.0)]), brush)
               if sole_top < 0.97 else place([(0.0, 1.0), (1.0, 1.0)])]
    heel_top = rng.uniform(0.45, 0.7)
    strokes.append(place([(0.82, sole_top), (0.84, heel_top), (1.0, heel_top), (1.0, sole_top)]))
    count = int(rng.integers(2, 5))
    lift = rng.uniform(0.0, 8.0) / height if rng.random() < 0.5 else 0.0  # straps stopping short of the sole
    foot = sole_top - (brush / 2 + 1) / height - lift  # where a strap's line ends, over the sole's edge
    edges = np.linspace(0.04, 0.8, count + 1)
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        inset = (end - start) * rng.uniform(0.05, 0.2)
        peak = rng.uniform(0.0, 0.35) if start > 0.3 else rng.uniform(0.3, 0.6)  # higher over the instep
        turn = np.linspace(0, np.pi, 9)
        middle, half_width = (start + end) / 2, (end - start) / 2 - inset
        strokes.append(place([(middle - half_width * np.cos(t), foot - (foot - peak) * np.sin(t)) for t in turn]))
    if rng.random() < 0.5:  # the toe to the right
        strokes = [[(2 * place([(0.5, 0.0)])[0][0] - x, y) for x, y in stroke] for stroke in strokes]
    return Drawing(_to_rgba(draw_strokes(strokes, brush)), SANDAL, 5, brush)


def open_drawing(kind: str, rng: np.random.Generator) -> Drawing:
    """One drawing of an open shape of `kind` (one of OPEN_KINDS)."""
    if kind == TROUSERS:
        return trousers_apart(rng, outline=False)
    if kind == OUTLINED_TROUSERS:
        return trousers_apart(rng, outline=True)
    if kind == JACKET:
        return open_jacket(rng)
    if kind == SANDAL:
        return sandal(rng)
    raise ValueError(f"kind={kind!r}: expected one of {', '.join(OPEN_KINDS)}.")


def open_benchmark_set(per_kind: int = BENCHMARK_OPEN_PER_KIND, seed: int = BENCHMARK_OPEN_SEED) -> list[Drawing]:
    """The open shapes of the drawings benchmark: `per_kind` of each of OPEN_KINDS, seeded, so always the same."""
    rng = np.random.default_rng(seed)
    return [open_drawing(kind, rng) for kind in OPEN_KINDS for _ in range(per_kind)]
