"""Live-UI overhead: the app's training speed with its Train page open, against plain `model.fit`.

This VM stalls now and then for seconds (the guest sees its CPUs idle, steal 0): about one epoch in three runs
at half speed, in plain fit as much as in the app, and separate runs a minute apart differ by up to 2x. So both
comparisons alternate their two sides quickly, within one run or one process, and compare the faster half of
each side's epochs: a stall only ever slows an epoch, while a real overhead slows every epoch.

1. The page: one `quick` run started from the Train page, whose page is open and closed in turn every
   `WINDOW_SECONDS` in the app's server process; epochs wholly inside a window (after `SETTLE_SECONDS`) count.
2. The worker: in one fresh process, the worker's job code (`worker.run_job`: the queue on disk, progress
   recorded, checkpoints every epoch) and plain `model.fit` take turns, on the same model, tf.data pipeline and
   batch size.
The product of the two ratios is the app's training path with its page open against plain fit.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path

from .measure import REPO, Row, run_python

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from app_actions import open_page, progress_text, start_run  # noqa: E402
from app_server import VIEWPORT  # noqa: E402

TOGGLED_EPOCHS = 36
WINDOW_SECONDS, SETTLE_SECONDS = 40.0, 3.0
ALIGNMENT_SECONDS = 1.0  # the progress line that ties the two clocks together is up to a second old
WORKER_ROUNDS, WORKER_EPOCHS = 3, 4
EPOCH_TEXT = re.compile(r"Epoch (\d+)/\d+ · batch (\d+)/(\d+)")

WORKER_VS_PLAIN = """
import json, tempfile, time
import keras
from fmnist_core.settings import Settings
from fmnist_core.data import load_fashion_mnist
from fmnist_core.hyperparameters import preset
from fmnist_core import worker as job_worker
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN
from fmnist_core.model import build_model
from fmnist_core.store import ModelStore
from fmnist_core.training import VALIDATION_BATCH_SIZE, make_dataset, make_optimizer, select_training_data

hp = preset("quick", epochs=%(epochs)d)
dataset = load_fashion_mnist()
root = tempfile.mkdtemp()
queue, store = JobQueue(root), ModelStore(root)

def plain_fit():
    split = select_training_data(hp, dataset)
    keras.utils.set_random_seed(hp.seed)
    model = build_model(hp)
    steps = -(-len(split.train_labels) // hp.batch_size)
    model.compile(optimizer=make_optimizer(hp, steps),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing), metrics=["accuracy"])
    rates = []

    class EpochClock(keras.callbacks.Callback):  # two clock readings an epoch, nothing else
        def on_epoch_begin(self, epoch, logs=None):
            self.begin = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            rates.append(steps * hp.batch_size / (time.perf_counter() - self.begin))

    model.fit(make_dataset(split.train_images, split.train_labels, hp.batch_size, seed=hp.seed), epochs=hp.epochs,
              verbose=0, callbacks=[EpochClock()], validation_data=make_dataset(
                  split.validation_images, split.validation_labels, VALIDATION_BATCH_SIZE, None))
    return rates

worker, plain = [], []
for round_number in range(%(rounds)d):
    job = queue.submit(RUN, f"worker-{round_number}", "bench", hyperparameters=hp)
    job_worker.run_job(queue, store, queue.claim_next(0, 0), lambda: dataset, Settings(models_dir=store.root))
    worker += [epoch["images_per_second"] for epoch in queue.snapshot(job.job_id).epochs][1:]  # 1: tracing
    plain += plain_fit()[1:]
print(json.dumps({"worker": worker, "plain": plain}))
"""


def upper_half_mean(rates: list[float]) -> float:
    """The mean of the faster half of the epochs: what an undisturbed epoch runs at."""
    fastest = sorted(rates, reverse=True)[: max(1, len(rates) // 2)]
    return statistics.fmean(fastest)


def rounded(rates: list[float]) -> str:
    return "/".join(f"{rate:,.0f}" for rate in rates)


def _where_training_is(progress) -> tuple[int, float] | None:
    """(epoch, fraction of it done) from the Train page's progress line, or None before epoch 2."""
    found = EPOCH_TEXT.search(progress.inner_text())
    if not found or int(found[1]) < 2:
        return None
    return int(found[1]), int(found[2]) / int(found[3])


