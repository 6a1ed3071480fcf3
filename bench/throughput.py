"""Training throughput: where each epoch's time goes, in our trainer and in a plain model.fit of the same model.

For the `quick` preset at 16 epochs (issue #16), in one process, one after the other: `training.train` as the CLI
runs it, the app's worker running the run as a queued job (`worker.run_job`: its progress written to the queue's
SQLite file, a checkpoint written every epoch, a thread polling for Stop), and a plain `model.fit` of the same model,
optimizer and data, written as Keras's guides write it (one dataset pass per epoch, validation data autotuned by
tf.data), which shows the stalls our trainer no longer has. `best` runs the same three ways for BEST_EPOCHS epochs
(its epochs all do the same work; 40 would take over an hour here).

A Keras callback stamps every batch's begin and end: the train step is the time between them; everything else in
an epoch (fetching the next batch, callbacks, the epoch's validation) is outside the steps, and validation is timed
on its own.

A memory-bound control runs in its own process the whole time: a STREAM-like copy of a 64 MB array (far larger
than any cache) every half second, timed. A slow epoch whose control bandwidth stayed normal is the process's own
stall; one during which the control slowed too is the machine's. `--quick` leaves `best` out.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

from .measure import OUT, REPO, Row, cpu_model

QUICK_EPOCHS = 16
BEST_EPOCHS = 3
CONTROL = r"""
import json, sys, time
import numpy as np
a = np.ones(8 * 2**20)  # 64 MB of float64
b = np.empty_like(a)
while True:
    start = time.perf_counter()
    np.copyto(b, a)
    took = time.perf_counter() - start
    print(json.dumps([time.time(), 2 * a.nbytes / took / 1e9]), flush=True)  # read + write, GB/s
    time.sleep(0.5)
"""


def cpu_flags() -> str:
    """The CPU's bfloat16 matrix support, as /proc/cpuinfo names it."""
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    have = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    return ", ".join(have) or "no bf16 instructions"


