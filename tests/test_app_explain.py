"""AppTests of the look-inside views: Grad-CAM on Classify and Evaluate, and the Dataset page."""

from __future__ import annotations

import json

import keras
import pytest
from apptest_support import open_page, serving_models_from, texts, with_shipped_model
from images import encode
from keras import layers
from streamlit.testing.v1 import AppTest

from fmnist_core.data import CLASS_NAMES

TROUSER_TEST_IMAGE = 2  # test image #2 is a trouser the shipped model names with near certainty
CAM_NAMES = ("HiResCAM", "Grad-CAM")  # how the heatmap captions start


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A store with a copy of the shipped model and 'no-conv', a softmax regression with no convolutions."""
    root = with_shipped_model(tmp_path_factory.mktemp("models"))
    inputs = keras.Input((28, 28), dtype="uint8", name="image")
    x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, layers.Softmax(name="probabilities")(layers.Dense(10, name="logits")(x)))
    (root / "no-conv").mkdir()
    model.save(root / "no-conv" / "model.keras")
    card = json.loads((root / "default" / "card.json").read_text())  # a valid card; only the weights differ
    (root / "no-conv" / "card.json").write_text(json.dumps({**card, "preset": None}))
    with serving_models_from(root):
        yield root


def image_captions(at: AppTest) -> list[str]:
    """The captions of every image on the page, in order."""
    return [image.caption for element in at.image for image in element.proto.imgs]


def upload_trouser(at: AppTest, dataset) -> None:
    at.file_uploader(key="uploads").set_value([
        ("trouser.png", encode(dataset.test_images[TROUSER_TEST_IMAGE]), "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [metric.value for metric in at.metric if metric.label == "Prediction"] == ["Trouser"]


# ---- Classify -----------------------------------------------------------------------------------------
def test_classify_explains_an_upload_for_the_predicted_class_and_a_chosen_one(models_dir, dataset):
    at = open_page("views/classify.py")
    upload_trouser(at, dataset)
    assert not any(caption.startswith(CAM_NAMES) for caption in image_captions(at))  # only on request
    why = next(toggle for toggle in at.toggle if toggle.key.startswith("why_upload_"))
    why.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "HiResCAM for Trouser" in image_captions(at)  # the predicted class and the default method first
    assert "block2_conv2" in texts(at.caption)
    feature_titles = [markdown.value for markdown in at.markdown if "maps of" in markdown.value]
    assert feature_titles == ["**block1_pool**: 32 maps of 14×14", "**block2_pool**: 64 maps of 7×7",
                              "**block3_pool**: 128 maps of 3×3"]
    assert "The 32 kernels of the first conv layer" in texts(at.caption)

    chooser = next(box for box in at.selectbox if box.key.startswith("cam_class_upload_"))
    chooser.set_value("Bag").run()
    assert "HiResCAM for Bag" in image_captions(at) and "HiResCAM for Trouser" not in image_captions(at)


def test_classify_switches_to_classic_grad_cam(models_dir, dataset):
    at = open_page("views/classify.py")
    upload_trouser(at, dataset)
    next(toggle for toggle in at.toggle if toggle.key.startswith("why_upload_")).set_value(True).run()
    method = next(radio for radio in at.radio if radio.key.startswith("cam_method_upload_"))
    assert method.options == ["HiResCAM (default, faithful per position)", "Grad-CAM (classic)"]
    assert "averages the gradient" in method.help
    heat = next(element for element in at.image if element.proto.imgs[0].caption == "HiResCAM for Trouser")
    method.set_value("gradcam").run()
    assert not at.exception, [e.value for e in at.exception]
    classic = next(element for element in at.image if element.proto.imgs[0].caption == "Grad-CAM for Trouser")
    assert classic.proto.imgs[0].url != heat.proto.imgs[0].url  # a different map, not just a new caption


def test_classify_says_what_a_model_without_convolutions_cannot_show(models_dir, dataset):
    at = open_page("views/classify.py", model="no-conv")
    at.file_uploader(key="uploads").set_value([
        ("trouser.png", encode(dataset.test_images[TROUSER_TEST_IMAGE]), "image/png")]).run()
    next(toggle for toggle in at.toggle if toggle.key.startswith("why_upload_")).set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "This model has no convolution layers" in texts(at.info)
    assert not any(caption.startswith(CAM_NAMES) for caption in image_captions(at))


@pytest.mark.slow
# ---- Evaluate -----------------------------------------------------------------------------------------
def test_evaluate_shows_grad_cam_of_the_predicted_and_the_true_class_of_a_mistake(models_dir):
    at = open_page("views/evaluate.py")
    at.selectbox(key="filter_true").set_value("Shirt")
    at.selectbox(key="filter_pred").set_value("T-shirt/top").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"T-shirt/top (predicted)", "Shirt (true)"} <= set(image_captions(at))
    assert "Where the model found evidence (HiResCAM) for each class:" in texts(at.caption)  # the default method


def test_evaluate_with_a_model_without_convolutions_still_lists_its_mistakes(models_dir):
    at = open_page("views/evaluate.py", model="no-conv")
    assert "This model has no convolution layers" in texts(at.info)
    assert any(button.key.startswith("inspect_") for button in at.button if button.key)


# ---- Dataset ------------------------------------------------------------------------------------------
def test_dataset_page_shows_balance_mean_images_and_shuffles_its_examples(models_dir):
    at = open_page("views/dataset.py")
    assert at.title[0].value == "Dataset explorer"
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [trace["name"] for trace in bars] == ["training set", "test set"]
    assert bars[0]["y"] == [6000] * 10 and bars[1]["y"] == [1000] * 10 and bars[0]["x"] == list(CLASS_NAMES)
    assert image_captions(at)[:10] == list(CLASS_NAMES)  # the mean images
    assert "drawn with seed 0" in texts(at.caption)
    before = [element.proto.imgs[0].url for element in at.image][10:]
    assert len(before) == 10  # one row of examples per class

    at.button(key="shuffle_examples").click().run()
    assert "drawn with seed 1" in texts(at.caption)
    after = [element.proto.imgs[0].url for element in at.image][10:]
    assert after != before
