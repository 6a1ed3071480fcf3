"""Per-epoch checkpoints of a training run, so a run cut by a crash resumes where its last epoch ended.

One file per run (`checkpoint.npz`): the model's weights, the optimizer's variables (its step count and
moments), the best epoch's weights and the trainer's own state (history, best validation loss, early-stopping
count, elapsed seconds), written to a temporary file, synced and renamed over the last one. A crash at any
moment leaves the previous checkpoint or the new one whole, never half of either.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CHECKPOINT_FILE = "checkpoint.npz"


@dataclass
class TrainingCheckpoint:
    epochs_done: int
    history: list[dict]
    best_val_loss: float
    best_epoch: int
    epochs_without_improvement: int
    elapsed_seconds: float
    batches_done: int
    training_over: bool = False  # no more epochs to run: only scoring and saving remain
    stopped_by_user: bool = False
    stopped_early: bool = False
    stopped_by_time_limit: bool = False
    resumed_at_epochs: list[int] = field(default_factory=list)  # the epochs done at each earlier resume
    weights: list[np.ndarray] = field(default_factory=list, repr=False)
    optimizer_variables: list[np.ndarray] = field(default_factory=list, repr=False)
    best_weights: list[np.ndarray] | None = field(default=None, repr=False)


_ARRAY_LISTS = ("weights", "optimizer_variables", "best_weights")


def save_checkpoint(folder: Path | str, checkpoint: TrainingCheckpoint) -> Path:
    """Write `checkpoint` atomically as folder/checkpoint.npz; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value for key, value in asdict(checkpoint).items() if key not in _ARRAY_LISTS}
    state["best_val_loss"] = None if not np.isfinite(checkpoint.best_val_loss) else checkpoint.best_val_loss
    arrays = {"state": np.array(json.dumps(state))}
    for name in _ARRAY_LISTS:
        values = getattr(checkpoint, name)
        if values is not None:
            arrays[f"{name}_count"] = np.array(len(values))
            arrays.update({f"{name}_{index}": np.asarray(value) for index, value in enumerate(values)})
    final = folder / CHECKPOINT_FILE
    temporary = folder / f".{CHECKPOINT_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)  # atomic: readers see the old checkpoint or the new one
    finally:
        temporary.unlink(missing_ok=True)
    return final


def load_checkpoint(folder: Path | str) -> TrainingCheckpoint | None:
    """The run's last checkpoint, or None when it has none (or only an unreadable one, which is then ignored:
    the run starts again from its first epoch rather than fail)."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            state = json.loads(str(data["state"]))
            lists = {}
            for name in _ARRAY_LISTS:
                if f"{name}_count" in data:
                    lists[name] = [data[f"{name}_{index}"] for index in range(int(data[f"{name}_count"]))]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    state["best_val_loss"] = np.inf if state["best_val_loss"] is None else state["best_val_loss"]
    return TrainingCheckpoint(**state, **lists)
