"""Background jobs: one training run or sweep at a time per server, visible to every session, stoppable.

A `Job` is either kind, `RUN` (train, evaluate, save) or `SWEEP` (Keras Tuner trials), with one life cycle
(`JobState`), one time limit and one clean-up. Its worker thread never touches any UI: it records training
events into the job, and pages read immutable `JobSnapshot`s from it as often as they like.
`TrainingManager.start` and `start_sweep` are atomic, so two sessions pressing Start at the same moment
start exactly one job.

A job belongs to the server, not to the browser tab that started it: when that tab closes, the job goes on,
every visitor sees it and can stop it, and it ends by itself or after MAX_TRAIN_MINUTES of training, whichever
comes first. A run then keeps its best weights, which are evaluated and saved; a sweep keeps its trials.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .data import FashionMNIST
from .events import BatchEnd, EpochEnd, TrainingEvent, TrainingFinished, TrainingStarted, TrialEnd, best_trial
from .hyperparameters import HyperParameters
from .memory import release_free_memory
from .store import ModelStore, SavedModel

RUN, SWEEP = "run", "sweep"
# Per-batch points kept for the live chart (older ones are thinned out): a 400 px wide chart shows no more,
# and every refresh of the Train page sends them all to each open browser.
MAX_BATCH_POINTS = 1000
# Wall-clock cap on the training of a server job, so one visitor cannot hold the CPU for hours (the epoch,
# subset and parameter caps alone allow a 5M-parameter model 60 epochs on 60,000 images; a sweep's trials x
# epochs more). When reached, the job stops like a user stop. Read when a job starts.
MAX_TRAIN_MINUTES = 30


class JobState(enum.Enum):
    """Where a job is in its life; the first three are 'running'."""

    STARTING = "starting"  # loading the data, building the first model
    TRAINING = "training"
    EVALUATING = "evaluating"  # a run's training is over: scoring on the test set and saving
    FINISHED = "finished"
    STOPPED = "stopped"  # by a person or the time limit; what was done is kept
    FAILED = "failed"

    @property
    def is_running(self) -> bool:
        return self in (JobState.STARTING, JobState.TRAINING, JobState.EVALUATING)


class TrainingBusyError(RuntimeError):
    """A job is already in progress on this server; `busy` is its snapshot."""

    def __init__(self, busy: JobSnapshot):
        self.busy = busy
        what = "sweep" if busy.kind == SWEEP else "training run"
        super().__init__(f"a {what} ({busy.run_name!r}) is already in progress on this server; one job runs at a "
                         "time. Wait for it to end, or stop it, before starting another.")


@dataclass(frozen=True)
class JobSnapshot:
    """What a page shows of a job at one moment; safe to keep and read from any thread."""

    job_id: str
    kind: str  # RUN or SWEEP
    run_name: str
    owner: str
    state: JobState
    started_at: float
    last_batch: BatchEnd | None  # of the run, or of the sweep's trial in progress
    stop_requested: bool
    stopped_by_time_limit: bool  # ended by MAX_TRAIN_MINUTES, not by its epochs, its trials or a person
    error: str | None
    # a run's
    preset: str | None = None
    hyperparameters: HyperParameters | None = None
    batch_points: tuple[tuple[float, float, float], ...] = ()  # (epoch as a fraction, loss, accuracy)
    epochs: tuple[dict, ...] = ()  # EpochEnd fields, one dict per finished epoch
    saved_name: str | None = None
    test_accuracy: float | None = None
    from_sweep: tuple[str, str] | None = None  # (sweep job id, trial id) when the run retrains a sweep's trial
    # a sweep's
    spec: object = None  # sweep.SweepSpec (not imported here: that would import Keras Tuner with the app)
    trials: tuple[TrialEnd, ...] = ()  # in the order they ended

    @property
    def is_running(self) -> bool:
        return self.state.is_running

    @property
    def best(self) -> TrialEnd | None:
        """A sweep's completed trial with the best validation accuracy so far."""
        return best_trial(self.trials)


