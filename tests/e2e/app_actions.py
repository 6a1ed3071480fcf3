"""What a user does in the app, as Playwright steps, and where they look for the answer.

Every wait polls with a timeout (Playwright's `expect`, or `wait_on_page` below); none sleeps a fixed time.
"""

from __future__ import annotations

import re
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
from drawings import Stroke
from PIL import Image
from playwright.sync_api import Locator, Page, expect

# tests/, home of the helpers all tests share: pytest puts it on sys.path, the bench/ and docs/ scripts that import
# this module put only tests/e2e there
sys.path.append(str(Path(__file__).resolve().parents[1]))
from images import encode  # noqa: E402
from waiting import wait_until  # noqa: E402

T = TypeVar("T")

HEADINGS = {"": "Train a CNN", "evaluate": "Evaluate", "classify": "Classify", "runs": "Saved runs",
            "dataset": "Dataset explorer", "sweep": "Sweep hyperparameters"}
PAGE_SECONDS = 90  # a first visit may wait for TensorFlow, the model and its test-set evaluation on a busy CPU
START_SECONDS = 45  # from Start training to the run's heading on the page, on a busy machine
RUN_SECONDS = 240  # a tiny run, its test-set evaluation and its save, on a CPU shared with other work


# While part of a page reruns, Streamlit keeps the previous copy of an element, marked stale, beside the new one;
# on the Train page, which redraws a run every second, locators look only at current elements.
CURRENT = '[data-testid="stElementContainer"]:not([data-stale="true"])'


# ---- pages and reruns ---------------------------------------------------------------------------
def current(page: Page) -> Locator:
    """The page's current (not stale) elements; chain a locator onto it."""
    return page.locator(CURRENT)


def keyed(page: Page, key: str) -> Locator:
    """The current element created with `key=key`."""
    return page.locator(f'.st-key-{key}:not([data-stale="true"])')


class _ServerMessages:
    """Counts the websocket messages the app sends to one page, to tell when a rerun has been drawn."""

    def __init__(self, page: Page):
        self.count, self.last = 0, time.monotonic()
        page.on("websocket", lambda socket: socket.on("framereceived", self._received))

    def _received(self, _frame) -> None:
        self.count, self.last = self.count + 1, time.monotonic()


_messages: weakref.WeakKeyDictionary[Page, _ServerMessages] = weakref.WeakKeyDictionary()


def open_page(page: Page, base_url: str, path: str = "", query: str = "") -> None:
    """Go to one of the app's pages (`path` as in the URL: "", "evaluate", "classify", "runs") and wait for it."""
    if page not in _messages:
        _messages[page] = _ServerMessages(page)
    page.goto(f"{base_url}/{path}" + (f"?{query}" if query else ""))
    wait_until_drawn(page, HEADINGS[path])


def wait_until_drawn(page: Page, heading: str) -> None:
    """Wait until the page's script has run and every widget is drawn, as a user does before using the page.

    Widgets load their code lazily and show a skeleton meanwhile; a form submitted before its widgets are drawn
    sends no values for them.
    """
    timeout = PAGE_SECONDS * 1000
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=timeout)
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning",
                                                                     timeout=timeout)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=timeout)


def wait_on_page(page: Page, condition: Callable[[], T], timeout_seconds: float, failure: str,
                 interval_seconds: float = 0.2) -> T:
    """`waiting.wait_until` for a browser test: between polls the page waits, so Playwright goes on handling its
    events (a plain sleep would hold them up)."""
    return wait_until(condition, timeout_seconds, failure, interval_seconds,
                      pause=lambda seconds: page.wait_for_timeout(seconds * 1000))


@contextmanager
def answered(page: Page, quiet_seconds: float = 0.6, timeout_seconds: float = 30) -> Iterator[None]:
    """Around an action that reruns part of the page: afterwards, wait until the app has answered and gone quiet.

    For widgets whose new value is not visible in the page before the rerun ends (the canvas's brush, a drawing).
    Only for pages without an auto-refreshing fragment (the Train page refreshes every second while training).
    """
    messages = _messages[page]
    before = messages.count
    yield
    wait_on_page(page, lambda: messages.count != before and time.monotonic() - messages.last >= quiet_seconds,
                 timeout_seconds, "the app did not answer and go quiet", interval_seconds=0.05)


