"""Exports of a saved model for use outside this app, each checked by its own runtime right after it is written.

Formats, all written under `OUT/NAME/` beside a copy of the model's card:
- savedmodel: `NAME/VERSION/`, TensorFlow Serving's layout; signature `serving_default` takes raw uint8 images
  (input "image", shape (N, 28, 28)) and returns "probabilities" (N, 10);
- litert: `NAME/model.tflite` (float) or `NAME/model-int8.tflite` (weights and activations in int8, calibrated on
  training images; input and output stay uint8 images and float probabilities);
- onnx: `NAME/model.onnx`;
- keras: `NAME/model.keras`, the inference copy as a Keras file: the store's layout, so `NAME/` can be copied into
  another machine's `models/`.

A model whose card says `mirror_average` answers with the average over each image and its mirror image
(`model.answering_model`): the savedmodel, litert and onnx exports have that average inside, so they answer as the app
does. The keras export keeps the store's layout, the network alone; its card beside it says to average, as in the store.

Every export is of the inference copy: float32, without the augmentation layers. Keras's `model.export()` calls the
model without `training=False`, and Keras's random augmentation layers then default to training mode: exported
as they are, the shipped model's exports shifted and flipped every image they were given.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import IMAGE_SIZE, FashionMNIST
from .hyperparameters import HyperParameters
from .runtimes import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME, load_runtime, single_image_latency_ms
from .store import CARD_FILE, MODEL_FILE, SavedModel

FORMATS = ("savedmodel", "litert", "onnx", "keras")
# What a person picks (the Deploy panel, `serve --runtime`): a format and whether it is quantized to int8
CHOICES = {"savedmodel": ("savedmodel", False), "litert": ("litert", False), "litert-int8": ("litert", True),
           "onnx": ("onnx", False), "keras": ("keras", False)}
# What `serve --runtime` offers: the app's own Classifier, or an export of it made and checked at start
SERVE_RUNTIMES = ("keras", "litert", "litert-int8", "onnx")
FORMAT_LABELS = {"savedmodel": "TensorFlow SavedModel", "litert": "LiteRT (TFLite)", "onnx": "ONNX",
                 "keras": "Keras (.keras)"}
CHECK_IMAGES = 1000  # test images each export is compared on
MIN_TOP_CLASS_AGREEMENT = 0.999  # a float export must give the Keras model's top class on this share of them
MAX_INT8_ACCURACY_DROP_POINTS = 0.5  # an int8 export may lose at most this many points of accuracy on them
REPRESENTATIVE_IMAGES = 500  # training images that calibrate int8 quantization
LATENCY_CALLS = 200
_TEMPORARY_PREFIX = ".tmp-"


class ExportError(ValueError):
    """An export could not be made, or it was made and failed its check (and was deleted); the message says why."""


@dataclass(frozen=True)
class ExportCheck:
    """An export compared with the Keras model on the same test images."""

    images: int
    top_class_agreement: float  # share of images on which both give the same top class
    max_probability_difference: float
    keras_accuracy: float
    export_accuracy: float

    @property
    def accuracy_change_points(self) -> float:
        return 100.0 * (self.export_accuracy - self.keras_accuracy)


@dataclass(frozen=True)
class ExportResult:
    format: str
    int8: bool
    folder: Path  # OUT/NAME
    path: Path  # the file or the SavedModel version folder written
    size_bytes: int
    check: ExportCheck
    latency_ms: float  # median, one image at a time, in the export's own runtime
    export_seconds: float

    @property
    def label(self) -> str:
        return FORMAT_LABELS[self.format] + (" int8" if self.int8 else "")


def inference_model(model, hyperparameters: HyperParameters):
    """A float32 copy of `model` without its augmentation layers (same weights), for exporting."""
    from .model import build_model

    copy = build_model(hyperparameters.with_changes(precision="float32", augment=False))
    try:
        for layer in copy.layers:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    except ValueError as error:
        raise ExportError(
            f"the model does not match the hyperparameters in its card ({error}); it cannot be rebuilt for "
            "export. Retrain it with this version of the app."
        ) from error
    copy(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8), training=False)  # the ONNX export wants a called model
    return copy


def folder_size(path: Path) -> int:
    """Bytes in a file, or in all files under a folder."""
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def next_version(model_folder: Path) -> int:
    """1, or one more than the highest numeric version folder already in `model_folder`."""
    versions = [int(child.name) for child in model_folder.glob("*") if child.is_dir() and child.name.isdigit()]
    return max(versions, default=0) + 1


def _write_savedmodel(model, path: Path) -> None:
    import tensorflow as tf

    # Not model.export("tf_saved_model"): its ExportArchive stores every weight twice (4.7 MB for the shipped
    # model's 2.3 MB of weights) and names the output "output_0". tf.saved_model.save of the same forward pass
    # stores each once, under the names TensorFlow Serving's clients see.
    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.uint8, name=INPUT_NAME)])
        def serve(self, image):
            return {OUTPUT_NAME: self.model(image, training=False)}

    module = Serving()
    tf.saved_model.save(module, str(path), signatures={SIGNATURE_NAME: module.serve})


def _write_litert(model, path: Path, int8: bool, dataset: FashionMNIST) -> None:
    options: dict[str, Any] = {}
    if int8:
        import tensorflow as tf

        chosen = np.random.default_rng(0).choice(len(dataset.train_images), REPRESENTATIVE_IMAGES, replace=False)

        def representative_images():
            for index in chosen:
                yield [dataset.train_images[index : index + 1]]

        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative_images}
    model.export(str(path), format="litert", verbose=False, **options)


def _write(model, format: str, path: Path, int8: bool, dataset: FashionMNIST) -> None:
    if format == "savedmodel":
        _write_savedmodel(model, path)
    elif format == "litert":
        _write_litert(model, path, int8, dataset)
    elif format == "onnx":
        model.export(str(path), format="onnx", verbose=False)
    else:
        model.save(str(path))


def check_export(runtime, reference, images: np.ndarray, labels: np.ndarray) -> ExportCheck:
    """Compare an export's runtime with `reference` (a Classifier of the Keras model) on `images`."""
    expected, got = reference.probabilities(images), runtime.probabilities(images)
    return ExportCheck(
        images=len(images),
        top_class_agreement=float(np.mean(expected.argmax(1) == got.argmax(1))),
        max_probability_difference=float(np.abs(expected - got).max()),
        keras_accuracy=float(np.mean(expected.argmax(1) == labels)),
        export_accuracy=float(np.mean(got.argmax(1) == labels)),
    )