@dataclass
class Job:
    """A run or a sweep in the server's slot, recording its training events as they arrive."""

    kind: str
    run_name: str
    owner: str
    preset: str | None = None
    hyperparameters: HyperParameters | None = None  # a run's
    from_sweep: tuple[str, str] | None = None  # a run's: (sweep job id, trial id) it retrains
    spec: object = None  # a sweep's
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    state: JobState = JobState.STARTING
    last_batch: BatchEnd | None = None
    batch_points: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    trials: list = field(default_factory=list)
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
            if isinstance(event, TrainingStarted) and self.state == JobState.STARTING:
                self.state = JobState.TRAINING
            elif isinstance(event, BatchEnd):
                self.last_batch = event
                if self.kind == RUN:
                    position = event.epoch - 1 + event.batch / event.batches_per_epoch
                    self.batch_points.append((position, event.loss, event.accuracy))
                    if len(self.batch_points) > MAX_BATCH_POINTS:
                        self.batch_points = self.batch_points[::2]
            elif isinstance(event, EpochEnd) and self.kind == RUN:
                self.epochs.append(dict(event.__dict__))
            elif isinstance(event, TrainingFinished) and self.kind == RUN:
                self.state = JobState.EVALUATING
            elif isinstance(event, TrialEnd):
                self.trials.append(event)
                self.last_batch = None
            if isinstance(event, TrainingFinished) and event.stopped_by_time_limit:
                self.stopped_by_time_limit = True

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                job_id=self.job_id, kind=self.kind, run_name=self.run_name, owner=self.owner, state=self.state,
                started_at=self.started_at, last_batch=self.last_batch, stop_requested=self.stop_event.is_set(),
                stopped_by_time_limit=self.stopped_by_time_limit, error=self.error, preset=self.preset,
                hyperparameters=self.hyperparameters, batch_points=tuple(self.batch_points),
                epochs=tuple(self.epochs), saved_name=self.saved.name if self.saved else None,
                test_accuracy=self.test_accuracy, from_sweep=self.from_sweep, spec=self.spec,
                trials=tuple(self.trials),
            )

    def request_stop(self) -> None:
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker has finished (True) or `timeout` seconds passed (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _end(self, state: JobState) -> None:
        with self._lock:
            self.state = state


def trim_after_each_epoch(event: TrainingEvent) -> None:
    """A listener that hands freed memory back after every epoch: the server would grow ~25 MB an epoch."""
    if isinstance(event, EpochEnd):
        release_free_memory(collect_garbage=False)


class TrainingManager:
    """Owns the server's single job slot. Share one instance across sessions."""

    def __init__(self, store: ModelStore, load_dataset: Callable[[], FashionMNIST]):
        self.store, self.load_dataset = store, load_dataset
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._last_sweep: Job | None = None  # kept when a run (e.g. its best trial retrained) takes the slot

    def current(self) -> Job | None:
        """The running job, or the last one that ran."""
        with self._lock:
            return self._job

    def last_sweep(self) -> Job | None:
        """The sweep running now or the last one that ran, even after other jobs."""
        with self._lock:
            return self._last_sweep

    def busy(self) -> bool:
        """True while a job runs."""
        job = self.current()
        return job is not None and job.snapshot().is_running

    def start(self, hp: HyperParameters, run_name: str, owner: str, preset: str | None = None,
              from_sweep: tuple[str, str] | None = None) -> Job:
        """Start a run in a background thread; raises TrainingBusyError if a job is running, StoreFullError if the
        model store has no room for its result. `from_sweep` = (sweep job id, trial id) it retrains, if any."""
        self.store.check_room()  # a full store refuses the run now, not after minutes of training
        return self._claim(Job(RUN, run_name, owner, preset=preset, hyperparameters=hp, from_sweep=from_sweep))

    def start_sweep(self, spec, owner: str, run_name: str = "sweep") -> Job:
        """Start a sweep (a `sweep.SweepSpec`) in the same slot; raises TrainingBusyError if a job is running."""
        return self._claim(Job(SWEEP, run_name, owner, spec=spec))

    def _claim(self, job: Job) -> Job:
        with self._lock:
            if self._job is not None and self._job.snapshot().is_running:
                raise TrainingBusyError(self._job.snapshot())
            job._thread = threading.Thread(target=self._work, args=(job,), name=f"job-{job.job_id}", daemon=True)
            self._job = job
            if job.kind == SWEEP:
                self._last_sweep = job
        job._thread.start()
        return job

    def _work(self, job: Job) -> None:
        """The worker thread: run the job; record how it ended, or why it failed; hand its memory back."""
        try:
            stopped = (self._train_evaluate_save if job.kind == RUN else self._sweep)(job, MAX_TRAIN_MINUTES * 60)
            job._end(JobState.STOPPED if stopped else JobState.FINISHED)
        except Exception as error:  # noqa: BLE001 - the worker reports every failure to the page instead of dying silently
            with job._lock:
                job.state = JobState.FAILED
                job.error = f"{type(error).__name__}: {error}"
                job.traceback = traceback.format_exc()
        finally:
            release_free_memory()  # the job's models, graphs and datasets are garbage now

    def _train_evaluate_save(self, job: Job, time_limit_seconds: float) -> bool:
        """Train, evaluate and save a run; True when it was stopped (by a person or the time limit)."""
        from .train_and_save import train_evaluate_save

        saved, evaluation = train_evaluate_save(
            job.hyperparameters, self.load_dataset(), self.store, job.run_name, preset=job.preset,
            listeners=[job.listen, trim_after_each_epoch], stop_event=job.stop_event,
            time_limit_seconds=time_limit_seconds,
        )
        with job._lock:
            job.saved, job.test_accuracy = saved, evaluation.test_accuracy
        # what training did, as its card records it: a Stop pressed while the test set was scored changes nothing
        return bool(saved.card.get("stopped_by_user") or saved.card.get("stopped_by_time_limit"))

    def _sweep(self, job: Job, time_limit_seconds: float) -> bool:
        """Run a sweep's trials; True when it was stopped (by a person or the time limit)."""
        from .sweep import SWEEPS_FOLDER, run_sweep

        result = run_sweep(job.spec, self.load_dataset, listeners=[job.listen, trim_after_each_epoch],
                           stop_event=job.stop_event, directory=self.store.root / SWEEPS_FOLDER / job.job_id,
                           time_limit_seconds=time_limit_seconds)
        return result.stopped_by_user or result.stopped_by_time_limit
