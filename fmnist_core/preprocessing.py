"""Turn a drawing or an uploaded picture into the 28x28 uint8 image a Fashion-MNIST model expects.

Fashion-MNIST items were trimmed to their bounding box, resized so their longest side is 28, centred
on a 28x28 canvas and inverted: a LIGHT item on a DARK (0) background, 8-bit gray. This module
reproduces that with numpy and Pillow only. The model rescales 0-255 itself, so outputs stay uint8.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .data import IMAGE_SIZE

MAX_UPLOAD_BYTES = 10_000_000  # "10 MB", as Streamlit's uploader counts its maxUploadSize (.streamlit/config.toml)
# What one session's uploader may hold at once and have read: Streamlit keeps every uploaded file in the server's
# memory while its uploader lists it.
MAX_UPLOAD_FILES, MAX_UPLOAD_TOTAL_BYTES = 20, 30_000_000
MAX_IMAGE_PIXELS = 40_000_000
DISPLAY_MAX_SIDE = 512  # the shown original; still far more detail than a 28x28 result needs
# JPEGs decode straight at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) while both sides stay >= this:
# a 1600x1200 photo decodes as 400x300 in a few milliseconds instead of tens.
JPEG_DRAFT_MIN_SIDE = 256
# Fashion-MNIST trimmed edges within 2 % of the background intensity; below that a pixel is "background".
TRIM_THRESHOLD = 0.02 * 255
# The only decoders an upload may reach: common, well-fuzzed formats. Pillow would otherwise also try about
# forty others, among them EPS, which it renders by running Ghostscript.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
# The file endings of ALLOWED_FORMATS, the only decoders an upload may reach: what an upload box accepts.
_ENDINGS = {"PNG": ("png",), "JPEG": ("jpg", "jpeg"), "WEBP": ("webp",), "GIF": ("gif",), "BMP": ("bmp",),
            "TIFF": ("tif", "tiff"), "AVIF": ("avif",)}
UPLOAD_ENDINGS = tuple(ending for image_format in ALLOWED_FORMATS for ending in _ENDINGS[image_format])
FORMATS_HINT = "Upload a PNG, JPEG, WebP, GIF, BMP, TIFF or AVIF picture."
MULTI_FRAME_FORMATS = ("GIF", "WEBP", "PNG", "TIFF")  # animations (APNG too) and multi-page TIFFs
# People draw the outline of an item; Fashion-MNIST items are solid. Inside a closed outline the drawing is
# filled at this share of full ink, so the strokes (the outline, a collar, a zip) stay a little brighter, as
# seams and edges are in the dataset. Chosen by measurement (bench/drawings.py).
OUTLINE_FILL_LEVEL = 0.8
# Gaps in an outline narrower than twice this share of the drawing's longest side are closed before filling:
# a mouse outline seldom ends exactly where it began.
GAP_CLOSING_FRACTION = 0.03


# A picture is taken to show one item on a plain background when the gray levels of its edge spread over at most this
# many levels (between their 10th and 90th percentiles): Fashion-MNIST items photographed on a page spread 2-11
# (noise and JPEG), photos of scenes and textures 35-240 (bench/photos.py's pictures).
PLAIN_EDGE_SPREAD = 30.0
BUSY_PICTURE = ("it looks like a photo of a scene or a texture, whose edges are no plain background, so no single "
                "item could be told from what is around it")


def busy_edges(gray: np.ndarray) -> bool:
    """Whether the edge of a 2-D uint8 picture is busy (a scene, a texture), not the plain background Fashion-MNIST
    items were photographed on."""
    p10, p90 = np.percentile(_border(gray.astype(np.float32)), [10, 90])
    return bool(p90 - p10 > PLAIN_EDGE_SPREAD)


class ImageDecodeError(ValueError):
    """An uploaded file could not be turned into an image, or its image holds nothing to classify.

    The message names the file, what was wrong, and how to fix it.
    """


class ImageTooLargeError(ImageDecodeError):
    """A picture with more pixels than the caller's limit, found from its header before it was decoded."""

    def __init__(self, message: str, width: int, height: int, max_pixels: int):
        super().__init__(message)
        self.width, self.height, self.max_pixels = width, height, max_pixels


