"""Every page at a phone's, a small laptop's and a wide screen's width: nothing a person reads is cut off.

`layout_probe.layout_problems` names text cut by an ellipsis, words broken across lines, tables hiding columns and
pages wider than the window. Classify is checked with an answer on screen (an uploaded test image), Sweep with the
table of a finished sweep of three trials. A screenshot
of each page and width goes to test-artifacts/widths/ for a person to look at.
"""

from __future__ import annotations

import pytest
from app_actions import (
    RUN_SECONDS,
    answered,
    current,
    draw,
    keyed,
    open_more_settings,
    open_page,
    png_file,
    run_heading,
    set_brush_width,
    start_run,
    start_tiny_sweep,
    stop_any_run,
    upload,
    upload_result,
    wait_until_settled,
)
from drawings import OUTLINE_BRUSH_WIDTH, T_SHIRT_OUTLINE
from layout_probe import layout_problems
from playwright.sync_api import expect

from fmnist_core.data import load_fashion_mnist

WIDTHS = {390: 844, 1024: 700, 1920: 1080}  # phone, small laptop, wide screen: width -> height
PAGES = ["", "evaluate", "classify", "runs", "sweep", "dataset"]


@pytest.fixture(scope="module")
def coat_picture() -> dict:
    data = load_fashion_mnist()
    return png_file("coat.png", data.test_images[data.test_labels == 4][0])


@pytest.fixture(scope="module")
def finished_sweep(browser, app_server) -> None:
    """A sweep of three trials that has ended, so that the Sweep page shows its table of trials and its chart."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        stop_any_run(page, app_server)
        start_tiny_sweep(page, app_server.url, trials=3)
        expect(current(page).get_by_text("Sweep finished.")).to_be_visible(timeout=RUN_SECONDS * 1000)
    finally:
        context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_reads_whole_at_this_width(new_page, app_server, artifacts, coat_picture, finished_sweep, width):
    page = new_page(viewport={"width": width, "height": WIDTHS[width]}, has_touch=width < 500)
    folder = artifacts / "widths"
    folder.mkdir(exist_ok=True)
    found = {}
    for path in PAGES:
        open_page(page, app_server.url, path)
        if path == "":
            open_more_settings(page)  # its groups of settings are checked too
        if path == "classify":
            upload(page, [coat_picture])
            expect(upload_result(page, "coat.png")).to_be_visible()
        wait_until_settled(page)
        page.screenshot(path=folder / f"{path or 'train'}-{width}.png")
        problems = layout_problems(page)
        if problems:
            found[path or "train"] = problems
    assert not found, f"at {width} px: {found}"


def test_the_why_panel_of_a_drawing_reads_whole_on_a_1024_laptop_with_the_sidebar_open(new_page, app_server,
                                                                                       artifacts):
    page = new_page(viewport={"width": 1024, "height": WIDTHS[1024]})
    open_page(page, app_server.url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        draw(page, T_SHIRT_OUTLINE)
    page.get_by_text("Why? Show what the model looks at").click()
    expect(page.get_by_text("HiResCAM for T-shirt/top")).to_be_visible()
    wait_until_settled(page)
    # under the canvas and the answer, not squeezed beside them: the map at its full 224 px, every tab and word whole
    caption = page.get_by_text("HiResCAM for T-shirt/top")
    image = page.locator('[data-testid="stImage"]').filter(has=caption).locator("img")
    assert image.bounding_box()["width"] >= 220, image.bounding_box()
    assert page.get_by_role("tab", name="First-layer filters").is_visible()
    caption.evaluate("element => element.scrollIntoView({block: 'center'})")
    page.screenshot(path=artifacts / "widths" / "classify-why-1024.png")
    assert layout_problems(page) == []


def test_a_run_in_progress_is_in_view_without_scrolling_on_a_1366_screen(new_page, app_server):
    page = new_page(viewport={"width": 1366, "height": 900})
    stop_any_run(page, app_server)
    open_page(page, app_server.url, query="preset=seed-004&train_subset_size=20000&epochs=3")
    start_run(page, "in-view")
    try:
        for _ in range(2):  # as started, and on a later visit to the page
            progress = current(page).locator('[data-testid="stProgress"]')
            expect(progress).to_be_visible()
            curves = keyed(page, "batch_chart")
            expect(curves).to_be_visible(timeout=RUN_SECONDS * 1000)
            for element in (run_heading(page, "in-view"), progress, curves):
                box = element.bounding_box()
                assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 900, (element, box)
            expect(page.get_by_role("button", name="Start training")).to_be_attached()  # the form is still there
            open_page(page, app_server.url)
    finally:
        stop_any_run(page, app_server)
