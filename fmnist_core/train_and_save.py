"""A whole run as the app and the CLI do it: train, evaluate on the test set, save with its card."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from .data import FashionMNIST
from .evaluation import Evaluation, evaluate
from .hyperparameters import HyperParameters
from .store import ModelStore, SavedModel, make_card
from .training import Listener, train


def train_evaluate_save(
    hp: HyperParameters,
    dataset: FashionMNIST,
    store: ModelStore,
    run_name: str,
    preset: str | None = None,
    listeners: Iterable[Listener] = (),
    stop_event: threading.Event | None = None,
    time_limit_seconds: float | None = None,
    checkpoint_dir: Path | str | None = None,
    card_extra: dict | None = None,
    room_reserved: bool = False,
) -> tuple[SavedModel, Evaluation]:
    """Train (stoppable, optionally capped in time, resumable from `checkpoint_dir`), score the best weights on the
    test set, save model and card (with `card_extra`'s fields, e.g. the job and owner); `room_reserved`: the store
    kept room for it when its job was queued, so the save is not refused for lack of room."""
    result = train(hp, dataset, listeners=listeners, stop_event=stop_event, time_limit_seconds=time_limit_seconds,
                   checkpoint_dir=checkpoint_dir)
    evaluation = evaluate(result.classifier, dataset.test_images, dataset.test_labels)
    card = {**make_card(result, evaluation, dataset, run_name=run_name, preset=preset), **(card_extra or {})}
    saved = store.save(result.model, card, run_name, room_reserved=room_reserved,
                       test_probabilities=evaluation.probabilities)
    return saved, evaluation
