"""Training events: what the trainer tells its listeners (a page, the CLI, a test).

Kept apart from `training` so that listeners (`jobs`, the app) can import them without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .hyperparameters import HyperParameters


@dataclass(frozen=True)
class TrainingStarted:
    hyperparameters: HyperParameters
    train_images: int
    validation_images: int
    batches_per_epoch: int
    epochs: int


@dataclass(frozen=True)
class TrainingResumed:
    """A run cut short (a crash, a restart) goes on from its last checkpoint; sent before `TrainingStarted`."""

    epochs_done: int  # the epochs kept from before the interruption
    history: tuple[dict, ...]  # their EpochEnd fields, one dict per epoch


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 1-based
    batch: int  # 1-based, within the epoch
    batches_per_epoch: int
    epochs: int
    loss: float  # running mean over the epoch so far
    accuracy: float
    images_per_second: float
    elapsed_seconds: float
    eta_seconds: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 1-based
    epochs: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    images_per_second: float
    elapsed_seconds: float
    eta_seconds: float
    complete: bool  # False when a stop request cut the epoch short


@dataclass(frozen=True)
class TrainingFinished:
    epochs_run: int
    best_epoch: int
    stopped_by_user: bool
    stopped_early: bool
    train_seconds: float
    stopped_by_time_limit: bool = False  # the run reached its wall-clock cap (server runs; see jobs.py)


COMPLETED_TRIAL, FAILED_TRIAL, STOPPED_TRIAL = "completed", "failed", "stopped"  # a sweep trial's status


@dataclass(frozen=True)
class TrialEnd:
    """One sweep trial is over (sent by `sweep`, after the trial's own training events)."""

    trial_id: str
    values: dict  # the swept hyperparameters' values, e.g. {"learning_rate": 0.001}
    val_accuracy: float | None  # of the best validation epoch; None when the trial failed
    epochs: int  # epochs run
    seconds: float
    status: str  # COMPLETED_TRIAL, FAILED_TRIAL (e.g. an impossible model) or STOPPED_TRIAL
    message: str = ""  # why it failed


def best_trial(trials):
    """The completed trial with the highest validation accuracy, or None; for `TrialEnd` events and the sweep's
    `TrialRecord`s alike (both have `status` and `val_accuracy`)."""
    completed = [trial for trial in trials if trial.status == COMPLETED_TRIAL and trial.val_accuracy is not None]
    return max(completed, key=lambda trial: trial.val_accuracy, default=None)


TrainingEvent = TrainingStarted | TrainingResumed | BatchEnd | EpochEnd | TrainingFinished | TrialEnd
Listener = Callable[[TrainingEvent], None]
