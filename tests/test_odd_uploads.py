"""Odd but valid uploads are not merely survived: the shipped model names the item they show.

Each test puts a real Fashion-MNIST test image into an unusual file (16-bit, CMYK, palette, animated,
transparent over black, EXIF-rotated, TIFF, AVIF, 6000x4000…) and checks that the shipped model in
models/default classifies the prepared upload as the image's true class.
"""

from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from images import encode
from PIL import Image, ImageOps

from fmnist_core.data import CLASS_NAMES
from fmnist_core.inference import Classifier
from fmnist_core.preprocessing import MAX_UPLOAD_BYTES, ImageDecodeError, prepare_upload

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def classifier(shipped_model) -> Classifier:
    return shipped_model.classifier


@pytest.fixture(scope="module")
def examples(classifier, dataset) -> dict[str, tuple[np.ndarray, int]]:
    """Per class name, the first test image the shipped model names correctly with at least 85 %, and its label."""
    probabilities = classifier.probabilities(dataset.test_images[:2000])
    chosen = {}
    for label, name in enumerate(CLASS_NAMES):
        confident = np.flatnonzero((dataset.test_labels[:2000] == label) & (probabilities[:, label] >= 0.85))
        chosen[name] = (dataset.test_images[confident[0]], label)
    return chosen