def step_clock():
    """A Keras callback that records, per epoch: wall time, time inside train steps, validation time, batches."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[dict] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.current = {"start": time.time(), "begin": time.perf_counter(), "steps": [], "validation": 0.0}

        def on_train_batch_begin(self, batch, logs=None):
            self.batch_begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.current["steps"].append(time.perf_counter() - self.batch_begin)

        def on_test_begin(self, logs=None):
            self.test_begin = time.perf_counter()

        def on_test_end(self, logs=None):
            if hasattr(self, "current"):
                self.current["validation"] += time.perf_counter() - self.test_begin

        def on_epoch_end(self, epoch, logs=None):
            self.current["wall"] = time.perf_counter() - self.current["begin"]
            self.current["end"] = time.time()
            self.epochs.append(self.current)

    return StepClock()


@contextlib.contextmanager
def clocked_fit():
    """A StepClock slipped into every `model.fit` called inside the block (ours or the worker's); yields it."""
    import keras

    clock, fit = step_clock(), keras.Model.fit

    def fit_with_clock(model, *args, callbacks=None, **kwargs):
        return fit(model, *args, callbacks=[*(callbacks or []), clock], **kwargs)

    with mock.patch.object(keras.Model, "fit", fit_with_clock):
        yield clock


def _ours(hp, dataset, eta: dict) -> list[dict]:
    """`training.train`, clocked; `eta` gets the end the page predicted after epoch 1 and the actual end (seconds of
    training)."""
    from fmnist_core.events import EpochEnd
    from fmnist_core.training import train

    def listen(event):
        if isinstance(event, EpochEnd) and event.epoch == 1:
            eta["predicted_after_epoch_1"] = event.elapsed_seconds + event.eta_seconds

    with clocked_fit() as clock:
        eta["actual"] = train(hp, dataset, listeners=[listen]).train_seconds
    return clock.epochs


def _worker(hp, dataset) -> list[dict]:
    """The run as the app's worker runs a queued job, in a scratch queue and store."""
    import os
    import tempfile

    from fmnist_core.job_queue import JobQueue
    from fmnist_core.jobs import RUN
    from fmnist_core.settings import Settings
    from fmnist_core.store import ModelStore
    from fmnist_core.worker import run_job

    with tempfile.TemporaryDirectory(prefix="bench-worker-") as root:
        queue = JobQueue(root)
        queue.submit(RUN, "bench", owner="bench", hyperparameters=hp)
        with clocked_fit() as clock:
            run_job(queue, ModelStore(root), queue.claim_next(0, os.getpid()), lambda: dataset,
                    Settings(models_dir=root))
    return clock.epochs


def _plain_fit(hp, dataset) -> list[dict]:
    """The same model, optimizer, loss and pipeline through a bare model.fit: no listeners, no memory release."""
    import keras
    import numpy as np

    from fmnist_core.model import build_model
    from fmnist_core.training import (
        VALIDATION_BATCH_SIZE,
        ItemAccuracy,
        make_dataset,
        make_optimizer,
        select_training_data,
    )

    keras.utils.set_random_seed(hp.seed)
    data = select_training_data(hp, dataset)
    model = build_model(hp)
    model.compile(optimizer=make_optimizer(hp, int(np.ceil(len(data.train_labels) / hp.batch_size))),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
                  metrics=[ItemAccuracy()])
    clock = step_clock()
    model.fit(make_dataset(data.train_images, data.train_labels, hp.batch_size, seed=hp.seed), epochs=hp.epochs,
              verbose=0, callbacks=[clock],
              validation_data=make_dataset(data.validation_images, data.validation_labels, VALIDATION_BATCH_SIZE,
                                           None))
    return clock.epochs


def summary(epochs: list[dict], batch_size: int, bandwidth: list[tuple[float, float]]) -> dict:
    """Per-run figures: median and slowest epoch, the share of time outside the steps, steady images/s, and the
    control's bandwidth during the slowest epoch against its median."""
    walls = [epoch["wall"] for epoch in epochs]
    median = statistics.median(walls)
    slowest = max(range(len(epochs)), key=walls.__getitem__)
    steps = sum(sum(epoch["steps"]) for epoch in epochs)
    validation = sum(epoch["validation"] for epoch in epochs)
    steady = [batch_size / step for epoch in epochs for step in epoch["steps"][5:]]
    during = [gbs for when, gbs in bandwidth if epochs[slowest]["start"] <= when <= epochs[slowest]["end"]]
    overall = statistics.median(gbs for _, gbs in bandwidth) if bandwidth else float("nan")
    return {
        "epoch_seconds": [round(wall, 2) for wall in walls],
        "median_epoch": median, "slowest_ratio": walls[slowest] / median, "slowest_epoch": slowest + 1,
        "outside_share": (sum(walls) - steps - validation) / sum(walls), "validation_share": validation / sum(walls),
        "steady_images_per_second": statistics.median(steady),
        "first_batch_seconds": [round(epoch["steps"][0], 3) for epoch in epochs],
        "control_slowest_vs_median": (statistics.median(during) / overall) if during else float("nan"),
    }


def measure(preset_names: list[str]) -> dict:
    """Every run of every preset while the control copies memory; the figures per run."""
    from fmnist_core.data import load_fashion_mnist
    from fmnist_core.hyperparameters import preset

    dataset = load_fashion_mnist()
    control = subprocess.Popen([sys.executable, "-c", CONTROL], stdout=subprocess.PIPE, text=True, cwd=REPO)
    runs, etas = {}, {}
    try:
        for name in preset_names:
            hp = preset(name, epochs=QUICK_EPOCHS if name == "quick" else BEST_EPOCHS)
            etas[name] = {}
            runs[f"{name}: training.train (CLI)"] = (_ours(hp, dataset, etas[name]), hp.batch_size)
            runs[f"{name}: the app's worker (run_job)"] = (_worker(hp, dataset), hp.batch_size)
            runs[f"{name}: plain model.fit"] = (_plain_fit(hp, dataset), hp.batch_size)
    finally:
        control.terminate()
        output, _ = control.communicate(timeout=10)
    bandwidth = [tuple(json.loads(line)) for line in output.splitlines() if line.startswith("[")]
    return {"bandwidth_median": statistics.median(gbs for _, gbs in bandwidth), "etas": etas,
            "runs": {label: summary(epochs, batch, bandwidth) for label, (epochs, batch) in runs.items()}}


def run(preset_names: list[str] | None = None) -> list[Row]:
    figures = measure(preset_names or ["quick", "best"])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "throughput-epochs.json").write_text(json.dumps(figures, indent=1))
    rows = [Row("Throughput", "CPU and its bfloat16 support", f"{cpu_model()}; {cpu_flags()}"),
            Row("Throughput", "memory-bound control: 64 MB copy, median", f"{figures['bandwidth_median']:.1f} GB/s")]
    for label, run_figures in figures["runs"].items():
        rows.append(Row(
            "Throughput", f"{label}: median epoch, slowest / median, outside the steps, validation, steady images/s",
            f"{run_figures['median_epoch']:.2f} s, {run_figures['slowest_ratio']:.2f}× (epoch "
            f"{run_figures['slowest_epoch']}), {run_figures['outside_share']:.1%}, "
            f"{run_figures['validation_share']:.1%}, {run_figures['steady_images_per_second']:,.0f}",
            "outside ≤ 5 %, slowest ≤ 1.25× median", run_figures["outside_share"] <= 0.05
            and run_figures["slowest_ratio"] <= 1.25,
            f"control bandwidth in the slowest epoch {run_figures['control_slowest_vs_median']:.2f}× its median; "
            f"epochs (s) {run_figures['epoch_seconds']}"))
    for name, eta in figures["etas"].items():
        error = eta["predicted_after_epoch_1"] / eta["actual"] - 1
        rows.append(Row("Throughput", f"{name}: end of training predicted after epoch 1 (the page's ETA) vs actual",
                        f"{eta['predicted_after_epoch_1']:.1f} s vs {eta['actual']:.1f} s ({error:+.0%})", "", None,
                        f"{QUICK_EPOCHS if name == 'quick' else BEST_EPOCHS} epochs, training.train (CLI)"))
    return rows


if __name__ == "__main__":  # python -m bench.throughput [--quick]: print the rows without writing RESULTS.md
    for row in run(["quick"] if "--quick" in sys.argv else ["quick", "best"]):
        print(f"{row.measure}: {row.value}" + (f"  [{row.note}]" if row.note else ""), flush=True)
