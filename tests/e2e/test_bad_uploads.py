"""Bad and good files uploaded together in a real browser: each bad one is named with what went wrong,
each good one is classified, whether the refusal comes from Streamlit's uploader (size and type, from
.streamlit/config.toml and the page's accepted types) or from our own decoding."""

from __future__ import annotations

import numpy as np
from app_actions import open_page, png_file, prediction, upload, upload_result
from images import encode
from playwright.sync_api import expect

from fmnist_core.data import CLASS_NAMES
from fmnist_core.preprocessing import MAX_UPLOAD_BYTES

ANKLE_BOOT, BAG = 4390, 5660  # test images the shipped model names correctly with about 96 %


def tiff_file(name: str, image: np.ndarray) -> dict:
    """An in-memory TIFF upload for `set_input_files`."""
    return {"name": name, "mimeType": "image/tiff", "buffer": encode(image, "TIFF")}


def test_a_mix_of_bad_and_good_files_in_one_upload(page, app_server, dataset):
    too_big = png_file("huge.png", np.zeros((8, 8), np.uint8))
    too_big["buffer"] += bytes(MAX_UPLOAD_BYTES)  # 10 MB and a bit: over server.maxUploadSize
    files = [
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"shopping list: socks, a scarf\n"},
        png_file("boot.png", dataset.test_images[ANKLE_BOOT]),
        {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"},
        too_big,
        {"name": "empty.png", "mimeType": "image/png", "buffer": b""},
        tiff_file("bag.tiff", dataset.test_images[BAG]),
    ]
    open_page(page, app_server.url, "classify")

    upload(page, files)

    for name in ("boot.png", "bag.tiff"):
        index = ANKLE_BOOT if name == "boot.png" else BAG
        expect(prediction(upload_result(page, name))).to_have_text(CLASS_NAMES[dataset.test_labels[index]])
    for name, words in (("notes.png", "not an image"), ("empty.png", "the file is empty")):
        error = upload_result(page, name).locator('[data-testid="stAlertContentError"]')
        expect(error).to_contain_text(f"{name}: {words}")
    uploader = page.locator('[data-testid="stFileUploader"]')
    for name, words in (("huge.png", "File must be 10.0MB or smaller."),
                        ("scan.pdf", "application/pdf files are not allowed.")):
        # the uploader lists the refused file by name with Streamlit's reason, written out under the name (Streamlit
        # alone gives it to screen readers in a 1 x 1 px box, and as a tooltip); it never reaches the app
        chip = uploader.locator('[data-testid="stFileChip"]').filter(has_text=name)
        reason = chip.get_by_role("alert")
        expect(reason).to_have_text(f"Error: {words}")
        box, name_box = reason.bounding_box(), chip.get_by_text(name).bounding_box()
        assert box["width"] > 200 and box["height"] >= 12 and box["y"] >= name_box["y"] + name_box["height"], box
        expect(upload_result(page, name)).to_have_count(0)
    expect(prediction(page)).to_have_count(2)
