"""Real pictures as people upload them: photos that are no item of clothing, and Fashion-MNIST items photographed.

Two pools of non-item photos, of kinds that do not overlap:
- the training pool, `non_item_photos/` beside this file (landscapes, plants, abstract wallpapers and a few objects
  from Debian's lomiri-wallpapers packages, and 13 icons of devices and a house from adwaita-icon-theme, licences in
  its README): crops of them, prepared as uploads are, teach a
  model that a photo of something else is no class (`photo_non_item_inputs`, part of `non_item_fraction`);
- the held-out pool, scikit-image's sample pictures (`HELD_OUT`: the files a user tried, read from the installed
  scikit-image, a test and bench dependency): bricks, a cat, coins, a rocket, a page… never trained on, they say
  whether a model flags real photos it has not seen (`bench/photos.py`).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .preprocessing import prepare_upload, to_model_input

TRAINING_PHOTOS = Path(__file__).resolve().parent / "non_item_photos"
# scikit-image's sample files (skimage/data/) and what they show; none is a picture of clothing. The astronaut is a
# portrait (a person in a flight suit), not one item on a plain background; it is held out, never trained on.
HELD_OUT = {
    "astronaut.png": "portrait", "brick.png": "brick wall", "camera.png": "person with a camera",
    "cell.png": "microscope image", "chelsea.png": "cat", "clock_motion.png": "clock, blurred",
    "coffee.png": "cup of coffee", "coins.png": "coins", "color.png": "colour chart", "grass.png": "grass",
    "gravel.png": "gravel", "horse.png": "horse silhouette", "hubble_deep_field.jpg": "night sky",
    "ihc.png": "stained tissue", "logo.png": "logo", "microaneurysms.png": "retina, close up", "moon.png": "moon",
    "motorcycle_left.png": "motorcycle", "page.png": "page of text", "retina.jpg": "retina", "rocket.jpg": "rocket",
    "text.png": "text",
}
# Debian's adwaita-icon-theme (CC BY-SA 3.0 or LGPL-3): a few of its large icons are training photos
# (non_item_photos/icon-*.jpg); the others, when the theme is installed, are a second held-out set of pictures of one
# thing on a plain background (`other_icon_uploads`). The person of avatar-default is left out of both.
ICON_THEME = Path("/usr/share/icons/Adwaita/512x512")
PHOTO_CROP_SIDE = 320  # px: a crop is resized to about this before it is prepared, the size of a small upload


def held_out_uploads() -> list[tuple[str, bytes]]:
    """The held-out photos as the files a user uploads: (name, bytes) from the installed scikit-image."""
    try:
        from skimage.data import data_dir
    except ImportError as error:  # a test and bench dependency only (requirements-dev.txt)
        raise ImportError("the held-out photos are scikit-image's sample pictures: pip install -r "
                          "requirements-dev.lock") from error
    return [(name, (Path(data_dir) / name).read_bytes()) for name in HELD_OUT]


def other_icon_uploads() -> list[tuple[str, bytes]]:
    """The large Adwaita icons not trained on, as the PNG files a user uploads: (name, bytes); none without the
    icon theme installed."""
    left_out = {path.stem.removeprefix("icon-") for path in TRAINING_PHOTOS.glob("icon-*.jpg")} | {"avatar-default"}
    return [(path.name, path.read_bytes()) for path in sorted(ICON_THEME.glob("*/*.png")) if path.stem not in left_out]


def item_upload(image: np.ndarray, rng: np.random.Generator) -> tuple[str, bytes]:
    """A 28x28 Fashion-MNIST item as a person would upload a picture of it: enlarged to 200-700 px, mostly dark on a
    light background (as the item was photographed before the dataset inverted it), with a margin, a little sensor
    noise, saved as JPEG or PNG. Returns a file name and its bytes."""
    side = int(rng.integers(200, 701))
    item = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
    margin = int(side * rng.uniform(0.0, 0.25))
    light_background = rng.random() < 0.75
    background = rng.uniform(215, 255) if light_background else rng.uniform(0, 25)
    picture = np.full((side + 2 * margin, side + 2 * margin), background, np.float32)
    # the item over its background: light on dark as in the dataset, or inverted onto the light page
    picture[margin : margin + side, margin : margin + side] = (background - item * background / 255 if
                                                               light_background else np.maximum(item, background))
    picture += rng.normal(0.0, rng.uniform(1.0, 5.0), picture.shape)
    photo = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8)).convert("RGB")
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        photo.save(buffer, "JPEG", quality=int(rng.integers(75, 96)))
        return "item.jpg", buffer.getvalue()
    photo.save(buffer, "PNG")
    return "item.png", buffer.getvalue()


def upload_inputs(uploads: list[tuple[str, bytes]]) -> np.ndarray:
    """Model inputs (N, 28, 28) of uploaded files, prepared as the Classify page does; a file it refuses as blank
    gives an empty input (the page answers nothing for it, which counts as flagged)."""
    inputs = np.zeros((len(uploads), 28, 28), np.uint8)
    for number, (name, data) in enumerate(uploads):
        try:
            inputs[number] = prepare_upload(data, name).model_input
        except ValueError:  # ImageDecodeError: "nothing was found in the picture to classify"
            pass
    return inputs


@lru_cache(maxsize=1)
def _training_photos() -> tuple[np.ndarray, ...]:
    """The training pool, gray, decoded once per process."""
    files = sorted(TRAINING_PHOTOS.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no photos in {TRAINING_PHOTOS}: the non-item photos ship with the code.")
    return tuple(np.asarray(Image.open(file).convert("L")) for file in files)


def photo_non_item_inputs(count: int, seed: int) -> np.ndarray:
    """Model inputs (count, 28, 28) of random crops of the training pool (a fifth to all of a photo's shorter side,
    anywhere, maybe mirrored), each resized as a small upload and prepared as uploads are. Crops with nothing to
    classify (plain sky) are drawn again."""
    rng = np.random.default_rng(seed + 2)  # not the seeds of the drawn non-items
    photos = _training_photos()
    inputs = np.empty((count, 28, 28), dtype=np.uint8)
    number = 0
    while number < count:
        photo = photos[int(rng.integers(len(photos)))]
        height, width = photo.shape
        side = int(min(height, width) * rng.uniform(0.2, 1.0))
        crop_height = min(height, int(side * rng.uniform(0.75, 1.33)))
        top, left = int(rng.integers(0, height - crop_height + 1)), int(rng.integers(0, width - side + 1))
        crop = Image.fromarray(photo[top : top + crop_height, left : left + side])
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        scale = PHOTO_CROP_SIDE / max(crop.size)
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                           Image.Resampling.BILINEAR)
        model_input, _inverted = to_model_input(np.asarray(crop))
        if model_input.any():
            inputs[number] = model_input
            number += 1
    return inputs
