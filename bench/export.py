"""Exports of the shipped model: each format's size, single-image latency in its own runtime, agreement with Keras
on all 10,000 test images, and the int8 export's accuracy change, in one fresh process.
"""

from __future__ import annotations

from .measure import Row, run_python

CODE = """
import json, tempfile
from fmnist_core.settings import Settings
from fmnist_core.data import load_fashion_mnist
from fmnist_core.export import export_model
from fmnist_core.store import ModelStore

store = ModelStore.from_settings(Settings.from_environment())
saved = store.get("default"); model = store.load_model("default")
dataset = load_fashion_mnist()
figures = []
with tempfile.TemporaryDirectory() as out:
    for format, int8 in (("keras", False), ("savedmodel", False), ("litert", False), ("litert", True), ("onnx", False)):
        result = export_model(model, saved, format, out, dataset, int8=int8, check_images=10_000)
        check = result.check
        figures.append({"label": result.label, "size": result.size_bytes, "latency_ms": result.latency_ms,
                        "seconds": result.export_seconds, "agreement": check.top_class_agreement,
                        "difference": check.max_probability_difference, "keras_accuracy": check.keras_accuracy,
                        "accuracy": check.export_accuracy, "int8": int8})
print(json.dumps(figures))
"""


def run() -> list[Row]:
    rows = []
    for figure in run_python(CODE):
        change = 100 * (figure["accuracy"] - figure["keras_accuracy"])
        note = (f"same top class as Keras on {100 * figure['agreement']:.2f} % of 10,000 test images (largest "
                f"probability difference {figure['difference']:.1g}); written in {figure['seconds']:.1f} s")
        rows.append(Row("Export", f"{figure['label']}: file size, single-image latency (median of 200)",
                        f"{figure['size'] / 1e6:.2f} MB, {figure['latency_ms']:.2f} ms", note=note))
        if figure["int8"]:
            rows.append(Row("Export", f"{figure['label']}: test accuracy vs the Keras model (10,000 images)",
                            f"{100 * figure['accuracy']:.2f} % vs {100 * figure['keras_accuracy']:.2f} % "
                            f"({change:+.2f} points)", "drop ≤ 0.5 points", change >= -0.5))
    return rows
