"""The training worker: a process of its own that takes jobs from the queue in order and runs them.

`python -m fmnist_core worker` runs one by hand; the app starts one (`ensure_worker`) whenever jobs wait and no
worker holds a slot. A worker holds one of `Settings.concurrent_jobs` slot locks (`.jobs/worker-N.lock`, an flock the
kernel releases when the process dies, even by `kill -9`), so a slot whose lock is free has no live worker, and
the jobs recorded as running in it were interrupted: the next worker puts them back in the queue, where they
resume from their last checkpoint (at most the epoch in progress is lost). A finished run's model is saved by
the store's atomic rename, so a crash while saving leaves no half-written folder, and a resumed run that finds
its model already saved (by job id on the card) only records it.

Training here, not in the web server: a crash or out-of-memory kill of training leaves the app serving, and the
memory training used goes back to the system when the worker exits (after `idle_exit_seconds` with no job).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from .events import BatchEnd, EpochEnd, TrainingEvent, TrainingFinished, TrainingResumed, TrainingStarted, TrialEnd
from .hyperparameters import HyperParameterError, HyperParameters
from .job_queue import JobGoneError, JobQueue, JobQueueError, QueueBusyError, StaleWorkerError
from .jobs import MAX_RESUMES, RUN, JobSnapshot, JobState
from .settings import Settings
from .store import JOBS_FOLDER, SWEEPS_FOLDER, ModelStore

SLOT_LOCK = "worker-{slot}.lock"
WORKER_LOG = "worker.log"
WORKER_LOG_BYTES = 5_000_000  # then it is rotated as the next worker starts
POLL_SECONDS = 0.25  # how often a waiting worker looks for a job, and a running job for a stop request
FLUSH_SECONDS = 0.5  # how often a job's progress (last batch, curve points) is written to the queue
# A worker's queue waits this long for another program's lock before it says busy; a busy write is tried again after
# BUSY_RETRY_SECONDS, training going on meanwhile (a page waits longer: job_queue.BUSY_SECONDS).
WORKER_BUSY_SECONDS, BUSY_RETRY_SECONDS = 0.5, 5.0
SPAWN_GRACE_SECONDS = 15.0  # a worker just started takes this long at most to take its slot: don't start another
# A job that has sent no event (a batch, an epoch, a trial) for `Settings.worker_stall_seconds` while its process
# used almost no CPU (under STALL_CPU_SHARE of one core) is hung, waiting on something that will not come: its worker
# exits with STALL_EXIT_CODE, releasing its slot, and the next worker takes the job up again from its last
# checkpoint, as after a crash (a job that hangs every time fails after MAX_RESUMES). A job that computes without
# events (scoring a large model on the validation and test images can take many minutes) keeps a core busy and is
# left alone.
STALL_CPU_SHARE = 0.05
STALL_EXIT_CODE = 3
CLUSTER_LOST_EXIT_CODE = 4  # a Ray cluster's dispatcher that lost its cluster (ray_dispatch.py): replaced at once

_log = logging.getLogger(__name__)


# ---- slots ----------------------------------------------------------------------------------------
def _try_lock(path: Path):
    """An open file holding an exclusive flock on `path`, or None if another process holds it."""
    file = open(path, "a+")  # noqa: SIM115 - held open for the worker's life
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file


def take_slot(folder: Path, slots: int, wait_seconds: float = 3.0) -> tuple[int, object] | None:
    """(slot number, lock) for a free one of `slots` worker slots, trying for `wait_seconds`; None when every slot
    has a worker."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for slot in range(slots):
            lock = _try_lock(folder / SLOT_LOCK.format(slot=slot))
            if lock is not None:
                return slot, lock
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def live_workers(folder: Path, slots: int) -> int:
    """How many of `slots` slots have a live worker now (a probe: takes and releases each free lock at once)."""
    alive = 0
    for slot in range(slots):
        lock = _try_lock(folder / SLOT_LOCK.format(slot=slot))
        if lock is None:
            alive += 1
        else:
            lock.close()
    return alive


