"""Training on real Fashion-MNIST subsets: accuracy, events, stop requests, early stopping, reproducibility, and
the drawings (sketches, non-items) added to the training data."""

import threading
import time

import keras
import numpy as np
import pytest

from fmnist_core.hyperparameters import preset
from fmnist_core.inference import Classifier
from fmnist_core.training import (
    NON_ITEM_LABEL,
    VALIDATION_BATCH_SIZE,
    BatchEnd,
    EpochEnd,
    ItemAccuracy,
    TrainingFinished,
    TrainingStarted,
    _EventBridge,
    _targets,
    make_dataset,
    select_training_data,
    train,
    validation_dataset,
)

# The seed-000 architecture, small and quick: one epoch on 5,000 images takes a few seconds here.
SMALL_RUN = preset("seed-000", train_subset_size=5000, epochs=1, batch_size=32)


@pytest.mark.slow
def test_one_epoch_on_5000_images_beats_75_percent_on_the_test_set(dataset):
    events = []
    result = train(SMALL_RUN, dataset, listeners=[events.append])
    probabilities = Classifier(result.model).probabilities(dataset.test_images)
    test_accuracy = float((probabilities.argmax(axis=1) == dataset.test_labels).mean())
    assert test_accuracy >= 0.75, test_accuracy
    assert isinstance(events[0], TrainingStarted) and events[0].train_images == 4500
    assert events[0].validation_images == 500
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert len(batches) == events[0].batches_per_epoch == 141
    assert batches[-1].batch == 141 and batches[-1].images_per_second > 0
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(epochs) == 1 and epochs[0].complete and 0.5 < epochs[0].val_accuracy <= 1.0
    assert isinstance(events[-1], TrainingFinished) and not events[-1].stopped_by_user
    assert result.history[0]["val_accuracy"] == epochs[0].val_accuracy


@pytest.mark.slow
def test_several_listeners_all_hear_every_event(dataset):
    first, second = [], []
    train(preset("seed-004", train_subset_size=1000, epochs=1), dataset, listeners=[first.append, second.append])
    assert first == second and len(first) > 3


@pytest.mark.slow
def test_stop_request_is_honoured_at_the_next_batch(dataset):
    stop = threading.Event()
    batches_seen = []

    def stop_after_three(event):
        if isinstance(event, BatchEnd):
            batches_seen.append(event.batch)
            if event.batch == 3:
                stop.set()

    hp = preset("seed-004", train_subset_size=10000, epochs=3)
    result = train(hp, dataset, listeners=[stop_after_three], stop_event=stop)
    assert batches_seen == [1, 2, 3]
    assert result.stopped_by_user and len(result.history) == 1 and not result.history[0]["complete"]
    probabilities = Classifier(result.model).probabilities(dataset.test_images[:5])
    assert probabilities.shape == (5, 10) and np.isfinite(probabilities).all()


@pytest.mark.slow
def test_same_seed_gives_the_same_first_epoch(dataset):
    hp = preset("seed-004", train_subset_size=2000, epochs=1)
    first, second = train(hp, dataset).history[0], train(hp, dataset).history[0]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert first[key] == pytest.approx(second[key], rel=1e-4, abs=1e-5), key
    other = train(hp.with_changes(seed=hp.seed + 1), dataset).history[0]
    assert other["loss"] != pytest.approx(first["loss"], rel=1e-4)


def _epoch_logs(val_loss):
    return {"loss": 1.0, "accuracy": 0.5, "val_loss": val_loss, "val_accuracy": 0.5}


def test_early_stopping_and_best_weights_are_restored():
    hp = preset("seed-004", early_stopping_patience=2, epochs=10)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    bridge = _EventBridge(hp, batches_per_epoch=1, listeners=[], stop_event=None)
    bridge.set_model(model)
    bridge.on_train_begin()
    weights_by_epoch = {}
    for epoch, val_loss in enumerate([1.0, 0.5, 0.6, 0.7]):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.full((1,), epoch, "float32")])
        weights_by_epoch[epoch + 1] = model.get_weights()
        bridge.on_epoch_begin(epoch)
        bridge.on_train_batch_end(0, {})
        bridge.on_epoch_end(epoch, _epoch_logs(val_loss))
        assert model.stop_training == (epoch == 3)
    bridge.on_train_end()
    assert bridge.best_epoch == 2 and bridge.stopped_early
    for restored, expected in zip(model.get_weights(), weights_by_epoch[2], strict=True):
        np.testing.assert_array_equal(restored, expected)


@pytest.mark.slow
def test_a_bfloat16_run_learns_saves_and_loads_with_the_same_predictions(dataset, tmp_path):
    from fmnist_core.model import build_model
    from fmnist_core.store import ModelStore

    hp = SMALL_RUN.with_changes(precision="mixed_bfloat16", batch_size=64)
    assert build_model(hp).get_layer("block1_conv1").compute_dtype == "bfloat16"  # what trains
    result = train(hp, dataset)
    assert result.model.get_layer("block1_conv1").compute_dtype == "float32"  # what is saved and served
    before = Classifier(result.model).probabilities(dataset.test_images)
    assert before.dtype == np.float32 and float((before.argmax(axis=1) == dataset.test_labels).mean()) >= 0.72
    store = ModelStore(tmp_path)
    store.save(result.model, {"name": "bf16", "hyperparameters": hp.to_dict()}, "bf16")
    after = Classifier(store.load_model("bf16")).probabilities(dataset.test_images)
    np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.slow
