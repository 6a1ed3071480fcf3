"""Many visitors on one server (#18): ten visitors each queue a tiny run at once; the Train page's drawing time while
a run trains, with training in the web server (the build before the queue) and in a worker process (now); the delay
from an epoch's end to the open Train page showing it, and from Stop to training ending.

All through the real app (`streamlit run`) on loopback, driven by Debian's Chromium, one browser context per
visitor (its own cookie, so its own visitor id).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from .measure import REPO, Row

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from app_actions import (  # noqa: E402
    current,
    keyed,
    open_page,
    progress_text,
    start_run,
    stop_button,
    wait_until_drawn,
)
from app_server import VIEWPORT, AppServer, copy_shipped_model, launch_chromium  # noqa: E402

from fmnist_core.job_queue import JobQueue  # noqa: E402
from fmnist_core.jobs import JobState  # noqa: E402
from fmnist_core.store import ModelStore  # noqa: E402

VISITORS = 10
TINY_RUN = "preset=seed-004&train_subset_size=1000&epochs=1"
LONG_RUN = "preset=quick&epochs=20"  # trains for minutes: the background of the drawing-time measurement
DRAWS = 8
BEFORE = "6114ea8"  # main before #18: training in a thread of the web server


def ten_visitors(browser, server: AppServer) -> list[Row]:
    """Each visitor's page presses Start within a second of the others; every run must train once, in order."""
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(VISITORS)]
    pages = [context.new_page() for context in contexts]
    for number, page in enumerate(pages):
        page.set_default_timeout(120_000)
        open_page(page, server.url, query=TINY_RUN)
        page.get_by_role("textbox", name="Run name").fill(f"visitor-{number:02d}")
    started = time.monotonic()
    for page in pages:
        page.get_by_role("button", name="Start training").click(no_wait_after=True)
    queue = JobQueue(server.models_dir)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        jobs = queue.recent(VISITORS)
        if len(jobs) == VISITORS and not any(job.state.is_active for job in jobs):
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    for context in contexts:
        context.close()
    jobs = queue.recent(VISITORS)
    saved = [model.card.get("job_id") for model in ModelStore(server.models_dir).list_models()[0]]
    finished = sum(job.state == JobState.FINISHED for job in jobs)
    once = all(saved.count(job.job_id) == 1 for job in jobs)
    in_order = [job.started_at for job in jobs] == sorted(job.started_at for job in jobs)
    owners = len({job.owner for job in jobs})
    ok = len(jobs) == VISITORS and finished == VISITORS and once and in_order and owners == VISITORS
    return [Row("visitors", f"{VISITORS} visitors each queue a tiny run at once",
                f"{finished}/{VISITORS} finished, each saved once: {once}, in queue order: {in_order}, "
                f"{owners} distinct owners; all done in {seconds:.0f} s",
                "every run trains exactly once, in queue order, none lost", ok)]


def draw_seconds(browser, server: AppServer) -> list[float]:
    """Seconds for a fresh visitor's Train page to draw the running run's progress, DRAWS times."""
    times = []
    for _ in range(DRAWS):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(120_000)
        begin = time.perf_counter()
        page.goto(server.url, wait_until="commit")
        wait_until_drawn(page, "Train a CNN")
        expect(progress_text(page)).to_contain_text("Epoch")
        times.append(time.perf_counter() - begin)
        context.close()
        time.sleep(1.0)
    return times


def train_page_while_training(browser, repo: Path, models_dir: Path, log: Path) -> list[float]:
    server = AppServer(models_dir, log, one_tensorflow_thread=False, repo=repo)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        server.wait_until_healthy()
        page = context.new_page()
        page.set_default_timeout(120_000)
        open_page(page, server.url, query=LONG_RUN)
        start_run(page, "bench-draw")
        expect(progress_text(page)).to_contain_text("Epoch 2/", timeout=300_000)  # steady training, warm server
        context.close()
        return draw_seconds(browser, server)
    finally:
        server.stop()
        subprocess.run(["pkill", "-KILL", "-f", "--", f"--models-dir {models_dir} worker"], check=False)