def _requeue_dead_slots(queue: JobQueue, own_slot: int, slots: int) -> None:
    """Put back in the queue the jobs of slots with no live worker (ours included: we just took it), also of slots
    beyond `slots` (the setting may have been lowered since)."""
    for slot in sorted(set(range(slots)) | queue.running_slots()):
        lock = None if slot == own_slot else _try_lock(queue.folder / SLOT_LOCK.format(slot=slot))
        if slot == own_slot or lock is not None:
            for job_id in queue.requeue_interrupted(slot):
                _log.warning("job %s was interrupted (its worker died); queued again to resume", job_id)
            if lock is not None:
                lock.close()


# ---- running a job --------------------------------------------------------------------------------
class JobInterrupted(Exception):  # noqa: N818 - it says what happened to the job, not that something erred
    """The job cannot go on in this process, through no fault of its own (a Ray cluster that can no longer be
    reached): nothing is recorded, the job stays running in the queue, and the next worker takes it up again."""


class _Recorder:
    """The training listener of a job in the worker: buffers events and writes them to the queue in batches,
    at most every FLUSH_SECONDS (the start, an epoch, a trial and the end of training are written at once).

    A queue that is busy (another program holds its database) costs the run nothing: the events are kept and written
    when it can take them. A queue that no longer has the job (its database was deleted and made anew) is written to
    no more, and training is stopped so that what it trained is evaluated and saved, not lost."""

    def __init__(self, queue: JobQueue, job: JobSnapshot, stop_event: threading.Event | None = None):
        self.queue, self.job, self.stop_event = queue, job, stop_event
        self.holder = job.worker_pid  # the process that claimed the job: the queue refuses writes from any other
        self.last_batch: BatchEnd | None = None
        self.points, self.epochs, self.trials = [], [], []
        self.state: JobState | None = None  # a new state of the job, not yet written
        self.last_flush = 0.0
        self.busy_until = 0.0  # after a busy queue, the next try waits this long
        self.orphaned = False
        self.last_event = time.monotonic()  # the job's start counts as its first sign of life
        self.lock = threading.Lock()

    def __call__(self, event: TrainingEvent) -> None:
        self.last_event = time.monotonic()
        with self.lock:
            if self.orphaned:
                return
            if isinstance(event, TrainingResumed):
                _when_not_busy(lambda: self.queue.restart_history(self.job.job_id, self.holder,
                                                                  list(event.history)))
            elif isinstance(event, TrainingStarted):
                self.state = JobState.TRAINING
            elif isinstance(event, BatchEnd):
                self.last_batch = event
                if self.job.kind == RUN:
                    self.points.append((event.epoch - 1 + event.batch / event.batches_per_epoch,
                                        event.loss, event.accuracy))
            elif isinstance(event, EpochEnd) and self.job.kind == RUN:
                self.epochs.append(dict(event.__dict__))
            elif isinstance(event, TrialEnd):
                self.trials.append(event)
                self.last_batch = None
            elif isinstance(event, TrainingFinished) and self.job.kind == RUN:
                self.state = JobState.EVALUATING
            urgent = isinstance(event, (TrainingStarted, EpochEnd, TrialEnd, TrainingFinished))
            now = time.monotonic()
            if now >= self.busy_until and (urgent or now - self.last_flush >= FLUSH_SECONDS):
                self._flush()

    def drain(self) -> None:
        """Write what is still held (kept while the queue was busy) before the job's end is recorded, waiting out a
        busy queue: an end recorded first would leave the run without its last epochs."""
        with self.lock:
            while not self.orphaned:
                self.busy_until = 0.0
                self._flush()
                if not self.busy_until:
                    return
                time.sleep(BUSY_RETRY_SECONDS)

    def _flush(self) -> None:
        try:
            self.queue.record_progress(self.job.job_id, self.holder, self.last_batch, self.points, self.epochs,
                                       self.trials, state=self.state)
        except QueueBusyError:
            if not self.busy_until:
                _log.warning("job %s: the job queue is busy (another program holds its database); training goes on "
                             "and its progress is written when the queue can take it", self.job.job_id)
            self.busy_until = time.monotonic() + BUSY_RETRY_SECONDS
            return
        except JobGoneError:
            _log.error("job %s is no longer in the job queue (its database was made anew): it stops after this batch "
                       "and what it trained is evaluated and saved", self.job.job_id)
            self.orphaned = True
            if self.stop_event is not None:
                self.stop_event.set()
            return
        if self.busy_until:
            _log.info("job %s: the job queue takes its progress again", self.job.job_id)
        self.points, self.epochs, self.trials, self.state = [], [], [], None
        self.last_flush, self.busy_until = time.monotonic(), 0.0


