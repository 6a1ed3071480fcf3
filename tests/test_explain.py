"""Grad-CAM, feature maps and first-layer filters (fmnist_core.explain)."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
from keras import layers

from fmnist_core.data import CLASS_NAMES
from fmnist_core.explain import METHODS, Explainer, ExplainUnavailable
from fmnist_core.hyperparameters import HyperParameters
from fmnist_core.inference import Classifier
from fmnist_core.model import build_model

ITEM_THRESHOLD = 30  # "item pixels": brighter than this (the background of Fashion-MNIST is 0)
IMAGES_PER_CLASS = 10
HEAT_IMAGES = 200  # the first 200 test images, 16-27 of each class: a fixed set, not chosen by how they look


@pytest.fixture(scope="module")
def shipped(shipped_model):
    """The shipped model, its hyperparameters and its Explainer."""
    return shipped_model.model, shipped_model.saved.hyperparameters, Explainer(shipped_model.model)


@pytest.fixture(scope="module")
def first_of_each_class(dataset):
    """The first IMAGES_PER_CLASS test images of every class (no other selection), and their labels."""
    indices = np.concatenate([np.flatnonzero(dataset.test_labels == label)[:IMAGES_PER_CLASS] for label in range(10)])
    return dataset.test_images[indices], dataset.test_labels[indices].astype(int)


def heat_inside_and_outside(images: np.ndarray, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean heat over each image's item pixels and over the rest."""
    items = images > ITEM_THRESHOLD
    inside = np.array([heat[item].mean() for heat, item in zip(heatmaps, items, strict=True)])
    outside = np.array([heat[~item].mean() for heat, item in zip(heatmaps, items, strict=True)])
    return inside, outside


@pytest.fixture(scope="module")
def first_test_images(dataset):
    return dataset.test_images[:HEAT_IMAGES], dataset.test_labels[:HEAT_IMAGES].astype(int)


def share_with_heat_on_the_item(explainer: Explainer, images: np.ndarray, labels: np.ndarray,
                                method: str) -> np.ndarray:
    """Per image: True when the true-class map has more mean heat on the item than off it."""
    inside, outside = heat_inside_and_outside(images, explainer.cam(images, labels, method=method).heatmaps)
    return inside > outside


# ---- Grad-CAM on the shipped model ------------------------------------------------------------------
def test_grad_cam_shapes_ranges_and_probabilities(shipped, shipped_model, first_of_each_class):
    _, _, explainer = shipped
    images, labels = first_of_each_class
    result = explainer.cam(images, labels)
    assert result.heatmaps.shape == (len(images), 28, 28) and result.heatmaps.dtype == np.float32
    assert np.isfinite(result.heatmaps).all() and result.heatmaps.min() >= 0
    np.testing.assert_allclose(result.heatmaps.max(axis=(1, 2)), 1.0, rtol=1e-6)  # each map normalised to its peak
    np.testing.assert_array_equal(result.class_indices, labels)
    network = Classifier(shipped_model.model)  # the network explained, not averaged with the mirror image
    np.testing.assert_allclose(result.probabilities, network.probabilities(images), atol=1e-5)
    assert result.method == "hirescam"
    assert explainer.target_layer_name == "block2_conv2"  # the deepest 14x14 map (no batch norm in 'default')


def test_grad_cam_defaults_to_the_predicted_class_and_differs_between_classes(shipped, first_of_each_class):
    _, _, explainer = shipped
    image = first_of_each_class[0][0]
    predicted = explainer.cam(image)
    assert predicted.class_indices[0] == predicted.probabilities[0].argmax()
    np.testing.assert_allclose(predicted.heatmaps, explainer.cam(image, predicted.class_indices[0]).heatmaps)
    others = explainer.cam(np.repeat(image[None], 10, axis=0), np.arange(10)).heatmaps
    assert len({heat.round(3).tobytes() for heat in others}) > 5  # not one map for every class


def test_trouser_heat_lies_on_the_item(shipped, first_of_each_class):
    """Trousers are recognised by the legs themselves: every one of the first 10 has more heat on the item."""
    _, _, explainer = shipped
    images, labels = first_of_each_class
    trousers = labels == CLASS_NAMES.index("Trouser")
    inside, outside = heat_inside_and_outside(images[trousers], explainer.cam(images[trousers], 1).heatmaps)
    assert (inside > outside).all(), (inside, outside)


