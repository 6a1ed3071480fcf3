"""Why an answer is "Unsure", in plain words, and how to give the model something it can read (#29).

The Classify page shows `unsure_reason(...).message` under an "Unsure" answer. The reason comes from what the
model received (its 28x28 input and probabilities) and, for an upload, the picture itself: a photo whose edges
are busy is a scene or a texture, not one item on a plain background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .data import CLASS_NAMES
from .preprocessing import busy_edges

# In the 28x28 input, pixels above this are part of something; parts smaller than SEPARATE_PART_PIXELS are specks.
LIT_LEVEL, SEPARATE_PART_PIXELS = 25, 8
# Two classes share the doubt when together they hold this much probability and the second has half the first's.
TWO_CLASSES_TOGETHER, SECOND_TO_FIRST = 0.6, 0.5
# A drawing whose strokes cover less than this share of the 28x28 square is lines, not the shape of an item
# (the benchmark's lines and scribbles: 15 % and 23 % in the median; drawn items 29 % and more, 5th percentile).
LINES_AT_MOST = 0.25
KINDS_KNOWN = ("T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags and ankle boots")


@dataclass(frozen=True)
class UnsureReason:
    kind: str  # "scene", "several things", "two classes", "lines" or "unknown"
    message: str  # what the model saw and what to do, in plain words


def unsure_reason(model_input: np.ndarray, probabilities: np.ndarray, picture: Image.Image | None = None
                  ) -> UnsureReason:
    """Why the model is unsure about `model_input` (28x28 uint8) given its `probabilities` (10,): `picture` is the
    uploaded picture as shown, or None for a drawing."""
    first, second = np.argsort(probabilities)[::-1][:2]
    if picture is not None and busy_edges(np.asarray(picture.convert("L"))):
        return UnsureReason("scene", (
            "This looks like a photo of a scene or a texture, not of one item of clothing on a plain background: "
            "the picture's edges are busy, so the model cannot tell an item from what is around it. Photograph one "
            "item on its own, laid flat or hung up against a plain, evenly lit background (a sheet, a wall, the "
            "floor), filling most of the picture."))
    parts, count = ndimage.label(model_input > LIT_LEVEL)
    if count > 1 and np.sum(np.bincount(parts.ravel())[1:] >= SEPARATE_PART_PIXELS) > 1:
        return UnsureReason("several things", (
            "The model sees several separate things, not one item. Fashion-MNIST pictures show a single item: "
            + ("crop the picture to one item, with nothing else in it." if picture is not None else
               "draw one item, in one piece.")))
    if (probabilities[first] + probabilities[second] >= TWO_CLASSES_TOGETHER
            and probabilities[second] >= SECOND_TO_FIRST * probabilities[first]):
        return UnsureReason("two classes", (
            f"It looks like an item of clothing, but the model cannot tell whether it is a {CLASS_NAMES[first]} or a "
            f"{CLASS_NAMES[second]} ({probabilities[first]:.0%} and {probabilities[second]:.0%}). "
            + ("A picture of the whole item from the front, flat and filling the picture, helps." if picture is not
               None else "Drawing what sets it apart (sleeves, a collar, a heel) helps.")))
    if picture is None and np.mean(model_input > LIT_LEVEL) < LINES_AT_MOST:
        return UnsureReason("lines", (
            "This looks like lines or a scribble rather than the shape of an item. Draw the outline of one item of "
            "clothing as a closed line (its inside is filled in for you), or colour it in, big and centred."))
    return UnsureReason("unknown", (
        f"The model does not recognise this as any of the ten kinds of clothing it knows ({KINDS_KNOWN}). "
        + ("Upload a picture of one of them, on its own on a plain background, filling most of the picture."
           if picture is not None else "Draw one of them, big and centred: its outline, or coloured in.")))
