"""Training: hyperparameters and data in, a trained model and its history out, with progress events.

The trainer knows nothing about any UI. It sends events (`TrainingStarted`, `BatchEnd`, `EpochEnd`,
`TrainingFinished`) to any number of listeners, honours a stop request at the next batch boundary,
stops the same way when an optional wall-clock limit is reached, stops early on validation loss,
and always ends with the weights of the best validation epoch.
Given a checkpoint folder, it writes a checkpoint after every epoch and when training ends, and a run started
again with the same folder resumes from it (`TrainingResumed`), losing at most the epoch in progress.
The test set is never touched here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .checkpoints import TrainingCheckpoint, load_checkpoint, save_checkpoint
from .data import NUM_CLASSES, FashionMNIST, stratified_split, stratified_subset
from .drawings import non_item_inputs, sketch_inputs
from .events import BatchEnd, EpochEnd, Listener, TrainingEvent, TrainingFinished, TrainingResumed, TrainingStarted
from .hyperparameters import HyperParameters
from .inference import UNSURE_BELOW, Classifier
from .model import answering_model, build_model

VALIDATION_BATCH_SIZE = 1000
# The first batches a process trains trace the graph and warm its caches (seconds: the shipped model's first epoch
# took 46 s where its slow epochs took 41 s): the ETA's rate leaves them out, once there are more.
WARM_UP_BATCHES = 20
NON_ITEM_LABEL = -1  # a training image that is no item of clothing: its target is the uniform distribution


@dataclass
class TrainingResult:
    model: keras.Model
    hyperparameters: HyperParameters
    history: list[dict] = field(default_factory=list)  # one dict per epoch, as in EpochEnd
    train_seconds: float = 0.0
    best_epoch: int = 0
    stopped_by_user: bool = False
    stopped_early: bool = False
    stopped_by_time_limit: bool = False
    unsure_below: float = UNSURE_BELOW  # top probability under which an answer is "unsure / not an item"
    resumed_at_epochs: tuple[int, ...] = ()  # epochs done each time the run was resumed from a checkpoint
    classifier: Classifier | None = None  # `model` answering as its hyperparameters say, traced once, to evaluate it


@dataclass(frozen=True)
class TrainingData:
    """The images a run trains and validates on, carved from the training set only."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray


def select_training_data(hp: HyperParameters, dataset: FashionMNIST) -> TrainingData:
    """The (optional) seeded subset of the training set, split into train and stratified validation."""
    labels = dataset.train_labels
    pool = np.arange(len(labels))
    if hp.train_subset_size:
        pool = stratified_subset(labels, hp.train_subset_size, hp.seed)
    train_part, validation_part = stratified_split(labels[pool], hp.validation_fraction, hp.seed)
    train_index, validation_index = pool[train_part], pool[validation_part]
    train_images, train_labels = dataset.train_images[train_index], labels[train_index]
    if hp.sketch_fraction:  # drawings of training items only: validation stays what the test set is like
        drawn = np.random.default_rng(hp.seed).choice(
            len(train_labels), size=round(hp.sketch_fraction * len(train_labels)), replace=False
        )
        train_images = np.concatenate([train_images, sketch_inputs(train_images[drawn], train_labels[drawn], hp.seed)])
        train_labels = np.concatenate([train_labels, train_labels[drawn]])
    if hp.non_item_fraction:
        count = round(hp.non_item_fraction * len(train_labels))
        train_images = np.concatenate([train_images, non_item_inputs(count, hp.seed)])
        train_labels = np.concatenate([train_labels.astype(np.int16), np.full(count, NON_ITEM_LABEL, np.int16)])
    return TrainingData(
        train_images, train_labels, dataset.train_images[validation_index], labels[validation_index],
    )