def set_slider(page: Page, label: str, value: int) -> None:
    """Move a numeric slider to `value` with the arrow keys, as a keyboard user does."""
    slider = page.get_by_role("slider", name=label)
    current, step = float(slider.input_value()), float(slider.get_attribute("step") or 1)
    presses = round((value - current) / step)
    slider.focus()
    for _ in range(abs(presses)):
        page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")
    expect(slider).to_have_value(str(value))


def set_form_sliders(page: Page, sliders: dict[str, tuple[str, int]]) -> None:
    """Move the Train form's sliders ({label: (query name, value)}) and wait until the server's run of the page has
    the values, as its share link shows them (Start pressed earlier would send them with the click, but a test that
    waits for the link checks that the server kept every move)."""
    link = current(page).locator('[data-testid="stCode"]').filter(has_text="train_subset_size=")
    for label, (_, value) in sliders.items():
        set_slider(page, label, value)
    for name, value in sliders.values():
        expect(link).to_contain_text(re.compile(rf"[?&]{name}={value}(&|$)"), timeout=10_000)


def sidebar_model_names(page: Page) -> list[str]:
    """The labels offered by the sidebar's Active model selectbox, e.g. "default (shipped) · 93.5%"."""
    page.get_by_role("combobox", name="Active model").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    names = options.all_inner_texts()
    page.keyboard.press("Escape")
    return names


CHARTS_DRAWN = """current => [...document.querySelectorAll(current)]
    .filter(element => element.querySelector('[data-testid="stPlotlyChart"]'))
    .every(element => [...element.querySelectorAll('.main-svg')].some(svg => {
        const box = svg.getBoundingClientRect();
        return box.width > 0 && box.height > 0 && getComputedStyle(svg).visibility !== 'hidden';
    }))"""


def wait_until_settled(page: Page) -> None:
    """Before a screenshot: the script has finished, every image has loaded and every Plotly chart has drawn.

    Images arrive after the page's text, so a picture taken too early pairs new captions with old images.
    """
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning")
    page.wait_for_function("() => [...document.images].every(image => image.complete && image.naturalWidth > 0)")
    # Checked in one pass over the page as it is at that moment, since a page that updates live replaces its charts:
    # each chart's element shows a drawn plot. As a chart redraws, Streamlit keeps a second, empty (0 x 0) plot in the
    # same element for a few seconds (longer on a busy CPU), which does not count against it.
    page.wait_for_function(CHARTS_DRAWN, arg=CURRENT)


def scroll_to(locator: Locator) -> None:
    """Scroll the page so that `locator` is at the top of the window (for a screenshot of what follows it)."""
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


# ---- Classify -----------------------------------------------------------------------------------
def prediction(scope: Page | Locator) -> Locator:
    """The value of the "Prediction" metric (the class name) inside `scope`."""
    return scope.locator('[data-testid="stMetric"]').filter(has_text="Prediction").locator(
        '[data-testid="stMetricValue"]')


def model_input_image(scope: Page | Locator) -> Locator:
    """The enlarged 28x28 image the model received, shown beside a prediction."""
    return scope.locator('[data-testid="stImage"]').filter(has_text="What the model sees (28x28)").locator("img")


def set_brush_width(page: Page, width: int) -> None:
    """Set the canvas's brush width and wait until the canvas has it (the next stroke is drawn with it)."""
    if page.get_by_role("slider", name="Brush width").input_value() != str(width):
        with answered(page):
            set_slider(page, "Brush width", width)


def draw(page: Page, strokes: list[Stroke]) -> None:
    """Draw `strokes` on the canvas with the mouse: press, move in small steps, release, one stroke at a time."""
    canvas = page.locator("canvas.upper-canvas")  # fabric.js's top canvas takes the pointer events
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*at(point), steps=12)
        page.mouse.up()