def _when_not_busy(write, what: str = "a write"):
    """Do `write` (a queue call), waiting out a busy queue (another program holding its database): a worker never
    fails a job for a lock it did not cause. A lock held for good ends in the hang watchdog, as any hang does."""
    warned = False
    while True:
        try:
            return write()
        except QueueBusyError:
            if not warned:
                _log.warning("the job queue is busy (another program holds its database); %s waits for it", what)
                warned = True
            time.sleep(BUSY_RETRY_SECONDS)


class _StallClock:
    """Whether a job is hung: no event for `stall_seconds` and, over those seconds, under STALL_CPU_SHARE of a core
    used by the whole process (all its threads: TensorFlow's as well)."""

    def __init__(self, recorder: _Recorder, stall_seconds: float):
        self.recorder, self.stall_seconds = recorder, stall_seconds
        self.samples: collections.deque[tuple[float, float]] = collections.deque()  # (monotonic, CPU seconds)

    def hung(self) -> tuple[float, float] | None:
        """(seconds without an event, CPU seconds used in the last `stall_seconds`) when hung, else None."""
        now, cpu = time.monotonic(), time.process_time()
        self.samples.append((now, cpu))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.stall_seconds:
            self.samples.popleft()  # the oldest kept sample is the last one at least `stall_seconds` old
        quiet = now - self.recorder.last_event
        then, cpu_then = self.samples[0]
        limit = self.stall_seconds
        if quiet > limit and now - then >= limit and cpu - cpu_then < STALL_CPU_SHARE * limit:
            return quiet, cpu - cpu_then
        return None


def _watch(queue: JobQueue, job_id: str, stop_event: threading.Event, done: threading.Event,
           recorder: _Recorder, stall_seconds: float | None) -> None:
    """Turn a stop request written to the queue (by a page) into the trainer's stop event; end the process if the
    job is hung (_StallClock; not with `stall_seconds` None): its slot is freed and the job taken up again by the
    next worker."""
    clock = None if stall_seconds is None else _StallClock(recorder, stall_seconds)
    while not done.wait(POLL_SECONDS):
        with contextlib.suppress(JobQueueError):  # a busy queue: asked again at the next poll
            if not stop_event.is_set() and queue.stop_requested(job_id):
                stop_event.set()
        hung = clock and clock.hung()
        if hung and not done.is_set():
            _log.error("job %s sent nothing for %.0f s and used %.1f CPU seconds in the last %.0f: it is hung; this "
                       "worker exits so that the next one takes it up again from its last checkpoint", job_id,
                       hung[0], hung[1], stall_seconds)
            logging.shutdown()
            os._exit(STALL_EXIT_CODE)  # the hung thread cannot be stopped from Python; the process can


def train_here(job: JobSnapshot, store, load_dataset, listener, stop_event: threading.Event,
               time_limit_seconds: float, checkpoint_dir: Path):
    """A run's training, test-set evaluation and save, in this process; returns the SavedModel."""
    from .train_and_save import train_evaluate_save

    saved, _ = train_evaluate_save(
        job.hyperparameters, load_dataset(), store, job.run_name, preset=job.preset, listeners=[listener],
        stop_event=stop_event, time_limit_seconds=time_limit_seconds, checkpoint_dir=checkpoint_dir,
        card_extra={"job_id": job.job_id, "owner": job.owner}, room_reserved=True,  # reserved at submit
    )
    return saved