def test_a_time_limit_stops_the_run_like_a_user_stop(dataset):
    events = []

    def slow_listener(event):  # each batch then takes at least 0.1 s: 3 epochs of 141 batches, over 40 s
        events.append(event)
        if isinstance(event, BatchEnd):
            time.sleep(0.1)

    hp = preset("seed-004", train_subset_size=10000, epochs=3)
    result = train(hp, dataset, listeners=[slow_listener], time_limit_seconds=3.0)
    batches = [event for event in events if isinstance(event, BatchEnd)]
    assert result.stopped_by_time_limit and not result.stopped_by_user and not result.stopped_early
    # the first batch that ends past the limit is the last one
    assert batches[-1].elapsed_seconds >= 3.0 and all(batch.elapsed_seconds < 3.0 for batch in batches[:-1])
    assert len(batches) < 141 and result.train_seconds < 20  # the whole epoch would take over 14 s of sleeps alone
    assert len(result.history) == 1 and not result.history[0]["complete"] and result.best_epoch == 1
    assert isinstance(events[-1], TrainingFinished) and events[-1].stopped_by_time_limit
    probabilities = Classifier(result.model).probabilities(dataset.test_images[:5])
    assert probabilities.shape == (5, 10) and np.isfinite(probabilities).all()


@pytest.mark.parametrize("limit", [0, -5.0])
def test_a_time_limit_must_be_positive(dataset, limit):
    with pytest.raises(ValueError, match=rf"time_limit_seconds={limit}: expected a positive number"):
        train(SMALL_RUN, dataset, time_limit_seconds=limit)


# ---- drawings in the training data ------------------------------------------------------------------
def test_sketches_and_non_items_are_added_to_the_training_images_only(dataset):
    hp = preset("quick", train_subset_size=2000, sketch_fraction=0.5, non_item_fraction=0.1)
    plain = select_training_data(hp.with_changes(sketch_fraction=0.0, non_item_fraction=0.0), dataset)
    data = select_training_data(hp, dataset)
    train_count = len(plain.train_labels)
    sketches = round(0.5 * train_count)
    non_items = round(0.1 * (train_count + sketches))
    assert len(data.train_labels) == train_count + sketches + non_items
    assert np.sum(data.train_labels == NON_ITEM_LABEL) == non_items
    np.testing.assert_array_equal(data.validation_images, plain.validation_images)  # validation stays real items
    np.testing.assert_array_equal(data.train_images[:train_count], plain.train_images)


def test_a_non_item_is_taught_no_class_and_is_left_out_of_the_accuracy():
    labels = np.array([2, NON_ITEM_LABEL], np.int32)
    targets = _targets(labels).numpy()
    np.testing.assert_allclose(targets, [np.eye(10)[2], np.full(10, 0.1)])
    metric = ItemAccuracy()
    predictions = np.array([np.eye(10)[2], np.eye(10)[0]], np.float32)  # the item right; the non-item "class 0"
    metric.update_state(targets, predictions)
    assert float(metric.result()) == 1.0  # 1 of 1 items, not 2 of 2 (nor 1 of 2)


def test_the_eta_leaves_out_the_warm_up_batches_once_there_are_more(monkeypatch):
    from fmnist_core import training

    clock = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    events = []
    hp = preset("quick", epochs=2)
    bridge = training._EventBridge(hp, batches_per_epoch=100, listeners=[events.append], stop_event=None)
    bridge.on_train_begin()
    bridge.on_epoch_begin(0)
    for batch in range(60):  # 20 warm-up batches of 1 s (tracing), then 0.1 s each
        clock[0] += 1.0 if batch < training.WARM_UP_BATCHES else 0.1
        bridge.on_train_batch_end(batch, {"loss": 1.0, "accuracy": 0.5})
    assert events[10].eta_seconds == pytest.approx(1.0 * (200 - 11))  # warming up: the average so far
    assert events[-1].eta_seconds == pytest.approx(0.1 * (200 - 60))  # then the rate after the warm-up


def test_a_repeated_dataset_gives_each_image_once_per_epoch_in_a_new_order_with_the_same_batches():
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    labels = np.arange(10) % 10
    batches = list(make_dataset(images, labels, batch_size=4, seed=7, repeat=True).take(6))
    assert [len(x) for x, _ in batches] == [4, 4, 2, 4, 4, 2]  # each epoch keeps its own smaller last batch
    epochs = [np.concatenate([x[:, 0, 0].numpy() for x, _ in batches[i : i + 3]]) for i in (0, 3)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(10))
    assert list(epochs[0]) != list(epochs[1])  # reshuffled between epochs
    for x, y in batches:  # labels travel with their images, one-hot
        np.testing.assert_array_equal(np.argmax(y.numpy(), axis=1), x[:, 0, 0].numpy() % 10)


def test_the_validation_batches_come_in_order_without_tf_data_autotuning():
    images = np.arange(2500, dtype=np.int64)[:, None, None].astype(np.uint8) * np.ones((1, 28, 28), np.uint8)
    labels = np.arange(2500) % 10
    dataset = validation_dataset(images, labels)
    assert dataset.options().autotune.enabled is False
    seen = np.concatenate([np.argmax(y.numpy(), axis=1) for _, y in dataset])
    np.testing.assert_array_equal(seen, labels)  # all of them, in order, in batches of VALIDATION_BATCH_SIZE
    assert [len(x) for x, _ in dataset] == [VALIDATION_BATCH_SIZE, VALIDATION_BATCH_SIZE, 500]


def test_an_auto_precision_run_records_the_precision_this_cpu_trained_in(dataset):
    from fmnist_core.cpu import computes_bfloat16_natively

    events = []
    result = train(preset("quick", train_subset_size=1000, epochs=1, filters=(8, 8), dense_units=16), dataset,
                   listeners=[events.append])
    expected = "mixed_bfloat16" if computes_bfloat16_natively() else "float32"
    assert result.hyperparameters.precision == expected
    assert isinstance(events[0], TrainingStarted) and events[0].hyperparameters.precision == expected
