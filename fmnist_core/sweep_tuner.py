"""Keras Tuner's side of a sweep: the search space and oracle a `SweepSpec` declares, and the tuner that runs
each trial as an ordinary training run. Imported only when a sweep runs: it imports Keras Tuner and TensorFlow.

The search space is declared up front (`search_space`), so the tuner needs no HyperModel: `run_trial` builds
and trains each trial's model through `training.train`, with our events, stop request, time limit and
best-epoch weights. In this module, `space` is Keras Tuner's HyperParameters object and `hyperparameters`
is always ours.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import keras_tuner

from .data import FashionMNIST
from .events import COMPLETED_TRIAL, FAILED_TRIAL, STOPPED_TRIAL, Listener, TrialEnd, best_trial
from .hyperparameters import HyperParameterError, field_specs
from .sweep import (
    OBJECTIVE,
    Range,
    SweepResult,
    SweepSpec,
    SweepStopped,
    TrialRecord,
    current_tuner_id,
    swept_values,
    trial_hyperparameters,
)
from .training import train

# Keras Tuner's trial status -> ours (TrialEnd.status); a trial stopped on request ends as FAILED in Keras Tuner.
TRIAL_STATUS = {"COMPLETED": COMPLETED_TRIAL, "FAILED": FAILED_TRIAL, "INVALID": FAILED_TRIAL,
                "STOPPED": STOPPED_TRIAL, "RUNNING": "running", "IDLE": "waiting"}


def values_key(values: dict) -> str:
    """A trial's swept values as a key that two runs of the same sweep give alike."""
    return json.dumps(sorted(values.items()))


def search_space(spec: SweepSpec) -> keras_tuner.HyperParameters:
    """The swept fields as Keras Tuner hyperparameters: a Choice per list of values, an Int or Float per range
    (log-scaled when it spans 100x or more)."""
    space = keras_tuner.HyperParameters()
    for name, values in spec.vary:
        if isinstance(values, Range):
            if field_specs()[name]["type"] == "int":
                space.Int(name, int(values.low), int(values.high), step=field_specs()[name].get("step", 1))
            else:
                log = values.low > 0 and values.high / values.low >= 100
                space.Float(name, values.low, values.high, sampling="log" if log else "linear")
        else:
            space.Choice(name, list(values), ordered=False)
    return space


def make_oracle(spec: SweepSpec) -> keras_tuner.Oracle:
    """The oracle of the spec's strategy, over its search space, maximising its objective."""
    common = dict(objective=keras_tuner.Objective(spec.objective, direction="max"), seed=spec.seed,
                  hyperparameters=search_space(spec), allow_new_entries=False,
                  max_consecutive_failed_trials=spec.max_trials)
    if spec.strategy == "grid":
        return keras_tuner.oracles.GridSearchOracle(max_trials=spec.max_trials, **common)
    if spec.strategy == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=spec.max_trials, **common)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=spec.epochs_per_trial, factor=3, **common)
    oracle.max_trials = spec.max_trials  # Hyperband takes no budget of trials; the base Oracle honours this one
    return oracle


