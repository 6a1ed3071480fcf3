"""Background jobs: one training run or sweep at a time per server, visible to every session, stoppable.

The worker thread never touches any UI. It records training events into a `TrainingJob`; pages read
immutable `JobSnapshot`s from it as often as they like. `TrainingManager.start` is atomic, so two
sessions pressing Train at the same moment start exactly one run.

A run belongs to the server, not to the browser tab that started it: when that tab closes, the run goes
on, every visitor's Train page shows it and can stop it, and it ends at its epoch count or after
MAX_TRAIN_MINUTES of training, whichever comes first; either way the best weights are evaluated and saved.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .data import FashionMNIST
from .events import BatchEnd, EpochEnd, TrainingEvent, TrainingFinished, TrainingStarted, TrialEnd
from .hyperparameters import HyperParameters
from .memory import release_free_memory
from .store import ModelStore, SavedModel

RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"
# Per-batch points kept for the live chart (older ones are thinned out): a 400 px wide chart shows no more,
# and every refresh of the Train page sends them all to each open browser.
MAX_BATCH_POINTS = 1000
# Wall-clock cap on the training of a server run, so one visitor cannot hold the CPU for hours (the epoch,
# subset and parameter caps alone allow a 5M-parameter model 60 epochs on 60,000 images). When reached, the
# run stops like a user stop: best weights kept, evaluated, saved. Read when a run starts.
MAX_TRAIN_MINUTES = 30


class TrainingBusyError(RuntimeError):
    """A run is already in progress on this server."""


@dataclass(frozen=True)
class JobSnapshot:
    """What a page shows of a job at one moment; safe to keep and read from any thread."""

    job_id: str
    run_name: str
    preset: str | None
    hyperparameters: HyperParameters
    owner: str
    state: str
    phase: str  # "starting", "training", "evaluating", "saving", "done"
    started_at: float
    last_batch: BatchEnd | None
    batch_points: tuple[tuple[float, float, float], ...]  # (epoch as a fraction, loss, accuracy)
    epochs: tuple[dict, ...]  # EpochEnd fields, one dict per finished epoch
    stop_requested: bool
    saved_name: str | None
    test_accuracy: float | None
    error: str | None
    stopped_by_time_limit: bool = False  # ended by MAX_TRAIN_MINUTES, not by its epochs or a person

    @property
    def is_running(self) -> bool:
        return self.state == RUNNING


@dataclass
class TrainingJob:
    run_name: str
    preset: str | None
    hyperparameters: HyperParameters
    owner: str
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    state: str = RUNNING
    phase: str = "starting"
    last_batch: BatchEnd | None = None
    batch_points: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    stopped_by_time_limit: bool = False
    saved: SavedModel | None = None
    test_accuracy: float | None = None
    error: str | None = None
    traceback: str | None = None  # for the server log and the page's details; never shown alone
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def listen(self, event: TrainingEvent) -> None:
        """The training listener: record the event; never blocks training for long."""
        with self._lock:
            if isinstance(event, TrainingStarted):
                self.phase = "training"
            elif isinstance(event, BatchEnd):
                self.last_batch = event
                position = event.epoch - 1 + event.batch / event.batches_per_epoch
                self.batch_points.append((position, event.loss, event.accuracy))
                if len(self.batch_points) > MAX_BATCH_POINTS:
                    self.batch_points = self.batch_points[::2]
            elif isinstance(event, EpochEnd):
                self.epochs.append(dict(event.__dict__))
            elif isinstance(event, TrainingFinished):
                self.phase = "evaluating"
                self.stopped_by_time_limit = event.stopped_by_time_limit

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                job_id=self.job_id, run_name=self.run_name, preset=self.preset,
                hyperparameters=self.hyperparameters, owner=self.owner, state=self.state, phase=self.phase,
                started_at=self.started_at, last_batch=self.last_batch, batch_points=tuple(self.batch_points),
                epochs=tuple(self.epochs), stop_requested=self.stop_event.is_set(),
                saved_name=self.saved.name if self.saved else None, test_accuracy=self.test_accuracy,
                error=self.error, stopped_by_time_limit=self.stopped_by_time_limit,
            )

    def request_stop(self) -> None:
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker has finished (True) or `timeout` seconds passed (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


@dataclass(frozen=True)
class SweepSnapshot:
    """What the Sweep page shows of a sweep at one moment."""

    job_id: str
    run_name: str
    spec: object  # sweep.SweepSpec (not imported here: that would import Keras Tuner with the app)
    owner: str
    state: str
    started_at: float
    trials: tuple[TrialEnd, ...]  # in the order they ended
    last_batch: BatchEnd | None  # of the trial in progress
    best: TrialEnd | None
    stop_requested: bool
    error: str | None
    stopped_by_time_limit: bool = False

    @property
    def is_running(self) -> bool:
        return self.state == RUNNING


@dataclass
class SweepJob:
    """A Keras Tuner sweep in the server's slot; trials are recorded as their `TrialEnd` events arrive."""

    spec: object
    owner: str
    run_name: str = "sweep"
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    state: str = RUNNING
    trials: list = field(default_factory=list)
    last_batch: BatchEnd | None = None
    error: str | None = None
    traceback: str | None = None
    stopped_by_time_limit: bool = False  # the whole sweep reached MAX_TRAIN_MINUTES
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def stop_for_time_limit(self) -> None:
        with self._lock:
            self.stopped_by_time_limit = True
        self.stop_event.set()

    def listen(self, event: TrainingEvent) -> None:
        with self._lock:
            if isinstance(event, BatchEnd):
                self.last_batch = event
            elif isinstance(event, TrialEnd):
                self.trials.append(event)
                self.last_batch = None

    def snapshot(self) -> SweepSnapshot:
        with self._lock:
            scored = [trial for trial in self.trials if trial.status == "completed"]
            return SweepSnapshot(
                job_id=self.job_id, run_name=self.run_name, spec=self.spec, owner=self.owner, state=self.state,
                started_at=self.started_at, trials=tuple(self.trials), last_batch=self.last_batch,
                best=max(scored, key=lambda trial: trial.val_accuracy, default=None),
                stop_requested=self.stop_event.is_set(), error=self.error,
                stopped_by_time_limit=self.stopped_by_time_limit,
            )

    request_stop = TrainingJob.request_stop
    wait = TrainingJob.wait