def _failure(check: ExportCheck, int8: bool) -> str | None:
    """Why the check failed, or None when it passed."""
    if int8:
        if -check.accuracy_change_points > MAX_INT8_ACCURACY_DROP_POINTS:
            return (f"its accuracy on {check.images:,} test images fell by {-check.accuracy_change_points:.2f} points "
                    f"({100 * check.keras_accuracy:.2f} % to {100 * check.export_accuracy:.2f} %), more than the "
                    f"{MAX_INT8_ACCURACY_DROP_POINTS} allowed. Use the float export of this model instead.")
        return None
    if check.top_class_agreement < MIN_TOP_CLASS_AGREEMENT:
        return (f"it gave the Keras model's top class on only {100 * check.top_class_agreement:.2f} % of "
                f"{check.images:,} test images (at least {100 * MIN_TOP_CLASS_AGREEMENT:.1f} % expected; largest "
                f"probability difference {check.max_probability_difference:.3g}). This is a bug in the export "
                "path: report it with the model's card.")
    return None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def export_model(model, saved: SavedModel, format: str, out_dir: Path | str, dataset: FashionMNIST, *,
                 int8: bool = False, version: int | None = None, check_images: int = CHECK_IMAGES) -> ExportResult:
    """Write `saved`'s model (`model`, loaded from the store) as `format` under `out_dir/NAME/`, load it back with
    its own runtime and compare it with the Keras model on `check_images` test images; time one image.

    A failed check deletes what was written and raises ExportError saying why.
    """
    from .inference import Classifier

    if format not in FORMATS:
        raise ExportError(f"format {format!r}: expected one of {', '.join(FORMATS)}.")
    if int8 and format != "litert":
        raise ExportError(f"int8 applies to the litert format only, not {format!r}: drop int8 or use litert.")
    if version is not None and format != "savedmodel":
        raise ExportError(f"version {version}: versions apply to the savedmodel format only, not {format!r}.")
    folder = Path(out_dir) / saved.name
    if format == "savedmodel":
        version = next_version(folder) if version is None else version
        if version < 1:
            raise ExportError(f"version {version}: TensorFlow Serving's versions are whole numbers from 1.")
        final = folder / str(version)
        if final.exists():
            raise ExportError(f"{final} already exists, and TensorFlow Serving versions are never overwritten: "
                              f"choose another version (the next free one is {next_version(folder)}).")
    else:
        final = folder / {"litert": "model-int8.tflite" if int8 else "model.tflite", "onnx": "model.onnx",
                          "keras": MODEL_FILE}[format]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create {folder} ({error.strerror or error}); choose a writable --out folder.") \
            from error
    # written beside its final place and renamed there only once it passed its check
    temporary = folder / f"{_TEMPORARY_PREFIX}{uuid.uuid4().hex[:8]}{final.suffix}"
    start = time.perf_counter()
    try:
        from .model import answering_model

        network = inference_model(model, saved.hyperparameters)
        answering = answering_model(network, saved.hyperparameters)
        answering(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8), training=False)  # the ONNX export wants it called
        exportable = network if format == "keras" else answering
        try:
            _write(exportable, format, temporary, int8, dataset)
        except Exception as error:  # noqa: BLE001 - the converters (TFLite, tf2onnx) raise many types
            raise ExportError(f"writing the {format} export of {saved.name!r} failed ({type(error).__name__}: "
                              f"{error}); nothing was kept.") from error
        export_seconds = time.perf_counter() - start
        runtime = load_runtime(format, temporary, saved.hyperparameters)
        images, labels = dataset.test_images[:check_images], dataset.test_labels[:check_images]
        check = check_export(runtime, Classifier(answering), images, labels)
        failure = _failure(check, int8)
        if failure:
            raise ExportError(f"the {format}{' int8' if int8 else ''} export of {saved.name!r} failed its check and "
                              f"was deleted: {failure}")
        latency_ms = single_image_latency_ms(runtime, dataset.test_images[0], calls=LATENCY_CALLS)
        _remove(final)  # an earlier export of the same file; SavedModel versions were refused above
        temporary.rename(final)
        (folder / CARD_FILE).write_text(json.dumps(saved.card, indent=2, sort_keys=True))
    except BaseException:
        _remove(temporary)
        raise
    return ExportResult(format, int8, folder, final, folder_size(final), check, latency_ms, export_seconds)


