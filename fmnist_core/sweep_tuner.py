"""Keras Tuner's side of a sweep: the search space and oracle a `SweepSpec` declares, and the tuner that runs
each trial as an ordinary training run. Imported only when a sweep runs: it imports Keras Tuner and TensorFlow.

The search space is declared up front (`search_space`), so the tuner needs no HyperModel: `run_trial` builds
and trains each trial's model through `training.train`, with our events, stop request, time limit and
best-epoch weights. In this module, `space` is Keras Tuner's HyperParameters object and `hyperparameters`
is always ours.

Trials can also train elsewhere, several at once (a Ray cluster's nodes: ray_sweep.py): `run_sweep` then takes the
function that trains one trial and a number of lanes, threads that each ask the one oracle for a trial, as Keras
Tuner's own distributed workers do over gRPC (its oracle is made for calls from several threads).
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import keras_tuner

from .data import FashionMNIST
from .events import COMPLETED_TRIAL, FAILED_TRIAL, STOPPED_TRIAL, Listener, TrialEnd, best_trial
from .hyperparameters import HyperParameterError, HyperParameters, field_specs
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


class TrialTraining(Protocol):
    """What training one trial gives back: `training.TrainingResult` has these, and so has a cluster's answer."""

    history: list[dict]
    best_epoch: int  # 1-based, 0 when no epoch ended
    stopped_by_user: bool
    stopped_by_time_limit: bool


# Trains one trial: (its id, its hyperparameters, the listeners of its events, the stop event, the seconds left).
TrainTrial = Callable[[str, HyperParameters, list[Listener], threading.Event | None, float | None], TrialTraining]


