"""The model builder: hyperparameters in, an uncompiled `keras.Model` out, with no side effects.

The model takes raw uint8 images of shape (28, 28), values 0-255, and scales them itself, so dataset
images and user drawings take exactly the same path. Its output is the 10 class probabilities
(a softmax layer named "probabilities" on top of a logits layer named "logits", which the class activation maps use).
Augmentation layers sit inside the model too; Keras runs them only while training.
`answering_model` adds what happens after training: the average over the image and its mirror image.
"""

from __future__ import annotations

import keras
from keras import layers

from .cpu import precision_for_this_cpu
from .data import IMAGE_SIZE, NUM_CLASSES
from .hyperparameters import HyperParameters

AUGMENT_SHIFT_PIXELS = 2


def build_model(hp: HyperParameters) -> keras.Model:
    """Build the CNN, MLP or softmax regression `hp` describes (uncompiled, initialised by the global seed)."""
    # Each layer gets the dtype policy itself (no global keras.mixed_precision state, which other
    # sessions' models would share); the final softmax always computes in float32.
    dtype = precision_for_this_cpu(hp.precision)
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="image")
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(inputs)
    x = layers.Rescaling(1.0 / 255.0, dtype=dtype, name="scale_0_1")(x)
    if hp.augment:
        shift = AUGMENT_SHIFT_PIXELS / IMAGE_SIZE
        x = layers.RandomTranslation(
            shift, shift, fill_mode="constant", seed=hp.seed, dtype=dtype, name="random_shift"
        )(x)
        x = layers.RandomFlip("horizontal", seed=hp.seed, dtype=dtype, name="random_flip")(x)
    for block, block_filters in enumerate(hp.filters, start=1):
        for conv in range(1, hp.convs_per_block + 1):
            x = layers.Conv2D(
                block_filters, hp.kernel_size, padding=hp.padding, use_bias=not hp.batch_norm,
                activation=None if hp.batch_norm else "relu", dtype=dtype, name=f"block{block}_conv{conv}",
            )(x)
            if hp.batch_norm:
                x = layers.BatchNormalization(dtype=dtype, name=f"block{block}_bn{conv}")(x)
                x = layers.Activation("relu", dtype=dtype, name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, dtype=dtype, name=f"block{block}_pool")(x)
    x = layers.Flatten(dtype=dtype, name="flatten")(x)
    # Dropout follows every hidden dense layer (or the flattened maps when there is none); the first
    # ones keep the names "dense" and "dropout" that the CNNs always had.
    for layer, units in enumerate(hp.dense_layer_units() or (None,), start=1):
        suffix = "" if layer == 1 else f"_{layer}"
        if units is not None:
            x = layers.Dense(units, activation="relu", dtype=dtype, name=f"dense{suffix}")(x)
        if hp.dropout_rate:
            x = layers.Dropout(hp.dropout_rate, seed=hp.seed, dtype=dtype, name=f"dropout{suffix}")(x)
    logits = layers.Dense(NUM_CLASSES, dtype=dtype, name="logits")(x)
    probabilities = layers.Softmax(dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="fmnist_cnn")


def answering_model(model: keras.Model, hp: HyperParameters) -> keras.Model:
    """The model that gives a trained model's answers: `model` itself, or with `hp.mirror_average` a model that
    averages `model`'s probabilities for each image and its mirror image. Same input and output as `model`; made
    of Keras's own operations only, so its exports and its .keras file load anywhere, in safe mode too.
    The explanations (class activation maps) stay those of `model`, which has the layers they read."""
    if not hp.mirror_average:
        return model
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="image")
    mirrored = keras.ops.flip(inputs, axis=2)  # left-right: the flip `augment` trains with
    probabilities = layers.Average(name="mirror_average")([model(inputs), model(mirrored)])
    return keras.Model(inputs, probabilities, name=f"{model.name}_mirror_average")


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's convolution layers, in order."""
    return [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