def zip_folder_entries(folder: Path, entries: list[Path]) -> bytes:
    """A zip (in memory) of `entries` (files or folders inside `folder`), stored under `folder`'s name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            files = [entry] if entry.is_file() else sorted(f for f in entry.rglob("*") if f.is_file())
            for file in files:
                archive.write(file, Path(folder.name) / file.relative_to(folder))
    return buffer.getvalue()


def saved_model_zip(saved: SavedModel) -> bytes:
    """The saved model as stored, `NAME/model.keras` and `NAME/card.json`, zipped: what a download gives."""
    return zip_folder_entries(saved.path, [saved.path / MODEL_FILE, saved.path / CARD_FILE])


def result_summary(result: ExportResult) -> dict[str, Any]:
    """What an export's check found, as JSON data (`export_zip_in_a_process` reads it back)."""
    return {"format": result.format, "int8": result.int8, "size_bytes": result.size_bytes,
            "latency_ms": result.latency_ms, "export_seconds": result.export_seconds,
            "check": dict(result.check.__dict__)}


EXPORT_TIMEOUT_SECONDS = 900


def export_zip_in_a_process(models_dir: Path | str, name: str, format: str, int8: bool,
                            environment: dict[str, str]) -> tuple[ExportResult, bytes]:
    """`export_zip` run by `python -m fmnist_core export --zip` in a process of its own, so that the converters'
    memory and CPU stay out of the caller (the web server); raises ExportError saying why it failed."""
    from .subprocesses import CommandFailedError, run_command

    with tempfile.TemporaryDirectory(prefix="fmnist-export-") as folder:
        target = Path(folder) / f"{name}.zip"
        try:
            run_command(["export", name, "--format", format, *(["--int8"] if int8 else []), "--zip", str(target)],
                        models_dir, environment, EXPORT_TIMEOUT_SECONDS)
        except CommandFailedError as error:
            raise ExportError(str(error)) from None
        summary = json.loads(Path(f"{target}.json").read_text())
        check = ExportCheck(**summary.pop("check"))
        result = ExportResult(folder=Path(name), path=Path(name), check=check, **summary)
        return result, target.read_bytes()


def export_zip(model, saved: SavedModel, format: str, dataset: FashionMNIST, int8: bool = False) -> tuple[
        ExportResult, bytes]:
    """An export (as `export_model`, version 1 for a SavedModel) zipped in memory with the model's card; nothing is
    left on disk."""
    with tempfile.TemporaryDirectory(prefix="fmnist-export-") as out_dir:
        result = export_model(model, saved, format, out_dir, dataset, int8=int8,
                              version=1 if format == "savedmodel" else None)
        return result, zip_folder_entries(result.folder, [result.path, result.folder / CARD_FILE])
