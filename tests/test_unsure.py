"""What the Classify page says under an "Unsure" answer (fmnist_core.unsure): what the model saw, in plain words, and
how to give it a picture or drawing it can read (#29). No model is needed: the reason depends on the picture, the
28x28 input and the probabilities."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fmnist_core.data import CLASS_NAMES
from fmnist_core.photos import TRAINING_PHOTOS, item_upload
from fmnist_core.preprocessing import ImageDecodeError, prepare_drawing, prepare_upload
from fmnist_core.unsure import unsure_reason

UNDECIDED = np.full(10, 0.1, np.float32)  # no class stands out


def test_a_photo_of_a_texture_is_said_to_be_a_scene_not_one_item_on_a_plain_background():
    prepared = prepare_upload((TRAINING_PHOTOS / "texture.jpg").read_bytes(), "texture.jpg")
    reason = unsure_reason(prepared.model_input, UNDECIDED, prepared.original)
    assert reason.kind == "scene"
    assert "not of one item of clothing on a plain background" in reason.message
    assert "plain, evenly lit background" in reason.message  # and how to take one it can read


def test_test_items_photographed_on_a_plain_page_are_never_called_a_scene(dataset):
    rng = np.random.default_rng(1)
    for image in dataset.test_images[:40]:
        name, data = item_upload(image, rng)
        prepared = prepare_upload(data, name)
        assert unsure_reason(prepared.model_input, UNDECIDED, prepared.original).kind != "scene"


def test_two_separate_things_are_said_to_be_several():
    model_input = np.zeros((28, 28), np.uint8)
    model_input[4:24, 2:11] = 200
    model_input[4:24, 17:26] = 200
    reason = unsure_reason(model_input, UNDECIDED, Image.new("RGB", (100, 100), "white"))
    assert reason.kind == "several things" and "crop the picture to one item" in reason.message


def test_a_doubt_between_two_classes_names_both():
    probabilities = np.full(10, 0.3 / 8, np.float32)
    probabilities[CLASS_NAMES.index("Shirt")], probabilities[CLASS_NAMES.index("T-shirt/top")] = 0.38, 0.32
    model_input = np.zeros((28, 28), np.uint8)
    model_input[2:26, 4:24] = 200
    reason = unsure_reason(model_input, probabilities)
    assert reason.kind == "two classes"
    assert "a Shirt or a T-shirt/top (38% and 32%)" in reason.message


def drawn(*strokes: tuple[int, int, int, int]) -> np.ndarray:
    """The canvas's image_data with black strokes 12 px wide (top, left, bottom, right boxes of ink)."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    for top, left, bottom, right in strokes:
        rgba[top:bottom, left:right, 3] = 255
    return rgba


def test_a_drawn_line_is_said_to_be_lines_not_the_shape_of_an_item():
    model_input = prepare_drawing(drawn((40, 130, 240, 142), (40, 60, 52, 142))).model_input  # an upside-down L
    reason = unsure_reason(model_input, UNDECIDED)
    assert reason.kind == "lines" and "Draw the outline of one item" in reason.message


def test_anything_else_is_told_the_ten_kinds_the_model_knows():
    model_input = prepare_drawing(drawn((60, 60, 220, 220))).model_input  # a square block
    reason = unsure_reason(model_input, UNDECIDED)
    assert reason.kind == "unknown" and "ankle boots" in reason.message and reason.message.endswith("coloured in.")


@pytest.mark.parametrize("seed", [0, 1])
def test_a_busy_photo_in_which_nothing_is_found_is_refused_as_a_scene_not_as_blank(seed):
    noise = np.random.default_rng(seed).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # gravel, static, leaves
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    with pytest.raises(ImageDecodeError, match=r"^busy\.png: nothing was found in the picture to classify: it looks "
                                               r"like a photo of a scene or a texture"):
        prepare_upload(buffer.getvalue(), "busy.png")
