"""Each export format run by its own runtime: TensorFlow's SavedModel loader, the LiteRT interpreter, ONNX Runtime,
and Keras for a `.keras` file. Every runtime here answers `probabilities(images)` for (N, 28, 28) uint8 images
with an (N, 10) float32 array, so an export can be checked against the model it came from and timed.

TensorFlow, ai-edge-litert and onnxruntime are imported only by the runtime that needs them.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from .data import IMAGE_SIZE, NUM_CLASSES

CHUNK_IMAGES = 1000  # large inputs run in chunks, so memory stays bounded whatever is asked
SIGNATURE_NAME = "serving_default"  # the SavedModel signature TensorFlow Serving calls by default
INPUT_NAME = "image"  # the input of every export: raw uint8 (N, 28, 28), 0-255
OUTPUT_NAME = "probabilities"  # the output: (N, 10) float32 class probabilities


class Runtime(Protocol):
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 10) float32 class probabilities for (N, 28, 28) uint8 images."""


def _chunks(images: np.ndarray, run) -> np.ndarray:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise ValueError(f"images of shape {images.shape} and dtype {images.dtype}: expected uint8 (N, 28, 28).")
    if len(images) == 0:
        return np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate([np.asarray(run(images[start : start + CHUNK_IMAGES]), np.float32)
                           for start in range(0, len(images), CHUNK_IMAGES)])


class SavedModelRuntime:
    """A SavedModel folder (`NAME/VERSION/`) loaded by TensorFlow and called through its serving signature."""

    def __init__(self, folder: Path):
        import tensorflow as tf

        self._tf = tf
        self._signature = tf.saved_model.load(str(folder)).signatures[SIGNATURE_NAME]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return _chunks(images, lambda batch: self._signature(**{INPUT_NAME: self._tf.constant(batch)})[OUTPUT_NAME])


class LiteRTRuntime:
    """A `.tflite` file in the LiteRT interpreter (ai-edge-litert); one call at a time, since an interpreter
    holds its tensors between calls."""

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads or os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = None
        self._lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._batch_size != len(batch):  # resizing re-plans the graph: only when the batch size changes
            self._interpreter.resize_tensor_input(self._input, [len(batch), IMAGE_SIZE, IMAGE_SIZE])
            self._interpreter.allocate_tensors()
            self._batch_size = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        with self._lock:
            return _chunks(images, self._run)


class OnnxRuntime:
    """A `.onnx` file in ONNX Runtime's CPU provider."""

    def __init__(self, path: Path):
        import onnxruntime

        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return _chunks(images, lambda batch: self._session.run(None, {self._input: batch})[0])


def _card_hyperparameters(path: Path):
    """The hyperparameters on the card beside a `.keras` file, checked as the model store checks cards; None when
    there is no card. Raises ModelStoreError naming the card and what is wrong with it."""
    from .hyperparameters import HyperParameters
    from .store import CARD_FILE, ModelStoreError, card_problem

    card_file = path.parent / CARD_FILE
    if not card_file.is_file():
        return None
    try:
        card = json.loads(card_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelStoreError(f"{card_file} cannot be read as JSON ({error}): put back the card.json that came with "
                              f"{path.name}, or remove it to load the network alone.") from error
    problem = card_problem(card)
    if problem:
        raise ModelStoreError(f"{card_file} {problem}: put back the card.json that came with {path.name}, or remove "
                              "it to load the network alone.")
    return HyperParameters.from_dict(card["hyperparameters"])


class KerasRuntime:
    """A `.keras` file loaded by Keras (safe mode) and run through the app's own traced Classifier, answering as
    `hyperparameters` say (`mirror_average`), by default those of the card beside the file (the store's layout)."""

    def __init__(self, path: Path, hyperparameters=None):
        import keras

        from .inference import Classifier
        from .model import answering_model

        if hyperparameters is None:
            hyperparameters = _card_hyperparameters(path)
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        self._classifier = Classifier(answering_model(model, hyperparameters) if hyperparameters else model)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return _chunks(images, self._classifier.probabilities)


def load_runtime(format: str, path: Path, hyperparameters=None) -> Runtime:
    """The runtime of `format` ("savedmodel", "litert", "onnx" or "keras") with the export at `path` loaded; a keras
    export answers as `hyperparameters` say (default: its card's)."""
    path = Path(path)
    runtimes = {"savedmodel": SavedModelRuntime, "litert": LiteRTRuntime, "onnx": OnnxRuntime, "keras": KerasRuntime}
    if format not in runtimes:
        raise ValueError(f"format {format!r}: expected one of {', '.join(runtimes)}.")
    return KerasRuntime(path, hyperparameters) if format == "keras" else runtimes[format](path)


def single_image_latency_ms(runtime: Runtime, image: np.ndarray, calls: int = 200, warm_up: int = 10) -> float:
    """The median time in milliseconds of `runtime.probabilities` on one (28, 28) image, after a warm-up."""
    batch = np.asarray(image, np.uint8).reshape(1, IMAGE_SIZE, IMAGE_SIZE)
    for _ in range(warm_up):
        runtime.probabilities(batch)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        runtime.probabilities(batch)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000.0
