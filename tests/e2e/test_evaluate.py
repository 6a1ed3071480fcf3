"""Evaluate page in a real browser: a click on a confusion-matrix cell browses exactly those mistakes."""

from __future__ import annotations

import re

from app_actions import PAGE_SECONDS, keyed, open_page, wait_until_settled
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

    chart = page.locator(".st-key-confusion .js-plotly-plot")
    chart.evaluate("plot => { plot.__draws = 0; plot.on('plotly_afterplot', () => plot.__draws++); }")
    hover = page.locator(".st-key-confusion .hoverlayer")
    # A user clicks a chart that holds still. If Plotly redraws the chart between the hover and the click, the
    # click may find no hovered cell and select nothing; so hover again until no redraw came in between.
    for _attempt in range(5):
        draws = chart.evaluate("plot => plot.__draws")
        page.mouse.move(x - 5, y)
        page.mouse.move(x, y)
        expect(hover).to_contain_text("True: Shirt")
        expect(hover).to_contain_text("Predicted: T-shirt/top")
        images_in_cell = re.search(r"(\d+) images", hover.text_content()).group(1)
        page.wait_for_timeout(300)
        if chart.evaluate("plot => plot.__draws") == draws:
            break
    page.mouse.click(x, y)
    try:
        expect(page.get_by_role("combobox", name="True class")).to_have_value("Shirt")
    except AssertionError as error:  # say whether the click reached Plotly, to tell the browser's part from ours
        redraws, selected = chart.evaluate("plot => [plot.__draws, plot.data.map(trace => trace.selectedpoints)]")
        raise AssertionError(f"{error}\nPlotly redraws since the chart was first seen: {redraws}; "
                             f"selected points per trace: {selected}") from None
    expect(page.get_by_role("combobox", name="Predicted class")).to_have_value("T-shirt/top")
    expect(page.get_by_text(re.compile(r"misclassified test images$"))).to_have_text(
        f"{images_in_cell} misclassified test images")
    captions = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="→")
    expect(captions).to_have_count(min(int(images_in_cell), 24))  # the gallery's first page
    expect(captions.filter(has_not_text=re.compile(r"^Shirt → T-shirt/top \(\d+%\)$"))).to_have_count(0)
    expect(page.get_by_text("True class: Shirt")).to_be_visible()  # the details of the most confident mistake
    # where the click was, the page says how many and leads to them
    expect(page.get_by_text(f"{images_in_cell} test images of Shirt taken for T-shirt/top")).to_be_visible()
    page.get_by_role("link", name="see them below").click()
    expect(page.get_by_role("heading", name="Mistakes, most confident first")).to_be_in_viewport()
    wait_until_settled(page)
    page.screenshot(path=artifacts / "evaluate.png")


def test_details_of_a_mistake_far_down_the_gallery_open_in_view_and_the_gallery_turns_pages_from_its_end(
        new_page, app_server):
    page = new_page(viewport={"width": 1366, "height": 768})
    open_page(page, app_server.url, "evaluate")
    details = page.get_by_role("button", name="Details")
    expect(details.first).to_be_visible(timeout=PAGE_SECONDS * 1000)
    caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="→").nth(20)  # the 21st tile's
    true_class, predicted = re.match(r"^(.+) → (.+) \(\d+%\)$", caption.inner_text()).groups()

    details.nth(20).click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_in_viewport()  # not only in the panel above the gallery, out of sight
    expect(dialog).to_contain_text(f"True class: {true_class}")
    expect(dialog).to_contain_text(f"Predicted: {predicted}")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    page.get_by_role("button", name="Next page").click()  # under the gallery, where its last tiles were looked at

    expect(page.get_by_label(re.compile(r"^Page \(of \d+\)$"))).to_have_value("2")
    expect(keyed(page, "mistake_page")).to_be_in_viewport()  # the new page from its first tile
