"""Preprocessing checked against known answers: Fashion-MNIST test images, drawn shapes, bad files."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from images import encode
from PIL import Image

from fmnist_core.preprocessing import (
    MAX_UPLOAD_BYTES,
    OUTLINE_FILL_LEVEL,
    ImageDecodeError,
    PreparedImage,
    prepare_drawing,
    prepare_upload,
    to_model_input,
)

SHIPPED_MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "default" / "model.keras"
# The first test images; every one of them spans the full 28 pixels on its longest side.
SAMPLE_INDICES = range(10)


@pytest.fixture(scope="module")
def dataset_images(dataset) -> np.ndarray:
    """Fashion-MNIST's 10000 test images, (10000, 28, 28) uint8."""
    return dataset.test_images


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.ravel().astype(float), second.ravel().astype(float))[0, 1])


def assert_model_input(array: np.ndarray) -> None:
    assert array.shape == (28, 28) and array.dtype == np.uint8


def dark_on_white_page(image: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """`image` inverted, scaled up 4x and printed off-centre on `paper` (150 rows x 200 columns)."""
    ink = np.pad(np.kron(255 - image, np.ones((4, 4), np.uint8)), ((20, 18), (70, 18)), constant_values=255)
    return np.rint(paper * (ink / 255.0)).astype(np.uint8)


def png_with_header_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims `width` x `height` pixels, with a valid CRC."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def first_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def noise_image(size: int, image_format: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), image_format)


# --- to_model_input -----------------------------------------------------------------------------------


def test_dataset_images_pass_through_nearly_unchanged(dataset_images):
    # Fashion-MNIST images are already trimmed, resized and centred, so the pipeline should be near-identity.
    # A few per cent of them are off by a pixel or do not reach all 28 pixels, so we check the bulk.
    correlations = []
    for image in dataset_images[:1000]:
        model_input, inverted = to_model_input(image)
        assert not inverted
        correlations.append(correlation(model_input, image))
    assert np.median(correlations) > 0.999
    assert np.mean(np.array(correlations) > 0.95) > 0.95


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_image_gives_all_zeros(value):
    model_input, _inverted = to_model_input(np.full((40, 30), value, np.uint8))
    assert_model_input(model_input)
    assert not model_input.any()


def test_pale_item_is_stretched_to_full_brightness():
    # Every Fashion-MNIST image peaks at 250-255, so a grey item photographed on white should too.
    gray = np.full((60, 60), 255, np.uint8)
    gray[10:50, 20:40] = 160
    model_input, inverted = to_model_input(gray)
    assert inverted and model_input.max() == 255 and model_input[14, 14] == 255


@pytest.mark.parametrize(
    "bad", [np.zeros((28, 28, 3), np.uint8), np.zeros((28, 28)), np.zeros((0, 5), np.uint8)]
)
def test_to_model_input_refuses_arrays_that_are_not_2d_uint8(bad):
    with pytest.raises(ValueError, match="2-D uint8"):
        to_model_input(bad)


# --- uploads that should work --------------------------------------------------------------------------


@pytest.mark.parametrize("index", SAMPLE_INDICES)
def test_dataset_png_round_trips(dataset_images, index):
    prepared = prepare_upload(encode(Image.fromarray(dataset_images[index])), "item.png")
    assert isinstance(prepared, PreparedImage) and prepared.name == "item.png"
    assert_model_input(prepared.model_input)
    assert not prepared.inverted
    assert correlation(prepared.model_input, dataset_images[index]) > 0.95
    assert np.abs(prepared.model_input.astype(int) - dataset_images[index]).mean() < 3


@pytest.mark.parametrize("index", SAMPLE_INDICES)
def test_dark_item_off_centre_on_white_page(dataset_images, index):
    page = dark_on_white_page(dataset_images[index], np.full((150, 200), 255.0))
    prepared = prepare_upload(encode(Image.fromarray(page)), "page.png")
    assert prepared.inverted
    assert correlation(prepared.model_input, dataset_images[index]) > 0.9


@pytest.mark.parametrize("index", SAMPLE_INDICES)
def test_dark_item_on_noisy_off_white_page(dataset_images, index):
    paper = np.clip(np.random.default_rng(index).normal(235, 8, (150, 200)), 0, 255)
    page = dark_on_white_page(dataset_images[index], paper)
    prepared = prepare_upload(encode(Image.fromarray(page)), "photo.png")
    assert prepared.inverted
    assert correlation(prepared.model_input, dataset_images[index]) > 0.85


def transparent_upload(gray: np.ndarray, mode: str) -> bytes:
    """`gray` where the item is, fully transparent with BLACK underneath elsewhere, as a `mode` PNG."""
    alpha = np.where(gray < 255, 255, 0).astype(np.uint8)
    hidden = np.where(alpha > 0, gray, 0).astype(np.uint8)
    if mode == "RGBA":
        return encode(Image.fromarray(np.dstack([hidden, hidden, hidden, alpha])))
    if mode == "LA":
        return encode(Image.fromarray(np.dstack([hidden, alpha])).convert("LA"))
    palette_image = Image.new("P", (gray.shape[1], gray.shape[0]))
    palette_image.putdata(hidden.ravel().tolist())  # index i is gray i; index 0 is black and transparent
    palette_image.putpalette([level for gray_level in range(256) for level in (gray_level,) * 3])
    return encode(palette_image, transparency=0)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_onto_white(dataset_images, mode):
    image = dataset_images[0]
    # The item is dark and opaque; 1 rather than 0 keeps the palette version's index 0 free for "transparent".
    dark_item = np.where(image > 0, np.maximum(255 - image.astype(int), 1), 255).astype(np.uint8)
    on_white = prepare_upload(encode(Image.fromarray(dark_item)), "white.png")
    transparent = prepare_upload(transparent_upload(dark_item, mode), f"transparent-{mode}.png")
    assert Image.open(io.BytesIO(transparent_upload(dark_item, mode))).mode == mode
    assert transparent.inverted and transparent.original.getpixel((0, 0)) == (255, 255, 255)
    np.testing.assert_array_equal(transparent.model_input, on_white.model_input)
    assert correlation(transparent.model_input, image) > 0.95


def test_exif_orientation_is_applied():
    # An upright "L": a bar down the left side and a foot to the right at the bottom, 60 wide x 120 tall.
    upright = np.full((120, 60), 255, np.uint8)
    upright[10:110, 10:25] = 0
    upright[95:110, 10:50] = 0
    upright_image = Image.fromarray(upright).convert("RGB")
    stored = upright_image.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    rotated = prepare_upload(encode(stored, "JPEG", exif=exif, quality=95), "camera.jpg")
    reference = prepare_upload(encode(upright_image, "JPEG", quality=95), "upright.jpg")
    ignoring_exif = prepare_upload(encode(stored, "JPEG", quality=95), "sideways.jpg")
    assert rotated.original.size == (60, 120)
    assert correlation(rotated.model_input, reference.model_input) > 0.95
    assert correlation(ignoring_exif.model_input, reference.model_input) < 0.5
    rows, cols = np.nonzero(rotated.model_input > 127)
    assert np.ptp(rows) > np.ptp(cols)  # still tall


def test_sixteen_bit_png_is_scaled_not_clipped(dataset_images):
    image = dataset_images[0]
    sixteen_bit = Image.fromarray(image.astype(np.uint16) * 257)
    assert sixteen_bit.mode == "I;16"
    prepared = prepare_upload(encode(sixteen_bit), "scan16.png")
    eight_bit = prepare_upload(encode(Image.fromarray(image)), "scan8.png")
    assert np.abs(prepared.model_input.astype(int) - eight_bit.model_input).max() <= 1


@pytest.mark.parametrize(
    "make_image, image_format, options",
    [
        (lambda image: Image.fromarray(image).convert("CMYK"), "JPEG", {"quality": 95}),
        (lambda image: Image.fromarray(image).convert("P", palette=Image.Palette.ADAPTIVE), "GIF", {}),
        (lambda image: Image.fromarray(image).convert("RGB"), "WEBP", {"quality": 90}),
        (lambda image: Image.fromarray(image), "BMP", {}),
        (lambda image: Image.fromarray(image.astype(np.int32) * 257), "TIFF", {}),  # 32-bit integer gray
        (lambda image: Image.fromarray(image.astype(np.float32) / 255), "TIFF", {}),  # float gray 0-1
    ],
    ids=["cmyk-jpeg", "palette-gif", "webp", "bmp", "int32-tiff", "float-tiff"],
)
def test_other_formats_and_modes(dataset_images, make_image, image_format, options):
    # Scaled up 4x, as a photo would be: at 28x28, lossy ringing alone can move the bounding box by a pixel.
    image = np.kron(dataset_images[0], np.ones((4, 4), np.uint8))
    prepared = prepare_upload(encode(make_image(image), image_format, **options), "item")
    assert_model_input(prepared.model_input)
    assert prepared.original.mode == "RGB"
    assert correlation(prepared.model_input, dataset_images[0]) > 0.9


def test_animated_gif_uses_first_frame(dataset_images):
    frames = [Image.fromarray(dataset_images[index]) for index in (0, 1)]  # an ankle boot, then a pullover
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    prepared = prepare_upload(data, "animation.gif")
    assert correlation(prepared.model_input, dataset_images[0]) > 0.95
    assert correlation(prepared.model_input, dataset_images[1]) < 0.5
    assert prepared.frames == 2  # the page says only the first was classified


def test_a_phone_jpeg_holding_a_second_picture_is_one_picture_not_an_animation(dataset_images):
    # Many phones save an MPO: a JPEG with a second, hidden picture (a preview, a gain map); Pillow counts it a frame
    photo, preview = (Image.fromarray(dataset_images[index]).convert("RGB").resize((224, 224)) for index in (0, 1))
    data = encode(photo, "MPO", save_all=True, append_images=[preview])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    prepared = prepare_upload(data, "IMG_0001.jpg")
    assert prepared.frames == 1 and correlation(prepared.model_input, dataset_images[0]) > 0.9


def test_an_animated_gif_with_an_empty_first_frame_is_refused_saying_which_frame_was_read(dataset_images):
    frames = [Image.new("L", (28, 28), 0), Image.fromarray(dataset_images[0])]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageDecodeError, match=r"^intro\.gif: nothing was found .* The file holds 2 pictures "
                                               r"\(frames or pages\) and only the first was read\."):
        prepare_upload(data, "intro.gif")


