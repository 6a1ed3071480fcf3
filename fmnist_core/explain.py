"""Look inside a model: class activation maps, the feature maps of each conv block, the first layer's filters.

Both maps take the gradient of a class's logit with respect to a conv layer's activations. HiResCAM (Draelos &
Carin, 2020; the default) multiplies gradient and activation position by position, so the map shows exactly
where the score comes from; classic Grad-CAM (Selvaraju et al., 2017) first averages the gradient over each
channel, which can light up places the model does not use. Either way the ReLU of the sum over channels,
upsampled to 28x28, is the map. The layer is the deepest conv block output of at least 14x14 (measured below).
An `Explainer` traces its computations once, under a lock, when made, so one instance can serve several
threads. Models without convolutions get a plain-words reason.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from .data import IMAGE_SIZE
from .inference import as_image_batch

NO_CONV_MESSAGE = (
    "This model has no convolution layers, so there is no spatial map to show: every pixel feeds the "
    "dense layers directly. Grad-CAM, feature maps and filters need a model with at least one conv block."
)
# HiResCAM multiplies gradient and activation at each position; Grad-CAM averages the gradient per channel first
METHODS = ("hirescam", "gradcam")
DEFAULT_METHOD = "hirescam"
# HiResCAM heat mostly on the item, first 1,000 test images, on the first shipped model: 96.9 % at 14x14, 63.2 % at
# the last 7x7. bench/grad_cam.py measures the current model's share and each map's time (bench/RESULTS.md).
MIN_MAP_SIDE = IMAGE_SIZE // 2
_IMAGES_SPEC = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.uint8)
# layers that follow a convolution inside its block and still belong to its output
_CONV_FOLLOWERS = (layers.BatchNormalization, layers.Activation, layers.ReLU)


class ExplainUnavailable(ValueError):
    """The model has nothing this explanation could show (e.g. no convolution layers)."""


@dataclass(frozen=True)
class ClassActivationMaps:
    """Class activation maps (HiResCAM or Grad-CAM, see `method`) for a batch: `heatmaps` (N, 28, 28) in 0..1, for
    `class_indices`, with the probabilities of the network explained, for the image as given (a model that answers
    with the mirror image too, `model.answering_model`, averages these with those of the mirror image)."""

    heatmaps: np.ndarray  # float32; all zero where the class logit has no positive evidence
    class_indices: np.ndarray  # (N,) int
    probabilities: np.ndarray  # (N, 10) float32
    method: str  # one of METHODS


@dataclass(frozen=True)
class FeatureMaps:
    """The output of one conv block for one image: `maps` is (height, width, channels) float32."""

    layer_name: str
    maps: np.ndarray


def _block_output(model: keras.Model, conv: layers.Layer) -> layers.Layer:
    """The conv layer, or the batch norm / activation right after it: the block's activated output."""
    position = model.layers.index(conv)
    output = conv
    for layer in model.layers[position + 1 :]:
        if not isinstance(layer, _CONV_FOLLOWERS):
            break
        output = layer
    return output


def _default_target(model: keras.Model, convs: list[layers.Layer]) -> layers.Layer:
    """The deepest conv block output whose map is at least MIN_MAP_SIDE wide, else the first conv's output."""
    outputs = [_block_output(model, conv) for conv in convs]
    wide = [output for output in outputs if min(output.output.shape[1:3]) >= MIN_MAP_SIDE]
    return wide[-1] if wide else outputs[0]


def _logits_layer(model: keras.Model) -> layers.Layer:
    """The layer named 'logits', else the input of a final softmax, else the model's last layer."""
    names = [layer.name for layer in model.layers]
    if "logits" in names:
        return model.get_layer("logits")
    last = model.layers[-1]
    if isinstance(last, layers.Softmax) and len(model.layers) > 1:
        return model.layers[-2]
    return last


def _feature_layers(model: keras.Model, convs: list[layers.Layer]) -> list[layers.Layer]:
    """One layer per conv block: the block's pooling ('block{b}_pool'), else each conv's activated output."""
    names = {layer.name for layer in model.layers}
    pools = [model.get_layer(f"block{b}_pool") for b in range(1, len(convs) + 1) if f"block{b}_pool" in names]
    return pools or [_block_output(model, conv) for conv in convs]