def trim_after_each_epoch(event: TrainingEvent) -> None:
    """A listener that hands freed memory back after every epoch: the server would grow ~25 MB an epoch."""
    if isinstance(event, EpochEnd):
        release_free_memory(collect_garbage=False)


class TrainingManager:
    """Owns the server's single training slot. Share one instance across sessions."""

    def __init__(self, store: ModelStore, load_dataset: Callable[[], FashionMNIST]):
        self.store, self.load_dataset = store, load_dataset
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None

    def current(self) -> TrainingJob | SweepJob | None:
        """The running job, or the last one that ran."""
        with self._lock:
            return self._job

    def start(self, hp: HyperParameters, run_name: str, owner: str, preset: str | None = None) -> TrainingJob:
        """Start a run in a background thread; raises TrainingBusyError if one is running, StoreFullError if the
        model store has no room for its result."""
        job = TrainingJob(run_name=run_name, preset=preset, hyperparameters=hp, owner=owner)
        self.store.check_room()  # a full store refuses the run now, not after minutes of training
        return self._claim(job, self._work)

    def start_sweep(self, spec, owner: str, run_name: str = "sweep") -> SweepJob:
        """Start a sweep (a `sweep.SweepSpec`) in the same slot; raises TrainingBusyError if a job is running."""
        return self._claim(SweepJob(spec=spec, owner=owner, run_name=run_name), self._sweep)

    def _claim(self, job, target):
        with self._lock:
            if self._job is not None and self._job.state == RUNNING:
                kind = "sweep" if isinstance(self._job, SweepJob) else "training run"
                page = "Sweep" if isinstance(self._job, SweepJob) else "Train"
                raise TrainingBusyError(
                    f"a {kind} ({self._job.run_name!r}) is already in progress on this server; "
                    f"watch it on the {page} page, or wait for it to finish before starting another."
                )
            job._thread = threading.Thread(target=target, args=(job,), name=f"job-{job.job_id}", daemon=True)
            self._job = job
        job._thread.start()
        return job

    def _sweep(self, job: SweepJob) -> None:
        from .sweep import SWEEPS_FOLDER, run_sweep

        # The same cap as a training run, for the whole sweep: its trials x epochs could otherwise run for hours.
        time_limit = threading.Timer(MAX_TRAIN_MINUTES * 60, job.stop_for_time_limit)
        time_limit.daemon = True
        time_limit.start()
        try:
            run_sweep(job.spec, self.load_dataset, listeners=[job.listen, trim_after_each_epoch],
                      stop_event=job.stop_event,
                      directory=self.store.root / SWEEPS_FOLDER / job.job_id)
            with job._lock:
                job.state = STOPPED if job.stop_event.is_set() else FINISHED
        except Exception as error:  # noqa: BLE001 - reported to the page, as for training runs
            with job._lock:
                job.state = FAILED
                job.error = f"{type(error).__name__}: {error}"
                job.traceback = traceback.format_exc()
        finally:
            time_limit.cancel()
            release_free_memory()  # the trials' models and graphs are garbage now

    def _work(self, job: TrainingJob) -> None:
        from .train_and_save import train_evaluate_save

        try:
            saved, evaluation = train_evaluate_save(
                job.hyperparameters, self.load_dataset(), self.store, job.run_name, preset=job.preset,
                listeners=[job.listen, trim_after_each_epoch], stop_event=job.stop_event,
                time_limit_seconds=MAX_TRAIN_MINUTES * 60,
            )
            with job._lock:
                job.saved, job.test_accuracy = saved, evaluation.test_accuracy
                job.state = STOPPED if job.stop_event.is_set() or job.stopped_by_time_limit else FINISHED
                job.phase = "done"
        except Exception as error:  # noqa: BLE001 - the worker reports every failure to the page instead of dying silently
            with job._lock:
                job.state, job.phase = FAILED, "done"
                job.error = f"{type(error).__name__}: {error}"
                job.traceback = traceback.format_exc()
        release_free_memory()  # the run's model, graphs and datasets are garbage now