def test_true_class_heat_lies_mostly_on_the_item_for_most_test_images(shipped, first_test_images):
    """Issue #8. Measured with HiResCAM at block2_conv2: 95.5 % of the first 200 (96.9 % of the first 1,000);
    per class 100 % except pullover 96 %, shirt 88 % and bag 67 %."""
    _, _, explainer = shipped
    images, labels = first_test_images
    on_item = share_with_heat_on_the_item(explainer, images, labels, "hirescam")
    per_class = np.array([on_item[labels == label].mean() for label in range(10)])
    assert on_item.mean() >= 0.85, on_item.mean()
    assert (per_class >= 0.7).sum() >= 8, dict(zip(CLASS_NAMES, per_class.round(2), strict=True))


@pytest.mark.parametrize(("layer_name", "method"), [
    # Shares of the first 200 test images, HiResCAM at block2_conv2 being 96 %, on the shipped model trained with
    # sketches (2026-11-26); on the first shipped model they were 51 %, 40 % and 66 % against 95.5 %.
    ("block2_conv2", "gradcam"),  # an averaged gradient also lights the background
    ("block3_conv2", "gradcam"),  # 76.5 %: 7x7 and averaged
    ("block3_conv2", "hirescam"),  # 82 %: 7x7 is too coarse for small shoes
])
def test_classic_grad_cam_and_the_last_conv_layer_put_heat_on_the_item_far_less_often(
        shipped, first_test_images, layer_name, method):
    """Why HiResCAM at 14x14 is the default: the same measurement as above, for the alternatives."""
    model, _, explainer = shipped
    default = share_with_heat_on_the_item(explainer, *first_test_images, "hirescam").mean()
    alternative = share_with_heat_on_the_item(Explainer(model, layer_name), *first_test_images, method).mean()
    assert alternative <= default - 0.1, (alternative, default)  # at least 10 points less often


def test_feature_maps_and_filters_of_the_shipped_model(shipped, first_of_each_class):
    model, hp, explainer = shipped
    blocks = explainer.feature_maps(first_of_each_class[0][0])
    assert [block.layer_name for block in blocks] == [f"block{b}_pool" for b in range(1, hp.num_conv_blocks + 1)]
    assert [block.maps.shape for block in blocks] == [
        (side, side, filters) for side, filters in zip(hp.feature_map_sizes(), hp.filters, strict=True)]
    assert all(block.maps.dtype == np.float32 and block.maps.min() >= 0 for block in blocks)  # after ReLU
    filters = explainer.first_layer_filters()
    assert filters.shape == (hp.filters[0], hp.kernel_size, hp.kernel_size)
    kernel = np.asarray(model.get_layer("block1_conv1").kernel)
    np.testing.assert_array_equal(filters[5], kernel[:, :, 0, 5])


