"""Looking inside the model in a real browser: Grad-CAM for an upload on Classify, and the Dataset page."""

from __future__ import annotations

from app_actions import open_page, png_file, prediction, scroll_to, upload, upload_result, wait_until_settled
from playwright.sync_api import expect

TROUSER_TEST_IMAGE = 2  # a trouser the shipped model names with near certainty


def test_why_shows_the_grad_cam_of_an_uploaded_picture(page, app_server, artifacts, dataset):
    open_page(page, app_server.url, "classify")
    upload(page, [png_file("trouser.png", dataset.test_images[TROUSER_TEST_IMAGE])])
    result = upload_result(page, "trouser.png")
    expect(prediction(result)).to_have_text("Trouser")

    result.get_by_text("Why? Show what the model looks at").click()

    heat = result.locator('[data-testid="stImage"]').filter(has_text="HiResCAM for Trouser").locator("img")
    expect(heat).to_be_visible()
    expect(heat).to_have_js_property("naturalWidth", 28 * 8)  # the 28x28 map, enlarged 8x, once loaded
    # the shipped model answers with the mirror image too; the map is of the image as it is, and the page says so
    expect(result.get_by_text("this model's answer also looks at its mirror image")).to_be_visible()
    wait_until_settled(page)
    scroll_to(result.get_by_text("Why? Show what the model looks at"))
    page.screenshot(path=artifacts / "classify-grad-cam.png")


def test_the_dataset_page_shuffles_its_examples(page, app_server, artifacts):
    open_page(page, app_server.url, "dataset")
    expect(page.get_by_text("drawn with seed 0")).to_be_visible()
    page.get_by_role("button", name="Shuffle").click()
    expect(page.get_by_text("drawn with seed 1")).to_be_visible()
    wait_until_settled(page)
    page.screenshot(path=artifacts / "dataset.png")