@dataclass(frozen=True)
class PreparedImage:
    """An uploaded picture, ready to show and to classify."""

    name: str  # the file name (or "drawing")
    original: Image.Image  # RGB, EXIF-transposed, longest side at most DISPLAY_MAX_SIDE, for display
    model_input: np.ndarray  # (28, 28) uint8, light item on dark background
    inverted: bool  # True when the source had a light background and was inverted
    frames: int = 1  # frames of an animation, pages of a TIFF: only the first is classified


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, flattened."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def _box_blur(pixels: np.ndarray) -> np.ndarray:
    """Mean of each pixel's 3x3 neighbourhood, counting outside pixels as 0."""
    # Separable: a 3-wide sum along the rows, then along the columns (4 additions instead of 8).
    padded = np.pad(pixels, 1)
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:-2] + rows[1:-1] + rows[2:]) / 9.0


def _item_box(item: np.ndarray, noise: float) -> tuple[slice, slice] | None:
    """Rows and columns of the item's bounding box in a background-is-0 image, or None when blank."""
    # The 3x3 mean finds the item while ignoring isolated noise specks (a speck would need 9 noise
    # deviations to pass); it reaches 1 px beyond the item, so the exact edge then comes from the raw
    # pixels inside that box grown by 1 px.
    found = _box_blur(item) > TRIM_THRESHOLD + noise
    if not found.any():
        return None
    rows, cols = np.flatnonzero(found.any(axis=1)), np.flatnonzero(found.any(axis=0))
    top, left = max(rows[0] - 1, 0), max(cols[0] - 1, 0)
    window = item[top : rows[-1] + 2, left : cols[-1] + 2] > 0
    if noise > 0:  # on a noisy background a lone lit pixel beside the item is a speck, not its edge
        lit_neighbourhood = window & (_box_blur(window.astype(np.float32)) > 1.5 / 9)
        window = lit_neighbourhood if lit_neighbourhood.any() else window
    rows, cols = np.flatnonzero(window.any(axis=1)), np.flatnonzero(window.any(axis=0))
    return slice(top + rows[0], top + rows[-1] + 1), slice(left + cols[0], left + cols[-1] + 1)


def _model_input(gray: np.ndarray, background: float | None) -> tuple[np.ndarray, bool]:
    """The Fashion-MNIST pipeline; `background` is the known background gray, or None to estimate it."""
    if gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
        raise ValueError(
            f"gray: got an array of shape {gray.shape} and dtype {gray.dtype}, expected a non-empty 2-D "
            "uint8 array. Convert the picture to 8-bit grayscale first (PIL: image.convert('L'))."
        )
    pixels = gray.astype(np.float32)
    if background is None:
        # Items may touch the border (Fashion-MNIST's own do, on their longest side), so read the background
        # level and noise from the border's darker quantiles; for gaussian noise p10 and p25 sit at
        # -1.28 and -0.67 standard deviations. One sort gives them all: once inverted, the darker 10th and
        # 25th percentiles are 255 minus the 90th and 75th.
        p10, p25, median, p75, p90 = np.percentile(_border(pixels), [10, 25, 50, 75, 90])
        inverted = bool(median > 127.5)
        if inverted:
            p10, p25 = 255.0 - p90, 255.0 - p75
        noise = (p25 - p10) / 0.607
        level = p25 + 0.674 * noise
    else:
        inverted = bool(background > 127.5)
        noise, level = 0.0, min(background, 255.0 - background)
    if inverted:
        pixels = 255.0 - pixels
    # Background to 0; pixels within three noise deviations of it are background too. The rest keep
    # their contrast, so the faint parts of an item survive.
    item = pixels - level
    item *= item > 3.0 * noise  # (a multiply: ten times faster than assigning through a boolean mask)
    blank = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    box = _item_box(item, noise)
    if box is None:
        return blank, inverted
    crop = item[box]
    scale = IMAGE_SIZE / max(crop.shape)
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    # Float mode keeps the resampling free of 8-bit rounding; LANCZOS averages properly when shrinking.
    resized = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS))
    resized = np.clip(resized, 0.0, None)  # LANCZOS rings slightly below 0 next to sharp edges
    if resized.max() <= 0:
        return blank, inverted
    # Every Fashion-MNIST image peaks at 250-255, so stretch the brightest pixel to 255: grey items
    # photographed on white and pale strokes then look like the training data.
    resized = np.rint(resized * (255.0 / resized.max())).astype(np.uint8)
    # Centred; an odd spare pixel goes above / to the left, as Fashion-MNIST's margins do.
    top, left = (IMAGE_SIZE - height + 1) // 2, (IMAGE_SIZE - width + 1) // 2
    blank[top : top + height, left : left + width] = resized
    return blank, inverted