def test_large_photo_is_downscaled_for_display():
    photo = np.full((800, 1200, 3), 250, np.uint8)
    photo[200:600, 300:900] = (30, 60, 90)
    prepared = prepare_upload(encode(Image.fromarray(photo), "JPEG"), "photo.jpg")
    assert prepared.original.mode == "RGB" and prepared.original.size == (512, 341)
    assert prepared.inverted
    rows, cols = np.nonzero(prepared.model_input > 127)
    assert (cols.min(), cols.max()) == (0, 27) and 17 <= np.ptp(rows) + 1 <= 20  # 600x400 box: 28 x 18.7


def test_a_big_jpeg_decoded_at_reduced_scale_gives_the_model_the_same_item(dataset):
    item = Image.fromarray(255 - dataset.test_images[3]).resize((900, 900), Image.Resampling.BICUBIC)
    page = Image.new("L", (1600, 1200), 235)
    page.paste(item, (350, 150))
    data = encode(page.convert("RGB"), "JPEG")
    prepared = prepare_upload(data, "photo.jpg")
    assert prepared.original.size == (400, 300)  # decoded at 1/4 scale, not 1600x1200 then shrunk
    full_scale, _ = to_model_input(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
    difference = np.abs(prepared.model_input.astype(int) - full_scale.astype(int))
    assert difference.mean() < 4 and np.corrcoef(prepared.model_input.ravel(), full_scale.ravel())[0, 1] > 0.98


# --- uploads that must be refused -------------------------------------------------------------------------


BAD_UPLOADS = {
    "empty": (lambda: b"", "empty"),
    "text named png": (lambda: b"hello", "not an image"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not an image"),
    "truncated png": (lambda: first_half(noise_image(64, "PNG")), "damaged"),
    "truncated jpeg": (lambda: first_half(noise_image(128, "JPEG")), "damaged"),
    "truncated gif": (lambda: first_half(noise_image(64, "GIF")), "damaged"),
    "100000x100000 header": (lambda: png_with_header_size(100_000, 100_000), "too large"),
    "10000x10000 header (Pillow only warns)": (lambda: png_with_header_size(10_000, 10_000), "over the limit"),
    "8000x6000 header (our limit)": (lambda: png_with_header_size(8000, 6000), "8000x6000"),
    "over the upload limit": (lambda: encode(Image.new("L", (8, 8))) + bytes(MAX_UPLOAD_BYTES), "MB"),
    # formats Pillow cannot read, or that this app refuses to hand to Pillow
    "heic (iPhone photo)": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), "not an image"),
    "pdf": (lambda: b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n", "not an image"),
    "zip holding a png": (lambda: zipped("item.png", encode(Image.new("L", (8, 8)))), "not an image"),
    "keras model file": (lambda: SHIPPED_MODEL_FILE.read_bytes(), "not an image"),
    "eps (Pillow would run Ghostscript)": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
                                          "not an image"),
    "ico (readable, not accepted)": (lambda: encode(Image.new("RGB", (16, 16)), "ICO"), "not an image"),
    "html with a script": (lambda: b"<html><script>alert(1)</script></html>", "not an image"),
    "0x0 png header": (lambda: png_with_header_size(0, 0), "not an image"),
    "truncated webp": (lambda: noise_image(64, "WEBP")[:40], "damaged"),
    "truncated tiff": (lambda: first_half(noise_image(64, "TIFF")), "damaged"),
}