class Explainer:
    """What a model looks at. Check `unavailable` (a message, or None) before asking for maps."""

    def __init__(self, model: keras.Model, layer_name: str | None = None):
        self.model = model
        self.convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
        self.unavailable: str | None = None if self.convs else NO_CONV_MESSAGE
        if self.unavailable:
            return
        target = model.get_layer(layer_name) if layer_name else _default_target(model, self.convs)
        self.target_layer_name = target.name
        grad_model = keras.Model(model.inputs, [target.output, _logits_layer(model).output])
        self._feature_layers = _feature_layers(model, self.convs)
        feature_model = keras.Model(model.inputs, [layer.output for layer in self._feature_layers])

        def class_activation_map(method: str):
            @tf.function(input_signature=[_IMAGES_SPEC, tf.TensorSpec([None], tf.int32)])
            def cam_of(images, class_indices):
                with tf.GradientTape() as tape:
                    activations, logits = grad_model(images, training=False)
                    logits = tf.cast(logits, tf.float32)  # bfloat16 models: score and softmax in float32
                    scores = tf.gather(logits, class_indices, batch_dims=1)
                # each image's score depends only on its own activations, so one gradient serves the batch
                weights = tf.cast(tape.gradient(scores, activations), tf.float32)
                if method == "gradcam":  # the one difference: one weight per channel, not per position
                    weights = tf.reduce_mean(weights, axis=[1, 2], keepdims=True)
                cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(activations, tf.float32), axis=-1, keepdims=True))
                cam = tf.image.resize(cam, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear")[..., 0]
                peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
                return tf.math.divide_no_nan(cam, peak), tf.nn.softmax(logits)

            return cam_of

        @tf.function(input_signature=[_IMAGES_SPEC])
        def features(images):
            outputs = feature_model(images, training=False)
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
            return [tf.cast(output, tf.float32) for output in outputs]

        self._cams = {method: class_activation_map(method) for method in METHODS}
        self._features = features
        self._lock = threading.Lock()
        with self._lock:  # trace now, so concurrent first calls never trace at the same time
            blank = tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE], tf.uint8)
            for cam_of in self._cams.values():
                cam_of(blank, tf.zeros([1], tf.int32))
            self._features(blank)

    def _require_convs(self) -> None:
        if self.unavailable:
            raise ExplainUnavailable(self.unavailable)

    def cam(self, images: np.ndarray, class_indices: int | np.ndarray | None = None,
            method: str = DEFAULT_METHOD) -> ClassActivationMaps:
        """The `method` map ('hirescam' or 'gradcam') of a (28, 28) image or (N, 28, 28) uint8 batch, for
        `class_indices` (default: the predicted class)."""
        self._require_convs()
        if method not in self._cams:
            raise ValueError(f"method {method!r}: expected one of {', '.join(map(repr, METHODS))}.")
        cam_of = self._cams[method]
        batch = as_image_batch(images)
        if class_indices is None:
            # the predicted class: one pass for the probabilities, then the map for the winner
            _, probabilities = cam_of(tf.constant(batch), tf.zeros([len(batch)], tf.int32))
            class_indices = probabilities.numpy().argmax(axis=1)
        indices = np.broadcast_to(np.asarray(class_indices, dtype=np.int32), (len(batch),))
        if indices.min(initial=0) < 0 or indices.max(initial=0) > 9:
            raise ValueError(f"class index {class_indices!r}: expected 0-9 (one of the 10 Fashion-MNIST classes).")
        heatmaps, probabilities = cam_of(tf.constant(batch), tf.constant(indices))
        return ClassActivationMaps(heatmaps.numpy(), indices.copy(), probabilities.numpy(), method)

    def feature_maps(self, image: np.ndarray) -> list[FeatureMaps]:
        """The output of each conv block for one (28, 28) uint8 image, first block first."""
        self._require_convs()
        batch = as_image_batch(image)[:1]
        outputs = self._features(tf.constant(batch))
        return [FeatureMaps(layer.name, output.numpy()[0]) for layer, output in zip(self._feature_layers, outputs,
                                                                                    strict=True)]

    def first_layer_filters(self) -> np.ndarray:
        """The first conv layer's kernels as (filters, height, width) float32, one input channel."""
        self._require_convs()
        kernel = keras.ops.convert_to_numpy(self.convs[0].kernel).astype(np.float32)  # (h, w, in, filters)
        return np.moveaxis(kernel[:, :, 0, :], -1, 0)