def to_model_input(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """A (28, 28) uint8 light-on-dark image of the item in `gray` (2-D uint8), and whether it was inverted.

    Polarity comes from the border (light border: dark item, inverted); a blank image gives all zeros.
    """
    return _model_input(gray, background=None)


def _closing(drawn: np.ndarray, radius: float) -> np.ndarray:
    """`drawn` with every gap narrower than about 2 x `radius` bridged: a morphological closing with a disc, by two
    distance transforms, at half the resolution (4x fewer pixels; the strokes first grown by up to one pixel by 2x2
    max pooling)."""
    height, width = drawn.shape
    even = np.pad(drawn, ((0, height % 2), (0, width % 2)))
    half = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2).any(axis=(1, 3))
    grown = ndimage.distance_transform_edt(~half) <= radius / 2
    closed_half = ndimage.distance_transform_edt(grown) > radius / 2
    return drawn | closed_half.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]


def _enclosed_paper(drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The regions of paper that `drawn` encloses (those not reaching the array's edge), labelled (0 elsewhere), and
    their labels. Labelling the paper once is about 4x faster than scipy's binary_fill_holes."""
    paper, _ = ndimage.label(~drawn)
    edge = np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]])
    enclosed = np.ones(paper.max() + 1, dtype=bool)
    enclosed[edge] = False
    enclosed[0] = False
    return np.where(enclosed[paper], paper, 0), np.flatnonzero(enclosed)


