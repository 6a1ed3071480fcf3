"""What runs on a Ray cluster's nodes: a run (`train_on_node`), a sweep's trial (`trial_on_node`), and the small actor
that tells them to stop (`StopFlags`). The dispatcher (ray_dispatch.py) sends them and follows what they stream back.

Both tasks are Ray streaming generators that train in a thread of their own and yield, in order: ("node", name);
then ("events", [TrainingEvent…]), ("checkpoint", bytes) after each epoch (runs only), and ("alive",) when there was
nothing to send for HEARTBEAT_SECONDS; at the end ("result", …) or ("error", message, traceback). Each asks its
`StopFlags` twice a second whether it was stopped, under its key (a run's job id; a trial's "job id/trial id").
"""

from __future__ import annotations

import contextlib
import queue as queues
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import ray

from .checkpoints import CHECKPOINT_FILE
from .ray_cluster import ClusterNode

STOP_POLL_SECONDS = 0.5  # how often a task asks whether it was stopped
HEARTBEAT_SECONDS = 5.0  # a task with nothing to send says it is alive this often (scoring the test set, say)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class StopFlags:
    """Which runs and trials were asked to stop. Restarted on another node if its node dies; the dispatcher says a
    stop again until the task has ended, so a restart loses nothing."""

    def __init__(self) -> None:
        self._stopped: set[str] = set()

    def stop(self, key: str) -> None:
        self._stopped.add(key)

    def stopped(self, key: str) -> bool:
        return key in self._stopped

    def forget(self, key: str) -> None:
        self._stopped.discard(key)


def _this_node() -> str:
    context = ray.get_runtime_context()
    return ClusterNode(context.get_node_id(), ray.util.get_node_ip_address(), 0.0, True).name


def _stream(key: str, flags, work: Callable, checkpoint_path: Path | None = None) -> Iterator[tuple]:
    """Run `work(listener, stop_event)` in a thread and yield what it sends, as the module says; its return value
    (a tuple) comes last, as ("result", *value)."""
    events: queues.Queue = queues.Queue()
    stop, outcome = threading.Event(), {}

    def run() -> None:
        try:
            outcome["result"] = work(events.put, stop)
        except BaseException as error:  # noqa: BLE001 - sent to the dispatcher, which records it for the page
            outcome["error"] = (f"{type(error).__name__}: {error}", traceback.format_exc())
        finally:
            events.put(None)

    threading.Thread(target=run, daemon=True).start()
    exists = checkpoint_path is not None and checkpoint_path.exists()
    sent_checkpoint = checkpoint_path.stat().st_mtime_ns if exists else None
    last_poll = last_sent = time.monotonic()
    done = False
    while not done:
        batch = []
        with contextlib.suppress(queues.Empty):
            item = events.get(timeout=0.2)
            while True:
                if item is None:
                    done = True
                    break
                batch.append(item)
                item = events.get_nowait()
        now = time.monotonic()
        if not stop.is_set() and now - last_poll >= STOP_POLL_SECONDS:
            last_poll = now
            with contextlib.suppress(ray.exceptions.RayError):  # the flags' actor restarting: asked again
                if ray.get(flags.stopped.remote(key), timeout=5):
                    stop.set()
        if checkpoint_path is not None:
            with contextlib.suppress(FileNotFoundError):
                written = checkpoint_path.stat().st_mtime_ns
                if written != sent_checkpoint:
                    sent_checkpoint = written
                    yield ("checkpoint", checkpoint_path.read_bytes())
                    last_sent = now
        if batch:
            yield ("events", batch)
            last_sent = now
        elif now - last_sent >= HEARTBEAT_SECONDS:
            yield ("alive",)
            last_sent = now
    if "error" in outcome:
        yield ("error", *outcome["error"])
    else:
        yield ("result", *outcome["result"])


def train_on_node(job: dict, checkpoint: bytes | None, time_limit_seconds: float, data_dir: str | None,
                  flags) -> Iterator[tuple]:
    """A run: trained (from `checkpoint`, its last one, when resumed), scored on the test set, its model's bytes
    returned as ("result", model_bytes, card, test_probabilities)."""
    from .data import load_fashion_mnist
    from .evaluation import evaluate
    from .hyperparameters import HyperParameters
    from .store import make_card
    from .training import train

    yield ("node", _this_node())
    workdir = Path(tempfile.mkdtemp(prefix="fmnist-job-"))
    checkpoint_path = workdir / CHECKPOINT_FILE
    if checkpoint is not None:
        checkpoint_path.write_bytes(checkpoint)

    def work(listener, stop: threading.Event) -> tuple:
        dataset = load_fashion_mnist(data_dir)
        hp = HyperParameters.from_dict(job["hyperparameters"])
        result = train(hp, dataset, listeners=[listener], stop_event=stop, time_limit_seconds=time_limit_seconds,
                       checkpoint_dir=workdir)
        evaluation = evaluate(result.classifier, dataset.test_images, dataset.test_labels)
        card = make_card(result, evaluation, dataset, run_name=job["run_name"], preset=job["preset"])
        result.model.save(workdir / "model.keras")
        return (workdir / "model.keras").read_bytes(), card, evaluation.probabilities

    try:
        yield from _stream(job["job_id"], flags, work, checkpoint_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def trial_on_node(key: str, hyperparameters: dict, time_limit_seconds: float | None, data_dir: str | None,
                  flags) -> Iterator[tuple]:
    """A sweep's trial: trained as a run is, nothing saved; returned as ("result", {history, best_epoch,
    stopped_by_user, stopped_by_time_limit}), what the sweep's tuner reads of a training."""
    from .data import load_fashion_mnist
    from .hyperparameters import HyperParameters
    from .training import train

    yield ("node", _this_node())

    def work(listener, stop: threading.Event) -> tuple:
        import keras

        keras.backend.clear_session()  # the Ray worker is kept for the next trial: the last one's graph let go
        result = train(HyperParameters.from_dict(hyperparameters), load_fashion_mnist(data_dir), listeners=[listener],
                       stop_event=stop, time_limit_seconds=time_limit_seconds)
        return ({"history": result.history, "best_epoch": result.best_epoch, "stopped_by_user": result.stopped_by_user,
                 "stopped_by_time_limit": result.stopped_by_time_limit},)

    yield from _stream(key, flags, work)