def make_optimizer(hp: HyperParameters, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate = hp.learning_rate
    if hp.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=max(1, hp.epochs * steps_per_epoch), alpha=0.01
        )
    if hp.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True)
    if hp.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None,
                 repeat: bool = False) -> tf.data.Dataset:
    """Batches of (uint8 images, one-hot labels); reshuffled each epoch when `seed` is given. With `repeat`, the
    epochs follow one another in one endless dataset (give fit its steps per epoch; each epoch keeps its own last,
    smaller batch).

    A tf.data pipeline with prefetching feeds the CPU about 1.2-1.5x faster than numpy arrays given to fit().
    Repeated, one iterator serves the whole run. Given one pass per epoch, Keras makes a new iterator each epoch,
    and dropping an iterator of a pipeline tf.data autotunes waits, at times, for the autotuning thread: about half of
    the epochs started 0.8 s late (8 % of a 16-epoch `quick` run; bench/HISTORY.md).
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype("int32")))
    if seed is not None:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y: (x, _targets(y)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def validation_dataset(images: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    """The validation images in batches of VALIDATION_BATCH_SIZE, in order, without tf.data's autotuning: Keras
    drops the validation iterator after every epoch's evaluation, which, autotuned, took 1.2 s in 7 of 16 epochs
    (11 % of a 16-epoch `quick` run) and without it takes a millisecond."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return make_dataset(images, labels, VALIDATION_BATCH_SIZE, seed=None).with_options(options)


def _targets(labels: tf.Tensor) -> tf.Tensor:
    """One-hot targets; a non-item (NON_ITEM_LABEL) gets the uniform distribution: no class at all."""
    uniform = tf.fill([tf.shape(labels)[0], NUM_CLASSES], 1.0 / NUM_CLASSES)
    return tf.where((labels == NON_ITEM_LABEL)[:, None], uniform, tf.one_hot(labels, NUM_CLASSES))