def _wider_than_its_sides(region: np.ndarray, width: float, body_depth: np.ndarray) -> bool:
    """Whether a region the strokes leave open (`width`: the radius of its widest inscribed disc) is wider than the
    drawn parts beside it are thick: than the widest disc inside `body_depth` (the distance to the paper within the
    strokes and what they close by themselves) that touches the region."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    # a disc touching the region and no wider than the region lies within 2 x width + 2 of its box
    reach = int(2 * width) + 2
    window = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1),
              slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    distance_to_region = ndimage.distance_transform_edt(~region[window])
    depth = body_depth[window]
    touching = (depth > 0) & (distance_to_region <= depth + 1.5)
    return bool(width > depth[touching].max(initial=0.0))


def fill_outlines(ink: np.ndarray) -> tuple[np.ndarray, bool]:
    """`ink` (2-D float, 0 paper to 255 full stroke) with the inside of each closed outline filled at
    OUTLINE_FILL_LEVEL, and whether anything was filled.

    Enclosed is what the strokes close by themselves, and what they close once gaps narrower than
    2 x GAP_CLOSING_FRACTION of the drawing are bridged, if it is wider than the parts drawn beside it are thick:
    the inside of an outline that does not quite meet itself, but not the paper between two trouser legs
    whose hems nearly touch, nor between the two halves of an open jacket."""
    strokes = ink > 127.5
    if not strokes.any():
        return ink, False
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    radius = GAP_CLOSING_FRACTION * max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    # Work inside the drawing's box grown by the closing radius: the rest of the canvas is empty paper.
    margin = int(np.ceil(radius)) + 1
    box = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
           slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
    drawn = np.pad(strokes[box], margin)
    closed = _closing(drawn, radius) if radius >= 1 else drawn
    regions, labels = _enclosed_paper(closed)
    if not labels.size:  # nothing enclosed (the closing alone only rounds concave corners and narrows slits)
        return ink, False
    held = _enclosed_paper(drawn)[0] > 0  # what the strokes enclose with no gap bridged
    keep = np.zeros(regions.max() + 1, dtype=bool)
    keep[np.unique(regions[held])] = True
    keep[0] = False
    open_regions = labels[~keep[labels]]
    if open_regions.size:  # enclosed only once gaps are bridged: the inside of a gappy outline, or an open part?
        widths = ndimage.maximum(ndimage.distance_transform_edt(~closed), regions, open_regions)
        body_depth = ndimage.distance_transform_edt(drawn | held)
        for label, width in zip(open_regions, np.atleast_1d(widths), strict=True):
            keep[label] = _wider_than_its_sides(regions == label, float(width), body_depth)
    if not keep.any():
        return ink, False
    # The kept regions and the bridges that closed them: the parts of the enclosed paper (solid, not drawn)
    # connected to a kept region. The closing's other additions (rounded corners, narrowed slits) stay paper.
    paper, _ = ndimage.label((closed | (regions > 0)) & ~drawn)
    connected = np.zeros(paper.max() + 1, dtype=bool)
    connected[paper[keep[regions]]] = True
    connected[0] = False
    inside = connected[paper][margin:-margin, margin:-margin]
    filled = ink.astype(np.float32, copy=True)
    filled[box] = np.maximum(filled[box], inside * np.float32(OUTLINE_FILL_LEVEL * 255.0))
    return filled, True


def drawing_input(ink: np.ndarray, fill: bool = True) -> tuple[np.ndarray, bool]:
    """The (28, 28) model input of a drawing given as ink on blank paper (2-D, 0 to 255, any size), with the
    inside of closed outlines filled (unless `fill` is False); and whether it was filled. Blank paper gives zeros."""
    filled_ink, filled = fill_outlines(ink) if fill else (ink, False)
    gray = np.rint(255.0 - np.clip(filled_ink, 0.0, 255.0)).astype(np.uint8)
    # The paper is known to be clean white, so nothing needs estimating from the border, which the user
    # may well have drawn over.
    model_input, _inverted = _model_input(gray, background=255.0)
    return model_input, filled


def canvas_ink(rgba: np.ndarray) -> np.ndarray:
    """The ink of a drawable canvas's `image_data` (dark strokes on white): 0 for paper, 255 for black."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8 or rgba.size == 0:
        raise ValueError(
            f"rgba: got an array of shape {rgba.shape} and dtype {rgba.dtype}, expected (height, width, 4) "
            "uint8 as in st_canvas(...).image_data."
        )
    luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as Pillow
    alpha = rgba[..., 3] * np.float32(1 / 255)
    # Unpainted pixels may be transparent with black underneath: composite onto the white background
    # (the luma weights sum to 1, so compositing the gray equals compositing each colour, at a third of the cost).
    return np.rint((255.0 - luma) * alpha)


@dataclass(frozen=True)
class PreparedDrawing:
    """A canvas drawing, ready for the model."""

    model_input: np.ndarray  # (28, 28) uint8, light item on dark background
    filled: bool  # True when the inside of a closed outline was filled in


def prepare_drawing(rgba: np.ndarray | None, fill: bool = True) -> PreparedDrawing | None:
    """A drawable canvas's `image_data` (dark on white) prepared for the model; None if blank.
    `fill=False` leaves outlines as drawn (for comparison only: the app always fills)."""
    if rgba is None:
        return None
    model_input, filled = drawing_input(canvas_ink(rgba), fill)
    return PreparedDrawing(model_input, filled) if model_input.any() else None


def _to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """Gray values of a 16-bit, 32-bit integer or float image scaled (not clipped) to 0-255."""
    values = np.nan_to_num(values.astype(np.float32))  # float32: exact for 16-bit, half float64's memory
    low, high = float(values.min()), float(values.max())
    if mode.startswith("I;16"):
        top = 65535.0
    elif mode == "F" and low >= 0 and high <= 1:
        top = 1.0
    elif low >= 0 and high <= 255:
        top = 255.0
    elif low >= 0 and high <= 65535:
        top = 65535.0
    else:  # an unusual range: stretch what is there
        values, top = values - low, max(high - low, 1e-12)
    return np.rint(np.clip(values * (255.0 / top), 0, 255)).astype(np.uint8)


