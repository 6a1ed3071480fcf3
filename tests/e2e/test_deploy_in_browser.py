"""Downloads in a real browser: the sidebar's model download (made on click) and a checked export's zip."""

from __future__ import annotations

import io
import zipfile

from app_actions import answered, keyed, open_page, wait_until_settled
from playwright.sync_api import expect

EXPORT_SECONDS = 120  # TensorFlow, the conversion, its check on 1,000 images, on a CPU shared with other work


def downloaded_zip(page, button) -> zipfile.ZipFile:
    with page.expect_download(timeout=60_000) as download:
        button.click()
    return zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))


def choose_option(page, selectbox, name: str) -> None:
    """Pick `name` in a selectbox and wait until the page has been redrawn with it. On a busy CPU the first click
    can land while the page is still redrawing and open nothing, so the list is opened again until it shows."""
    option = page.get_by_role("option", name=name)
    for _ in range(3):
        selectbox.get_by_role("combobox").click()
        try:
            expect(option).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    with answered(page):  # the choice reruns the page
        option.click()
    expect(selectbox.get_by_role("combobox")).to_have_value(name)


def test_the_sidebar_downloads_the_active_model_as_stored(page, app_server, models_dir):
    open_page(page, app_server.url, "runs")
    archive = downloaded_zip(page, page.locator('[data-testid="stSidebar"]').get_by_role(
        "button", name="Download model (.keras + card)"))
    assert sorted(archive.namelist()) == ["default/card.json", "default/model.keras"]
    assert archive.read("default/model.keras") == (models_dir / "default" / "model.keras").read_bytes()


def test_an_int8_export_is_checked_shown_and_downloaded(page, app_server, artifacts):
    open_page(page, app_server.url, "runs")
    choose_option(page, keyed(page, "export_format"), "LiteRT (TFLite) int8")
    keyed(page, "export_button").get_by_role("button").click()
    download = keyed(page, "download_export_litert-int8").get_by_role("button")  # offered once it passed its check
    expect(download).to_contain_text("LiteRT (TFLite) int8", timeout=EXPORT_SECONDS * 1000)
    wait_until_settled(page)
    download.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "deploy-export.png")
    archive = downloaded_zip(page, download)
    assert sorted(archive.namelist()) == ["default/card.json", "default/model-int8.tflite"]
    assert 0.3e6 < archive.getinfo("default/model-int8.tflite").file_size < 1.2e6