def enlarged(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Scaled up, as a photo would be: at 28x28, lossy ringing alone can move the bounding box by a pixel."""
    return np.kron(image, np.ones((factor, factor), np.uint8))


def dark_on_transparent(image: np.ndarray, mode: str) -> Image.Image:
    """The item dark and opaque; everything else fully transparent with BLACK as its hidden colour."""
    dark = np.where(image > 0, np.maximum(255 - image.astype(int), 1), 0).astype(np.uint8)
    alpha = np.where(image > 0, 255, 0).astype(np.uint8)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([dark, dark, dark, alpha]))
    if mode == "LA":
        return Image.merge("LA", (Image.fromarray(dark), Image.fromarray(alpha)))
    palette = Image.fromarray(dark, "L").convert("P")  # gray i -> index i; index 0 (black) is transparent
    palette.putpalette([level for gray in range(256) for level in (gray,) * 3])
    return palette


def exif_rotated_jpeg(image: np.ndarray) -> bytes:
    """What a camera held sideways writes: pixels stored rotated, and an EXIF tag saying how to turn them back."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored = Image.fromarray(enlarged(image)).transpose(Image.Transpose.ROTATE_90)
    return encode(stored, "JPEG", exif=exif, quality=95)


def animated_gif(first: np.ndarray, second: np.ndarray) -> bytes:
    frames = [Image.fromarray(first), Image.fromarray(second)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def photo_6000x4000(image: np.ndarray) -> bytes:
    """A 24-megapixel photo: the item dark on a white page, 3000 px tall, off centre."""
    item = ImageOps.invert(Image.fromarray(image)).resize((3000, 3000), Image.Resampling.BICUBIC)
    page = Image.new("L", (6000, 4000), 255)
    page.paste(item, (2500, 400))
    return encode(page, "JPEG", quality=85)


# (class shown, how it is packed into a file, the mode Pillow must see) — one odd kind each
ODD_UPLOADS = {
    "16-bit png": ("Ankle boot", lambda img, other: encode(Image.fromarray(img.astype(np.uint16) * 257), "PNG"),
                   "I;16"),
    "cmyk jpeg": ("Trouser", lambda img, other: encode(Image.fromarray(enlarged(img)).convert("CMYK"), "JPEG",
                                                       quality=95), "CMYK"),
    "palette gif": ("Bag", lambda img, other: encode(Image.fromarray(img).convert("P"), "GIF"), "P"),
    "animated gif (first frame)": ("Sneaker", lambda img, other: animated_gif(img, other), "P"),
    "rgba, transparent over black": ("Dress", lambda img, other: encode(dark_on_transparent(img, "RGBA"), "PNG"),
                                     "RGBA"),
    "la, transparent over black": ("Coat", lambda img, other: encode(dark_on_transparent(img, "LA"), "PNG"), "LA"),
    "palette png, transparent index": ("Sandal", lambda img, other: encode(dark_on_transparent(img, "P"), "PNG",
                                                                           transparency=0), "P"),
    "exif-rotated jpeg": ("Trouser", lambda img, other: exif_rotated_jpeg(img), "L"),
    "interlaced png": ("Pullover", lambda img, other: encode(Image.fromarray(img), "PNG", interlace=1), "L"),
    "progressive jpeg": ("Shirt", lambda img, other: encode(Image.fromarray(enlarged(img)), "JPEG", quality=95,
                                                            progressive=True), "L"),
    "lossy webp": ("Bag", lambda img, other: encode(Image.fromarray(enlarged(img)).convert("RGB"), "WEBP",
                                                    quality=90), "RGB"),
    "bmp": ("T-shirt/top", lambda img, other: encode(Image.fromarray(img), "BMP"), "L"),
    "8-bit tiff": ("Ankle boot", lambda img, other: encode(Image.fromarray(img), "TIFF"), "L"),
    "float tiff": ("Dress", lambda img, other: encode(Image.fromarray(img.astype(np.float32) / 255), "TIFF"), "F"),
    "avif": ("Sneaker", lambda img, other: encode(Image.fromarray(enlarged(img)).convert("RGB"), "AVIF",
                                                  quality=95), "RGB"),
    "6000x4000 jpeg photo": ("Ankle boot", lambda img, other: photo_6000x4000(img), "L"),
}


@pytest.mark.parametrize(("shown", "pack", "mode"), ODD_UPLOADS.values(), ids=ODD_UPLOADS.keys())
def test_an_odd_but_valid_upload_is_classified_as_what_it_shows(classifier, examples, shown, pack, mode):
    image, label = examples[shown]
    other = examples["Pullover" if shown != "Pullover" else "Bag"][0]  # a second frame, never the answer
    data = pack(image, other)
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really is of that odd kind
    assert len(data) <= MAX_UPLOAD_BYTES

    prepared = prepare_upload(data, "odd-file")

    probabilities = classifier.probabilities(prepared.model_input)[0]
    assert CLASS_NAMES[int(probabilities.argmax())] == CLASS_NAMES[label], probabilities.round(3)


def test_the_exif_rotation_matters_for_the_answer(classifier, examples):
    # the same stored pixels without the orientation tag: a trouser lying on its side is no longer a trouser
    image, label = examples["Trouser"]
    sideways = Image.fromarray(enlarged(image)).transpose(Image.Transpose.ROTATE_90)
    prepared = prepare_upload(encode(sideways, "JPEG", quality=95), "sideways.jpg")
    assert int(classifier.probabilities(prepared.model_input)[0].argmax()) != label


@pytest.mark.parametrize(("name", "picture"), [
    ("dot-black.png", lambda: encode(Image.new("L", (1, 1), 0), "PNG")),  # a single pixel is all background
    ("dot-white.png", lambda: encode(Image.new("L", (1, 1), 255), "PNG")),
    ("white.jpg", lambda: encode(Image.new("RGB", (640, 480), (250, 250, 250)), "JPEG")),
    ("strip.png", lambda: encode(Image.new("L", (5000, 3), 0), "PNG")),
    ("clear.png", lambda: encode(Image.new("RGBA", (200, 200), (0, 0, 0, 0)), "PNG")),  # transparent counts as white
])
def test_a_picture_with_nothing_in_it_is_refused_saying_so_instead_of_answered(name, picture):
    with pytest.raises(ImageDecodeError, match=rf"^{re.escape(name)}: nothing was found in the picture to classify: "
                                               r"it is blank, or one colour all over"):
        prepare_upload(picture(), name)


def test_the_server_refuses_uploads_over_the_same_limit_as_the_core():
    # Streamlit's uploader refuses bigger files in the browser, naming them; the core refuses them again
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1_000_000 == MAX_UPLOAD_BYTES
