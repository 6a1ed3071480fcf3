"""Take the README's screenshots of the four pages: `.venv/bin/python docs/screenshots.py` (about a minute).

Starts the app on a temporary copy of the shipped model (the repository's models/ is never written), trains one
small run so the Train and Runs pages have curves to show, and writes docs/train.png, docs/evaluate.png,
docs/classify.png and docs/runs.png, and the Classify page at a phone's and a 1024 px laptop's width
(docs/classify-phone.png, docs/classify-1024.png). Uses the browser tests' server and user actions (tests/e2e).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent / "tests" / "e2e"), str(DOCS.parent)]

from app_actions import (  # noqa: E402
    RUN_SECONDS,
    answered,
    current,
    draw,
    draw_by_touch,
    keyed,
    open_page,
    prediction,
    progress_text,
    run_heading,
    scroll_to,
    set_brush_width,
    start_run,
    wait_until_settled,
)
from app_server import VIEWPORT, AppServer, copy_shipped_model, launch_chromium  # noqa: E402
from drawings import OUTLINE_BRUSH_WIDTH, T_SHIRT_OUTLINE  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from fmnist_core.data import CLASS_NAMES  # noqa: E402

RUN_NAME = "quick-10000-images"
RUN_QUERY = "preset=quick&train_subset_size=10000&epochs=4"
AWAY = (VIEWPORT["width"] - 40, VIEWPORT["height"] - 40)  # the mouse, off every control and chart
PHONE = dict(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
LAPTOP_1024 = dict(viewport={"width": 1024, "height": 700})


def train(page: Page, base_url: str) -> None:
    """A small run from a share link, shot while it trains its third epoch (two epochs of curves), then finished."""
    open_page(page, base_url, query=RUN_QUERY)
    start_run(page, RUN_NAME)
    # past the first batches of the epoch, whose speed includes the epoch's start-up
    third_epoch = re.compile(r"Epoch 3/4 · batch ([2-9]\d)/")
    expect(progress_text(page)).to_have_text(third_epoch, timeout=RUN_SECONDS * 1000)
    expect(keyed(page, "epoch_accuracy_chart")).to_be_visible()
    page.mouse.move(*AWAY)
    wait_until_settled(page)
    scroll_to(run_heading(page, RUN_NAME))
    page.screenshot(path=DOCS / "train.png")
    expect(current(page).get_by_text(f"saved as {RUN_NAME}")).to_be_visible(timeout=RUN_SECONDS * 1000)


def evaluate(page: Page, base_url: str) -> None:
    """The shipped model's Evaluate page, its mistakes filtered to shirts taken for T-shirts by a matrix click."""
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})  # the matrix and the mistakes under it
    open_page(page, base_url, "evaluate")
    plot_area = page.locator(".st-key-confusion .nsewdrag").first
    expect(plot_area).to_be_visible(timeout=RUN_SECONDS * 1000)
    box = plot_area.bounding_box()
    cell = box["width"] / len(CLASS_NAMES), box["height"] / len(CLASS_NAMES)
    page.mouse.click(box["x"] + 0.5 * cell[0], box["y"] + (CLASS_NAMES.index("Shirt") + 0.5) * cell[1])
    expect(page.get_by_role("combobox", name="Predicted class")).to_have_value("T-shirt/top")
    page.mouse.move(*AWAY)  # no hover label over the matrix
    expect(page.get_by_text("True class: Shirt")).to_be_visible()
    wait_until_settled(page)
    page.screenshot(path=DOCS / "evaluate.png")
    page.set_viewport_size(VIEWPORT)


def classify(page: Page, base_url: str) -> None:
    """A T-shirt drawn as an outline with the mouse, the filled 28x28 image the model saw, and its answer."""
    open_page(page, base_url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        draw(page, T_SHIRT_OUTLINE)
    expect(prediction(page)).to_have_text("T-shirt/top")
    page.mouse.move(*AWAY)
    wait_until_settled(page)
    page.screenshot(path=DOCS / "classify.png")


def classify_at(page: Page, base_url: str, name: str, by_touch: bool) -> None:
    """The same outline drawn at another size of screen: on a phone by touch, on a 1024 px laptop by mouse."""
    open_page(page, base_url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        (draw_by_touch if by_touch else draw)(page, T_SHIRT_OUTLINE)
    expect(prediction(page)).to_have_text("T-shirt/top")
    wait_until_settled(page)
    page.screenshot(path=DOCS / name)


def runs(page: Page, base_url: str) -> None:
    open_page(page, base_url, "runs")
    expect(keyed(page, "runs_cards")).to_contain_text(RUN_NAME)
    wait_until_settled(page)
    page.screenshot(path=DOCS / "runs.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(copy_shipped_model(Path(folder) / "models"), Path(folder) / "server.log")
        try:
            server.wait_until_healthy()
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(30_000)
                for take in (train, evaluate, classify, runs):
                    take(page, server.url)
                    print(f"wrote {DOCS / take.__name__}.png")
                for name, screen, by_touch in (("classify-phone.png", PHONE, True),
                                               ("classify-1024.png", LAPTOP_1024, False)):
                    context = browser.new_context(**screen)
                    classify_at(context.new_page(), server.url, name, by_touch)
                    context.close()
                    print(f"wrote {DOCS / name}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