def _epoch_points(page) -> int:
    """Points of the training-accuracy curve on the Train page's epoch chart: one per finished epoch."""
    trace = keyed(page, "epoch_accuracy_chart").locator(".scatterlayer .trace").first
    return trace.locator(".points path").count() if trace.count() else 0


def epoch_and_stop_delays(browser, server: AppServer) -> list[Row]:
    """From an epoch's end (its row written to the queue) to its point on the open Train page's epoch chart; from a
    Stop click to the end of training (the job leaves TRAINING)."""
    queue = JobQueue(server.models_dir)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(120_000)
    open_page(page, server.url, query=LONG_RUN)
    start_run(page, "bench-delays")
    job = queue.newest()
    delays = []
    for _ in range(4):
        done = len(queue.snapshot(job.job_id).epochs)
        while len(queue.snapshot(job.job_id).epochs) == done:
            time.sleep(0.01)
        written = time.perf_counter()
        while _epoch_points(page) < done + 1:
            page.wait_for_timeout(20)
        delays.append(time.perf_counter() - written)
    clicked = time.perf_counter()
    stop_button(page).click()
    while not queue.stop_requested(job.job_id):
        time.sleep(0.005)
    requested = time.perf_counter()
    last_batch = queue.snapshot(job.job_id, with_curves=False).last_batch
    while queue.snapshot(job.job_id, with_curves=False).state == JobState.TRAINING:
        time.sleep(0.005)
    ended = time.perf_counter()
    final = queue.snapshot(job.job_id, with_curves=False).last_batch
    batches_after = ((final.epoch - last_batch.epoch) * final.batches_per_epoch + final.batch - last_batch.batch
                     if final and last_batch else None)
    expect(current(page).get_by_text(re.compile("^Stopped early by request"))).to_be_visible(timeout=120_000)
    context.close()
    stop_seconds = ended - clicked
    return [Row("visitors", "epoch end → its point on the open Train page's epoch chart",
                " / ".join(f"{delay:.2f} s" for delay in delays),
                "as before: the curves redraw every 3 s", max(delays) < 4.0),
            Row("visitors", "Stop pressed → training over (the job leaves TRAINING)",
                f"{stop_seconds:.2f} s: click → stop written to the queue {requested - clicked:.2f} s, → training "
                f"over {ended - requested:.2f} s ({batches_after} batches recorded after the request, then the "
                "partial epoch's validation)",
                "within about a second", stop_seconds < 2.0)]


def run() -> list[Row]:
    rows = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        browser = launch_chromium(playwright)
        before = scratch / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), BEFORE], cwd=REPO, check=True,
                       capture_output=True)
        try:
            draws_before = train_page_while_training(browser, before, copy_shipped_model(scratch / "m1"),
                                                     scratch / "before.log")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, check=False)
        draws_after = train_page_while_training(browser, REPO, copy_shipped_model(scratch / "m2"),
                                                scratch / "after.log")
        rows.append(Row("visitors", "a fresh Train page drawn while a `quick` run trains (median, slowest of "
                        f"{DRAWS})", f"before (training in the web server, {BEFORE}): "
                        f"{statistics.median(draws_before):.2f} s, {max(draws_before):.2f} s; after (worker "
                        f"process): {statistics.median(draws_after):.2f} s, {max(draws_after):.2f} s"))
        server = AppServer(copy_shipped_model(scratch / "m3"), scratch / "visitors.log", one_tensorflow_thread=False)
        try:
            server.wait_until_healthy()
            rows += ten_visitors(browser, server)
            rows += epoch_and_stop_delays(browser, server)
        finally:
            server.stop()
            subprocess.run(["pkill", "-KILL", "-f", "--", f"--models-dir {server.models_dir} worker"], check=False)
        browser.close()
    return rows
