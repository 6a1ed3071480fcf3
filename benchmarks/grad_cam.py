"""HiResCAM and Grad-CAM speed and where their heat lies, on the shipped model: run `python benchmarks/grad_cam.py`.

Speed: median of 100 single-image calls after 10 warm-up calls, per method. Heat: the share of test images whose
true-class map has more mean heat on the item's pixels (brighter than 30) than off them, per method, at the
default layer and at the last conv layer.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from fmnist_core.data import CLASS_NAMES, load_fashion_mnist  # noqa: E402
from fmnist_core.explain import METHODS, Explainer  # noqa: E402
from fmnist_core.store import DEFAULT_MODEL, ModelStore  # noqa: E402

WARM_UP, CALLS, HEAT_IMAGES, ITEM_THRESHOLD = 10, 100, 1000, 30


def median_ms(call, images: np.ndarray) -> float:
    for image in images[:WARM_UP]:
        call(image)
    durations = []
    for image in images[:CALLS]:
        start = time.perf_counter()
        call(image)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000


def heat_on_item(explainer: Explainer, images: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    heatmaps = explainer.grad_cam(images, labels, method=method).heatmaps
    items = images > ITEM_THRESHOLD
    return np.array([heat[item].mean() > heat[~item].mean() for heat, item in zip(heatmaps, items, strict=True)])


def main() -> None:
    data = load_fashion_mnist()
    model = ModelStore().load_model(DEFAULT_MODEL)
    explainer = Explainer(model)
    images, labels = data.test_images, data.test_labels.astype(int)
    for method in METHODS:
        given = median_ms(lambda image, method=method: explainer.grad_cam(image, 0, method=method), images)
        predicted = median_ms(lambda image, method=method: explainer.grad_cam(image, method=method), images)
        print(f"{method:<8} at {explainer.target_layer_name}: {given:.1f} ms for a given class, "
              f"{predicted:.1f} ms for the predicted one")
    print(f"feature maps of all blocks: {median_ms(explainer.feature_maps, images):.1f} ms")

    last_conv = Explainer(model, explainer.convs[-1].name)
    images, labels = images[:HEAT_IMAGES], labels[:HEAT_IMAGES]
    print(f"\nheat mostly on the item, first {HEAT_IMAGES} test images:")
    print(f"{'':<14}" + "".join(f"{name[:7]:>8}" for name in CLASS_NAMES))
    for layer_explainer in (explainer, last_conv):
        for method in METHODS:
            on_item = heat_on_item(layer_explainer, images, labels, method)
            per_class = "".join(f"{on_item[labels == label].mean():>8.0%}" for label in range(len(CLASS_NAMES)))
            print(f"{method:<8} at {layer_explainer.target_layer_name}: {on_item.mean():.1%}\n{'':<14}{per_class}")


if __name__ == "__main__":
    main()