@pytest.mark.parametrize("make_data, expected_words", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_bad_uploads_raise_image_decode_error_naming_the_file(make_data, expected_words):
    with pytest.raises(ImageDecodeError) as raised:
        prepare_upload(make_data(), "notes.png")
    assert str(raised.value).startswith("notes.png: ")
    assert expected_words in str(raised.value)


def test_decompression_bomb_check_leaves_warning_filters_alone():
    filters_before = list(warnings.filters)
    with pytest.raises(ImageDecodeError):
        prepare_upload(png_with_header_size(10_000, 10_000), "bomb.png")
    assert warnings.filters == filters_before


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_corrupted_files_raise_only_image_decode_error(image_format):
    original = noise_image(24, image_format)
    rng = np.random.default_rng(1)
    for _ in range(40):
        data = bytearray(original[: rng.integers(1, len(original) + 1)])
        for position in rng.integers(0, len(data), size=rng.integers(1, 6)):
            data[position] = rng.integers(0, 256)
        try:
            prepared = prepare_upload(bytes(data), "fuzzed")
        except ImageDecodeError as error:
            assert str(error).startswith("fuzzed: ")
        else:
            assert_model_input(prepared.model_input)


# --- the drawing canvas -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "background",
    [(255, 255, 255, 255), (0, 0, 0, 0), (255, 255, 255, 0)],
    ids=["opaque white", "transparent black", "transparent white"],
)
def test_blank_canvas_gives_none(background):
    assert prepare_drawing(np.tile(np.array(background, np.uint8), (280, 280, 1))) is None


