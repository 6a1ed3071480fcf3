"""Drawings as people make them, in a real browser with the shipped model: outlines drawn with the mouse, a
drawing made by touch on a phone, a dot, a smiley and a house that are no clothing, and undo of the last stroke."""

from __future__ import annotations

import pytest
from app_actions import (
    answered,
    draw,
    draw_by_touch,
    inked_pixels,
    model_input_image,
    open_page,
    prediction,
    set_brush_width,
    undo_last_stroke,
    wait_until_settled,
)
from drawings import (
    BAG_OUTLINE,
    COLOURING_BRUSH_WIDTH,
    DOT,
    DRESS_OUTLINE,
    HOUSE,
    OUTLINE_BRUSH_WIDTH,
    SMILEY,
    T_SHIRT_OUTLINE,
    TROUSER_OUTLINE,
    TROUSERS_LEGS_APART,
)
from playwright.sync_api import expect

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
FILLED_NOTE = "The inside of your outline was filled in"
NOT_CLOTHING = "This does not look like an item of clothing to the model"


@pytest.mark.parametrize(
    ("strokes", "expected"),
    [(T_SHIRT_OUTLINE, "T-shirt/top"), (TROUSER_OUTLINE, "Trouser"), (DRESS_OUTLINE, "Dress"), (BAG_OUTLINE, "Bag")],
    ids=["t-shirt", "trouser", "dress", "bag"],
)
def test_an_outline_drawn_with_the_mouse_is_filled_and_named_right(page, app_server, artifacts, strokes, expected):
    open_page(page, app_server.url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        draw(page, strokes)

    expect(prediction(page)).to_have_text(expected)
    expect(page.get_by_text(FILLED_NOTE)).to_be_visible()
    expect(page.get_by_text(NOT_CLOTHING)).to_have_count(0)
    expect(page.get_by_text("An outline works")).to_be_visible()  # the hint stays after the first stroke
    wait_until_settled(page)
    page.screenshot(path=artifacts / f"outline-{expected.split('/')[0].lower()}.png")


def test_a_drawing_made_by_touch_on_a_phone_is_named_right(new_page, app_server, artifacts):
    phone = new_page(**PHONE)
    open_page(phone, app_server.url, "classify")
    scroll_before = phone.evaluate("window.scrollY")
    with answered(phone):
        draw_by_touch(phone, TROUSER_OUTLINE)

    assert inked_pixels(phone) > 0
    expect(prediction(phone)).to_have_text("Trouser")
    assert phone.evaluate("window.scrollY") == pytest.approx(scroll_before, abs=400)  # the finger drew, not scrolled
    wait_until_settled(phone)
    phone.screenshot(path=artifacts / "outline-by-touch-phone.png", full_page=True)


def test_a_dot_is_answered_as_not_clothing(page, app_server, artifacts):
    open_page(page, app_server.url, "classify")
    with answered(page):
        draw(page, DOT)

    expect(prediction(page)).to_have_text("Unsure")
    expect(page.get_by_text(NOT_CLOTHING)).to_be_visible()
    expect(model_input_image(page)).to_be_visible()  # what the model saw is still shown
    wait_until_settled(page)
    page.screenshot(path=artifacts / "dot-not-clothing.png")


@pytest.mark.parametrize("strokes", [SMILEY, HOUSE], ids=["smiley", "house"])
def test_a_closed_doodle_is_answered_as_not_clothing_without_saying_its_outline_was_filled(page, app_server, artifacts,
                                                                                           strokes, request):
    open_page(page, app_server.url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        draw(page, strokes)

    expect(prediction(page)).to_have_text("Unsure")
    expect(page.get_by_text(NOT_CLOTHING)).to_be_visible()
    expect(page.get_by_text(FILLED_NOTE)).to_have_count(0)  # filled in, but that says nothing about a non-item
    wait_until_settled(page)
    page.screenshot(path=artifacts / f"{request.node.callspec.id}-not-clothing.png")


def test_undo_takes_back_the_last_stroke_and_the_answer_follows(page, app_server):
    open_page(page, app_server.url, "classify")
    set_brush_width(page, OUTLINE_BRUSH_WIDTH)
    with answered(page):
        draw(page, TROUSER_OUTLINE)
    expect(prediction(page)).to_have_text("Trouser")
    outline_ink = inked_pixels(page)
    with answered(page):
        draw(page, DOT)  # a slip of the mouse
    assert inked_pixels(page) > outline_ink

    with answered(page):
        undo_last_stroke(page)

    assert inked_pixels(page) == outline_ink
    expect(prediction(page)).to_have_text("Trouser")


def test_trousers_coloured_in_with_the_legs_apart_are_named_trouser(page, app_server, artifacts):
    open_page(page, app_server.url, "classify")
    set_brush_width(page, COLOURING_BRUSH_WIDTH)
    with answered(page):
        draw(page, TROUSERS_LEGS_APART)

    expect(prediction(page)).to_have_text("Trouser")
    expect(page.get_by_text(NOT_CLOTHING)).to_have_count(0)
    wait_until_settled(page)
    page.screenshot(path=artifacts / "trousers-legs-apart.png")