def touch_drag(page: Page, points: list[tuple[float, float]], steps: int = 12) -> None:
    """A finger on the screen: down at the first point, through the others in `steps` small moves each, then up
    (points in the page's CSS pixels). Chromium's own touch events (touchstart, touchmove, touchend) through the
    DevTools protocol, as a phone's touchscreen sends them; the page needs a context with `has_touch=True`."""
    session = page.context.new_cdp_session(page)

    def touch(kind: str, point: tuple[float, float] | None = None) -> None:
        touch_points = [] if point is None else [{"x": point[0], "y": point[1]}]
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    touch("touchStart", points[0])
    for start, end in zip(points, points[1:], strict=False):
        for step in range(1, steps + 1):
            touch("touchMove", (start[0] + (end[0] - start[0]) * step / steps,
                                start[1] + (end[1] - start[1]) * step / steps))
    touch("touchEnd")
    session.detach()


def draw_by_touch(page: Page, strokes: list[Stroke]) -> None:
    """Draw `strokes` with a finger (`touch_drag`), a finger's move as small as the mouse's in `draw`."""
    canvas = page.locator("canvas.upper-canvas")
    canvas.scroll_into_view_if_needed()
    expect(canvas).to_be_in_viewport()
    box = canvas.bounding_box()
    for stroke in strokes:
        touch_drag(page, [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke])


def undo_last_stroke(page: Page) -> None:
    """Press Undo under the canvas (the app keeps the canvas's toolbar there, always shown)."""
    undo = page.get_by_role("button", name="Undo", exact=True)
    expect(undo).to_be_visible()
    undo.click()


def inked_pixels(page: Page) -> int:
    """How many pixels of the canvas's drawing layer are dark ink."""
    return page.locator("canvas.dc-canvas.lower-canvas").evaluate(
        """canvas => {
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let inked = 0;
            for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 3] > 128 && pixels[i] < 128) inked++;
            return inked;
        }"""
    )


def png_file(name: str, image: np.ndarray | Image.Image) -> dict:
    """An in-memory PNG upload for `set_input_files`."""
    return {"name": name, "mimeType": "image/png", "buffer": encode(image)}


def upload(page: Page, files: list[dict]) -> None:
    """Choose `files` in the Upload pictures tab's file picker."""
    page.get_by_role("tab", name="Upload pictures").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)


def upload_result(page: Page, file_name: str) -> Locator:
    """The bordered box showing the result for the uploaded file `file_name`."""
    boxes = page.locator('[class*="st-key-upload_result_"]')
    return boxes.filter(has=page.get_by_text(file_name, exact=True))


# ---- Train --------------------------------------------------------------------------------------
def stop_button(page: Page) -> Locator:
    return current(page).get_by_role("button", name="Stop training")


def progress_text(page: Page) -> Locator:
    """The run's progress bar with its line of text ("Epoch 1/5 · batch 17/422 · …", "Finished after …")."""
    return page.locator(f'{CURRENT} [data-testid="stProgress"]')


def batches_done(page: Page) -> int:
    """Batches trained so far, from the run's progress line "Epoch 2/10 · batch 17/422 · …"."""
    line = progress_text(page).inner_text()
    epoch, batch, per_epoch = re.search(r"Epoch (\d+)/\d+ · batch (\d+)/(\d+)", line).groups()
    return (int(epoch) - 1) * int(per_epoch) + int(batch)


def run_outcome(page: Page) -> Locator:
    """The message the Train page shows when a run has ended: finished, stopped or failed."""
    outcome = re.compile("^(Finished|Stopped early by request|Stopped at the server's time limit|Training failed)")
    return current(page).locator('[data-testid="stAlert"]').filter(has_text=outcome)


def _no_run_in_progress(page: Page) -> Locator:
    return (current(page).get_by_text("No training run on this server yet")
            .or_(current(page).get_by_text("A hyperparameter sweep ran last on this server")).or_(run_outcome(page)))


def wait_until_no_run(page: Page, base_url: str) -> None:
    """Open the Train page and wait until no training run is in progress on the server (one run at a time)."""
    open_page(page, base_url)
    expect(_no_run_in_progress(page).first).to_be_visible(timeout=RUN_SECONDS * 1000)


