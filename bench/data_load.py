"""Data load: the four IDX files read cold from their .gz files (a fresh process) and warm (cached)."""

from __future__ import annotations

from .measure import Row, run_python

CODE = """
import json, time
start = time.perf_counter()
from fmnist_core.data import load_fashion_mnist, find_dataset_dir
data = load_fashion_mnist()
cold = time.perf_counter() - start
warm = []
for _ in range(50):
    start = time.perf_counter(); load_fashion_mnist(); warm.append(time.perf_counter() - start)
warm.sort()
print(json.dumps({"cold": cold, "warm": warm[len(warm) // 2], "where": str(find_dataset_dir())}))
"""


def run() -> list[Row]:
    figures = run_python(CODE)
    return [
        Row("Data load", "cold: decompress, check SHA-256, parse the 4 files (fresh process)",
            f"{figures['cold']:.2f} s", "≤ 1 s", figures["cold"] <= 1.0, f"from {figures['where']}"),
        Row("Data load", "warm: cached arrays (median of 50)", f"{figures['warm'] * 1000:.3f} ms", "≤ 50 ms",
            figures["warm"] <= 0.05),
    ]
