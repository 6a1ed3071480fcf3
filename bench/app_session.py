"""The app as users run it (`streamlit run`, TensorFlow's own thread counts) in Debian's Chromium.

One server, three measurements in turn:
1. cold start: `streamlit run` → health check answers → first paint → Classify names an uploaded image;
2. live-UI overhead (bench/live_ui.py): a run's speed with its Train page open against closed, and the app's
   worker against plain `model.fit`;
3. memory: the server's resident memory while a `best` run trains (2 epochs: the footprint of an epoch
   does not grow with the epoch count) and while 5 browser sessions classify at once.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from . import live_ui
from .measure import OUT, REPO, Row

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from app_actions import (  # noqa: E402
    RUN_SECONDS,
    open_page,
    png_file,
    prediction,
    run_outcome,
    start_run,
    upload,
    upload_result,
    wait_until_drawn,
)
from app_server import VIEWPORT, AppServer, copy_shipped_model, launch_chromium  # noqa: E402

MEMORY_RUN_QUERY = "preset=best&epochs=2"
CLASSIFYING_SESSIONS = 5


class MemorySampler:
    """Samples a process's resident memory (VmRSS) every 0.2 s; `peak()` since the last `reset()`."""

    def __init__(self, pid: int):
        self.status = Path(f"/proc/{pid}/status")
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self, field: str = "VmRSS") -> int:
        for line in self.status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.samples.append(self.read())
            except OSError:
                return

    def reset(self) -> None:
        self.samples = []

    def peak(self) -> int:
        return max(self.samples, default=0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_images(count: int) -> list[tuple[dict, str]]:
    """The first `count` test-set images as PNG uploads, each with its class name."""
    from fmnist_core.data import load_fashion_mnist

    data = load_fashion_mnist()
    return [(png_file(f"test-{i}.png", data.test_images[i]), data.class_names[data.test_labels[i]])
            for i in range(count)]


def classify_uploads(page, files: list[tuple[dict, str]]) -> None:
    for upload_file, class_name in files:
        expect(prediction(upload_result(page, upload_file["name"]))).to_have_text(class_name, timeout=120_000)


def cold_start(browser, server: AppServer, started: float) -> list[Row]:
    """`started`: the clock when `streamlit run` was launched."""
    files = test_images(1)
    server.wait_until_healthy()
    answered = time.perf_counter()
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(server.url)
    first_paint_ms = page.evaluate(
        """() => new Promise(resolve => {
            const found = () => performance.getEntriesByName("first-contentful-paint")[0];
            const poll = () => found() ? resolve(found().startTime) : setTimeout(poll, 20);
            poll();
        })"""
    )
    wait_until_drawn(page, "Train a CNN")
    drawn = time.perf_counter()
    page.get_by_role("link", name="Classify").click()
    wait_until_drawn(page, "Classify")
    upload(page, [files[0][0]])
    classify_uploads(page, files)
    ready = time.perf_counter()
    page.context.close()
    return [
        Row("Cold start", "`streamlit run` → the server answers its health check", f"{answered - started:.1f} s"),
        Row("Cold start", "server answers → first contentful paint in Chromium", f"{first_paint_ms / 1000:.2f} s",
            "≤ 2 s", first_paint_ms <= 2000),
        Row("Cold start", "server answers → Train page fully drawn", f"{drawn - answered:.1f} s"),
        Row("Cold start", "`streamlit run` → Classify names an uploaded image (default model)",
            f"{ready - started:.1f} s", "≤ 8 s", ready - started <= 8.0,
            "includes a user's clicks: Train page, Classify link, upload"),
    ]


def memory(browser, server: AppServer) -> list[Row]:
    sampler = MemorySampler(server.process.pid)
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_page(page, server.url, "", MEMORY_RUN_QUERY)
        sampler.reset()
        start_run(page, "bench-memory")
        expect(run_outcome(page)).to_be_visible(timeout=RUN_SECONDS * 4000)
        training_peak = sampler.peak()
        page.context.close()
        files = test_images(3)
        pages = [browser.new_context(viewport=VIEWPORT).new_page() for _ in range(CLASSIFYING_SESSIONS)]
        for session in pages:
            open_page(session, server.url, "classify")
        sampler.reset()
        for session in pages:
            upload(session, [upload_file for upload_file, _ in files])
        for session in pages:
            classify_uploads(session, files)
        classify_peak = sampler.peak()
        for session in pages:
            session.context.close()
        high_water = sampler.read("VmHWM")
    finally:
        sampler.stop()
    gib = 2**30
    return [
        Row("Memory", f"app process while a `best` run trains (`{MEMORY_RUN_QUERY}`)",
            f"{training_peak / gib:.2f} GiB", "≤ 1.5 GB", training_peak <= 1.5e9, "peak of 0.2 s VmRSS samples"),
        Row("Memory", f"app process while {CLASSIFYING_SESSIONS} sessions classify 3 uploads each at once",
            f"{classify_peak / gib:.2f} GiB", "≤ 1.5 GB", classify_peak <= 1.5e9),
        Row("Memory", "app process high-water mark over the whole bench session (VmHWM)",
            f"{high_water / gib:.2f} GiB", "≤ 1.5 GB", high_water <= 1.5e9),
    ]


def run() -> list[Row]:
    OUT.mkdir(parents=True, exist_ok=True)
    models_dir = copy_shipped_model(Path(tempfile.mkdtemp(prefix="bench-models-")))
    rows: list[Row] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        started = time.perf_counter()
        server = AppServer(models_dir, OUT / "server.log", one_tensorflow_thread=False)
        try:
            rows += cold_start(browser, server, started)
            rows += live_ui.live_ui_overhead(browser, server, models_dir)
            rows += memory(browser, server)
        finally:
            server.stop()
            browser.close()
            shutil.rmtree(models_dir, ignore_errors=True)
    return rows
