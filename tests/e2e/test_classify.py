"""Classify page in a real browser: drawing with the mouse, uploading pictures, and a file that is no picture."""

from __future__ import annotations

import numpy as np
import pytest
from app_actions import (
    answered,
    draw,
    inked_pixels,
    model_input_image,
    open_page,
    png_file,
    prediction,
    set_brush_width,
    upload,
    upload_result,
    wait_until_settled,
)
from drawings import BAG, BRUSH_WIDTH, TROUSER
from PIL import Image, ImageOps
from playwright.sync_api import expect

from fmnist_core.data import CLASS_NAMES

# Test images the shipped model names correctly with about 96 % probability, also after inverting them onto a
# white page (checked with fmnist_core.preprocessing.prepare_upload): an ankle boot, a sneaker, a bag, a dress.
ANKLE_BOOT, SNEAKER, BAG_IMAGE, DRESS = 4390, 5580, 5660, 1591


def on_white_page(image: np.ndarray) -> Image.Image:
    """A test image as a photo of it might be: dark item on a larger white page, off centre, scaled up 6x."""
    item = ImageOps.invert(Image.fromarray(image)).resize((168, 168), Image.Resampling.BICUBIC)
    page = Image.new("L", (320, 240), 255)
    page.paste(item, (100, 40))
    return page


def test_classify_page_loads_with_the_shipped_model(page, app_server):
    open_page(page, app_server.url, "classify")
    expect(page.get_by_text("Using model default")).to_be_visible()
    expect(page.locator("canvas.upper-canvas")).to_be_visible()


@pytest.mark.parametrize(("strokes", "expected"), [(TROUSER, "Trouser"), (BAG, "Bag")], ids=["trouser", "bag"])
def test_a_drawing_made_with_the_mouse_is_named_as_the_item_it_shows(page, app_server, artifacts, strokes, expected):
    open_page(page, app_server.url, "classify")
    set_brush_width(page, BRUSH_WIDTH)
    with answered(page):
        draw(page, strokes)

    expect(prediction(page)).to_have_text(expected)
    expect(page.get_by_text("This does not look like an item of clothing")).to_have_count(0)
    shown = model_input_image(page)
    expect(shown).to_be_visible()
    expect(shown).to_have_js_property("naturalWidth", 28 * 5)  # the 28x28 input, enlarged 5x, once loaded
    wait_until_settled(page)
    page.screenshot(path=artifacts / f"classify-drawing-{expected.lower()}.png")


def test_clearing_the_canvas_clears_the_drawing_and_its_result(page, app_server):
    open_page(page, app_server.url, "classify")
    with answered(page):
        draw(page, TROUSER)
    expect(prediction(page)).to_be_visible()
    assert inked_pixels(page) > 0

    with answered(page):
        page.get_by_role("button", name="Clear", exact=True).click()

    expect(prediction(page)).to_have_count(0)
    expect(model_input_image(page)).to_have_count(0)
    expect(page.get_by_text("Draw one item of clothing on the white square")).to_be_visible()
    expect(page.locator("canvas.dc-canvas.lower-canvas")).to_have_count(1)  # a new canvas; the old one is gone
    assert inked_pixels(page) == 0


def test_a_test_image_and_its_inverted_photo_on_a_white_page_are_both_named_their_class(
        page, app_server, artifacts, dataset):
    boot = dataset.test_images[ANKLE_BOOT]
    assert CLASS_NAMES[dataset.test_labels[ANKLE_BOOT]] == "Ankle boot"
    open_page(page, app_server.url, "classify")

    upload(page, [png_file("boot.png", boot), png_file("boot-on-white.png", on_white_page(boot))])

    for name in ["boot.png", "boot-on-white.png"]:
        result = upload_result(page, name)
        expect(prediction(result)).to_have_text("Ankle boot")
        expect(model_input_image(result)).to_be_visible()
    expect(upload_result(page, "boot-on-white.png")).to_contain_text("Light background: inverted to light-on-dark")
    expect(upload_result(page, "boot.png")).not_to_contain_text("inverted")
    wait_until_settled(page)
    page.screenshot(path=artifacts / "classify-upload.png")


def test_several_uploaded_pictures_are_each_classified(page, app_server, dataset):
    chosen = {"sneaker.png": SNEAKER, "bag.png": BAG_IMAGE, "dress.png": DRESS}
    open_page(page, app_server.url, "classify")

    upload(page, [png_file(name, dataset.test_images[index]) for name, index in chosen.items()])

    for name, index in chosen.items():
        expect(prediction(upload_result(page, name))).to_have_text(CLASS_NAMES[dataset.test_labels[index]])
    expect(prediction(page)).to_have_count(len(chosen))


def test_a_text_file_named_png_gets_an_error_naming_it_and_the_page_keeps_working(page, app_server, dataset):
    open_page(page, app_server.url, "classify")

    upload(page, [{"name": "notes.png", "mimeType": "image/png", "buffer": b"shopping list: socks, a scarf\n"}])

    error = upload_result(page, "notes.png").locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text("notes.png")
    expect(error).to_contain_text("not an image")
    expect(prediction(page)).to_have_count(0)

    upload(page, [png_file("sneaker.png", dataset.test_images[SNEAKER])])

    expect(prediction(upload_result(page, "sneaker.png"))).to_have_text("Sneaker")


def test_a_photo_of_a_cup_is_answered_unsure_with_the_reason_and_how_to_take_one_it_can_read(page, app_server):
    from fmnist_core.photos import held_out_uploads

    cup = dict(held_out_uploads())["coffee.png"]  # scikit-image's sample photo: a cup of coffee on a table
    open_page(page, app_server.url, "classify")

    upload(page, [{"name": "cup.png", "mimeType": "image/png", "buffer": cup}])

    result = upload_result(page, "cup.png")
    expect(prediction(result)).to_have_text("Unsure")
    expect(result).to_contain_text("This does not look like an item of clothing to the model")
    expect(result).to_contain_text("Photograph one item on its own")
