"""Real pictures as people upload them (fmnist_core.photos): the two pools of non-item photos kept apart, the crops
that teach a model what a photo of something else is, and the shipped model on held-out photos and on test items
photographed, against the targets of bench/photos.py (#29)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fmnist_core.drawings import non_item_inputs
from fmnist_core.photos import (
    HELD_OUT,
    ICON_THEME,
    TRAINING_PHOTOS,
    item_upload,
    other_icon_uploads,
    photo_non_item_inputs,
    upload_inputs,
)

ITEMS_PER_CLASS = 50  # test items of each class photographed as uploads


def test_every_training_photo_is_listed_with_its_author_and_licence():
    readme = (TRAINING_PHOTOS / "README.md").read_text()
    files = sorted(path.name for path in TRAINING_PHOTOS.glob("*.jpg"))
    licences = r"CC0 1\.0|CC BY 4\.0|CC BY-SA [34]\.0"
    listed = re.findall(rf"^\| (\S+\.jpg) \| \S+ \| .+ \| ({licences}) \|$", readme, re.MULTILINE)
    assert files and sorted(name for name, _licence in listed) == files
    assert sum(path.stat().st_size for path in TRAINING_PHOTOS.glob("*.jpg")) < 1_000_000


def test_the_held_out_photos_are_none_of_the_training_photos():
    assert not {name.rsplit(".", 1)[0] for name in HELD_OUT} & {path.stem for path in TRAINING_PHOTOS.glob("*.jpg")}


def test_the_held_out_icons_are_none_of_the_training_icons():
    held_out = {name.removesuffix(".png") for name, _data in other_icon_uploads()}
    trained = {path.stem.removeprefix("icon-") for path in TRAINING_PHOTOS.glob("icon-*.jpg")}
    assert len(trained) == 13 and not held_out & trained and "avatar-default" not in held_out
    assert not ICON_THEME.is_dir() or len(held_out) >= 50  # Debian's adwaita-icon-theme 43 has 73 large icons


def test_photo_crops_are_model_inputs_seeded_and_never_blank():
    crops = photo_non_item_inputs(30, seed=5)
    assert crops.shape == (30, 28, 28) and crops.dtype == np.uint8
    assert all(crop.any() for crop in crops)
    np.testing.assert_array_equal(crops, photo_non_item_inputs(30, seed=5))


def test_non_items_are_drawings_then_photo_crops_in_the_share_asked_for():
    mixed = non_item_inputs(20, seed=3, photo_share=0.5)
    np.testing.assert_array_equal(mixed[:10], non_item_inputs(10, seed=3, photo_share=0.0))
    np.testing.assert_array_equal(mixed[10:], photo_non_item_inputs(10, seed=3))


@pytest.fixture(scope="module")
def items_as_uploads(dataset):
    """500 test items (50 of each class) photographed as a person would, as the Classify page prepares them; and their
    indices in the test set."""
    rng = np.random.default_rng(0)
    chosen = np.concatenate([np.flatnonzero(dataset.test_labels == label)[:ITEMS_PER_CLASS] for label in range(10)])
    uploads = [item_upload(dataset.test_images[index], rng) for index in chosen]
    return upload_inputs(uploads), chosen


def test_test_items_uploaded_as_photos_are_named_as_well_as_the_items_themselves(shipped_model, items_as_uploads,
                                                                                   dataset):
    # bench/photos.py measures 1,000 items against the target (named right >= 93 %); here 500, against the same
    # items given to the model as they are in the dataset. (With 200 the two shares were 2-3 points apart by chance:
    # the models shipped at 17:17 and 22:24 on 2026-12-04 both named 91 % of the 200 uploads right, and 91 % and
    # 94 % of the same items as they are; of 500, both 93.8 % of the uploads, and 92.4 % and 94.8 %.)
    inputs, chosen = items_as_uploads
    labels = dataset.test_labels[chosen]

    def right_and_flagged(images):
        probabilities = shipped_model.classifier.probabilities(images)
        confident = probabilities.max(axis=1) >= shipped_model.saved.unsure_below
        return np.mean(confident & (probabilities.argmax(axis=1) == labels)), np.mean(~confident)

    (right, flagged), (right_as_is, _) = right_and_flagged(inputs), right_and_flagged(dataset.test_images[chosen])
    assert right >= right_as_is - 0.02
    assert flagged <= 0.03


def test_held_out_photos_are_flagged_as_not_clothing(shipped_model):
    # the shipped model of 2026-12-04 22:24 flags 20 of the 22 (the page and the text are named); the one of 17:17
    # (the first with photo crops and icons among its non-items) flagged 21 (gravel named), the one before 19
    pytest.importorskip("skimage")
    from fmnist_core.photos import held_out_uploads

    probabilities = shipped_model.classifier.probabilities(upload_inputs(held_out_uploads()))
    assert np.mean(probabilities.max(axis=1) < shipped_model.saved.unsure_below) >= 0.90


def test_icons_not_trained_on_are_flagged_as_not_clothing(shipped_model):
    icons = other_icon_uploads()
    if not icons:
        pytest.skip(f"Debian's adwaita-icon-theme is not installed ({ICON_THEME})")
    probabilities = shipped_model.classifier.probabilities(upload_inputs(icons))
    # measured: 90 % of the 60 by the model shipped at 2026-12-04 17:17, 78 % (47) by the one shipped at 22:24, which
    # was taught houses and trees among its drawn non-items and otherwise trained the same; `quick` with no
    # non-items flags 12 %
    assert np.mean(probabilities.max(axis=1) < shipped_model.saved.unsure_below) >= 0.75
