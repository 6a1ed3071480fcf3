"""Evaluate page in a real browser: a click on a confusion-matrix cell browses exactly those mistakes."""

from __future__ import annotations

import re

from app_actions import PAGE_SECONDS, open_page, wait_until_settled
from playwright.sync_api import expect

from fmnist_core.data import CLASS_NAMES


def test_clicking_a_confusion_matrix_cell_shows_the_mistakes_of_that_pair(page, app_server, artifacts):
    open_page(page, app_server.url, "evaluate")
    # the first visit evaluates the shipped model on the 10,000 test images
    plot_area = page.locator(".st-key-confusion .nsewdrag").first
    expect(plot_area).to_be_visible(timeout=PAGE_SECONDS * 1000)
    box = plot_area.bounding_box()
    cells = len(CLASS_NAMES)  # rows: true class, first on top; columns: predicted class, first on the left
    row, column = CLASS_NAMES.index("Shirt"), CLASS_NAMES.index("T-shirt/top")
    x = box["x"] + (column + 0.5) * box["width"] / cells
    y = box["y"] + (row + 0.5) * box["height"] / cells

    page.mouse.move(x, y)
    hover = page.locator(".st-key-confusion .hoverlayer")
    expect(hover).to_contain_text("true Shirt, predicted T-shirt/top")
    images_in_cell = re.search(r": (\d+) images", hover.text_content()).group(1)
    page.mouse.click(x, y)

    expect(page.get_by_role("combobox", name="True class")).to_have_value("Shirt")
    expect(page.get_by_role("combobox", name="Predicted class")).to_have_value("T-shirt/top")
    expect(page.get_by_text(re.compile(r"misclassified test images$"))).to_have_text(
        f"{images_in_cell} misclassified test images")
    captions = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="→")
    expect(captions).to_have_count(min(int(images_in_cell), 24))  # the gallery's first page
    expect(captions.filter(has_not_text=re.compile(r"^Shirt → T-shirt/top \(\d+%\)$"))).to_have_count(0)
    expect(page.get_by_text("True class: Shirt")).to_be_visible()  # the details of the most confident mistake
    wait_until_settled(page)
    page.screenshot(path=artifacts / "evaluate.png")