def run_job(queue: JobQueue, store, job: JobSnapshot, load_dataset, settings: Settings,
            train_run=train_here, watch_stalls: bool = True, train_trial=None, lanes: int = 1) -> JobState:
    """Run one claimed job to its end and record how it ended; returns that state (the job's own limits come from
    `settings`: the time limit and the hang watchdog's). `train_run` trains, evaluates and saves a run (here, or on
    a cluster's node: ray_dispatch.py, which has its own watchdog: `watch_stalls=False`); `train_trial` trains a
    sweep's trial (None: here) and `lanes` trials train at once (sweep_tuner.run_sweep)."""
    stop_event, done = threading.Event(), threading.Event()
    if job.stop_requested:
        stop_event.set()
    recorder = _Recorder(queue, job, stop_event)
    watcher = threading.Thread(target=_watch, args=(queue, job.job_id, stop_event, done, recorder,
                                                    settings.worker_stall_seconds if watch_stalls else None),
                               daemon=True)
    watcher.start()
    try:
        _check_today(job)
        if job.kind == RUN:
            state = _run(queue, store, job, load_dataset, recorder, stop_event, settings.time_limit_seconds,
                         train_run)
        else:
            state = _sweep(queue, store, job, load_dataset, recorder, stop_event, settings.time_limit_seconds,
                           train_trial, lanes)
    except JobInterrupted:
        raise
    except StaleWorkerError as error:  # another worker took the job up, or the queue lost it: nothing to record
        _log.error("job %s: %s; this worker leaves it", job.job_id, error)
        state = JobState.FAILED
    except Exception as error:  # noqa: BLE001 - every failure is recorded for the page instead of killing the worker
        _log.exception("job %s failed", job.job_id)
        state = JobState.FAILED
        details, why = traceback.format_exc(), _without_paths(f"{type(error).__name__}: {error}", store)
        with contextlib.suppress(StaleWorkerError):
            _when_not_busy(lambda: queue.finish(job.job_id, job.worker_pid, state, error=why, traceback=details),
                           "recording how the job ended")
    finally:
        done.set()
    return state


def _check_today(job: JobSnapshot) -> None:
    """A job's settings against today's rules (the queue reads stored rows without them, so an old row never breaks a
    page); raises HyperParameterError or SweepError saying what no longer holds."""
    if job.kind == RUN:
        try:
            HyperParameters.from_dict(job.hyperparameters.to_dict())
        except HyperParameterError as error:
            raise HyperParameterError(f"this run's settings are no longer allowed on this server: {error}") from None
    else:
        from .sweep import spec_from_dict, spec_to_dict

        spec_from_dict(spec_to_dict(job.spec))


def _without_paths(message: str, store) -> str:
    """A failure as visitors may read it: the server's folders named, not their paths."""
    return message.replace(str(store.root.resolve()), "the model folder").replace(str(store.root), "the model folder")


def _run(queue: JobQueue, store, job: JobSnapshot, load_dataset, recorder, stop_event,
         time_limit_seconds: float, train_run=train_here) -> JobState:
    checkpoint_dir = queue.checkpoint_dir(job.job_id)
    if job.resumes:  # what the interrupted attempt recorded past its checkpoint (all of it, without one) is dropped
        _when_not_busy(lambda: queue.restart_history(job.job_id, job.worker_pid, []))
    saved = store.find_by_job(job.job_id)  # saved before a crash cut the recording short
    if saved is None:
        saved = train_run(job, store, load_dataset, recorder, stop_event, time_limit_seconds, checkpoint_dir)
    card = saved.card
    stopped = bool(card.get("stopped_by_user") or card.get("stopped_by_time_limit"))
    state = JobState.STOPPED if stopped else JobState.FINISHED
    recorder.drain()
    if recorder.orphaned:  # saved, with nobody to tell but the store's listing
        _log.error("job %s was saved as %r; the queue no longer has it", job.job_id, saved.name)
        return state
    _when_not_busy(lambda: queue.finish(job.job_id, job.worker_pid, state, saved_name=saved.name,
                                        test_accuracy=card.get("test_accuracy"),
                                        stopped_by_time_limit=bool(card.get("stopped_by_time_limit"))),
                   "recording the saved run")
    return state


