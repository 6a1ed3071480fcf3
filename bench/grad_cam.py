"""Class activation maps (HiResCAM and Grad-CAM): milliseconds per image for each method, and where the heat
lies, on the shipped model.

Speed: median of 100 single-image calls after 10 warm-up calls. Heat: the share of the first 1,000 test
images whose true-class map has more mean heat on the item's pixels (brighter than 30) than off them.
"""

from __future__ import annotations

from .measure import Row, run_python

CODE = """
import json, statistics, time
import numpy as np
from fmnist_core.settings import Settings
from fmnist_core.data import load_fashion_mnist
from fmnist_core.explain import METHODS, Explainer
from fmnist_core.store import DEFAULT_MODEL, ModelStore

WARM_UP, CALLS, HEAT_IMAGES, ITEM_THRESHOLD = 10, 100, 1000, 30
data = load_fashion_mnist()
model = ModelStore.from_settings(Settings.from_environment()).load_model(DEFAULT_MODEL)
explainer = Explainer(model)
images, labels = data.test_images, data.test_labels.astype(int)

def median_ms(call):
    for image in images[:WARM_UP]:
        call(image)
    durations = []
    for image in images[:CALLS]:
        start = time.perf_counter(); call(image); durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000

figures = {"layer": explainer.target_layer_name, "methods": {}}
for method in METHODS:
    heatmaps = explainer.cam(images[:HEAT_IMAGES], labels[:HEAT_IMAGES], method=method).heatmaps
    items = images[:HEAT_IMAGES] > ITEM_THRESHOLD
    on_item = [float(heat[item].mean() > heat[~item].mean()) for heat, item in zip(heatmaps, items)]
    figures["methods"][method] = {
        "given_ms": median_ms(lambda image: explainer.cam(image, 0, method=method)),
        "predicted_ms": median_ms(lambda image: explainer.cam(image, method=method)),
        "on_item": sum(on_item) / len(on_item),
    }
figures["feature_maps_ms"] = median_ms(explainer.feature_maps)
print(json.dumps(figures))
"""


def run() -> list[Row]:
    figures = run_python(CODE)
    rows = []
    for method, numbers in figures["methods"].items():
        slowest = max(numbers["given_ms"], numbers["predicted_ms"])
        rows.append(Row("Grad-CAM", f"{method} at {figures['layer']}: ms per image, given class / predicted class",
                        f"{numbers['given_ms']:.1f} / {numbers['predicted_ms']:.1f} ms", "≤ 100 ms", slowest <= 100,
                        f"true-class heat mostly on the item for {numbers['on_item']:.1%} of 1,000 test images"))
    feature_maps_ms = figures["feature_maps_ms"]
    rows.append(Row("Grad-CAM", "feature maps of every conv block, ms per image", f"{feature_maps_ms:.1f} ms"))
    return rows
