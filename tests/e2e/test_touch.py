"""On a phone, by touch (Chromium's touch events through the DevTools protocol): a swipe over the Train form's sliders
scrolls the page, the whole drawing square draws, with Undo under it, and one tap on a confusion-matrix cell browses
its mistakes (#28)."""

from __future__ import annotations

from app_actions import (
    PAGE_SECONDS,
    answered,
    draw_by_touch,
    inked_pixels,
    keyed,
    open_page,
    prediction,
    touch_drag,
    wait_on_page,
)
from drawings import TROUSER_OUTLINE
from playwright.sync_api import expect

from fmnist_core.data import CLASS_NAMES

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
CORNER_STROKE = [[(0.97, 0.03), (0.85, 0.12)]]  # from the square's top right corner, where a hidden toolbar once lay


def _scroll_at_rest(page) -> None:
    """Wait until the page has not scrolled for 0.3 s (a fling after a swipe runs on for a while on a busy CPU)."""
    def at_rest() -> bool:
        before = _scroll_top(page)
        page.wait_for_timeout(300)
        return _scroll_top(page) == before

    wait_on_page(page, at_rest, 15, "the page did not stop scrolling")


def _scroll_top(page) -> float:
    return page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTop")


def test_a_swipe_that_starts_on_a_slider_scrolls_the_form_and_leaves_the_slider_alone(new_page, app_server):
    phone = new_page(**PHONE)
    open_page(phone, app_server.url)
    epochs = phone.get_by_role("slider", name="Epochs")
    value = epochs.input_value()
    track = keyed(phone, "hp_epochs").locator('[role="group"] > [data-rac]')
    thumb = track.locator("> [data-rac]")

    for where in ("thumb", "track"):
        track.evaluate("element => element.scrollIntoView({block: 'center'})")
        box = (thumb if where == "thumb" else track).bounding_box()
        x = box["x"] + (0.5 if where == "thumb" else 0.85) * box["width"]  # on the track: far from the thumb
        y = box["y"] + box["height"] / 2
        before = _scroll_top(phone)
        touch_drag(phone, [(x, y), (x + 6, y - 250)])  # a finger swiping up, a little aslant as fingers do

        wait_on_page(phone, lambda before=before: _scroll_top(phone) > before + 100, 10,
                     f"a swipe up that started on the slider's {where} did not scroll the page")
        expect(epochs).to_have_value(value)

    _scroll_at_rest(phone)  # a swipe flings the page on: the thumb is found where it stays
    track.evaluate("element => element.scrollIntoView({block: 'center'})")
    _scroll_at_rest(phone)
    box = thumb.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    touch_drag(phone, [(x, y), (x + 80, y + 4)])  # a sideways drag of the thumb still moves it
    expect(epochs).not_to_have_value(value)


def test_the_whole_square_draws_by_touch_and_undo_is_under_it_without_hovering(new_page, app_server):
    phone = new_page(**PHONE)
    open_page(phone, app_server.url, "classify")
    expect(phone.get_by_text("press Undo (↶) under the square")).to_be_visible()  # no "point at" on a touch screen
    with answered(phone):
        draw_by_touch(phone, TROUSER_OUTLINE)
    expect(prediction(phone)).to_have_text("Trouser")
    outline = inked_pixels(phone)

    draw_by_touch(phone, CORNER_STROKE)

    wait_on_page(phone, lambda: inked_pixels(phone) > outline, 5,
                 "a stroke from the top right corner drew nothing (or the drawing was erased)")
    undo = phone.get_by_role("button", name="Undo", exact=True)
    expect(undo).to_be_visible()
    square = phone.locator("canvas.upper-canvas").bounding_box()
    assert undo.bounding_box()["y"] >= square["y"] + square["height"], "Undo lies over the square"
    with answered(phone):
        undo.tap()
    assert inked_pixels(phone) == outline
    expect(prediction(phone)).to_have_text("Trouser")


def test_one_tap_on_a_confusion_matrix_cell_browses_its_mistakes(new_page, app_server):
    phone = new_page(**PHONE)
    open_page(phone, app_server.url, "evaluate")
    plot_area = phone.locator(".st-key-confusion .nsewdrag").first
    expect(plot_area).to_be_visible(timeout=PAGE_SECONDS * 1000)  # the first visit evaluates the model
    plot_area.evaluate("element => element.scrollIntoView({block: 'center'})")
    box, cells = plot_area.bounding_box(), len(CLASS_NAMES)
    row, column = CLASS_NAMES.index("Shirt"), CLASS_NAMES.index("T-shirt/top")

    touch_drag(phone, [(box["x"] + (column + 0.5) * box["width"] / cells,
                        box["y"] + (row + 0.5) * box["height"] / cells)])  # a tap: down and up in one place

    expect(phone.get_by_role("combobox", name="True class")).to_have_value("Shirt")
    expect(phone.get_by_role("combobox", name="Predicted class")).to_have_value("T-shirt/top")