def _sweep(queue: JobQueue, store, job: JobSnapshot, load_dataset, recorder, stop_event,
           time_limit_seconds: float, train_trial=None, lanes: int = 1) -> JobState:
    from .sweep_tuner import run_sweep

    # the time the trials that ended before an interruption took: with several lanes, they trained side by side
    used = sum(trial.seconds for trial in job.trials) / max(lanes, 1)
    result = run_sweep(job.spec, load_dataset, listeners=[recorder], stop_event=stop_event,
                       directory=store.root / SWEEPS_FOLDER / job.job_id,
                       time_limit_seconds=max(time_limit_seconds - used, 1e-3),
                       ended_trials=job.trials,  # a resumed sweep's trials before the interruption: not run again
                       train_trial=train_trial, lanes=lanes)
    state = JobState.STOPPED if result.stopped_by_user or result.stopped_by_time_limit else JobState.FINISHED
    recorder.drain()
    if not recorder.orphaned:
        _when_not_busy(lambda: queue.finish(job.job_id, job.worker_pid, state,
                                            stopped_by_time_limit=result.stopped_by_time_limit), "recording the sweep")
    return state


# ---- the worker's loop ------------------------------------------------------------------------------
def run_worker(settings: Settings, load_dataset, idle_exit_seconds: float | None) -> int:
    """Take jobs from the queue of `settings`' model store until none has come for `idle_exit_seconds` (None: run
    for ever), then return 0; also when every slot already has a worker (nothing to do here)."""
    store = ModelStore.from_settings(settings)
    queue = JobQueue(settings.models_dir, busy_seconds=WORKER_BUSY_SECONDS)
    while True:
        taken = take_slot(queue.folder, settings.concurrent_jobs)
        if taken is None:
            _log.info("every worker slot (%d) has a live worker; exiting", settings.concurrent_jobs)
            return 0
        slot, lock = taken
        try:
            _work_in_slot(queue, store, load_dataset, slot, idle_exit_seconds, settings)
        finally:
            lock.close()
        # A job submitted after the last look and before the lock was released saw a live worker and started none:
        # look once more, now that pages would start one.
        if not any(job.state == JobState.QUEUED for job in queue.active()):
            return 0


def _work_in_slot(queue: JobQueue, store, load_dataset, slot: int, idle_exit_seconds: float | None,
                  settings: Settings) -> None:
    """Holding `slot`'s lock: put back interrupted jobs, then run jobs until none came for `idle_exit_seconds`."""
    _when_not_busy(lambda: _requeue_dead_slots(queue, slot, settings.concurrent_jobs), "taking up interrupted jobs")
    for job_id in _when_not_busy(queue.remove_orphaned_checkpoints, "looking for orphaned checkpoints"):
        _log.warning("removed the checkpoint of job %s, which the queue no longer has (or has ended)", job_id)
    idle_since = time.monotonic()
    while True:
        try:
            job = queue.claim_next(slot, os.getpid())
        except QueueBusyError:
            job = None
        if job is None:
            if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
                return
            time.sleep(POLL_SECONDS)
            continue
        _log.info("job %s (%s %r of %s) started", job.job_id, job.kind, job.run_name, job.owner)
        state = run_job(queue, store, job, load_dataset, settings)
        _log.info("job %s %s", job.job_id, state.value)
        idle_since = time.monotonic()


