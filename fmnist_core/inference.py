"""Inference: class probabilities for one or many 28x28 images, through a compiled, warmed-up call.

`model.predict` costs 50-70 ms for a single image here; a traced `tf.function` costs under 1 ms.
A `Classifier` is safe to call from several threads at once: it is traced once, under a lock, when made.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .data import IMAGE_SIZE

PREDICT_CHUNK = 1000


def as_image_batch(images: np.ndarray, allow_empty: bool = False) -> np.ndarray:
    """A (28, 28) image or (N, 28, 28) batch of uint8 pixels as an (N, 28, 28) batch: what every model call takes
    (classifying, explaining). Raises ValueError naming the shape and dtype it got."""
    batch = np.asarray(images)
    if batch.ndim == 2:
        batch = batch[None]
    if (batch.ndim != 3 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or batch.dtype != np.uint8
            or not (len(batch) or allow_empty)):
        raise ValueError(
            f"images of shape {np.shape(images)} and dtype {np.asarray(images).dtype}: expected uint8 (28, 28) or "
            f"(N, 28, 28){'' if allow_empty else ' with N >= 1'} and values 0-255. "
            "Prepare user images with fmnist_core.preprocessing."
        )
    return batch
# Below this top probability an answer is "unsure / not an item" for a model whose card has no threshold of its own.
UNSURE_BELOW = 0.5
# A model's own threshold flags this share (percent) of its validation items; trained with non-items
# (`non_item_fraction`), it flags far more of the drawings that are no clothing (bench/drawings.py).
UNSURE_PERCENTILE = 1.0


@dataclass(frozen=True)
class Answer:
    """What a model says of one image: its probabilities, best class, and whether that class is to be trusted."""

    probabilities: np.ndarray  # (10,) float32
    top: int  # the most probable class
    unsure_below: float  # the model's threshold

    @property
    def confident(self) -> bool:
        """False when the image looks like no item the model knows, or the model cannot tell which."""
        return bool(self.probabilities[self.top] >= self.unsure_below)


class Classifier:
    """Wraps a trained model; `probabilities(images)` returns an (N, 10) float32 array. `network` is the trained
    network behind the answers when `model` wraps it (`model.answering_model`): explanations and exports read its
    layers."""

    def __init__(self, model: keras.Model, network: keras.Model | None = None):
        self.model = model
        self.network = model if network is None else network
        self._lock = threading.Lock()
        self._call = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.uint8)],
        )
        with self._lock:  # trace now, so concurrent first calls never trace at the same time
            self._call(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE], tf.uint8))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of the 10 classes for a (28, 28) image or an (N, 28, 28) batch of uint8 images."""
        batch = as_image_batch(images, allow_empty=True)
        if len(batch) == 0:
            return np.zeros((0, 10), dtype=np.float32)
        chunks = [self._call(tf.constant(batch[i : i + PREDICT_CHUNK])) for i in range(0, len(batch), PREDICT_CHUNK)]
        return np.concatenate([chunk.numpy() for chunk in chunks]).astype(np.float32)

    def answer(self, image: np.ndarray, unsure_below: float | None = None) -> Answer:
        """The model's answer for one (28, 28) uint8 image, judged against `unsure_below` (None: UNSURE_BELOW)."""
        probabilities = self.probabilities(image)[0]
        threshold = UNSURE_BELOW if unsure_below is None else unsure_below
        return Answer(probabilities, int(probabilities.argmax()), threshold)

    def unsure_threshold(self, validation_images: np.ndarray) -> float:
        """The top probability below which UNSURE_PERCENTILE % of these (held-out, real) items fall."""
        top = self.probabilities(validation_images).max(axis=1)
        return round(float(np.percentile(top, UNSURE_PERCENTILE)), 4)