def test_no_canvas_data_gives_none():
    assert prepare_drawing(None) is None


@pytest.mark.parametrize("background", [(255, 255, 255, 255), (0, 0, 0, 0)], ids=["white", "transparent"])
def test_canvas_rectangle_is_trimmed_scaled_and_centred(background):
    canvas = np.tile(np.array(background, np.uint8), (280, 280, 1))
    canvas[20:100, 150:260] = (20, 20, 20, 255)  # 80 tall x 110 wide, top right
    model_input = prepare_drawing(canvas).model_input
    assert_model_input(model_input)
    rows, cols = np.nonzero(model_input > 127)
    assert (cols.min(), cols.max()) == (0, 27)  # the longest side spans the full 28
    assert np.ptp(rows) + 1 == round(80 * 28 / 110)
    weights = model_input.astype(float) / model_input.sum()
    centre = (np.arange(28) @ weights.sum(axis=1), np.arange(28) @ weights.sum(axis=0))
    assert np.allclose(centre, (13.5, 13.5), atol=1.5)
    assert model_input[[0, 1, -2, -1]].max() == 0  # background rows above and below are exactly 0


def test_canvas_stroke_touching_the_border_is_still_inverted():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[:, :200] = (0, 0, 0, 255)  # most of the border painted over: the border alone would mislead
    model_input = prepare_drawing(canvas).model_input
    assert model_input is not None
    bright_columns = np.flatnonzero((model_input > 127).all(axis=0))
    assert len(bright_columns) == round(200 * 28 / 280)  # the painted part is the item, not the white rest


