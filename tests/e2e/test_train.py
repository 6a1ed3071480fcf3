"""Train page in a real browser: a tiny run set on the form trains to the end and is saved; share links fill the form.

The server trains one run at a time, so a test that starts one first waits until none is in progress.
"""

from __future__ import annotations

import re

from app_actions import (
    RUN_SECONDS,
    keyed,
    open_more_settings,
    open_page,
    progress_text,
    run_heading,
    run_outcome,
    scroll_to,
    set_form_sliders,
    sidebar_model_names,
    start_run,
    wait_until_drawn,
    wait_until_no_run,
    wait_until_settled,
)
from playwright.sync_api import expect


def test_the_landing_page_says_what_the_app_is_and_leads_to_drawing_on_classify(new_page, app_server):
    page = new_page(viewport={"width": 1366, "height": 768})
    open_page(page, app_server.url)
    line = page.get_by_text(re.compile(r"^Train a small CNN to recognise clothing and watch it learn\. A trained model"
                                       r" \(\d+\.\d% on the test set\) is ready"))
    expect(line).to_be_in_viewport()

    page.get_by_role("link", name="draw an item for it on Classify").click()

    wait_until_drawn(page, "Classify")
    expect(page.locator("canvas.upper-canvas")).to_be_visible()


def test_sliders_moved_in_quick_succession_all_keep_their_values(page, app_server):
    """Key presses on two sliders, each sent to the server as soon as it is made. The page used to write "Custom"
    into the preset box at the first edit; a later move sent before that reached the browser carried the old preset
    back, and the whole form was filled with the preset again (3 times in 15 tries here, then Start trained the
    preset). Five tries, each on a fresh page."""
    link = page.locator('[data-testid="stCode"]').filter(has_text="epochs=")
    for _ in range(5):
        open_page(page, app_server.url)
        for label, presses in (("Epochs", 6), ("Dense units", 2)):
            page.get_by_role("slider", name=label).focus()
            for _ in range(presses):
                page.keyboard.press("ArrowLeft")
        expect(page.get_by_role("slider", name="Epochs")).to_have_value("2")  # 8, less six steps of 1
        expect(page.get_by_role("slider", name="Dense units")).to_have_value("96")  # 128, less two steps of 16
        expect(link).to_contain_text(re.compile(r"[?&]epochs=2(&|$)"))
        expect(link).to_contain_text(re.compile(r"[?&]dense_units=96(&|$)"))
        expect(page.get_by_text("Edited from the quick preset: this run will be labelled custom.")).to_be_visible()


def test_a_share_link_fills_the_form(page, app_server):
    open_page(page, app_server.url, query="preset=quick&epochs=7&train_subset_size=4000&dropout_rate=0.25")

    expect(page.get_by_role("slider", name="Epochs")).to_have_value("7")
    open_more_settings(page)
    expect(page.get_by_role("slider", name="Training images (0: all)")).to_have_value("4000")
    expect(page.get_by_role("slider", name="Dropout rate")).to_have_value("0.25")
    # kept from the preset (a select slider: its value is the option's position, its text the option)
    expect(page.get_by_role("slider", name="Filters in block 2")).to_have_attribute("aria-valuetext", "64")
    expect(page.get_by_role("combobox", name="Preset")).to_have_value("")  # no longer exactly `quick`


def test_a_small_run_set_on_the_form_trains_to_the_end_and_is_saved(page, app_server, artifacts):
    wait_until_no_run(page, app_server.url)
    open_more_settings(page)
    set_form_sliders(page, {"Training images (0: all)": ("train_subset_size", 3000), "Epochs": ("epochs", 2)})

    start_run(page, "e2e-small")

    expect(run_outcome(page)).to_be_visible(timeout=RUN_SECONDS * 1000)
    expect(run_outcome(page)).to_have_text(
        re.compile(r"^Finished after 2 epochs in [^.]+\. Test accuracy \d+\.\d\d%, saved as e2e-small\.$"))
    expect(progress_text(page)).to_have_count(0)  # the outcome says it once; no progress line repeats it
    expect(keyed(page, "epoch_loss_chart")).to_be_visible()
    expect(keyed(page, "epoch_accuracy_chart")).to_be_visible()
    wait_until_settled(page)
    scroll_to(run_heading(page, "e2e-small"))
    page.screenshot(path=artifacts / "train-finished.png")

    assert any(name.startswith("e2e-small · ") for name in sidebar_model_names(page))
    open_page(page, app_server.url, "runs")
    expect(keyed(page, "runs_cards")).to_contain_text("e2e-small")
    expect(page.locator(".st-key-runs_accuracy .legendtext", has_text="e2e-small")).to_have_count(1)
    wait_until_settled(page)
    page.screenshot(path=artifacts / "runs.png")
