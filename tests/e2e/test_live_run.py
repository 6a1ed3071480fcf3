"""A training run seen live in a real browser: the page updates, other users keep working, reloads and Stop.

The tests share one run, started from a share link by the module's fixture and stopped by the last test
(or by the fixture, should a test fail first): the whole training set for up to 10 epochs, minutes of work,
so it is surely still going while the tests before the last look at it.
"""

from __future__ import annotations

import re
import time

import pytest
from app_actions import (
    RUN_SECONDS,
    batches_done,
    current,
    keyed,
    open_page,
    png_file,
    prediction,
    progress_text,
    run_heading,
    run_outcome,
    scroll_to,
    sidebar_model_names,
    start_run,
    stop_any_run,
    stop_button,
    upload,
    upload_result,
    wait_on_page,
    wait_until_drawn,
    wait_until_no_run,
    wait_until_settled,
)
from app_server import VIEWPORT
from playwright.sync_api import expect

LIVE_RUN = "e2e-live"
LIVE_EPOCHS = 10
LIVE_QUERY = f"preset=quick&train_subset_size=0&epochs={LIVE_EPOCHS}"
CLASSIFY_SECONDS = 15  # one upload's answer while the run keeps both CPU cores busy
ANKLE_BOOT = 4390  # a test image the shipped model names correctly with 96 % probability
UPDATE_SECONDS = 30  # the page redraws the progress every second and the curves every 3 s, on a busy CPU


@pytest.fixture(scope="module")
def training_page(browser, app_server):
    """The Train page of the user who started the shared run, once the run is visibly training."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        wait_until_no_run(page, app_server.url)
        open_page(page, app_server.url, query=LIVE_QUERY)
        start_run(page, LIVE_RUN)
        expect(progress_text(page)).to_contain_text(f"Epoch 1/{LIVE_EPOCHS} · batch", timeout=RUN_SECONDS * 1000)
        expect(keyed(page, "batch_chart").locator(".scatterlayer .trace").first).to_be_attached()
        yield page
    finally:
        stop_any_run(page, app_server)  # normally stopped already by the last test
        context.close()


def test_the_progress_bar_and_curves_update_while_a_run_trains(training_page, artifacts):
    page = training_page
    expect(stop_button(page)).to_be_visible()
    scroll_to(run_heading(page, LIVE_RUN))
    # the chart's place on the page: the element itself is replaced as the page redraws
    chart_area = keyed(page, "batch_chart").bounding_box()
    batches_before, chart_before = batches_done(page), page.screenshot(clip=chart_area)

    wait_on_page(page, lambda: batches_done(page) > batches_before, UPDATE_SECONDS,
                 "the progress line showed no new batch", interval_seconds=0.5)
    wait_on_page(page, lambda: page.screenshot(clip=chart_area) != chart_before, UPDATE_SECONDS,
                 "the batch chart did not change", interval_seconds=0.5)
    wait_until_settled(page)
    page.screenshot(path=artifacts / "train-running.png")


def test_another_user_classifies_while_the_run_trains(training_page, new_page, app_server, dataset):
    other = new_page()
    open_page(other, app_server.url, "classify")
    started = time.monotonic()

    upload(other, [png_file("boot.png", dataset.test_images[ANKLE_BOOT])])

    expect(prediction(upload_result(other, "boot.png"))).to_have_text("Ankle boot", timeout=CLASSIFY_SECONDS * 1000)
    print(f"classified in {time.monotonic() - started:.1f} s while training")
    expect(stop_button(training_page)).to_be_visible()  # the run goes on: the answer did not wait for it


def test_another_visitor_watches_without_a_stop_button_and_their_run_waits_in_the_queue(
        training_page, new_page, app_server):
    other = new_page()  # another browser context: another visitor
    open_page(other, app_server.url)
    expect(run_heading(other, LIVE_RUN)).to_be_visible()
    expect(current(other).get_by_text("started by another visitor")).to_be_visible()
    expect(stop_button(other)).to_have_count(0)

    other.get_by_role("textbox", name="Run name").fill("waiting-turn")
    other.get_by_role("button", name="Start training").click()

    waits = current(other).get_by_text(re.compile(r"1 job is ahead of yours, so your run “waiting-turn” waits in the "
                                                  r"queue: number 1, starting in about"))
    expect(waits).to_be_visible()
    expect(waits).to_be_in_viewport()  # under the Start button just pressed, not at the top of the page
    queued = current(other).get_by_text(re.compile(r"^1\. run “waiting-turn” \(quick\) · yours · starts in about"))
    expect(queued).to_be_visible()
    # the run's owner sees it as another visitor's, without Cancel
    expect(current(training_page).get_by_text(re.compile(r"^1\. run “waiting-turn” \(quick\) · another visitor")
                                              )).to_be_visible(timeout=UPDATE_SECONDS * 1000)
    expect(current(training_page).get_by_role("button", name="Cancel")).to_have_count(0)
    current(other).get_by_role("button", name="Cancel").click()
    expect(current(other).get_by_text(re.compile("^Cancelled: the run “waiting-turn”"))).to_be_visible()
    expect(queued).to_have_count(0)
    expect(stop_button(training_page)).to_be_visible()  # the run itself goes on


def test_reloading_the_page_shows_the_run_still_going_and_still_the_visitors_own(training_page):
    page = training_page  # the browser keeps the visitor's id in a cookie: after a reload, Stop is still theirs
    batches_before = batches_done(page)

    page.reload()

    wait_until_drawn(page, "Train a CNN")
    expect(run_heading(page, LIVE_RUN)).to_be_visible()
    expect(stop_button(page)).to_be_visible()
    expect(progress_text(page)).to_contain_text("Epoch")
    expect(keyed(page, "batch_chart").locator(".scatterlayer .trace").first).to_be_attached()  # the curves so far
    assert batches_done(page) >= batches_before


def test_stop_ends_the_run_early_and_saves_it(training_page, app_server, artifacts):
    page = training_page
    expect(stop_button(page)).to_be_visible()

    stop_button(page).click()

    # acknowledged: the button is disabled ("stopping after this batch…") or gone (stopped already)
    expect(current(page).get_by_role("button", name="Stop training", disabled=False)).to_have_count(0)
    outcome = run_outcome(page)
    expect(outcome).to_be_visible(timeout=RUN_SECONDS * 1000)  # the run's last message, whichever it is
    stopped = rf"^Stopped early by request after .* Test accuracy \d+\.\d\d%, saved as {LIVE_RUN}\.$"
    expect(outcome).to_have_text(re.compile(stopped))
    expect(stop_button(page)).to_have_count(0)
    page.screenshot(path=artifacts / "train-stopped.png")
    epochs = int(re.search(r"after (\d+) epoch", outcome.inner_text()).group(1))
    assert epochs < LIVE_EPOCHS
    assert any(name.startswith(f"{LIVE_RUN} · ") for name in sidebar_model_names(page))
    open_page(page, app_server.url, "runs")
    expect(keyed(page, "runs_cards")).to_contain_text(LIVE_RUN)