class ItemAccuracy(keras.metrics.Metric):
    """Accuracy over the items of clothing only: non-items (uniform targets) have no right class to count."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.right = self.add_variable(shape=(), initializer="zeros", name="right")
        self.items = self.add_variable(shape=(), initializer="zeros", name="items")

    def update_state(self, y_true, y_pred, sample_weight=None):
        is_item = tf.cast(tf.reduce_max(y_true, axis=-1) > 0.5, "float32")
        right = tf.cast(tf.argmax(y_true, axis=-1) == tf.argmax(y_pred, axis=-1), "float32")
        self.right.assign_add(tf.reduce_sum(right * is_item))
        self.items.assign_add(tf.reduce_sum(is_item))

    def result(self):
        return tf.math.divide_no_nan(self.right, self.items)

    def reset_state(self):
        self.right.assign(0.0)
        self.items.assign(0.0)


class _EventBridge(keras.callbacks.Callback):
    """Turns Keras callbacks into our events, applies the stop request, early stopping and best weights."""

    def __init__(self, hp: HyperParameters, batches_per_epoch: int, listeners: list[Listener],
                 stop_event: threading.Event | None, time_limit_seconds: float | None = None,
                 checkpoint_dir: Path | None = None):
        super().__init__()
        self.hp, self.batches_per_epoch, self.listeners, self.stop_event = hp, batches_per_epoch, listeners, stop_event
        self.time_limit_seconds, self.checkpoint_dir = time_limit_seconds, checkpoint_dir
        self.history: list[dict] = []
        self.best_val_loss, self.best_epoch, self.best_weights = np.inf, 0, None
        self.epochs_without_improvement = 0
        self.stopped_by_user = self.stopped_early = self.stopped_by_time_limit = False
        self.start = self.epoch_start = 0.0
        self.elapsed_before = 0.0  # training seconds before a resume
        self.resumed_at_epochs: list[int] = []  # the epochs done at each resume from a checkpoint
        self.batches_done = 0  # over the whole run, for the ETA
        self.batches_this_process = 0
        self.warm: tuple[int, float] | None = None  # (batches done, elapsed seconds) once warmed up, for the ETA
        self.epoch = 0
        self.batches_this_epoch = 0

    def restore(self, checkpoint: TrainingCheckpoint) -> None:
        """Take up a checkpointed run: its history, best epoch, early-stopping count, clock and flags."""
        self.history = list(checkpoint.history)
        self.best_val_loss, self.best_epoch = checkpoint.best_val_loss, checkpoint.best_epoch
        self.best_weights = checkpoint.best_weights
        self.epochs_without_improvement = checkpoint.epochs_without_improvement
        self.elapsed_before, self.batches_done = checkpoint.elapsed_seconds, checkpoint.batches_done
        self.stopped_by_user, self.stopped_early = checkpoint.stopped_by_user, checkpoint.stopped_early
        self.stopped_by_time_limit = checkpoint.stopped_by_time_limit
        self.resumed_at_epochs = [*checkpoint.resumed_at_epochs, checkpoint.epochs_done]

    def write_checkpoint(self, training_over: bool = False) -> None:
        if self.checkpoint_dir is None:
            return
        optimizer = self.model.optimizer
        save_checkpoint(self.checkpoint_dir, TrainingCheckpoint(
            epochs_done=len(self.history), history=self.history, best_val_loss=float(self.best_val_loss),
            best_epoch=self.best_epoch, epochs_without_improvement=self.epochs_without_improvement,
            elapsed_seconds=time.perf_counter() - self.start, batches_done=self.batches_done,
            training_over=training_over, stopped_by_user=self.stopped_by_user, stopped_early=self.stopped_early,
            stopped_by_time_limit=self.stopped_by_time_limit, resumed_at_epochs=self.resumed_at_epochs,
            weights=self.model.get_weights(),
            optimizer_variables=[keras.ops.convert_to_numpy(v) for v in optimizer.variables] if optimizer.built else [],
            best_weights=self.best_weights,
        ))

    def emit(self, event: TrainingEvent) -> None:
        for listener in self.listeners:
            listener(event)

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter() - self.elapsed_before

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_start, self.batches_this_epoch = epoch + 1, time.perf_counter(), 0

    def _eta(self, elapsed: float) -> float:
        left = max(self.hp.epochs * self.batches_per_epoch - self.batches_done, 0)
        if self.warm is None:  # still warming up: the average so far
            return elapsed / max(self.batches_done, 1) * left
        batches, seconds = self.warm
        return (elapsed - seconds) / max(self.batches_done - batches, 1) * left

    def on_train_batch_end(self, batch, logs=None):
        self.batches_done += 1
        self.batches_this_process += 1
        if self.batches_this_process == WARM_UP_BATCHES:
            self.warm = (self.batches_done, time.perf_counter() - self.start)
        self.batches_this_epoch = batch + 1
        now = time.perf_counter()
        epoch_seconds = max(now - self.epoch_start, 1e-9)
        elapsed = now - self.start
        logs = logs or {}
        self.emit(BatchEnd(
            epoch=self.epoch, batch=batch + 1, batches_per_epoch=self.batches_per_epoch, epochs=self.hp.epochs,
            loss=float(logs.get("loss", np.nan)), accuracy=float(logs.get("accuracy", np.nan)),
            images_per_second=(batch + 1) * self.hp.batch_size / epoch_seconds,
            elapsed_seconds=elapsed, eta_seconds=self._eta(elapsed),
        ))
        if self.stop_event is not None and self.stop_event.is_set():
            self.stopped_by_user = True
            self.model.stop_training = True
        elif self.time_limit_seconds is not None and elapsed >= self.time_limit_seconds and not self.stopped_by_user:
            self.stopped_by_time_limit = True  # like a user stop: the best weights so far are kept
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        record = EpochEnd(
            epoch=epoch + 1, epochs=self.hp.epochs,
            loss=float(logs["loss"]), accuracy=float(logs["accuracy"]),
            val_loss=float(logs["val_loss"]), val_accuracy=float(logs["val_accuracy"]),
            learning_rate=float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            images_per_second=self.batches_this_epoch * self.hp.batch_size / max(now - self.epoch_start, 1e-9),
            elapsed_seconds=now - self.start, eta_seconds=self._eta(now - self.start),
            complete=self.batches_this_epoch == self.batches_per_epoch,
        )
        self.history.append(record.__dict__.copy())
        if record.val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch = record.val_loss, record.epoch
            self.best_weights = self.model.get_weights()
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
            patience = self.hp.early_stopping_patience
            if patience and self.epochs_without_improvement >= patience and not self.model.stop_training:
                self.stopped_early = True
                self.model.stop_training = True
        if not self.model.stop_training and record.epoch < self.hp.epochs:
            self.write_checkpoint()  # before the page hears of the epoch: what it shows survives a crash
        self.emit(record)

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        self.write_checkpoint(training_over=True)  # a crash while scoring or saving resumes without training


def train(
    hp: HyperParameters,
    dataset: FashionMNIST,
    listeners: Iterable[Listener] = (),
    stop_event: threading.Event | None = None,
    time_limit_seconds: float | None = None,
    checkpoint_dir: Path | str | None = None,
) -> TrainingResult:
    """Train the model `hp` describes on `dataset`'s training set; return it with the best validation weights.

    With `time_limit_seconds`, training stops after the first batch that ends past that many seconds (counting
    the seconds trained before a resume). With `checkpoint_dir`, a checkpoint is written there after every epoch
    and at the end, and a checkpoint found there at the start is resumed.
    """
    if time_limit_seconds is not None and not time_limit_seconds > 0:
        raise ValueError(f"time_limit_seconds={time_limit_seconds!r}: expected a positive number of seconds or None.")
    hp = hp.for_this_cpu()  # what the card records: the precision this CPU trained in, not "auto"
    keras.utils.set_random_seed(hp.seed)
    data = select_training_data(hp, dataset)
    batches_per_epoch = int(np.ceil(len(data.train_labels) / hp.batch_size))
    listeners = list(listeners)
    model = build_model(hp)
    model.compile(
        optimizer=make_optimizer(hp, batches_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
        metrics=[ItemAccuracy()],
    )
    checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    bridge = _EventBridge(hp, batches_per_epoch, listeners, stop_event, time_limit_seconds, checkpoint_dir)
    checkpoint = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint is not None:
        _restore(model, bridge, checkpoint)
        bridge.emit(TrainingResumed(checkpoint.epochs_done, tuple(checkpoint.history)))
    bridge.emit(TrainingStarted(hp, len(data.train_labels), len(data.validation_labels), batches_per_epoch, hp.epochs))
    start = time.perf_counter()
    if checkpoint is not None and checkpoint.training_over:
        model.set_weights(checkpoint.weights)  # the best weights, set when training ended: only scoring remains
    elif stop_event is not None and stop_event.is_set():
        bridge.stopped_by_user = True
        bridge.set_model(model)
        bridge.on_train_begin()
        bridge.on_train_end()
    else:
        bridge.set_model(model)
        model.fit(
            make_dataset(data.train_images, data.train_labels, hp.batch_size, seed=hp.seed, repeat=True),
            epochs=hp.epochs, initial_epoch=len(bridge.history), steps_per_epoch=batches_per_epoch, verbose=0,
            callbacks=[bridge], shuffle=False,  # shuffled by make_dataset
            validation_data=validation_dataset(data.validation_images, data.validation_labels),
        )
    train_seconds = time.perf_counter() - start + bridge.elapsed_before
    # Said before the inference copy is built and its threshold measured (seconds: a new model is traced), so that a
    # page shows a stopped run as stopped at once.
    bridge.emit(TrainingFinished(len(bridge.history), bridge.best_epoch, bridge.stopped_by_user,
                                 bridge.stopped_early, train_seconds, bridge.stopped_by_time_limit))
    # What gets saved and served: the same weights without optimizer state, computing in float32. bfloat16 speeds
    # up training in batches, but one image at a time float32 is faster here (1.0 vs 1.5 ms per image).
    inference_model = build_model(hp.with_changes(precision="float32"))
    inference_model.set_weights(model.get_weights())
    classifier = Classifier(answering_model(inference_model, hp))
    unsure_below = classifier.unsure_threshold(data.validation_images)
    return TrainingResult(inference_model, hp, bridge.history, train_seconds, bridge.best_epoch,
                          bridge.stopped_by_user, bridge.stopped_early, bridge.stopped_by_time_limit, unsure_below,
                          tuple(bridge.resumed_at_epochs), classifier)


def _restore(model: keras.Model, bridge: _EventBridge, checkpoint: TrainingCheckpoint) -> None:
    """Put a checkpoint's weights and optimizer state into the freshly compiled `model`, and its state into
    `bridge`."""
    model.set_weights(checkpoint.weights)
    if checkpoint.optimizer_variables:
        model.optimizer.build(model.trainable_variables)
        for variable, value in zip(model.optimizer.variables, checkpoint.optimizer_variables, strict=True):
            variable.assign(value)
    bridge.restore(checkpoint)
