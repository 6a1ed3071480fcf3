"""AppTest: under an "Unsure" answer the Classify page says in plain words what the model saw and how to take a
picture it can read (#29). The store holds a copy of the shipped model."""

from __future__ import annotations

import pytest
from apptest_support import open_page, serving_models_from, texts, with_shipped_model

from fmnist_core.photos import TRAINING_PHOTOS


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    with serving_models_from(with_shipped_model(tmp_path_factory.mktemp("models"))) as root:
        yield root


def test_a_photo_of_the_sky_is_answered_unsure_saying_it_is_no_item_on_a_plain_background(models_dir):
    at = open_page("views/classify.py")
    sky = (TRAINING_PHOTOS / "bridge-sky.jpg").read_bytes()  # the shipped model: "Unsure", best guess Coat 10 %
    at.file_uploader(key="uploads").set_value([("sky.jpg", sky, "image/jpeg")]).run()

    shown = texts(at.warning)
    assert "This does not look like an item of clothing to the model" in shown
    assert "This looks like a photo of a scene or a texture, not of one item of clothing on a plain background" in shown
    assert "Photograph one item on its own" in shown



def test_a_model_taught_non_items_says_nothing_of_them(models_dir):
    assert "not taught pictures of other things" not in texts(open_page("views/classify.py").caption)  # shipped
