"""Grad-CAM speed and where its heat lies, on the shipped model: `.venv/bin/python benchmarks/grad_cam.py`.

Speed: median of 100 single-image calls after 10 warm-up calls. Heat: the share of test images whose true-class
Grad-CAM has more mean heat on the item's pixels (brighter than 30) than off them.
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
from fmnist_core.explain import Explainer  # noqa: E402
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


def main() -> None:
    data = load_fashion_mnist()
    explainer = Explainer(ModelStore().load_model(DEFAULT_MODEL))
    images, labels = data.test_images, data.test_labels.astype(int)
    print(f"Grad-CAM, a given class:     {median_ms(lambda image: explainer.grad_cam(image, 0), images):.1f} ms")
    print(f"Grad-CAM, the predicted one: {median_ms(explainer.grad_cam, images):.1f} ms")
    print(f"feature maps of all blocks:  {median_ms(explainer.feature_maps, images):.1f} ms")

    heatmaps = explainer.grad_cam(images[:HEAT_IMAGES], labels[:HEAT_IMAGES]).heatmaps
    items = images[:HEAT_IMAGES] > ITEM_THRESHOLD
    on_item = np.array([heat[item].mean() > heat[~item].mean() for heat, item in zip(heatmaps, items, strict=True)])
    print(f"heat mostly on the item: {on_item.mean():.1%} of the first {HEAT_IMAGES} test images")
    for label, name in enumerate(CLASS_NAMES):
        print(f"  {name:<12} {on_item[labels[:HEAT_IMAGES] == label].mean():.0%}")


if __name__ == "__main__":
    main()