def saved_card(models_dir: Path, run_name: str) -> dict:
    (card_path,) = models_dir.glob(f"{run_name}*/card.json")
    return json.loads(card_path.read_text())


def toggled_run(browser, server, models_dir: Path) -> tuple[list[float], list[float]]:
    """Per-epoch images/s of one run while its Train page was open, and while it was closed."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    open_page(page, server.url, "", f"preset=quick&epochs={TOGGLED_EPOCHS}")
    start_run(page, "bench-ui-toggled")
    # Where the run is at one known moment ties the card's per-epoch clock to ours.
    anchor = None
    while anchor is None:
        time.sleep(0.5)
        anchor = _where_training_is(progress_text(page))
    anchor_time = time.time()
    windows, state, since = [], "open", time.time()
    while not list(models_dir.glob("bench-ui-toggled*/card.json")):
        time.sleep(0.5)
        if time.time() - since < WINDOW_SECONDS:
            continue
        windows.append((since, time.time(), state))
        if state == "open":
            context.close()
            state = "closed"
        else:
            context = browser.new_context(viewport=VIEWPORT)
            open_page(context.new_page(), server.url)
            state = "open"
        since = time.time()
    windows.append((since, time.time(), state))
    context.close()
    history = saved_card(models_dir, "bench-ui-toggled")["history"]
    ends = [0.0] + [epoch["elapsed_seconds"] for epoch in history]
    epoch, fraction = anchor
    offset = anchor_time - (ends[epoch - 1] + fraction * (ends[epoch] - ends[epoch - 1]))
    rates = {"open": [], "closed": []}
    for number in range(2, len(history) + 1):  # epoch 1 includes tracing
        begin, end = offset + ends[number - 1], offset + ends[number]
        for window_start, window_end, window_state in windows:
            if window_start + SETTLE_SECONDS + ALIGNMENT_SECONDS <= begin and end + ALIGNMENT_SECONDS <= window_end:
                rates[window_state].append(history[number - 1]["images_per_second"])
    return rates["open"], rates["closed"]


def live_ui_overhead(browser, server, models_dir: Path) -> list[Row]:
    opened, closed = toggled_run(browser, server, models_dir)
    figures = run_python(WORKER_VS_PLAIN % {"epochs": WORKER_EPOCHS, "rounds": WORKER_ROUNDS})
    worker, plain = figures["worker"], figures["plain"]
    page_ratio = upper_half_mean(opened) / upper_half_mean(closed)
    worker_ratio = upper_half_mean(worker) / upper_half_mean(plain)
    ratio = page_ratio * worker_ratio
    return [
        Row(
            "Live-UI overhead",
            "images/s: app run with its Train page open vs closed (alternating, one run)",
            f"{upper_half_mean(opened):,.0f} vs {upper_half_mean(closed):,.0f} = {page_ratio:.2f}×",
            "",
            None,
            f"`quick`, {TOGGLED_EPOCHS} epochs, page open/closed every {WINDOW_SECONDS:g} s; faster half of "
            f"{len(opened)}/{len(closed)} epochs (ratio of medians "
            f"{statistics.median(opened) / statistics.median(closed):.2f}×); open {rounded(opened)}, "
            f"closed {rounded(closed)}",
        ),
        Row(
            "Live-UI overhead",
            "images/s: app's worker (thread + listeners) vs plain model.fit (taking turns)",
            f"{upper_half_mean(worker):,.0f} vs {upper_half_mean(plain):,.0f} = {worker_ratio:.2f}×",
            "",
            None,
            f"`quick`, {WORKER_ROUNDS} rounds of {WORKER_EPOCHS} epochs each in one process; faster half of "
            f"epochs 2-{WORKER_EPOCHS} (ratio of medians {statistics.median(worker) / statistics.median(plain):.2f}×); "
            f"worker {rounded(worker)}, plain {rounded(plain)}",
        ),
        Row(
            "Live-UI overhead",
            "app (worker + listeners + Train page open) vs plain model.fit: product of the two",
            f"{ratio:.2f}×",
            "≥ 0.95×",
            ratio >= 0.95,
            "same model, tf.data pipeline and batch size",
        ),
    ]