_spawned: dict[str, tuple[float, subprocess.Popen]] = {}  # per queue folder: the last worker started, and when
_spawn_lock = threading.Lock()
# After a worker exited with an error of its own (it could not start, say), wait this long before starting another;
# a worker killed by a signal (kill -9, the OOM killer) or ended by the hang watchdog is replaced at once.
FAILED_SPAWN_BACKOFF_SECONDS = 120.0


def _failed_by_itself(code: int | None) -> bool:
    """An exit code that means the worker failed on its own (not killed, not ended on purpose by the watchdog)."""
    return code is not None and code > 0 and code not in (STALL_EXIT_CODE, CLUSTER_LOST_EXIT_CODE)


def last_worker_failure(settings: Settings) -> str | None:
    """Why the worker this process started last has exited with an error, if it did (the page shows it)."""
    spawned = _spawned.get(str(settings.models_dir / JOBS_FOLDER))
    if spawned is None or spawned[1].poll() in (None, 0):
        return None
    code = spawned[1].returncode
    if code == CLUSTER_LOST_EXIT_CODE:
        return None  # the cluster's status file says what happened (ray_cluster.RayCluster.problem)
    log = f"its log is {JOBS_FOLDER}/{WORKER_LOG} in the model folder"
    if code == STALL_EXIT_CODE:
        return (f"a job had hung (no progress and no work for {settings.worker_stall_seconds / 60:g} minutes), so the "
                f"training worker stopped ({log}); the next page view starts another, which takes the job up again "
                f"from its last checkpoint, unless it has hung {MAX_RESUMES + 1} times.")
    if code < 0:
        return (f"the training worker was killed (signal {-code}; {log}); the next page view starts another, which "
                "resumes the job from its last checkpoint.")
    return f"the training worker exited with code {code} ({log}); another will be started in a few minutes."


def ensure_worker(settings: Settings, queue: JobQueue | None = None) -> bool:
    """Start a worker process for the model store of `settings` if jobs wait (or were interrupted) and a slot has
    no worker; True if one was started. Cheap when there is nothing to do: one query and a lock probe (pass the
    store's `queue` if there is one at hand, or it is opened here). Safe from many threads."""
    queue = queue or JobQueue.from_settings(settings)
    active = queue.active()
    if not active:
        return False
    with _spawn_lock:
        key = str(queue.folder)
        started, process = _spawned.get(key, (-1e9, None))
        code, since = None if process is None else process.poll(), time.monotonic() - started
        if process is not None and code is None and since < SPAWN_GRACE_SECONDS:
            return False  # the one just started is taking its slot
        if _failed_by_itself(code) and since < FAILED_SPAWN_BACKOFF_SECONDS:
            return False  # it failed on its own: starting another at once would fail alike
        running = sum(job.is_running for job in active)
        alive = live_workers(queue.folder, settings.concurrent_jobs)
        if alive >= settings.concurrent_jobs or (alive >= running and len(active) == running):
            return False  # every slot is busy, or every job has its live worker
        _spawned[key] = (time.monotonic(), spawn_worker(settings))
        return True


def _rotate_if_large(log_path: Path) -> None:
    """Keep the worker's log to at most two files of WORKER_LOG_BYTES: a larger one becomes `worker.log.1` (the
    previous `.1` is dropped) before the next worker appends."""
    try:
        if log_path.stat().st_size > WORKER_LOG_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
    except FileNotFoundError:
        pass


def spawn_worker(settings: Settings) -> subprocess.Popen:
    """`python -m fmnist_core --models-dir ROOT worker` in a session of its own (it outlives the web server: a
    restart of the app does not cut a run), with the app's settings, its output appended to `.jobs/worker.log`."""
    root = settings.models_dir
    folder = root / JOBS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **settings.to_environment(),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    _rotate_if_large(folder / WORKER_LOG)
    with open(folder / WORKER_LOG, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fmnist_core", "--models-dir", str(root), "worker"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
