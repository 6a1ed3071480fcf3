"""The prediction server, started as the README starts it (`python -m fmnist_core serve default --port N`) on a free
loopback port, against the app's Classifier and preprocessing, a fresh TensorFlow load of the SavedModel export, and
every kind of bad request."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from images import encode
from PIL import Image
from serving_server import REPO, ServingServer, serving

from fmnist_core.tf_serving import MAX_BODY_BYTES, MAX_INSTANCES

pytestmark = pytest.mark.slow  # starts prediction servers and exports the model

MODEL = "default"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """A copy of the shipped model's store: the server must leave it exactly as it was."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(REPO / "models" / MODEL, root / MODEL)
    return root


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    with serving([MODEL], tmp_path_factory.mktemp("logs") / "serve.log",
                 env={"FMNIST_MODELS_DIR": str(models_dir)}) as running:
        yield running


@pytest.fixture(scope="module")
def classifier(shipped_model):
    """The app's Classifier of the model the server serves (its store holds a copy of the same files)."""
    return shipped_model.classifier


def picture(image: np.ndarray, format: str) -> bytes:
    """A test image as a user's picture: dark item on white, 10x larger, PNG or JPEG."""
    return encode(Image.fromarray(255 - image).resize((280, 280), Image.Resampling.BILINEAR), format)


