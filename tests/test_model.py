"""The model builder: output shape, probabilities, parameter counts, scaling inside the model."""

import numpy as np
import pytest

from fmnist_core.hyperparameters import PRESETS, HyperParameters
from fmnist_core.model import answering_model, build_model, conv_layer_names


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_builds_with_the_predicted_parameter_count(name):
    hp = PRESETS[name]
    model = build_model(hp)
    assert model.count_params() == hp.parameter_count()
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)
    assert len(conv_layer_names(model)) == hp.num_conv_blocks * hp.convs_per_block


@pytest.mark.parametrize(
    "hp",
    [
        HyperParameters(num_conv_blocks=1, filters=(8,), dense_units=0, dropout_rate=0.0),
        HyperParameters(num_conv_blocks=4, filters=(8, 8, 16, 16), batch_norm=True, convs_per_block=2),
        HyperParameters(num_conv_blocks=2, filters=(8, 16), kernel_size=5, padding="valid", augment=True),
    ],
)
def test_odd_architectures_give_probabilities_for_raw_uint8_images(hp):
    model = build_model(hp)
    images = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.count_params() == hp.parameter_count()


def test_scaling_happens_inside_the_model():
    model = build_model(HyperParameters(num_conv_blocks=1, filters=(8,)))
    scale = model.get_layer("scale_0_1")
    assert scale.scale == pytest.approx(1 / 255)
    assert model.get_layer("probabilities") is not None and model.get_layer("logits") is not None


def test_mirror_average_answers_with_the_mean_over_the_image_and_its_mirror_image():
    hp = HyperParameters(num_conv_blocks=1, filters=(8,), dense_units=16, augment=True)
    model = build_model(hp)
    assert answering_model(model, hp) is model  # mirror_average off: the network answers alone
    answering = answering_model(model, hp.with_changes(mirror_average=True))
    images = np.random.default_rng(1).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    mirrored = images[:, :, ::-1].copy()
    own, of_mirror = np.asarray(model(images, training=False)), np.asarray(model(mirrored, training=False))
    assert np.abs(own - of_mirror).max() > 1e-3  # the network alone tells an image from its mirror image
    answers = np.asarray(answering(images, training=False))
    np.testing.assert_allclose(answers, (own + of_mirror) / 2, atol=1e-6)
    np.testing.assert_allclose(np.asarray(answering(mirrored, training=False)), answers, atol=1e-6)
    assert answering.input_shape == (None, 28, 28) and answering.output_shape == (None, 10)