def test_bad_inputs_are_refused_with_what_was_expected(shipped):
    _, _, explainer = shipped
    with pytest.raises(ValueError, match="expected uint8"):
        explainer.cam(np.zeros((28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="expected 0-9"):
        explainer.cam(np.zeros((28, 28), dtype=np.uint8), 10)
    with pytest.raises(ValueError, match="expected one of 'hirescam', 'gradcam'"):
        explainer.cam(np.zeros((28, 28), dtype=np.uint8), 0, method="grad-cam")


def test_concurrent_calls_give_the_same_maps_as_one_by_one(shipped, first_of_each_class):
    _, _, explainer = shipped
    images, labels = first_of_each_class
    expected = explainer.cam(images[:8], labels[:8]).heatmaps
    results: dict[int, np.ndarray] = {}

    def explain(position: int) -> None:
        results[position] = explainer.cam(images[position], labels[position]).heatmaps[0]

    threads = [threading.Thread(target=explain, args=(position,)) for position in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(np.stack([results[position] for position in range(8)]), expected, atol=1e-5)


# ---- known answers on hand-made models ----------------------------------------------------------------
def _pixel_weighting_model(class_0_weights: np.ndarray) -> keras.Model:
    """A 1x1 identity convolution (the 28x28 map Explainer picks) and logits: class 0 sums the weighted pixels."""
    inputs = keras.Input((28, 28), dtype="uint8")
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Rescaling(1 / 255)(x)
    x = layers.Conv2D(1, 1, activation="relu", name="block1_conv1")(x)
    logits = layers.Dense(10, name="logits")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Softmax(name="probabilities")(logits))
    model.get_layer("block1_conv1").set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    logit_weights = np.zeros((784, 10), dtype=np.float32)
    logit_weights[:, 0] = class_0_weights.reshape(-1)
    model.get_layer("logits").set_weights([logit_weights, np.zeros(10)])
    return model


@pytest.fixture(scope="module")
def item_across_the_middle() -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[8:20, 10:18] = 200  # columns 10-17: half left of the middle, half right
    return image


@pytest.mark.parametrize("method", METHODS)
def test_the_map_of_a_model_that_sums_the_pixels_is_the_image_itself(method, item_across_the_middle):
    # every pixel raises the score equally, so both methods give the image, up to scale
    explainer = Explainer(_pixel_weighting_model(np.ones((28, 28))))
    heatmap = explainer.cam(item_across_the_middle, 0, method=method).heatmaps[0]
    np.testing.assert_allclose(heatmap, item_across_the_middle / 200, atol=1e-6)


def test_hirescam_shows_only_the_pixels_the_model_reads_and_grad_cam_does_not(item_across_the_middle):
    left_half = np.zeros((28, 28))
    left_half[:, :14] = 1
    explainer = Explainer(_pixel_weighting_model(left_half))  # the score ignores the right half of the picture
    hirescam = explainer.cam(item_across_the_middle, 0, method="hirescam").heatmaps[0]
    np.testing.assert_allclose(hirescam, item_across_the_middle / 200 * left_half, atol=1e-6)
    # the averaged gradient spreads the left half's evidence over every lit pixel, the unused ones too
    grad_cam = explainer.cam(item_across_the_middle, 0, method="gradcam").heatmaps[0]
    np.testing.assert_allclose(grad_cam, item_across_the_middle / 200, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_a_zero_gradient_gives_an_all_zero_map_not_nan(method):
    image = np.full((28, 28), 128, dtype=np.uint8)
    heatmap = Explainer(_pixel_weighting_model(np.zeros((28, 28)))).cam(image, 3, method=method).heatmaps[0]
    assert np.isfinite(heatmap).all() and not heatmap.any()


# ---- every architecture the hyperparameters can build ------------------------------------------------
@pytest.mark.parametrize(("hp", "target"), [
    (HyperParameters(num_conv_blocks=1, filters=(8,), dense_units=0, dropout_rate=0.0), "block1_conv1"),
    # 'valid' 5x5 convolutions: block 1 ends at 20x20, block 2 at 2x2
    (HyperParameters(num_conv_blocks=2, filters=(8, 16), kernel_size=5, padding="valid", convs_per_block=2,
                     augment=True), "block1_conv2"),
    (HyperParameters(num_conv_blocks=4, filters=(8, 8, 16, 16), batch_norm=True, convs_per_block=2), "block2_relu2"),
    (HyperParameters(num_conv_blocks=3, filters=(8, 16, 16), batch_norm=True, precision="mixed_bfloat16"),
     "block2_relu1"),
])
def test_every_architecture_gives_maps_of_the_right_shapes(hp, target, dataset):
    explainer = Explainer(build_model(hp))  # untrained: shapes, dtypes and ranges do not need training
    assert explainer.unavailable is None and explainer.target_layer_name == target
    for method in METHODS:
        result = explainer.cam(dataset.test_images[:4], dataset.test_labels[:4].astype(int), method=method)
        assert result.heatmaps.shape == (4, 28, 28) and result.heatmaps.dtype == np.float32
        assert np.isfinite(result.heatmaps).all() and 0 <= result.heatmaps.min() and result.heatmaps.max() <= 1
        np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-2)
    blocks = explainer.feature_maps(dataset.test_images[0])
    assert [block.maps.shape for block in blocks] == [
        (side, side, filters) for side, filters in zip(hp.feature_map_sizes(), hp.filters, strict=True)]
    assert all(block.maps.dtype == np.float32 and np.isfinite(block.maps).all() for block in blocks)
    assert explainer.first_layer_filters().shape == (hp.filters[0], hp.kernel_size, hp.kernel_size)


def test_a_model_without_convolutions_says_what_it_cannot_show():
    inputs = keras.Input((28, 28), dtype="uint8")
    x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, layers.Softmax(name="probabilities")(layers.Dense(10, name="logits")(x)))
    explainer = Explainer(model)
    assert "no convolution layers" in explainer.unavailable
    image = np.zeros((28, 28), dtype=np.uint8)
    for explain in (lambda: explainer.cam(image), lambda: explainer.feature_maps(image),
                    explainer.first_layer_filters):
        with pytest.raises(ExplainUnavailable, match="no spatial map"):
            explain()
