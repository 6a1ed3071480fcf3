"""Why a preset trains as fast as it does on this CPU (issue #16): the floating-point work its run needs against the
matrix-multiply rate TensorFlow reaches here, in float32 and in bfloat16, on all cores.

Work per image: the forward pass's multiply-adds of every Conv2D and Dense layer, counted from the model's shapes
(x 2 FLOPs), and training as 3x the forward pass (forward, and a backward pass of about twice its cost). The rate:
a tf.function multiplying two 2048x2048 matrices in a loop, float32 and bfloat16, the way the CPU's best kernels
(oneDNN) are used. The floor is the run's work at that rate; the measured run shows how near training comes.
"""

from __future__ import annotations

import json
import time

from .measure import REPO, Row, cpu_model
from .throughput import cpu_flags

MATMUL_SIZE = 2048
MATMUL_SECONDS = 3.0


def forward_flops(hp) -> int:
    """FLOPs of one image's forward pass through the model `hp` describes (convolutions and dense layers)."""
    from fmnist_core.model import build_model

    model = build_model(hp.with_changes(precision="float32"))
    flops = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w, channels, _ = layer.kernel.shape
            flops += 2 * height * width * filters * kernel_h * kernel_w * channels
        elif kind == "Dense":
            inputs, outputs = layer.kernel.shape
            flops += 2 * inputs * outputs
    return int(flops)


def matmul_rate(dtype: str) -> float:
    """FLOP/s of a square matrix multiply in `dtype`, sustained for MATMUL_SECONDS after a warm-up."""
    import tensorflow as tf

    a = tf.random.uniform((MATMUL_SIZE, MATMUL_SIZE), dtype=tf.float32)
    a = tf.cast(a, dtype)
    multiply = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    multiply(a).numpy()  # trace and warm
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < MATMUL_SECONDS:
        multiply(a).numpy()
        count += 1
    return count * 2 * MATMUL_SIZE**3 / (time.perf_counter() - start)


def run() -> list[Row]:
    from fmnist_core.hyperparameters import PRESETS, TRAIN_SET_SIZE

    card = json.loads((REPO / "models" / "default" / "card.json").read_text())
    rates = {dtype: matmul_rate(dtype) for dtype in ("float32", "bfloat16")}
    rows = [Row("Compute floor", f"matrix multiply {MATMUL_SIZE}², all cores ({cpu_model()}; {cpu_flags()})",
                f"float32 {rates['float32'] / 1e9:,.0f} GFLOP/s, bfloat16 {rates['bfloat16'] / 1e9:,.0f} GFLOP/s "
                f"({rates['bfloat16'] / rates['float32']:.2f}x)")]
    for name in ("quick", "best"):
        hp = PRESETS[name]
        images = round(hp.epochs * TRAIN_SET_SIZE * (1 - hp.validation_fraction)
                       * (1 + hp.sketch_fraction + hp.non_item_fraction))
        train_flops = 3 * forward_flops(hp) * images
        rate = rates["bfloat16" if hp.precision == "mixed_bfloat16" else "float32"]
        note = ""
        if name == "best" and card.get("preset") == "best":
            took = card["train_seconds"]
            note = (f"the shipped model's run took {took:,.0f} s: {train_flops / took / 1e9:,.0f} GFLOP/s, "
                    f"{train_flops / took / rate:.0%} of the matmul rate")
        rows.append(Row("Compute floor", f"`{name}`: {forward_flops(hp) / 1e6:.1f} MFLOP per image forward, "
                        f"{hp.epochs} epochs of {images // hp.epochs:,} images",
                        f"{train_flops / 1e12:,.1f} TFLOP to train; at the {hp.precision} matmul rate at least "
                        f"{train_flops / rate:,.0f} s", note=note))
    return rows
