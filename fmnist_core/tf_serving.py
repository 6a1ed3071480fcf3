"""TensorFlow Serving's REST protocol for this project's models: predict requests read into uint8 images, and the
JSON of predict, status and metadata answers. No HTTP here (fmnist_core/serving.py has that), and no TensorFlow.

A predict request is `{"instances": [...]}` (row format; answered `{"predictions": [...]}`) or `{"inputs": ...}`
(columnar; answered `{"outputs": [...]}`), with an optional `"signature_name": "serving_default"`. An instance is a
28x28 list of whole numbers 0-255, `{"image": <that>}` (the input's name), or `{"b64": "<base64 PNG/JPEG/...>"}`, a
picture prepared exactly like an upload in the app (an extension: TensorFlow Serving itself takes `b64` only for
string inputs, and the SavedModel's input is uint8 pixels). Every problem raises RequestError with the HTTP status and
a message naming the field, what was expected and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import IMAGE_SIZE, NUM_CLASSES
from .runtimes import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME

MAX_INSTANCES = 1024  # images in one request
MAX_BODY_BYTES = 16_000_000  # a request body: room for 1,024 pixel images, or one b64 photo at the app's 10 MB limit
PIXELS_HINT = f"Send each image as {IMAGE_SIZE} rows of {IMAGE_SIZE} whole numbers 0-255 (light item on black)"
EXAMPLE = '{"instances": [[[0, 0, ...28 numbers...], ...28 rows...]]} or {"instances": [{"b64": "<base64 PNG>"}]}'


class RequestError(ValueError):
    """A request this server cannot answer: `status` is its HTTP status, the message says which field and the fix."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class PredictRequest:
    """What a predict request asks: the images (rows of encoded pictures filled in by `prepare_pictures`)."""

    images: np.ndarray  # (N, 28, 28) uint8
    columnar: bool  # "inputs" was used: answer with "outputs"
    pictures: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # index -> (field name, encoded bytes)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RequestError(f"the request body is not valid JSON ({error}). Send a JSON object such as {EXAMPLE}.") \
            from error


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"an object with keys {', '.join(map(repr, list(value)[:5])) or 'none'}"
    return {str: "a string", bool: "true/false", type(None): "null"}.get(type(value), f"the number {value!r}")


def _pixel_problem(value: Any, name: str) -> str:
    """Which part of a would-be 28x28 list is wrong, in words (for a value numpy could not take as one)."""
    if not isinstance(value, list) or len(value) != IMAGE_SIZE:
        return f"{name}: expected {IMAGE_SIZE} rows, got {_describe(value)}. {PIXELS_HINT}."
    for row_index, row in enumerate(value):
        if not isinstance(row, list) or len(row) != IMAGE_SIZE:
            return f"{name}[{row_index}]: expected a row of {IMAGE_SIZE} numbers, got {_describe(row)}. {PIXELS_HINT}."
        for column, pixel in enumerate(row):
            if isinstance(pixel, bool) or not isinstance(pixel, int | float):
                return f"{name}[{row_index}][{column}]: expected a number 0-255, got {_describe(pixel)}. {PIXELS_HINT}."
    return f"{name}: expected {IMAGE_SIZE}x{IMAGE_SIZE} numbers 0-255. {PIXELS_HINT}."


def _check_values(array: np.ndarray, name: str) -> np.ndarray:
    """`array` (numbers) as uint8 after checking every value is a whole number 0-255; else the first bad one."""
    if array.dtype.kind not in "iuf":
        what = {"b": "true/false", "U": "strings", "S": "strings"}.get(array.dtype.kind, f"{array.dtype} values")
        raise RequestError(f"{name}: expected numbers 0-255, got {what}. {PIXELS_HINT}.")
    bad = (array < 0) | (array > 255)
    if array.dtype.kind == "f":
        bad |= ~np.isfinite(array) | (array != np.round(array))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        field_name = name + "".join(f"[{i}]" for i in where)
        raise RequestError(f"{field_name} is {array[where].item()!r}: expected a whole number from 0 to 255. "
                           f"{PIXELS_HINT}.")
    return array.astype(np.uint8)


