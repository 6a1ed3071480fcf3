"""The dispatcher: the worker process of a server whose runs train on a Ray cluster (`Settings.ray_address`).

It runs on the web server's machine, beside the queue, in place of the local worker (worker.run_worker hands over to
`run_dispatcher`). The queue keeps the order, ownership and limits as before; the dispatcher claims the next job
whenever the cluster has a free job slot (`Settings.cpus_per_job` CPUs on one live node) and trains each run as a Ray
task (`train_on_node`) on whichever node Ray picks. Nothing is shared between machines but Ray's connections:

- the package itself goes to the nodes as Ray's `py_modules` (each node needs this project's Python packages and the
  dataset, not this folder);
- the task streams back (a Ray streaming generator) its training events, which the dispatcher writes to the queue
  as the local worker does, and its checkpoint after every epoch, which the dispatcher keeps in the job's
  checkpoint folder on the web server;
- Stop reaches the task through a small actor (`StopFlags`) the task asks twice a second;
- the trained model comes back as the bytes of its .keras file, with its card and test-set probabilities, and is
  saved by the web server's store, atomically, as any run.

A node that dies (or a task that falls silent for `Settings.worker_stall_seconds`) costs the epoch in progress: the
run is sent again, to any live node, with its last checkpoint, and the card lists every node it trained on. The
dispatcher's own death (the web server's machine restarting, say) ends its tasks; the next dispatcher puts their jobs
back in the queue, where they resume from their checkpoints.

A sweep's Keras Tuner oracle stays in the dispatcher (it chooses every trial's values, as locally); its trials train
as Ray tasks (`trial_on_node`), as many at once as the cluster had free job slots when the sweep started
(`ClusterTrials` and sweep_tuner's lanes). Keras Tuner's own distributed mode was not used: its workers call the
chief's oracle over gRPC, a port every node would have to reach on the web server, and Stop, the time limit and a
resumed sweep would have to cross it too. A trial whose node dies trains again from its start on another node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import ray

from .checkpoints import CHECKPOINT_FILE
from .hyperparameters import HyperParameters
from .job_queue import JobQueue, QueueBusyError
from .jobs import MAX_RESUMES, RUN, JobSnapshot, JobState
from .ray_cluster import ClusterNode, ClusterStatus, slots_of, write_status
from .ray_tasks import STOP_POLL_SECONDS, StopFlags, train_on_node, trial_on_node
from .settings import Settings, setting_variable
from .store import ModelStore
from .worker import (
    CLUSTER_LOST_EXIT_CODE,
    POLL_SECONDS,
    WORKER_BUSY_SECONDS,
    JobInterrupted,
    _requeue_dead_slots,
    _when_not_busy,
    run_job,
    take_slot,
)

NAMESPACE = "fmnist-cnn-studio"
PACKAGE = Path(__file__).resolve().parent
STATUS_SECONDS = 2.0  # how often the dispatcher looks at the cluster and writes its status
CONNECT_RETRY_SECONDS = 10.0  # after the cluster could not be reached

_log = logging.getLogger(__name__)


class RemoteTrainingError(RuntimeError):
    """The run failed on its node (its own error, not the node's death); the message says why."""


class ClusterLostError(JobInterrupted):
    """The cluster cannot be reached any more: the dispatcher exits and the next one takes its jobs up again."""


# ---- on the web server's machine ---------------------------------------------------------------------------
def _task_options(settings: Settings) -> dict:
    """A task's Ray options: `cpus_per_job` CPUs; a fresh worker process per task (max_calls=1), so that TensorFlow's
    memory goes back to the node after each; TensorFlow's thread pools sized to the CPUs the task was given, not to
    the whole node (as many threads as the node's cores would make the tasks sharing a node slow each other down)."""
    threads = str(max(1, round(settings.cpus_per_job)))
    return dict(num_cpus=settings.cpus_per_job, max_retries=0, num_returns="streaming",
                runtime_env={"env_vars": {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}})


class ClusterTrainer:
    """`worker.run_job`'s `train_run` for the cluster: sends a run to a node, follows it, and saves what comes back;
    sends it again, from its last checkpoint, when its node dies or it falls silent."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.task = ray.remote(max_calls=1)(train_on_node).options(**_task_options(dispatcher.settings))

    def __call__(self, job: JobSnapshot, store: ModelStore, load_dataset, listener, stop_event: threading.Event,
                 time_limit_seconds: float, checkpoint_dir: Path):
        payload = {"job_id": job.job_id, "run_name": job.run_name, "preset": job.preset,
                   "hyperparameters": job.hyperparameters.to_dict()}
        data_dir = self.dispatcher.data_dir()
        nodes: list[str] = []

        def on_node(name: str) -> None:
            nodes.append(name)
            self.dispatcher.running[job.job_id] = name

        while True:
            path = Path(checkpoint_dir) / CHECKPOINT_FILE
            checkpoint = path.read_bytes() if path.is_file() else None
            generator = self.task.remote(payload, checkpoint, time_limit_seconds, data_dir, self.dispatcher.flags)
            try:
                result = _follow(self.dispatcher, generator, job.job_id, listener, stop_event, on_node,
                                 Path(checkpoint_dir))
            except (RemoteTrainingError, ray.exceptions.RayTaskError):
                raise
            except (ray.exceptions.RayError, _SilentError) as error:
                self.dispatcher.check_reachable(error)
                resumes = _when_not_busy(lambda: self.dispatcher.queue.note_resume(job.job_id, job.worker_pid))
                if resumes > MAX_RESUMES:
                    raise RuntimeError(f"its node died or fell silent {resumes} times while training it; it was not "
                                       "sent again.") from error
                _log.warning("job %s: its node (%s) died or fell silent (%s); sent again from its last checkpoint",
                             job.job_id, nodes[-1] if nodes else "not known yet", type(error).__name__)
                continue
            finally:
                self.dispatcher.running.pop(job.job_id, None)
                with contextlib.suppress(ray.exceptions.RayError):
                    self.dispatcher.flags.forget.remote(job.job_id)
            model_bytes, card, probabilities = result
            card = {**card, "job_id": job.job_id, "owner": job.owner, "trained_on": nodes}
            return store.save(model_bytes, card, job.run_name, room_reserved=True, test_probabilities=probabilities)


class ClusterTrials:
    """A sweep's `train_trial` (sweep_tuner.run_sweep) on the cluster: each trial a Ray task on a node with free CPUs,
    its events written to the sweep's record as they come; a trial whose node dies or falls silent trains again from
    its start on another node. The nodes its trials train on are what the page says of the sweep's node."""

    def __init__(self, dispatcher: Dispatcher, job: JobSnapshot):
        self.dispatcher, self.job = dispatcher, job
        self.task = ray.remote(trial_on_node).options(**_task_options(dispatcher.settings))
        self.nodes: dict[str, str] = {}  # trial id -> the node it trains on now
        self.lock = threading.Lock()

    def _on_node(self, trial_id: str, name: str | None) -> None:
        with self.lock:
            if name is None:
                self.nodes.pop(trial_id, None)
            else:
                self.nodes[trial_id] = name
            names = sorted(set(self.nodes.values()))
            if names:
                trials = "1 trial" if len(self.nodes) == 1 else f"{len(self.nodes)} trials at once"
                self.dispatcher.running[self.job.job_id] = f"{', '.join(names)} ({trials})"
            else:
                self.dispatcher.running.pop(self.job.job_id, None)

    def __call__(self, trial_id: str, hyperparameters: HyperParameters, listeners: list, stop_event,
                 remaining: float | None) -> SimpleNamespace:
        from .sweep_tuner import TrialsInterrupted

        key = f"{self.job.job_id}/{trial_id}"
        deadline = None if remaining is None else time.monotonic() + remaining  # a trial sent again gets what is left

        def listener(event) -> None:
            for each in listeners:
                each(event)

        for attempt in range(1, MAX_RESUMES + 2):
            left = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
            generator = self.task.remote(key, hyperparameters.to_dict(), left, self.dispatcher.data_dir(),
                                         self.dispatcher.flags)
            try:
                (result,) = _follow(self.dispatcher, generator, key, listener, stop_event,
                                    lambda name: self._on_node(trial_id, name))
                return SimpleNamespace(**result)
            except (RemoteTrainingError, ray.exceptions.RayTaskError):
                raise
            except (ray.exceptions.RayError, _SilentError) as error:
                try:
                    self.dispatcher.check_reachable(error)
                except ClusterLostError as lost:
                    raise TrialsInterrupted(lost) from error
                _log.warning("sweep %s, trial %s: its node died or fell silent (%s); attempt %d of %d", self.job.job_id,
                             trial_id, type(error).__name__, attempt, MAX_RESUMES + 1)
            finally:
                self._on_node(trial_id, None)
                with contextlib.suppress(ray.exceptions.RayError):
                    self.dispatcher.flags.forget.remote(key)
        raise RuntimeError(f"trial {trial_id}: its node died or fell silent {MAX_RESUMES + 1} times while training it")


def _follow(dispatcher: Dispatcher, generator, key: str, listener, stop_event: threading.Event,
            on_node: Callable[[str], None], checkpoint_dir: Path | None = None) -> tuple:
    """Follow a task's stream (ray_tasks.py) until its result, which is returned; its events to `listener`, its
    checkpoints to `checkpoint_dir`, its node to `on_node`, a stop asked in `stop_event` to the task (said again
    every 5 s: the flags' actor may restart). Raises RemoteTrainingError for the task's own failure, _SilentError
    when nothing came for the stall limit."""
    stall_seconds = dispatcher.settings.worker_stall_seconds
    last_item, stop_said = time.monotonic(), 0.0
    node = "not known yet"
    while True:
        if stop_event is not None and stop_event.is_set() and time.monotonic() - stop_said >= 5.0:
            dispatcher.flags.stop.remote(key)
            stop_said = time.monotonic()
        ready, _ = ray.wait([generator], timeout=STOP_POLL_SECONDS)
        if not ready:
            if time.monotonic() - last_item > stall_seconds:
                ray.cancel(generator, force=True)
                raise _SilentError(f"nothing heard for {stall_seconds:.0f} s")
            continue
        try:
            item = ray.get(next(generator))
        except StopIteration:
            raise _SilentError("the task ended without a result") from None
        last_item = time.monotonic()
        kind = item[0]
        if kind == "node":
            node = item[1]
            on_node(node)
            _log.info("%s trains on node %s", key, node)
        elif kind == "events":
            for event in item[1]:
                listener(event)
        elif kind == "checkpoint" and checkpoint_dir is not None:
            _write_atomically(checkpoint_dir / CHECKPOINT_FILE, item[1])
        elif kind == "error":
            _log.error("%s failed on node %s:\n%s", key, node, item[2])
            raise RemoteTrainingError(item[1])
        elif kind == "result":
            return item[1:]


class _SilentError(Exception):
    """A task that sent nothing for too long, or ended without a result: sent again like a dead node's."""


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def gcs_reachable(address: str, timeout_seconds: float = 3.0) -> bool:
    """Whether the cluster's head (its GCS, HOST:PORT) takes a connection: asked of the socket, because Ray's own
    calls wait minutes for a head that is gone."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_seconds):
            return True
    except (OSError, ValueError):
        return False


class Dispatcher:
    """Claims jobs while the cluster has free job slots and runs each in a thread of its own (run_job)."""

    def __init__(self, settings: Settings, queue: JobQueue, store: ModelStore, load_dataset, slot: int):
        self.settings, self.queue, self.store, self.load_dataset, self.slot = settings, queue, store, load_dataset, slot
        self.running: dict[str, str] = {}  # job id -> its node's name, as its task said
        self.threads: dict[str, threading.Thread] = {}
        self.slots_taken: dict[str, int] = {}  # job id -> the job slots it holds: 1 for a run, a sweep's lanes
        self.nodes: tuple[ClusterNode, ...] = ()
        self.flags = None
        self.trainer: ClusterTrainer | None = None
        self.lost: ClusterLostError | None = None

    # -- the cluster -------------------------------------------------------------------------------
    def connect(self) -> bool:
        """Connect to the cluster; False (its status file saying why) when it cannot be reached."""
        try:
            if not gcs_reachable(self.settings.ray_address):  # ray.init would wait for it for minutes
                raise ConnectionError(f"nothing answers at {self.settings.ray_address}")
            ray.init(address=self.settings.ray_address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level=logging.WARNING, runtime_env={"py_modules": [str(PACKAGE)]})
        except Exception as error:  # noqa: BLE001 - ConnectionError, RuntimeError, …: said in words
            _log.error("cannot reach the Ray cluster at %s: %s", self.settings.ray_address, error)
            self.publish(problem=f"the Ray cluster at {self.settings.ray_address} cannot be reached "
                                 f"({type(error).__name__}); jobs wait in the queue and start when it can. "
                                 f"Check that its head runs (`ray start --head`) and "
                                 f"{setting_variable('ray_address')}.")
            with contextlib.suppress(Exception):
                ray.shutdown()
            return False
        self.flags = StopFlags.options(name=f"stop-flags-{os.getpid()}").remote()
        self.trainer = ClusterTrainer(self)
        _log.info("connected to the Ray cluster at %s", self.settings.ray_address)
        return True

    def cluster_reachable(self) -> bool:
        return gcs_reachable(self.settings.ray_address)

    def check_reachable(self, error: BaseException) -> None:
        """After a task was lost: raise ClusterLostError if the whole cluster is gone (not just the task's node)."""
        if not self.cluster_reachable():
            raise ClusterLostError(f"the Ray cluster at {self.settings.ray_address} cannot be reached") from error

    def data_dir(self) -> str | None:
        """Where the nodes find the dataset, as this server is told (None: where they look by default)."""
        return None if self.settings.data_dir is None else str(self.settings.data_dir)

    @property
    def busy_slots(self) -> int:
        return sum(self.slots_taken.get(job_id, 1) for job_id in self.threads)

    def look(self) -> None:
        self.nodes = tuple(ClusterNode(node["NodeID"], node["NodeManagerAddress"],
                                       float(node.get("Resources", {}).get("CPU", 0.0)), bool(node["Alive"]))
                           for node in ray.nodes())
        self.publish()

    @property
    def total_slots(self) -> int:
        return slots_of(self.nodes, self.settings.cpus_per_job)

    def publish(self, problem: str | None = None) -> None:
        total = self.total_slots
        if problem is None and self.nodes and not total:
            problem = (f"no live node of the Ray cluster at {self.settings.ray_address} has the "
                       f"{self.settings.cpus_per_job:g} CPUs a run takes ({setting_variable('cpus_per_job')}); "
                       "the jobs wait in the queue.")
        with contextlib.suppress(OSError):
            write_status(self.settings.models_dir, ClusterStatus(
                address=self.settings.ray_address, reachable=problem is None or bool(self.nodes), problem=problem,
                nodes=self.nodes, total_slots=total, free_slots=max(total - self.busy_slots, 0),
                running=dict(self.running), written_at=time.time()))

    # -- jobs -----------------------------------------------------------------------------------
    def _run_one(self, job: JobSnapshot, lanes: int) -> None:
        try:
            if job.kind == RUN:
                run_job(self.queue, self.store, job, self.load_dataset, self.settings, train_run=self.trainer,
                        watch_stalls=False)
            else:  # the sweep's oracle here, its trials on the nodes, `lanes` at a time
                run_job(self.queue, self.store, job, self.load_dataset, self.settings, watch_stalls=False,
                        train_trial=ClusterTrials(self, job), lanes=lanes)
        except ClusterLostError as error:
            self.lost = error

    def _lanes_for(self, job: JobSnapshot) -> int:
        """The job slots a job takes: a run one; a sweep as many as are free now (at least one), no more than it has
        trials to train."""
        if job.kind == RUN:
            return 1
        return max(1, min(self.total_slots - self.busy_slots, job.spec.trials_at_most()))

    def loop(self, idle_exit_seconds: float | None) -> int:
        idle_since, looked = time.monotonic(), 0.0
        while True:
            if self.lost is not None:
                raise self.lost
            if self.trainer is None and not self.connect():
                if self._idle_for(idle_since) >= (idle_exit_seconds or float("inf")) and not self._waiting():
                    return 0
                time.sleep(CONNECT_RETRY_SECONDS)
                continue
            for job_id in [job_id for job_id, thread in self.threads.items() if not thread.is_alive()]:
                del self.threads[job_id]
                self.slots_taken.pop(job_id, None)
            if time.monotonic() - looked >= STATUS_SECONDS:
                if not self.cluster_reachable():
                    raise ClusterLostError(f"the Ray cluster at {self.settings.ray_address} cannot be reached")
                self.look()
                looked = time.monotonic()
            while self.busy_slots < self.total_slots:
                try:
                    job = self.queue.claim_next(self.slot, os.getpid())
                except QueueBusyError:
                    job = None
                if job is None:
                    break
                _log.info("job %s (%s %r of %s) started", job.job_id, job.kind, job.run_name, job.owner)
                lanes = self._lanes_for(job)
                thread = threading.Thread(target=self._run_one, args=(job, lanes), name=f"job-{job.job_id}",
                                          daemon=True)
                self.threads[job.job_id], self.slots_taken[job.job_id] = thread, lanes
                thread.start()
                self.publish()
            if self.threads:
                idle_since = time.monotonic()
            elif idle_exit_seconds is not None and self._idle_for(idle_since) >= idle_exit_seconds:
                self.publish()
                return 0
            time.sleep(POLL_SECONDS)

    @staticmethod
    def _idle_for(since: float) -> float:
        return time.monotonic() - since

    def _waiting(self) -> bool:
        with contextlib.suppress(QueueBusyError):
            return any(job.state == JobState.QUEUED for job in self.queue.active())
        return True


def run_dispatcher(settings: Settings, load_dataset, idle_exit_seconds: float | None) -> int:
    """The worker of a server with a Ray cluster: dispatch jobs until none has come for `idle_exit_seconds`."""
    store = ModelStore.from_settings(settings)
    queue = JobQueue(settings.models_dir, busy_seconds=WORKER_BUSY_SECONDS)
    taken = take_slot(queue.folder, 1)
    if taken is None:
        _log.info("the cluster's dispatcher already runs; exiting")
        return 0
    slot, lock = taken
    try:
        # A previous dispatcher's runs ended with it (Ray ends a driver's tasks): back in the queue, to resume.
        slots = max([*_when_not_busy(queue.running_slots), slot]) + 1
        _when_not_busy(lambda: _requeue_dead_slots(queue, slot, slots), "taking up interrupted jobs")
        _when_not_busy(queue.remove_orphaned_checkpoints, "looking for orphaned checkpoints")
        dispatcher = Dispatcher(settings, queue, store, load_dataset, slot)
        try:
            return dispatcher.loop(idle_exit_seconds)
        except ClusterLostError as error:
            _log.error("%s; exiting, so that the next dispatcher takes the jobs up again", error)
            dispatcher.publish(problem=f"{error}; the jobs that were training wait in the queue and resume from "
                                       "their last checkpoints when it can.")
            logging.shutdown()
            os._exit(CLUSTER_LOST_EXIT_CODE)  # its jobs may be blocked in Ray; the next dispatcher resumes them
    finally:
        lock.close()
