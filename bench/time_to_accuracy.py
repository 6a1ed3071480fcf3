"""Time to accuracy: test accuracy after about 60 s of training on this CPU.

`quick` runs exactly as a user runs it (`python -m fmnist_core train --preset quick`, its card's
`train_seconds` and `test_accuracy`); `seed-000` and `seed-004` are the original projects' CNNs trained
by plain `model.fit` on numpy arrays with their own batch size, optimizer and epochs, cut at 60 s.
`best` is read from the shipped model's card (a 15-minute run is not repeated here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .measure import QUIET_TENSORFLOW, REPO, Row, run_python

BUDGET_SECONDS = 60.0

PLAIN_FIT = """
import json, time
import keras, numpy as np
from fmnist_core.data import load_fashion_mnist
from fmnist_core.hyperparameters import preset
from fmnist_core.model import build_model
from fmnist_core.training import select_training_data

hp = preset(%(preset)r)
data = load_fashion_mnist()
split = select_training_data(hp, data)
keras.utils.set_random_seed(hp.seed)
model = build_model(hp)
model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])

class TimeLimit(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start, self.batches = time.perf_counter(), 0
    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if time.perf_counter() - self.start >= %(budget)f:
            self.model.stop_training = True

limit = TimeLimit()
start = time.perf_counter()
model.fit(split.train_images, split.train_labels, batch_size=hp.batch_size, epochs=hp.epochs, verbose=0,
          callbacks=[limit])
seconds = time.perf_counter() - start
_, accuracy = model.evaluate(data.test_images, data.test_labels, batch_size=1000, verbose=0)
epochs = limit.batches * hp.batch_size / len(split.train_labels)
print(json.dumps({"accuracy": accuracy, "seconds": seconds, "epochs": epochs, "params": model.count_params()}))
"""


def train_quick() -> dict:
    """`python -m fmnist_core train --preset quick` into a scratch model store; its card."""
    with tempfile.TemporaryDirectory() as models_dir:
        subprocess.run(
            [sys.executable, "-m", "fmnist_core", "train", "--preset", "quick", "--name", "bench-quick"],
            cwd=REPO, env={**os.environ, **QUIET_TENSORFLOW, "FMNIST_MODELS_DIR": models_dir},
            check=True, capture_output=True, timeout=1800,
        )
        (card_path,) = Path(models_dir).glob("*/card.json")
        return json.loads(card_path.read_text())


def run() -> list[Row]:
    card = train_quick()
    seconds, accuracy = card["train_seconds"], card["test_accuracy"]
    epochs = len(card["history"])
    parameters = card["parameter_count"]
    rows = [Row("Time to accuracy", f"`quick` preset via the CLI ({epochs} epochs, {parameters:,} parameters)",
                f"{accuracy:.2%} in {seconds:.1f} s", "≥ 92.0 % in ≤ 60 s",
                accuracy >= 0.92 and seconds <= BUDGET_SECONDS, "train_seconds and test_accuracy from its card")]
    for name in ("seed-000", "seed-004"):
        figures = run_python(PLAIN_FIT % {"preset": name, "budget": BUDGET_SECONDS})
        rows.append(Row("Time to accuracy", f"`{name}` by plain model.fit, cut at 60 s ({figures['params']:,} "
                        f"parameters)", f"{figures['accuracy']:.2%} in {figures['seconds']:.1f} s", "", None,
                        f"{figures['epochs']:.1f} epochs"))
    shipped = json.loads((REPO / "models" / "default" / "card.json").read_text())
    rows.append(Row("Time to accuracy", f"`best` preset: the shipped model's card ({len(shipped['history'])} epochs)",
                    f"{shipped['test_accuracy']:.2%} in {shipped['train_seconds'] / 60:.1f} min",
                    "≥ 94.0 % in ≤ 15 min",
                    shipped["test_accuracy"] >= 0.94 and shipped["train_seconds"] <= 900, "not retrained by the bench"))
    return rows
