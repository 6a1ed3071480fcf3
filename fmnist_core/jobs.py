"""Training jobs as every page sees them: what a job is, where it is in its life, and the queue's limits.

A job is a training run (`RUN`: train, evaluate, save) or a sweep (`SWEEP`: Keras Tuner trials). Visitors
submit jobs to a queue that lives on disk (`job_queue.JobQueue`, SQLite beside the model store); a worker
process (`worker.py`, `python -m fmnist_core worker`) takes them in turns between visitors (FAIR_SHARE_SECONDS),
CONCURRENT_JOBS at a time, and
records their progress there. Pages read immutable `JobSnapshot`s, as often as they like; they never train.

A job belongs to the visitor who submitted it (`owner`, a key derived from their browser's id; see
`ownership`): others can watch it but not stop or cancel it, unless they are the operator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .events import BatchEnd, TrialEnd, best_trial
from .hyperparameters import TRAIN_SET_SIZE, HyperParameters
from .settings import Settings
from .sweep import SweepSpec  # the sweep's spec and its checks; Keras Tuner is only imported by sweep_tuner.py

RUN, SWEEP = "run", "sweep"

# ---- limits, in one place --------------------------------------------------------------------------
# The limits an operator sets (the wall-clock cap on one job's training, jobs per visitor, waiting jobs, jobs that
# train at once) are settings (settings.py), passed in; these are the queue's own.
# A job whose worker died this many times while running it (an out-of-memory kill every time, say) fails instead
# of being taken up again for ever.
MAX_RESUMES = 3
# Per-batch points kept for the live chart (older ones are thinned out when read): a 400 px wide chart shows no
# more, and every refresh of the Train page sends them all to each open browser.
MAX_BATCH_POINTS = 1000
# Ended jobs the queue keeps, with their epochs, batch points and trials: the pages show the latest run and sweep
# and the waiting jobs, and saved models keep their history on their cards. Older ones are deleted as a job ends,
# so a server that trains for months keeps a queue file of a few megabytes.
KEEP_ENDED_JOBS = 100
# The worker takes waiting jobs in turns: next, the oldest job of whoever (network address, then browser) has had the
# fewest jobs started in this many seconds, so that one visitor's many jobs never hold up everyone else's.
FAIR_SHARE_SECONDS = 3600.0
# For a queued job's estimated start, when this server has trained nothing yet: images per second of `quick`
# on a 2-core AMD EPYC (bench/RESULTS.md, throughput), and seconds to score the test set and save.
DEFAULT_IMAGES_PER_SECOND = 9000.0
SCORE_AND_SAVE_SECONDS = 10.0


class JobState(enum.Enum):
    """Where a job is in its life; STARTING, TRAINING and EVALUATING are 'running'."""

    QUEUED = "queued"  # waiting for the worker (also a run put back in the queue after a crash, to resume)
    STARTING = "starting"  # loading the data, building the first model
    TRAINING = "training"
    EVALUATING = "evaluating"  # a run's training is over: scoring on the test set and saving
    FINISHED = "finished"
    STOPPED = "stopped"  # by a person or the time limit; what was done is kept
    FAILED = "failed"
    CANCELLED = "cancelled"  # taken out of the queue before it started

    @property
    def is_running(self) -> bool:
        return self in (JobState.STARTING, JobState.TRAINING, JobState.EVALUATING)

    @property
    def is_active(self) -> bool:
        """Waiting or running: it holds a place in the queue."""
        return self == JobState.QUEUED or self.is_running


RUNNING_STATES = tuple(state.value for state in JobState if state.is_running)


class QueueFullError(RuntimeError):
    """A limit of the queue is reached; the message names the limit and what to do. `waits_for` names the jobs whose
    end (`until` "ended") or start ("started") makes room, so that a page can say when to try again."""

    def __init__(self, message: str, waits_for: tuple[str, ...] = (), until: str = "ended"):
        super().__init__(message)
        self.waits_for, self.until = waits_for, until


@dataclass(frozen=True)
class JobSnapshot:
    """What a page shows of a job at one moment; safe to keep and read from any thread."""

    job_id: str
    kind: str  # RUN or SWEEP
    run_name: str
    owner: str
    state: JobState
    submitted_at: float
    started_at: float | None
    last_batch: BatchEnd | None  # of the run, or of the sweep's trial in progress
    stop_requested: bool
    stopped_by_time_limit: bool  # ended by the time limit (settings), not by its epochs, its trials or a person
    error: str | None
    traceback: str | None = None  # for the page's technical details; never shown alone
    resumes: int = 0  # times the job was taken up again after a crash or restart of its worker
    ended_at: float | None = None
    worker_pid: int | None = None  # the process that claimed it: the queue takes the job's writes from it alone
    # a run's
    preset: str | None = None
    hyperparameters: HyperParameters | None = None
    batch_points: tuple[tuple[float, float, float], ...] = ()  # (epoch as a fraction, loss, accuracy)
    epochs: tuple[dict, ...] = ()  # EpochEnd fields, one dict per finished epoch
    saved_name: str | None = None
    test_accuracy: float | None = None
    from_sweep: tuple[str, str] | None = None  # (sweep job id, trial id) when the run retrains a sweep's trial
    # a sweep's
    spec: SweepSpec | None = None
    trials: tuple[TrialEnd, ...] = ()  # in the order they ended

    @property
    def is_running(self) -> bool:
        return self.state.is_running

    @property
    def best(self) -> TrialEnd | None:
        """A sweep's completed trial with the best validation accuracy so far."""
        return best_trial(self.trials)


