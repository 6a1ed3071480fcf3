"""Per-epoch checkpoints: a run cut short resumes from its last epoch with its optimizer state, history and best
weights, and a checkpoint file is replaced whole or not at all."""

import math

import numpy as np
import pytest

from fmnist_core.checkpoints import CHECKPOINT_FILE, TrainingCheckpoint, load_checkpoint, save_checkpoint
from fmnist_core.events import EpochEnd, TrainingResumed
from fmnist_core.hyperparameters import preset
from fmnist_core.training import train


class Crash(Exception):
    """Stands for the process dying right after an epoch's checkpoint was written."""


def crash_after_epoch(epoch: int):
    def listener(event):
        if isinstance(event, EpochEnd) and event.epoch == epoch:
            raise Crash
    return listener


def test_a_checkpoint_round_trips_its_arrays_and_state(tmp_path):
    weights = [np.arange(6, dtype="float32").reshape(2, 3), np.ones(3, "float32")]
    checkpoint = TrainingCheckpoint(epochs_done=2, history=[{"epoch": 1}, {"epoch": 2}], best_val_loss=0.5,
                                    best_epoch=2, epochs_without_improvement=0, elapsed_seconds=12.5, batches_done=40,
                                    weights=weights, optimizer_variables=[np.array(40, "int64")], best_weights=None)
    save_checkpoint(tmp_path, checkpoint)
    loaded = load_checkpoint(tmp_path)
    assert loaded.history == checkpoint.history and loaded.best_val_loss == 0.5 and loaded.batches_done == 40
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights, weights, strict=True))
    assert loaded.best_weights is None and int(loaded.optimizer_variables[0]) == 40
    assert list(tmp_path.iterdir()) == [tmp_path / CHECKPOINT_FILE]  # no temporary file left beside it


def test_no_checkpoint_or_a_damaged_one_means_starting_from_the_first_epoch(tmp_path):
    assert load_checkpoint(tmp_path) is None
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"PK\x03\x04 cut short")
    assert load_checkpoint(tmp_path) is None


@pytest.mark.slow
def test_a_run_cut_after_epoch_2_resumes_at_epoch_3_with_its_optimizer_where_it_was(tmp_path, dataset):
    hp = preset("seed-004", train_subset_size=3000, epochs=4, lr_schedule="cosine")
    with pytest.raises(Crash):
        train(hp, dataset, [crash_after_epoch(2)], checkpoint_dir=tmp_path)
    saved = load_checkpoint(tmp_path)
    batches_per_epoch = math.ceil(3000 * (1 - hp.validation_fraction) / hp.batch_size)
    assert saved.epochs_done == 2 and not saved.training_over and saved.batches_done == 2 * batches_per_epoch
    events = []
    result = train(hp, dataset, [events.append], checkpoint_dir=tmp_path)
    resumed = [event for event in events if isinstance(event, TrainingResumed)]
    assert len(resumed) == 1 and resumed[0].epochs_done == 2 and len(resumed[0].history) == 2
    assert [event.epoch for event in events if isinstance(event, EpochEnd)] == [3, 4]  # nothing trained twice
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4] and result.resumed_at_epochs == (2,)
    assert result.history[:2] == saved.history
    # the cosine schedule went on from half way, not from step 0: epoch 3's learning rate is below epoch 2's
    assert result.history[2]["learning_rate"] < result.history[1]["learning_rate"]
    assert result.train_seconds >= saved.elapsed_seconds
    assert load_checkpoint(tmp_path).training_over  # a crash now would only score and save again


@pytest.mark.slow
def test_a_run_whose_training_was_over_is_not_trained_again(tmp_path, dataset):
    hp = preset("seed-004", train_subset_size=2000, epochs=2)
    first = train(hp, dataset, checkpoint_dir=tmp_path)
    events = []
    again = train(hp, dataset, [events.append], checkpoint_dir=tmp_path)  # as after a crash while saving
    assert not [event for event in events if isinstance(event, EpochEnd)]
    assert again.history == first.history and again.best_epoch == first.best_epoch
    assert all(np.array_equal(a, b) for a, b in zip(again.model.get_weights(), first.model.get_weights(), strict=True))
