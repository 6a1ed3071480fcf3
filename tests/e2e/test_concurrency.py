"""Many users at once on the real server: ten sessions classify while an eleventh trains, two sessions press
Start training at the same moment (one trains, the other waits its turn), and a run whose browser went away (another
visitor may watch it; only the operator may stop it).

Every session is its own browser context (its own cookies and websocket, so its own Streamlit session).
The answers are compared with what fmnist_core computes here, single-threaded, from the same files.
"""

from __future__ import annotations

import re
import time

import pytest
from app_actions import (
    RUN_SECONDS,
    batches_done,
    current,
    open_page,
    png_file,
    prediction,
    progress_text,
    run_heading,
    run_outcome,
    sign_in_as_operator,
    start_run,
    stop_any_run,
    stop_button,
    upload,
    upload_result,
    wait_on_page,
    wait_until_drawn,
    wait_until_no_run,
)
from app_server import VIEWPORT
from playwright.sync_api import expect
from waiting import job_ended, wait_until

from fmnist_core.data import CLASS_NAMES
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import JobState
from fmnist_core.preprocessing import prepare_upload
from fmnist_core.store import ModelStore

SESSIONS = 10
# Test images the shipped model names correctly with about 96 %: an ankle boot, a sneaker, a bag.
IMAGES = {"boot.png": 4390, "sneaker.png": 5580, "bag.png": 5660}
LONG_RUN = "preset=quick&train_subset_size=0&epochs=10"  # minutes of work: surely still going while we look
ANSWER_SECONDS = 180  # ten sessions' uploads on two cores shared with a training run and eleven browser pages


def saved_models(models_dir) -> set[str]:
    return {saved.name for saved in ModelStore(models_dir).list_models()[0]}


@pytest.fixture(scope="module")
def expected_answers(dataset, shipped_model) -> dict[str, tuple[str, str]]:
    """Per file, the class and the probability text the page must show, computed here in one thread."""
    classifier = shipped_model.classifier
    answers = {}
    for name, index in IMAGES.items():
        prepared = prepare_upload(png_file(name, dataset.test_images[index])["buffer"], name)
        probabilities = classifier.probabilities(prepared.model_input)[0]
        top = int(probabilities.argmax())
        assert top == dataset.test_labels[index]  # known answers: each is named as what it shows
        answers[name] = (CLASS_NAMES[top], f"{probabilities[top]:.1%} probability")
    return answers


def test_ten_sessions_classify_at_once_while_another_trains_and_all_get_the_single_threaded_answer(
        browser, app_server, dataset, expected_answers):
    trainer_context = browser.new_context(viewport=VIEWPORT)
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(SESSIONS)]
    try:
        trainer = trainer_context.new_page()
        trainer.set_default_timeout(60_000)
        wait_until_no_run(trainer, app_server.url)
        open_page(trainer, app_server.url, query=LONG_RUN)
        start_run(trainer, "e2e-concurrency")
        expect(progress_text(trainer)).to_contain_text("Epoch 1/10 · batch", timeout=RUN_SECONDS * 1000)

        pages = [context.new_page() for context in contexts]
        for page in pages:  # all ten load at once; then each is waited for
            page.set_default_timeout(60_000)
            page.goto(f"{app_server.url}/classify", wait_until="commit")
        for page in pages:
            wait_until_drawn(page, "Classify")
        files = [png_file(name, dataset.test_images[index]) for name, index in IMAGES.items()]
        started = time.monotonic()
        for page in pages:  # one after the other without waiting: the ten uploads reach the server together
            upload(page, files)

        for page in pages:
            for name, (class_name, probability) in expected_answers.items():
                result = upload_result(page, name)
                expect(prediction(result)).to_have_text(class_name, timeout=ANSWER_SECONDS * 1000)
                expect(result.locator('[data-testid="stMetricDelta"]')).to_have_text(probability)
            expect(prediction(page)).to_have_count(len(IMAGES))
            expect(page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')).to_have_count(0)
        print(f"{SESSIONS} sessions x {len(IMAGES)} images answered in {time.monotonic() - started:.1f} s")
        expect(stop_button(trainer)).to_be_visible()  # the run went on meanwhile
        expect(current(trainer).locator('[data-testid="stException"]')).to_have_count(0)
    finally:
        for context in contexts:
            context.close()
        stop_any_run(trainer, app_server)
        trainer_context.close()


def test_two_sessions_pressing_start_at_the_same_moment_each_get_one_run_in_queue_order(
        new_page, app_server, models_dir):
    first, second = new_page(), new_page()
    wait_until_no_run(first, app_server.url)
    before = saved_models(models_dir)
    small_run = "preset=seed-004&train_subset_size=1000&epochs=1"  # seconds of work, yet longer than a click
    for page, name in ((first, "race-a"), (second, "race-b")):
        open_page(page, app_server.url, query=small_run)
        page.get_by_role("textbox", name="Run name").fill(name)
    buttons = [page.get_by_role("button", name="Start training") for page in (first, second)]
    for button in buttons:
        expect(button).to_be_enabled()

    for button in buttons:  # both clicks leave within milliseconds; the server gets two reruns at once
        button.click(no_wait_after=True)

    queue = JobQueue(models_dir)
    wait_until(lambda: len(queue.recent(2)) == 2 and {job.run_name for job in queue.recent(2)} == {"race-a", "race-b"},
               60, "the two runs were not both queued")
    jobs = queue.recent(2)
    for job in jobs:
        assert job_ended(queue, job.job_id, RUN_SECONDS).state == JobState.FINISHED
    first_job, second_job = (queue.snapshot(job.job_id) for job in jobs)
    assert first_job.ended_at <= second_job.started_at  # one after the other, in the order they were queued
    assert saved_models(models_dir) - before == {"race-a", "race-b"}  # each run trained and saved once
    assert first_job.owner != second_job.owner  # two visitors


def test_a_run_whose_browser_went_away_keeps_going_and_only_its_owner_or_the_operator_can_stop_it(
        browser, new_page, app_server, models_dir):
    starter_context = browser.new_context(viewport=VIEWPORT)
    starter = starter_context.new_page()
    starter.set_default_timeout(60_000)
    wait_until_no_run(starter, app_server.url)
    open_page(starter, app_server.url, query=LONG_RUN)
    start_run(starter, "abandoned")
    expect(progress_text(starter)).to_contain_text("Epoch 1/10 · batch", timeout=RUN_SECONDS * 1000)
    batches_when_left = batches_done(starter)

    starter_context.close()  # the tab, its websocket and its Streamlit session go away

    visitor = new_page()
    open_page(visitor, app_server.url)
    expect(run_heading(visitor, "abandoned")).to_be_visible()
    expect(current(visitor).get_by_text("started by another visitor")).to_be_visible()
    # still training with nobody from its session watching
    wait_on_page(visitor, lambda: batches_done(visitor) > batches_when_left, 60,
                 "the run made no progress after its browser went away", interval_seconds=0.5)
    expect(stop_button(visitor)).to_have_count(0)  # not theirs to stop
    only_owner = "Only the visitor who started it, or the operator, can stop it."
    expect(current(visitor).get_by_text(only_owner)).to_be_visible()

    sign_in_as_operator(visitor)
    stop_button(visitor).click()

    expect(run_outcome(visitor)).to_have_text(re.compile(r"^Stopped early by request after .*saved as abandoned\.$"),
                                              timeout=RUN_SECONDS * 1000)
    assert "abandoned" in saved_models(models_dir)