class SweepTuner(keras_tuner.Tuner):
    """Runs each trial through `training.train` and tells the listeners how it ended (`TrialEnd`).

    Stops between trials when `stop_event` is set or a trial reached the sweep's time limit
    (`time_limit_seconds` of training in all, counted from the tuner's creation)."""

    def __init__(self, spec: SweepSpec, load_dataset: Callable[[], FashionMNIST], listeners: list[Listener],
                 stop_event: threading.Event | None, time_limit_seconds: float | None,
                 ended_trials: Iterable[TrialEnd] = (), **tuner_options):
        super().__init__(oracle=make_oracle(spec), hypermodel=None, **tuner_options)
        self.spec, self.load_dataset, self.listeners, self.stop_event = spec, load_dataset, listeners, stop_event
        self.deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds
        self.stopped_by_time_limit = False
        # A resumed sweep's trials that ended before the interruption, by their values: not trained again
        self.ended = {values_key(trial.values): trial for trial in ended_trials}

    def pre_create_trial(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped_by_time_limit = True  # no trial starts after the limit, not even for one batch
        if self.stopped_by_time_limit or (self.stop_event is not None and self.stop_event.is_set()):
            raise SweepStopped

    def _emit(self, event: TrialEnd) -> None:
        for listener in self.listeners:
            listener(event)

    def run_trial(self, trial, *args, **kwargs):
        start = time.perf_counter()
        values = swept_values(trial.hyperparameters.values)
        ended = self.ended.pop(values_key(values), None)
        if ended is not None:  # the oracle asks again for what a resumed sweep did already: its result, no event
            if ended.status != COMPLETED_TRIAL or ended.val_accuracy is None:
                raise keras_tuner.errors.FailedTrialError(ended.message or "failed before the sweep was resumed")
            return {self.spec.objective: ended.val_accuracy, "epochs_run": ended.epochs,
                    "train_seconds": ended.seconds}
        try:
            hyperparameters = trial_hyperparameters(self.spec, trial.hyperparameters.values)
        except HyperParameterError as error:  # e.g. 4 'valid' conv blocks of 7x7 kernels
            self._emit(TrialEnd(trial.trial_id, values, None, 0, 0.0, FAILED_TRIAL, str(error)))
            raise keras_tuner.errors.FailedTrialError(str(error)) from error
        remaining = None if self.deadline is None else max(self.deadline - time.monotonic(), 1e-3)
        result = train(hyperparameters, self.load_dataset(), self.listeners, self.stop_event,
                       time_limit_seconds=remaining)
        seconds = time.perf_counter() - start
        best = result.history[result.best_epoch - 1]["val_accuracy"] if result.best_epoch else None
        self.stopped_by_time_limit = result.stopped_by_time_limit
        stopped = result.stopped_by_user or result.stopped_by_time_limit
        self._emit(TrialEnd(trial.trial_id, values, best, len(result.history), seconds,
                            STOPPED_TRIAL if stopped else COMPLETED_TRIAL))
        if stopped or best is None:
            raise keras_tuner.errors.FailedTrialError("stopped on request or at the time limit")
        return {self.spec.objective: best, "epochs_run": len(result.history), "train_seconds": seconds}


def _record(trial) -> TrialRecord:
    metrics = trial.metrics

    def last(name):
        return metrics.get_last_value(name) if metrics.exists(name) else None

    accuracy, epochs, seconds = last(OBJECTIVE), last("epochs_run"), last("train_seconds")
    status = str(getattr(trial.status, "value", trial.status))
    return TrialRecord(trial.trial_id, swept_values(trial.hyperparameters.values),
                       None if accuracy is None else float(accuracy), TRIAL_STATUS.get(status, status.lower()),
                       None if epochs is None else int(epochs), None if seconds is None else float(seconds))


def run_sweep(
    spec: SweepSpec,
    load_dataset: Callable[[], FashionMNIST],
    listeners: Iterable[Listener] = (),
    stop_event: threading.Event | None = None,
    directory: Path | str | None = None,
    time_limit_seconds: float | None = None,
    ended_trials: Iterable[TrialEnd] = (),
) -> SweepResult:
    """Run the sweep here; with KERASTUNER_* set, as the chief (serves trials) or a worker (runs them).

    The tuner's files go to `directory` (a fresh temporary folder if None), one sub-folder per tuner id. With
    `time_limit_seconds`, the trial in progress stops like a user stop once the sweep has run that long, and no
    further trial starts. `ended_trials` resumes an interrupted sweep: the oracle chooses the same trials again (in
    the same order, from the same seed), and those that had ended give their recorded results without training or
    events; the rest run. (Keras Tuner's own reload cannot resume a grid: its GridSearchOracle does not save where
    it was, and fails with a KeyError.)
    """
    tuner_id = current_tuner_id()
    temporary = directory is None
    root = Path(tempfile.mkdtemp(prefix="fmnist-sweep-") if temporary else directory)
    tuner = SweepTuner(spec, load_dataset, list(listeners), stop_event, time_limit_seconds, ended_trials,
                       directory=str(root / tuner_id), project_name="sweep", overwrite=True)
    result = SweepResult(directory=None if temporary else root)
    try:
        tuner.search(verbose=0)
    except SweepStopped:
        pass
    except RuntimeError:
        # A stopped trial counts as failed for Keras Tuner, which ends a search of only failures with a RuntimeError
        # ("consecutive failures exceeded"): after a stop, that is the stop, not a failure.
        if not (tuner.stopped_by_time_limit or (stop_event is not None and stop_event.is_set())):
            raise
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    result.stopped_by_time_limit = tuner.stopped_by_time_limit
    result.stopped_by_user = stop_event is not None and stop_event.is_set()
    if tuner_id.startswith("local") or "chief" in tuner_id:  # a worker's oracle is the chief's, over the network
        result.trials = sorted((_record(trial) for trial in tuner.oracle.trials.values()),
                               key=lambda record: record.trial_id)
        result.best = best_trial(result.trials)
    return result