def end_every_job(models_dir) -> None:
    """Cancel every waiting job and stop the running ones, as the server's operator, and wait until none is left."""
    from fmnist_core.job_queue import JobQueue
    from fmnist_core.ownership import Visitor

    queue, operator = JobQueue(models_dir), Visitor("the test's operator", is_operator=True)
    for job in queue.active():
        queue.cancel(job.job_id, operator)
        queue.request_stop(job.job_id, operator)
    wait_until(lambda: not queue.active(), RUN_SECONDS, "the server's jobs did not end")


def stop_any_run(page: Page, app_server) -> None:
    """Clear the server's queue between tests, as its operator would: cancel every waiting job, stop the running
    ones (through the queue on disk: a page may only stop its own visitor's runs), and wait until none is left."""
    end_every_job(app_server.models_dir)
    open_page(page, app_server.url)
    expect(_no_run_in_progress(page).first).to_be_visible(timeout=RUN_SECONDS * 1000)


def sign_in_as_operator(page: Page) -> None:
    """Sign in as the operator in the sidebar (the browser tests' server has OPERATOR_PASSWORD)."""
    from app_server import OPERATOR_PASSWORD

    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Operator", exact=True).click()
    sidebar.get_by_label("Operator password").fill(OPERATOR_PASSWORD)
    sidebar.get_by_role("button", name="Sign in").click()
    expect(sidebar.get_by_text("Signed in as the operator")).to_be_visible()


def open_more_settings(page: Page) -> None:
    """Unfold the Train form's "More settings" (layers, optimiser, data), where its less common sliders are."""
    summary = page.get_by_text("More settings: layers, optimiser, data")
    details = page.locator('[data-testid="stExpander"] details').filter(has=summary)
    if details.get_attribute("open") is None:
        summary.click()
    expect(details).to_have_attribute("open", "")
    # The panel opens with an animation: until its height holds, what lies below it (Start) is still moving down.
    heights: list[float] = []

    def unfolded() -> bool:
        heights.append(details.bounding_box()["height"])
        return len(heights) >= 3 and heights[-1] == heights[-2] == heights[-3]

    wait_on_page(page, unfolded, 15, "the More settings panel kept changing its height", interval_seconds=0.15)


def run_heading(page: Page, run_name: str) -> Locator:
    """The heading of the run named `run_name` (as the page shows it: a web address in it gets an invisible word
    joiner, which keeps Markdown from making it a link)."""
    from views.text import unlinked

    return current(page).get_by_role("heading", name=f"Run “{unlinked(run_name)}”")


def start_run(page: Page, run_name: str) -> None:
    """Name the run in the Train form and press Start training; wait until the page shows it under way."""
    page.get_by_role("textbox", name="Run name").fill(run_name)
    page.get_by_role("button", name="Start training").click()
    # The job starts at once when the worker is idle, and its first seconds (TensorFlow tracing the training step)
    # take both cores of a small machine from the server and the browser: the page redraws late, not never (seen in
    # CI: the run was submitted and started, and its heading had not arrived after 15 s).
    expect(run_heading(page, run_name)).to_be_visible(timeout=START_SECONDS * 1000)


def start_tiny_sweep(page: Page, base_url: str, trials: int = 1) -> None:
    """On the Sweep page, start a sweep of softmax regressions of 1 epoch on 1,000 images (seconds per trial)."""
    open_page(page, base_url, "sweep")
    page.get_by_role("combobox", name="Base preset").click()
    page.get_by_role("option", name="softmax-regression").click()
    for label, value in (("Trials (at most)", trials), ("Epochs per trial (Hyperband: the most)", 1),
                         ("Training images per trial (0: all)", 1000)):
        page.get_by_label(label).fill(str(value))
        page.get_by_label(label).press("Enter")
    expect(page.get_by_text(f"{trials} trial{'s' if trials > 1 else ''} of 27 combinations · 1 epoch on 1,000 "
                            "images each")).to_be_visible()
    page.get_by_role("button", name="Start sweep").click()