def _pixels(value: Any, name: str) -> np.ndarray:
    """One instance given as pixels, checked, as a (28, 28) uint8 array."""
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):  # ragged lists; integers beyond 64 bits
        array = None
    if array is None or array.dtype == object or array.ndim < 3 and array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise RequestError(_pixel_problem(value, name))
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        colour = array.ndim == 3 and array.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)
        raise RequestError(f"{name}: expected {IMAGE_SIZE}x{IMAGE_SIZE} gray values, got shape {array.shape}"
                           + (" (colour?)" if colour else "") + f". {PIXELS_HINT}, or send a picture as "
                           '{"b64": "<base64 PNG>"}.')
    return _check_values(array, name)


def _picture(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(f"{name}: expected a base64 string, got {_describe(value)}. Encode the picture file's bytes "
                           "with standard base64, e.g. `base64 -w0 shirt.png`.")
    try:  # line breaks are allowed: `base64` without -w0 wraps its output
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(f"{name}: not valid base64 ({error}). Encode the picture file's bytes with standard "
                           "base64 (A-Z a-z 0-9 + / and = padding), e.g. `base64 -w0 shirt.png`.") from error


def _instance(value: Any, name: str, request: PredictRequest, index: int) -> None:
    if isinstance(value, dict):
        if set(value) == {INPUT_NAME}:  # {"image": ...}: the input named
            return _instance(value[INPUT_NAME], f"{name}.{INPUT_NAME}", request, index)
        if set(value) == {"b64"}:
            request.pictures[index] = (name, _picture(value["b64"], f"{name}.b64"))
            return None
        raise RequestError(f"{name}: an object with keys {', '.join(map(repr, value)) or 'none'}; expected "
                           f"{{\"b64\": \"<base64 picture>\"}} or {{\"{INPUT_NAME}\": <28x28 numbers>}}.")
    request.images[index] = _pixels(value, name)
    return None


def _instances(values: Any, name: str, columnar: bool) -> PredictRequest:
    if not isinstance(values, list):
        raise RequestError(f"{name}: expected a list of images, got {_describe(values)}. Send {EXAMPLE}.")
    if not values:
        raise RequestError(f"{name} is empty: send at least one image. Send {EXAMPLE}.")
    if len(values) > MAX_INSTANCES:
        raise RequestError(f"{name} holds {len(values):,} images; at most {MAX_INSTANCES:,} are taken per request. "
                           "Split them over several requests.")
    try:  # the usual case, every instance a 28x28 list: one conversion for the whole batch
        batch = np.asarray(values)
    except (ValueError, OverflowError):
        batch = None
    if batch is not None and batch.dtype != object and batch.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        return PredictRequest(_check_values(batch, name), columnar)
    request = PredictRequest(np.zeros((len(values), IMAGE_SIZE, IMAGE_SIZE), np.uint8), columnar)
    for index, value in enumerate(values):
        _instance(value, f"{name}[{index}]", request, index)
    return request


def parse_predict(body: bytes) -> PredictRequest:
    """The images a predict request's body asks about; raises RequestError (400) naming what is wrong."""
    payload = _load_json(body)
    if not isinstance(payload, dict):
        raise RequestError(f"the request body is {_describe(payload)}; expected a JSON object such as {EXAMPLE}.")
    signature = payload.get("signature_name", SIGNATURE_NAME)
    if signature != SIGNATURE_NAME:
        raise RequestError(f"signature_name {str(signature)[:60]!r} not found: this model has one signature, "
                           f"{SIGNATURE_NAME!r}. Leave signature_name out or set it to {SIGNATURE_NAME!r}.")
    if "instances" in payload and "inputs" in payload:
        raise RequestError("the request has both 'instances' and 'inputs'; send one of them.")
    if "instances" in payload:
        return _instances(payload["instances"], "instances", columnar=False)
    if "inputs" in payload:
        inputs = payload["inputs"]
        if isinstance(inputs, dict):
            if set(inputs) != {INPUT_NAME}:
                raise RequestError(f"inputs: an object with keys {', '.join(map(repr, inputs)) or 'none'}; the one "
                                   f"input is named {INPUT_NAME!r}: send {{\"inputs\": {{\"{INPUT_NAME}\": [...]}}}}.")
            return _instances(inputs[INPUT_NAME], f"inputs.{INPUT_NAME}", columnar=True)
        return _instances(inputs, "inputs", columnar=True)
    keys = ", ".join(repr(key)[:40] for key in list(payload)[:5]) or "none"
    raise RequestError(f"the request has no 'instances' (keys: {keys}). Send {EXAMPLE}.")


def prepare_pictures(request: PredictRequest, max_pixels: int | None = None) -> None:
    """Decode the request's b64 pictures into its images, as the app prepares an upload; RequestError if one is bad
    (413 for a picture over `max_pixels`, default the app's MAX_IMAGE_PIXELS, as it would be decoded)."""
    from .preprocessing import MAX_IMAGE_PIXELS, ImageDecodeError, ImageTooLargeError, prepare_upload

    for index, (name, data) in request.pictures.items():
        try:
            request.images[index] = prepare_upload(data, name, max_pixels or MAX_IMAGE_PIXELS).model_input
        except ImageTooLargeError as error:
            raise RequestError(
                f"{name}: the picture is {error.width}x{error.height} pixels ({error.width * error.height / 1e6:.1f} "
                f"megapixels), over this server's limit of {error.max_pixels / 1e6:g} megapixels per picture. Resize "
                "it before sending: the model sees 28x28 pixels, so 1000 pixels on the longest side is plenty "
                "(e.g. `convert shirt.png -resize 1000x1000 small.png`, or Pillow's Image.thumbnail).",
                status=413) from error
        except ImageDecodeError as error:
            raise RequestError(str(error)) from error


# ---- answers -------------------------------------------------------------------------------------------------------
def predict_answer(probabilities: np.ndarray, request: PredictRequest, class_names: tuple[str, ...],
                   unsure_below: float) -> dict:
    """TensorFlow Serving's answer, plus "classes" (each image's top class name), "unsure" (true where that class's
    probability is under the model's `unsure_below`: the Classify page answers "Unsure" there), "unsure_below" and,
    when pictures were sent, "model_inputs" (the 28x28 images the model received); a TensorFlow Serving client
    ignores them all."""
    answer = {"outputs" if request.columnar else "predictions": probabilities.tolist(),
              "classes": [class_names[index] for index in probabilities.argmax(axis=1)],
              "unsure": (probabilities.max(axis=1) < unsure_below).tolist(),
              "unsure_below": unsure_below}
    if request.pictures:
        answer["model_inputs"] = request.images.tolist()
    return answer


def status_answer(version: int) -> dict:
    return {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def _tensor(dtype: str, shape: tuple[int, ...], name: str) -> dict:
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in shape],
                                             "unknown_rank": False}, "name": name}


def metadata_answer(name: str, version: int, class_names: tuple[str, ...]) -> dict:
    """The model's signature as TensorFlow Serving describes the SavedModel export's, and its class names."""
    signature = {
        "inputs": {INPUT_NAME: _tensor("DT_UINT8", (-1, IMAGE_SIZE, IMAGE_SIZE), f"{SIGNATURE_NAME}_{INPUT_NAME}:0")},
        "outputs": {OUTPUT_NAME: _tensor("DT_FLOAT", (-1, NUM_CLASSES), "StatefulPartitionedCall:0")},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE_NAME: signature}}},
            "class_names": list(class_names)}