def test_canvas_refuses_wrong_shape():
    with pytest.raises(ValueError, match=r"\(height, width, 4\)"):
        prepare_drawing(np.zeros((280, 280, 3), np.uint8))


# --- outlines drawn on the canvas are filled ---------------------------------------------------------------


CANVAS_SIDE = 280


def canvas_with(*boxes: tuple[int, int, int, int], thickness: int = 12) -> np.ndarray:
    """A transparent canvas with black rectangle outlines (top, left, bottom, right), `thickness` px wide."""
    rgba = np.zeros((CANVAS_SIDE, CANVAS_SIDE, 4), np.uint8)
    for top, left, bottom, right in boxes:
        rgba[top:bottom, left:right, 3] = 255
        rgba[top + thickness : bottom - thickness, left + thickness : right - thickness, 3] = 0
    return rgba


def test_a_closed_outline_is_filled_inside_and_its_strokes_stay_brightest():
    prepared = prepare_drawing(canvas_with((40, 40, 240, 240)))
    assert prepared.filled
    image = prepared.model_input
    centre, edge = image[10:18, 10:18], image[:, 0]  # inside the square / its left stroke
    assert np.ptp(centre) == 0  # evenly filled
    # at OUTLINE_FILL_LEVEL of the strokes' brightness (the resampling's overshoot at the edge sets the 255)
    assert abs(int(centre[0, 0]) - OUTLINE_FILL_LEVEL * 255) <= 8
    assert edge[3:-3].min() >= 250


def test_a_gap_in_the_outline_narrower_than_the_closing_is_bridged():
    rgba = canvas_with((40, 40, 240, 240))
    rgba[40:52, 135:145, 3] = 0  # a 10 px gap in the top side, 5 % of the drawing
    prepared = prepare_drawing(rgba)
    assert prepared.filled and prepared.model_input[14, 14] > 150


def test_an_open_shape_and_a_coloured_in_one_are_left_as_drawn():
    open_u = canvas_with((40, 40, 240, 240))
    open_u[40:52, 52:228, 3] = 0  # no top side: a U, nothing enclosed
    assert not prepare_drawing(open_u).filled
    solid = np.zeros((CANVAS_SIDE, CANVAS_SIDE, 4), np.uint8)
    solid[60:200, 80:180, 3] = 255
    prepared = prepare_drawing(solid)
    assert not prepared.filled and prepared.model_input.max() == 255


def test_without_the_fill_an_outline_stays_a_ring():
    prepared = prepare_drawing(canvas_with((40, 40, 240, 240)), fill=False)
    assert not prepared.filled and prepared.model_input[10:18, 10:18].max() == 0