class TrialsInterrupted(keras_tuner.errors.FatalError):
    """Raised by a `train_trial` when no trial can go on in this process (a Ray cluster that can no longer be
    reached): the search ends at once, Keras Tuner does not take it for a failed trial, and `run_sweep` raises
    `cause`."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _release_oracle_lock(oracle) -> None:
    """Release the lock Keras Tuner's `synchronized` took for `oracle` in this thread, if it still holds it (it does
    when the call raised: keras-tuner 1.4.8 releases it only on return)."""
    from keras_tuner.src.engine.oracle import LOCKS, THREADS

    if THREADS[oracle] == threading.current_thread().name:
        THREADS[oracle] = None
        LOCKS[oracle].release()


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


class AllAtOnceGridOracle(keras_tuner.oracles.GridSearchOracle):
    """Keras Tuner's grid, in its order (the first value of each field first, the last field changing fastest), with
    every combination known from the start: trials training at once each get the next untried one. Keras Tuner's
    own grid derives a trial's values from an earlier trial's only when that one has ended, so a second lane mostly
    waits (measured on a two-node cluster: the third and fourth of four trials ran one after the other)."""

    def populate_space(self, trial_id):
        tried = {values_key(trial.hyperparameters.values) for trial in self.trials.values()}
        space = self.get_space().space
        choices = [[hp.default, *(value for value in hp.values if value != hp.default)] for hp in space]
        for combination in itertools.product(*choices):
            values = {hp.name: value for hp, value in zip(space, combination, strict=True)}
            if values_key(values) not in tried:
                return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
        return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}


def make_oracle(spec: SweepSpec) -> keras_tuner.Oracle:
    """The oracle of the spec's strategy, over its search space, maximising its objective."""
    common = dict(objective=keras_tuner.Objective(spec.objective, direction="max"), seed=spec.seed,
                  hyperparameters=search_space(spec), allow_new_entries=False,
                  max_consecutive_failed_trials=spec.max_trials)
    if spec.strategy == "grid":
        return AllAtOnceGridOracle(max_trials=spec.max_trials, **common)
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
                 ended_trials: Iterable[TrialEnd] = (), train_trial: TrainTrial | None = None, **tuner_options):
        super().__init__(oracle=make_oracle(spec), hypermodel=None, **tuner_options)
        self.spec, self.load_dataset, self.listeners, self.stop_event = spec, load_dataset, listeners, stop_event
        self.train_trial = train_trial or self._train_here
        self.deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds
        self.stopped_by_time_limit = False
        # A resumed sweep's trials that ended before the interruption, by their values: not trained again
        self.ended = {values_key(trial.values): trial for trial in ended_trials}
        self._lane_errors: list[BaseException] = []

    def _train_here(self, trial_id: str, hyperparameters: HyperParameters, listeners: list[Listener],
                    stop_event: threading.Event | None, remaining: float | None) -> TrialTraining:
        return train(hyperparameters, self.load_dataset(), listeners, stop_event, time_limit_seconds=remaining)

    def search_in_lanes(self, lanes: int) -> None:
        """Keras Tuner's search loop in `lanes` threads at once, each asking the oracle for its next trial under an id
        of its own ('lane-1', …): as many trials train at a time. Raises what a lane raised: a lost cluster
        (TrialsInterrupted) first, then any failure, then a stop (SweepStopped).

        Every oracle call stays under the oracle's own lock (Keras Tuner's `synchronized`): a lane ends its trial with
        `oracle.end_trial`, which saves the oracle, and never saves the tuner (whose file nothing here reads; its
        save wrote the oracle's file outside that lock). That lock is not released when the call raises, so the
        oracle never raises for failed trials here (its limit of consecutive failures is lifted): a sweep whose every
        trial failed raises once all lanes have ended."""
        if lanes <= 1:
            self.search(verbose=0)
            return
        self.oracle.verbose = 0
        self.oracle.max_consecutive_failed_trials = None
        self.on_search_begin()
        threads = [threading.Thread(target=self._lane, args=(f"lane-{number}",), name=f"sweep-lane-{number}",
                                    daemon=True) for number in range(1, lanes + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.on_search_end()
        errors = sorted(self._lane_errors, key=lambda error: (not isinstance(error, TrialsInterrupted),
                                                              isinstance(error, SweepStopped)))
        if errors:
            raise errors[0]
        trials = list(self.oracle.trials.values())
        if trials and not any(trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED for trial in trials):
            raise RuntimeError(f"all {len(trials)} trials failed; the last one: {trials[-1].message}")

    def _lane(self, tuner_id: str) -> None:
        try:
            while not self._lane_errors:
                self.pre_create_trial()
                trial = self.oracle.create_trial(tuner_id)
                if trial.status == keras_tuner.engine.trial.TrialStatus.STOPPED:
                    return  # no trial left for this lane
                if trial.status == keras_tuner.engine.trial.TrialStatus.IDLE:
                    time.sleep(0.5)  # Hyperband waits for the other lanes' trials of its round
                    continue
                self._try_run_and_update_trial(trial)
                self.oracle.end_trial(trial)
        except BaseException as error:  # noqa: BLE001 - handed to search_in_lanes, which raises it
            _release_oracle_lock(self.oracle)  # held still if an oracle call raised: the other lanes would wait
            self._lane_errors.append(error)

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
        result = self.train_trial(trial.trial_id, hyperparameters, self.listeners, self.stop_event, remaining)
        seconds = time.perf_counter() - start
        best = result.history[result.best_epoch - 1]["val_accuracy"] if result.best_epoch else None
        self.stopped_by_time_limit = self.stopped_by_time_limit or result.stopped_by_time_limit
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
    train_trial: TrainTrial | None = None,
    lanes: int = 1,
) -> SweepResult:
    """Run the sweep here; with KERASTUNER_* set, as the chief (serves trials) or a worker (runs them).

    The tuner's files go to `directory` (a fresh temporary folder if None), one sub-folder per tuner id. With
    `time_limit_seconds`, the trial in progress stops like a user stop once the sweep has run that long, and no
    further trial starts. `ended_trials` resumes an interrupted sweep: the oracle chooses the same trials again (in
    the same order, from the same seed), and those that had ended give their recorded results without training or
    events; the rest run. (Keras Tuner's own reload cannot resume a grid: its GridSearchOracle does not save where
    it was, and fails with a KeyError.) `train_trial` trains one trial elsewhere (default: here, with
    `load_dataset`); `lanes` trials train at once (threads sharing the oracle; with `lanes` 1, Keras Tuner's own
    search, which also serves as a distributed chief or worker).
    """
    tuner_id = current_tuner_id()
    temporary = directory is None
    root = Path(tempfile.mkdtemp(prefix="fmnist-sweep-") if temporary else directory)
    tuner = SweepTuner(spec, load_dataset, list(listeners), stop_event, time_limit_seconds, ended_trials, train_trial,
                       directory=str(root / tuner_id), project_name="sweep", overwrite=True)
    result = SweepResult(directory=None if temporary else root)
    try:
        tuner.search_in_lanes(lanes)
    except SweepStopped:
        pass
    except TrialsInterrupted as error:
        raise error.cause from None
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
