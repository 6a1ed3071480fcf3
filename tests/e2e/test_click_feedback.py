"""Every click answered where the person is looking (#28), on a 1366x768 laptop: Start training below the fold, a run
watched to its end, Use this model of a deleted run, Retrain best on the Sweep page.

Each test (and fixture) ends the jobs it started, so the next one finds the server's queue empty.
"""

from __future__ import annotations

import re
import shutil

import pytest
from app_actions import (
    RUN_SECONDS,
    START_SECONDS,
    current,
    keyed,
    open_more_settings,
    open_page,
    run_heading,
    run_outcome,
    start_run,
    start_tiny_sweep,
    stop_any_run,
    wait_on_page,
    wait_until_drawn,
)
from playwright.sync_api import expect

LAPTOP = {"width": 1366, "height": 768}
WATCHED = "e2e-watched"
SHORT_RUN = "preset=quick&train_subset_size=20000&epochs=3"  # still training a minute later


def test_start_training_below_the_fold_brings_the_run_into_view_and_says_so_under_the_button(new_page, app_server):
    page = new_page(viewport=LAPTOP)
    stop_any_run(page, app_server)
    open_page(page, app_server.url, query=SHORT_RUN)
    open_more_settings(page)  # as a person does who sets the number of training images
    start = page.get_by_role("button", name="Start training")
    assert start.bounding_box()["y"] > LAPTOP["height"], "Start is in view: this test needs it below the fold"
    page.get_by_role("textbox", name="Run name").fill("in-sight")
    try:
        start.click()  # Playwright scrolls it into view first, as a person does

        heading = run_heading(page, "in-sight")
        expect(heading).to_be_in_viewport(timeout=START_SECONDS * 1000)
        expect(current(page).locator('[data-testid="stProgress"]')).to_be_in_viewport()
        header = page.locator('[data-testid="stHeader"]').bounding_box()
        wait_on_page(page, lambda: heading.bounding_box()["y"] >= header["y"] + header["height"] - 1, 10,
                     "the heading stayed under the app's bar")  # where the page's scroll leaves it within 3 s
        status = keyed(page, "start_status")
        expect(status).to_contain_text("Your run “in-sight” is training")
        status.get_by_role("link", name=re.compile("See its progress")).click()  # back from the form: one click
        expect(run_heading(page, "in-sight")).to_be_in_viewport()

        page.reload()  # the same visitor later: the note under Start is about their own run, not "a job"
        wait_until_drawn(page, "Train a CNN")
        expect(keyed(page, "start_status")).to_contain_text("Your run “in-sight” is training on this server")
        expect(current(page).get_by_text("A job is training on this server")).to_have_count(0)
    finally:
        stop_any_run(page, app_server)


@pytest.fixture(scope="module")
def watched_run(browser, app_server):
    """A tiny run one visitor started and another watched train to its end: the watcher's Train page."""
    contexts = [browser.new_context(viewport=LAPTOP) for _ in range(2)]
    starter, watcher = (context.new_page() for context in contexts)
    try:
        stop_any_run(starter, app_server)
        open_page(starter, app_server.url, query="preset=quick&train_subset_size=2000&epochs=1")
        start_run(starter, WATCHED)
        open_page(watcher, app_server.url)
        expect(run_heading(watcher, WATCHED)).to_be_visible()
        expect(run_outcome(watcher)).to_be_visible(timeout=RUN_SECONDS * 1000)
        yield watcher
    finally:
        stop_any_run(starter, app_server)
        for context in contexts:
            context.close()


def test_a_run_watched_to_its_end_stays_where_it_was_at_the_top(watched_run):
    page = watched_run
    heading, preset = run_heading(page, WATCHED), page.get_by_role("combobox", name="Preset")
    expect(heading).to_be_in_viewport()
    assert heading.bounding_box()["y"] < preset.bounding_box()["y"], "the ended run moved below the form"


def test_use_this_model_of_a_run_whose_model_was_deleted_says_so(watched_run, app_server):
    page = watched_run
    shutil.rmtree(app_server.models_dir / WATCHED)  # deleted meanwhile, from another page or session

    use = current(page).get_by_role("button", name="Use this model")
    box = use.bounding_box()

    use.click()

    said = current(page).get_by_text(f"Its model {WATCHED} has since been deleted")
    expect(said).to_be_visible()  # in place of the button
    assert abs(said.bounding_box()["y"] - box["y"]) < 40, (said.bounding_box(), box)
    expect(use).to_have_count(0)


def _end_jobs(app_server) -> None:
    """Stop and cancel every job, as the operator, without waiting (the page under test shows what follows)."""
    from fmnist_core.job_queue import JobQueue
    from fmnist_core.ownership import Visitor

    queue, operator = JobQueue(app_server.models_dir), Visitor("the test's operator", is_operator=True)
    for job in queue.active():
        queue.cancel(job.job_id, operator)
        queue.request_stop(job.job_id, operator)


def test_retrain_best_shows_its_job_at_once_and_then_its_outcome(new_page, app_server):
    page = new_page(viewport=LAPTOP)
    stop_any_run(page, app_server)
    start_tiny_sweep(page, app_server.url)
    retrain = current(page).get_by_role("button", name="Retrain best on the full training set")
    expect(retrain).to_be_enabled(timeout=RUN_SECONDS * 1000)  # offered once the sweep has ended
    # named as its table and chart name them, not learning_rate, batch_size
    expect(page.get_by_role("heading", name="Sweep: grid over learning rate, batch size, dropout rate")).to_be_visible()
    try:
        retrain.click()

        under_way = current(page).get_by_text(re.compile(r"^Retraining trial 1 on the full training set as “sweep"))
        expect(under_way).to_be_in_viewport(timeout=5_000)  # at once: waiting in the queue, or training
        expect(retrain).to_be_disabled()  # pressed once is enough
        expect(under_way).not_to_contain_text("waiting in the queue", timeout=START_SECONDS * 1000)  # training
        _end_jobs(app_server)  # the full run would take minutes: stopped, it is evaluated and saved all the same
        outcome = current(page).get_by_text(re.compile(r"^Retraining trial 1: Stopped early by request"))
        expect(outcome).to_be_visible(timeout=RUN_SECONDS * 1000)  # without a reload
        expect(retrain).to_be_enabled()
    finally:
        stop_any_run(page, app_server)