# ---- status, metadata, predictions ----------------------------------------------------------------------------------
def test_status_and_metadata_speak_tensorflow_servings_protocol(server):
    assert server.get(f"/v1/models/{MODEL}") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert server.get(f"/v1/models/{MODEL}/versions/1")[0] == 200
    status, metadata = server.get(f"/v1/models/{MODEL}/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["image"]["dtype"] == "DT_UINT8"
    assert [d["size"] for d in signature["inputs"]["image"]["tensor_shape"]["dim"]] == ["-1", "28", "28"]
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert metadata["class_names"][9] == "Ankle boot"


@pytest.mark.parametrize("form", ["instances", "named instances", "inputs", "named inputs"])
def test_predictions_equal_the_classifiers(server, classifier, dataset, form):
    images = dataset.test_images[:64]
    pixels = images.tolist()
    payload = {"instances": {"instances": pixels},
               "named instances": {"instances": [{"image": image} for image in pixels]},
               "inputs": {"inputs": pixels},
               "named inputs": {"inputs": {"image": pixels}}}[form]
    status, answer = server.predict(MODEL, payload)
    assert status == 200, answer
    served = np.asarray(answer["outputs" if "inputs" in form else "predictions"], np.float32)
    expected = classifier.probabilities(images)
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert answer["classes"] == [dataset.class_names[k] for k in expected.argmax(1)]


def test_b64_pictures_are_prepared_exactly_like_an_upload_in_the_app(server, classifier, dataset):
    from fmnist_core.preprocessing import prepare_upload

    files = [picture(dataset.test_images[i], format) for i, format in ((0, "PNG"), (1, "JPEG"), (2, "PNG"))]
    status, answer = server.predict(MODEL, {"instances": [{"b64": base64.b64encode(data).decode()} for data in files]})
    assert status == 200, answer
    uploads = np.stack([prepare_upload(data, f"upload-{i}").model_input for i, data in enumerate(files)])
    np.testing.assert_array_equal(np.asarray(answer["model_inputs"], np.uint8), uploads)
    np.testing.assert_allclose(answer["predictions"], classifier.probabilities(uploads), atol=1e-6)
    assert answer["classes"] == [dataset.class_names[label] for label in dataset.test_labels[:3]]


def test_unsure_answers_are_marked_as_the_classify_page_marks_them(server, shipped_model, dataset):
    """Where the Classify page answers "Unsure" (top probability under the card's unsure_below), the server's answer
    says "unsure": true for that image, beside its best guess in "classes"."""
    saved, classifier = shipped_model.saved, shipped_model.classifier
    images = dataset.test_images[:2000]
    top = classifier.probabilities(images).max(axis=1)
    chosen = np.concatenate([np.flatnonzero(top < saved.unsure_below)[:3], np.flatnonzero(top >= 0.9)[:3]])
    assert len(chosen) == 6  # three the page calls Unsure, three it names
    status, answer = server.predict(MODEL, {"instances": images[chosen].tolist()})
    assert status == 200, answer
    page_says_unsure = [not classifier.answer(images[i], saved.unsure_below).confident for i in chosen]
    assert page_says_unsure == [True] * 3 + [False] * 3
    assert answer["unsure"] == page_says_unsure and answer["unsure_below"] == saved.unsure_below == 0.4035


def test_twenty_concurrent_clients_get_no_wrong_answer(server, classifier, dataset):
    images = dataset.test_images[:400]
    expected = classifier.probabilities(images)

    def client(number: int) -> int:
        wrong = 0
        for request in range(10):
            first, count = (number * 10 + request) * 2 % 390, 1 + (number + request) % 8
            status, answer = server.predict(MODEL, {"instances": images[first : first + count].tolist()})
            served = np.asarray(answer["predictions"]) if status == 200 else None
            if served is None or served.shape != (count, 10) or not np.allclose(
                    served, expected[first : first + count], atol=1e-5) or not (
                    served.argmax(1) == expected[first : first + count].argmax(1)).all():
                wrong += 1
        return wrong

    with ThreadPoolExecutor(20) as pool:
        assert sum(pool.map(client, range(20))) == 0


def test_the_savedmodel_export_loaded_fresh_by_tensorflow_gives_the_served_answers(server, models_dir, dataset,
                                                                                    tmp_path):
    exported = subprocess.run(
        [sys.executable, "-m", "fmnist_core", "export", MODEL, "--format", "savedmodel", "--out", str(tmp_path)],
        cwd=REPO, env={**os.environ, "FMNIST_MODELS_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True, text=True, timeout=300,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "same top class as Keras on 100.00 %" in exported.stdout
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / MODEL / "1"))
    signature = loaded.signatures["serving_default"]
    images = dataset.test_images[1000:1100]
    exported_answers = signature(image=tf.constant(images))["probabilities"].numpy()
    status, answer = server.predict(MODEL, {"instances": images.tolist()})
    np.testing.assert_allclose(exported_answers, answer["predictions"], atol=1e-6)
    # the metadata the server gives describes this signature, as TensorFlow Serving would
    served = server.get(f"/v1/models/{MODEL}/metadata")[1]["metadata"]["signature_def"]["signature_def"]
    (input_spec,) = signature.structured_input_signature[1].values()
    assert list(served["serving_default"]["inputs"]) == list(signature.structured_input_signature[1]) == ["image"]
    assert input_spec.dtype == tf.uint8 and input_spec.shape.as_list() == [None, 28, 28]
    assert list(served["serving_default"]["outputs"]) == list(signature.structured_outputs) == ["probabilities"]


def test_the_int8_runtime_serves_the_checked_int8_export(models_dir, dataset, shipped_model, tmp_path):
    from fmnist_core.export import export_model
    from fmnist_core.runtimes import load_runtime

    int8_server = ServingServer([MODEL], tmp_path / "serve-int8.log", ["--runtime", "litert-int8"],
                                env={"FMNIST_MODELS_DIR": str(models_dir)})
    try:
        int8_server.wait_until_serving(MODEL)
        images = dataset.test_images[2000:2200]
        status, answer = int8_server.predict(MODEL, {"instances": images.tolist()})
    finally:
        int8_server.stop()
    assert status == 200, answer
    export = export_model(shipped_model.model, shipped_model.saved, "litert", tmp_path, dataset, int8=True)
    np.testing.assert_allclose(answer["predictions"], load_runtime("litert", export.path).probabilities(images),
                               atol=1e-6)
    agreement = np.mean(np.argmax(answer["predictions"], 1) == shipped_model.classifier.probabilities(images).argmax(1))
    assert agreement >= 0.97


# ---- bad requests ---------------------------------------------------------------------------------------------------
def pixels(value=0) -> list:
    return [[value] * 28 for _ in range(28)]


def with_pixel(value) -> list:
    image = pixels()
    image[3][4] = value
    return image


BAD_REQUESTS = {  # name: (path, body, status, words the error must contain)
    "malformed JSON": (MODEL, b'{"instances": [', 400, ["not valid JSON"]),
    "not an object": (MODEL, b"[1, 2]", 400, ["a list of 2 items", "JSON object"]),
    "NaN": (MODEL, b'{"instances": [NaN]}', 400, ["not valid JSON", "NaN"]),
    "no instances": (MODEL, {"instance": [pixels()]}, 400, ["no 'instances'", "'instance'"]),
    "instances and inputs": (MODEL, {"instances": [pixels()], "inputs": [pixels()]}, 400, ["both"]),
    "instances not a list": (MODEL, {"instances": "shirt"}, 400, ["instances: expected a list", "a string"]),
    "empty instances": (MODEL, {"instances": []}, 400, ["instances is empty", "at least one image"]),
    "too many instances": (MODEL, {"instances": [pixels()] * (MAX_INSTANCES + 1)}, 400, ["1,025 images", "Split"]),
    "27 rows": (MODEL, {"instances": [pixels(), pixels()[:27]]}, 400, ["instances[1]", "28 rows", "27 items"]),
    "short row": (MODEL, {"instances": [[row if r != 5 else row[:27] for r, row in enumerate(pixels())]]}, 400,
                  ["instances[0][5]", "row of 28 numbers", "27 items"]),
    "colour pixels": (MODEL, {"instances": [[[[0, 0, 0]] * 28] * 28]}, 400, ["instances[0]", "(28, 28, 3)", "b64"]),
    "a number": (MODEL, {"instances": [7]}, 400, ["instances[0]", "28 rows", "the number 7"]),
    "strings": (MODEL, {"instances": [[["0"] * 28] * 28]}, 400, ["instances", "strings"]),
    "null pixel": (MODEL, {"instances": [with_pixel(None)]}, 400, ["instances[0][3][4]", "null"]),
    "true/false": (MODEL, {"instances": [[[True] * 28] * 28]}, 400, ["true/false"]),
    "unknown key": (MODEL, {"instances": [{"pixels": pixels()}]}, 400, ["instances[0]", "'pixels'", "b64"]),
    "256": (MODEL, {"instances": [pixels(), with_pixel(256)]}, 400, ["instances[1][3][4] is 256", "0 to 255"]),
    "-1": (MODEL, {"instances": [with_pixel(-1)]}, 400, ["instances[0][3][4] is -1"]),
    "fraction": (MODEL, {"instances": [with_pixel(0.5)]}, 400, ["is 0.5", "whole number"]),
    "huge": (MODEL, b'{"instances": [[' + b",".join([b"[" + b",".join([b"1e400"] * 28) + b"]"] * 28) + b"]]}",
             400, ["is inf"]),
    "wrong signature": (MODEL, {"signature_name": "classify", "instances": [pixels()]}, 400, ["'classify' not found",
                                                                                            "serving_default"]),
    "bad base64": (MODEL, {"instances": [{"b64": "not*base64"}]}, 400, ["instances[0].b64", "not valid base64"]),
    "b64 of a number": (MODEL, {"instances": [{"b64": 12}]}, 400, ["instances[0].b64", "expected a base64 string"]),
    "not an image": (MODEL, {"instances": [pixels(), {"b64": base64.b64encode(b"GIF89a broken").decode()}]}, 400,
                     ["instances[1]"]),
    "a model file as a picture": (MODEL, "model file", 400, ["instances[0]: not an image"]),
    "unknown model": ("shirts", {"instances": [pixels()]}, 404, ["no model named 'shirts'", MODEL]),
    "unknown version": (f"{MODEL}/versions/2", {"instances": [pixels()]}, 404, ["no version '2'", "version 1"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_a_4xx_naming_the_field_and_the_fix(server, models_dir, case):
    path, body, status, words = BAD_REQUESTS[case]
    if body == "model file":  # what a client sends is never loaded as a model
        body = {"instances": [{"b64": base64.b64encode((models_dir / MODEL / "model.keras").read_bytes()).decode()}]}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    got_status, answer = server.request("POST", f"/v1/models/{path}:predict", data)
    assert got_status == status and set(answer) == {"error"}, answer
    for word in words:
        assert word in answer["error"], answer["error"]


def raw_exchange(server: ServingServer, head: str, chunks=()) -> bytes:
    """Send a hand-made request (head, then body chunks until the server stops reading) and return its answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head.encode())
        try:
            for chunk in chunks:
                connection.sendall(chunk)
        except OSError:
            pass  # the server answered and closed before the whole body was sent
        answer = b""
        while data := connection.recv(65536):
            answer += data
    return answer


@pytest.mark.parametrize("how", ["declared", "expect 100-continue", "chunked"])
def test_a_body_over_the_limit_gets_a_413_and_is_not_kept(server, how):
    head = f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    chunk = b"[" * 1_000_000
    if how == "chunked":  # no length announced: the server finds out while reading
        answer = raw_exchange(server, head + "Transfer-Encoding: chunked\r\n\r\n",
                              [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 17 + [b"0\r\n\r\n"])
    elif how == "declared":  # sent whole before the answer is read, as most clients do
        answer = raw_exchange(server, head + f"Content-Length: {17 * len(chunk)}\r\n\r\n", [chunk] * 17)
    else:  # the client waits for "100 Continue" before sending the body: it is answered at once instead
        answer = raw_exchange(server, head + f"Content-Length: {MAX_BODY_BYTES + 1}\r\nExpect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'{"error":"the request body is over the limit of 16 MB.' in answer


def test_wrong_methods_and_routes_get_tensorflow_servings_error_body(server):
    assert server.get(f"/v1/models/{MODEL}:predict")[0] == 405
    status, answer = server.get("/v2/models")
    assert status == 404 and "POST /v1/models/NAME:predict" in answer["error"]
    status, answer = server.request("POST", f"/v1/models/{MODEL}/labels/stable:predict", b"{}")
    assert status == 404 and "error" in answer


def test_after_all_that_the_server_still_serves_and_wrote_nothing(server, models_dir, dataset):
    before = sorted((path.relative_to(models_dir), path.stat().st_mtime_ns) for path in models_dir.rglob("*"))
    lock, results = threading.Lock(), []

    def ask() -> None:
        status, answer = server.predict(MODEL, {"instances": [dataset.test_images[0].tolist()]})
        with lock:
            results.append((status, answer.get("classes")))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert results == [(200, ["Ankle boot"])] * 4
    assert server.process.poll() is None
    after = sorted((path.relative_to(models_dir), path.stat().st_mtime_ns) for path in models_dir.rglob("*"))
    assert after == before
