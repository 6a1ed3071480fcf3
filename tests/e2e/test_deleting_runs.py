"""Who may delete what, in a real browser: another visitor is not offered someone else's run, and a run another
visitor has active is not deleted from under them, not even by its owner, until they have moved on."""

from __future__ import annotations

import re

from app_actions import RUN_SECONDS, current, open_page, run_outcome, start_run, wait_until_no_run
from playwright.sync_api import Page, expect

from fmnist_core.store import ModelStore


def choose_active_model(page: Page, label_start: str) -> None:
    page.get_by_role("combobox", name="Active model").click()
    page.get_by_role("option").filter(has_text=label_start).first.click()
    expect(page.get_by_role("combobox", name="Active model")).to_have_value(re.compile(f"^{re.escape(label_start)}"))


def try_to_delete(page: Page, name: str) -> None:
    expect(page.get_by_role("combobox", name="Run to delete")).to_have_value(name)  # the visitor's only run
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Yes, delete it").click()


def test_a_run_is_deletable_by_its_owner_only_and_never_while_another_visitor_uses_it(new_page, app_server,
                                                                                     models_dir):
    owner, other = new_page(), new_page()  # two browser contexts: two visitors
    wait_until_no_run(owner, app_server.url)
    open_page(owner, app_server.url, query="preset=seed-004&train_subset_size=1000&epochs=1")
    start_run(owner, "owned-run")
    expect(run_outcome(owner)).to_be_visible(timeout=RUN_SECONDS * 1000)

    open_page(other, app_server.url, "runs")
    expect(current(other).get_by_text("not listed: only whoever trained a run, or the operator, may delete it")
           ).to_be_visible()
    expect(current(other).get_by_role("combobox", name="Run to delete")).to_have_count(0)
    choose_active_model(other, "owned-run")  # the other visitor's session now uses it on Evaluate and Classify

    open_page(owner, app_server.url, "runs")
    try_to_delete(owner, "owned-run")
    expect(current(owner).get_by_text("another open session has it as the active model right now")).to_be_visible()
    assert "owned-run" in {saved.name for saved in ModelStore(models_dir).list_models()[0]}

    choose_active_model(other, "default")
    try_to_delete(owner, "owned-run")
    expect(current(owner).get_by_text("Deleted the model 'owned-run'.")).to_be_visible()
    assert "owned-run" not in {saved.name for saved in ModelStore(models_dir).list_models()[0]}