def _flatten_onto_white(image: Image.Image) -> Image.Image:
    """An RGB copy of `image`, with 16-bit and float gray scaled to 8 bits and transparency shown on white."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return Image.fromarray(_to_8bit(np.asarray(image), image.mode)).convert("RGB")
    if "transparency" not in image.info and not {"A", "a"} & set(image.getbands()):
        return image.convert("RGB")
    # alpha_composite weights the hidden colour by alpha, so black under alpha=0 still comes out white.
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is over the limit of "
        f"{max_pixels / 1e6:.0f} megapixels. Resize the picture and upload it again.", width, height, max_pixels)


def _decode(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, int]:
    """The first frame of `data`, fully decoded, turned upright by its EXIF orientation, RGB on white; and how
    many frames the file has. Refused (ImageTooLargeError) over MAX_IMAGE_PIXELS in its header, or over
    `max_pixels` as it would be decoded (a JPEG decodes at 1/2 to 1/8 scale, so it may be larger)."""
    try:
        # Our own pixel limit, checked from the header, is below Pillow's bomb limit, so every bomb is refused
        # here; no warnings filter is needed (warnings.catch_warnings is not thread-safe across sessions).
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # reads the header only
        width, height = image.size
        if width * height == 0:
            raise ImageDecodeError(
                f"{name}: the image is {width}x{height} pixels, so there is nothing to classify. "
                f"{FORMATS_HINT}"
            )
        if width * height > MAX_IMAGE_PIXELS:
            raise _too_large(name, width, height, MAX_IMAGE_PIXELS)
        image.draft("RGB", (JPEG_DRAFT_MIN_SIDE, JPEG_DRAFT_MIN_SIDE))  # JPEG only; others ignore it
        if image.width * image.height > max_pixels:  # the size it decodes at (a JPEG's draft size)
            raise _too_large(name, width, height, max_pixels)
        image.load()  # decode everything now, so a truncated file fails here rather than later
        # Frames of an animation or pages of a TIFF; a phone's JPEG often holds a second picture (an MPO preview
        # or gain map) that is no frame of what the user sees.
        frames = int(getattr(image, "n_frames", 1)) if image.format in MULTI_FRAME_FORMATS else 1
        return _flatten_onto_white(ImageOps.exif_transpose(image)), frames
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as error:
        raise ImageDecodeError(
            f"{name}: not an image this app can read. {FORMATS_HINT}"
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(
            f"{name}: too large to decode safely ({error}). The limit is {MAX_IMAGE_PIXELS / 1e6:.0f} "
            "megapixels; resize the picture and upload it again."
        ) from error
    except Exception as error:  # Pillow's decoders raise many types on damaged data; all mean "damaged"
        raise ImageDecodeError(
            f"{name}: the picture could not be decoded ({type(error).__name__}: {error}); the file is "
            "probably damaged or incomplete. Save or export it again and upload the new file."
        ) from error


def prepare_upload(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> PreparedImage:
    """Decode an uploaded picture and prepare it for display and the model; raises only ImageDecodeError
    (ImageTooLargeError over `max_pixels` as decoded, which is at most MAX_IMAGE_PIXELS)."""
    if not data:
        raise ImageDecodeError(
            f"{name}: the file is empty (0 bytes). Upload the picture again. {FORMATS_HINT}"
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageDecodeError(
            f"{name}: {len(data):,} bytes ({len(data) / 1e6:.1f} MB) is over the upload limit of "
            f"{MAX_UPLOAD_BYTES / 1e6:g} MB. Save a smaller version (fewer pixels, or JPEG) and "
            "upload that."
        )
    original, frames = _decode(data, name, max_pixels)
    original.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    gray = np.asarray(original.convert("L"))
    model_input, inverted = to_model_input(gray)
    if not model_input.any():
        first = f" The file holds {frames} pictures (frames or pages) and only the first was read." if (
            frames > 1) else ""
        # A busy edge makes the background look so noisy that everything inside passes for more of it.
        what = (BUSY_PICTURE if busy_edges(gray) else
                "it is blank, or one colour all over (a transparent part counts as white)")
        raise ImageDecodeError(
            f"{name}: nothing was found in the picture to classify: {what}.{first} Upload a picture of one item of "
            "clothing on a plain background."
        )
    return PreparedImage(name=name, original=original, model_input=model_input, inverted=inverted, frames=frames)