def images_to_train(snapshot: JobSnapshot) -> int:
    """Training images a job goes through in all (epochs x images; a sweep's trials x epochs x subset)."""
    if snapshot.kind == SWEEP:
        spec = snapshot.spec
        per_trial = round((spec.subset_size or TRAIN_SET_SIZE) * 0.9)
        return spec.max_trials * spec.epochs_per_trial * per_trial
    hp = snapshot.hyperparameters
    images = hp.train_subset_size or TRAIN_SET_SIZE
    return round(hp.epochs * images * (1 - hp.validation_fraction) * (1 + hp.sketch_fraction + hp.non_item_fraction))


def seconds_left(snapshot: JobSnapshot, images_per_second: float, now: float, time_limit_seconds: float) -> float:
    """About how long until `snapshot` ends: a training run's own ETA, else its size at `images_per_second` less
    the time it has run (a sweep's trials each have their own clock); never past the time limit."""
    limit = time_limit_seconds
    if snapshot.is_running and snapshot.last_batch is not None and snapshot.kind == RUN:
        batch = snapshot.last_batch
        return min(batch.eta_seconds, max(limit - batch.elapsed_seconds, 0)) + SCORE_AND_SAVE_SECONDS
    done = now - snapshot.started_at if snapshot.is_running and snapshot.started_at else 0.0
    return max(min(images_to_train(snapshot) / images_per_second, limit) - done, 0) + SCORE_AND_SAVE_SECONDS


def estimated_starts(active: list[JobSnapshot], images_per_second: float, now: float,
                     settings: Settings) -> dict[str, float]:
    """When each waiting job of `active` (running ones first, then the queue in order) should start, as a time, with
    `settings.concurrent_jobs` jobs at a time."""
    limit = settings.time_limit_seconds
    running = [now + seconds_left(job, images_per_second, now, limit) for job in active if job.is_running]
    slots = running + [now] * max(settings.concurrent_jobs - len(running), 0)
    starts = {}
    for job in active:
        if job.state == JobState.QUEUED:
            slots.sort()
            starts[job.job_id] = slots[0]
            slots[0] += seconds_left(job, images_per_second, now, limit)
    return starts


def estimated_room(waits_for: tuple[str, ...], until: str, active: list[JobSnapshot], images_per_second: float,
                   now: float, settings: Settings) -> float | None:
    """When a refused job could be queued, as a time: as soon as the first of the `waits_for` jobs (a
    QueueFullError's) has ended (`until` "ended") or started ("started"), by the estimates `estimated_starts` makes
    for `active` (the queue's active jobs, in its order); None when none of those jobs is active any more."""
    starts = estimated_starts(active, images_per_second, now, settings)
    times = []
    for job in active:
        if job.job_id not in waits_for:
            continue
        start = now if job.is_running else starts[job.job_id]
        times.append(start if until == "started" else
                     start + seconds_left(job, images_per_second, now, settings.time_limit_seconds))
    return min(times, default=None)
