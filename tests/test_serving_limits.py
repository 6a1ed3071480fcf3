"""The prediction server's limits (fmnist_core/serving_limits.py), on a real server process on 127.0.0.1 started with
short limits, driven by raw sockets: slow headers and bodies cut off with a 408, requests waiting for a body capped
with a 503, a client gone mid-body logged in one line, large pictures refused, images in flight limited."""

from __future__ import annotations

import base64
import json
import select
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from images import encode
from PIL import Image
from serving_server import REPO, ServingServer, serving

pytestmark = pytest.mark.slow  # starts a prediction server

MODEL = "default"
TIMEOUT = 2.0  # --header-timeout and --body-timeout: short, so that the tests are quick
MARGIN = 2.5  # seconds past a limit that a busy 2-core machine may take to act on it
WAITING_BODIES, IMAGES_IN_FLIGHT, MEGAPIXELS = 3, 3, 4
PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    shutil.copytree(REPO / "models" / MODEL, models / MODEL)
    with serving([MODEL], tmp_path_factory.mktemp("logs") / "serve.log", [
        "--header-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT), "--max-waiting-bodies", str(WAITING_BODIES),
        "--max-images-in-flight", str(IMAGES_IN_FLIGHT), "--busy-wait", "0.2",
        "--max-picture-megapixels", str(MEGAPIXELS)], env={"FMNIST_MODELS_DIR": str(models)}) as running:
        yield running


def head(length: int) -> bytes:
    return (f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def trickle(server: ServingServer, start: bytes, rest: bytes, give_up: float) -> tuple[bytes, float]:
    """Send `start`, then `rest` one byte a second, reading all the while; return what the server answered (up to
    its closing the connection, or `give_up` seconds) and the seconds from the first byte to its first answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        began = time.monotonic()
        connection.sendall(start)
        answer, answered_after, next_byte = b"", None, 0
        while time.monotonic() - began < give_up:
            if select.select([connection], [], [], 1.0)[0]:
                try:
                    data = connection.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answered_after = answered_after or time.monotonic() - began
                answer += data
            elif next_byte < len(rest) and not answer:
                try:
                    connection.sendall(rest[next_byte : next_byte + 1])
                except OSError:
                    break
                next_byte += 1
    return answer, answered_after if answered_after is not None else time.monotonic() - began


def error_of(answer: bytes) -> str:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


def small_request(server: ServingServer, dataset) -> tuple[int, dict, float]:
    began = time.monotonic()
    status, answer = server.predict(MODEL, {"instances": [dataset.test_images[0].tolist()]})
    return status, answer, time.monotonic() - began


def test_a_body_sent_at_one_byte_a_second_gets_a_408_within_the_limit_while_others_are_answered(server, dataset):
    body = json.dumps({"instances": [dataset.test_images[0].tolist()]}).encode()
    meanwhile = []
    other = threading.Timer(1.0, lambda: meanwhile.append(small_request(server, dataset)))
    other.start()
    answer, seconds = trickle(server, head(len(body)), body, give_up=TIMEOUT + 10)
    other.join()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert seconds <= TIMEOUT + MARGIN
    assert f"did not arrive within {TIMEOUT:g} s" in error_of(answer) and "Send the whole body at once" in error_of(
        answer)
    status, answered, took = meanwhile[0]
    assert status == 200 and answered["classes"] == ["Ankle boot"] and took < TIMEOUT


def test_headers_sent_at_one_byte_a_second_get_a_408_within_the_limit(server):
    answer, seconds = trickle(server, f"POST {PREDICT} HTTP/1.1\r\n".encode(),
                              b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n", give_up=TIMEOUT + 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert seconds <= TIMEOUT + MARGIN
    assert f"headers did not arrive within {TIMEOUT:g} s" in error_of(answer)


def test_requests_waiting_for_their_body_are_capped_with_a_503_and_retry_after(server, dataset):
    body = json.dumps({"instances": [dataset.test_images[0].tolist()]}).encode()
    slow = [threading.Thread(target=trickle, args=(server, head(len(body)) + body[:1], body[1:], TIMEOUT + 5))
            for _ in range(WAITING_BODIES)]
    [thread.start() for thread in slow]
    time.sleep(0.5)  # the three hold every place for a waiting body
    answer, seconds = trickle(server, head(len(body)) + body[:1], body[1:], give_up=TIMEOUT + 5)
    status, answered, _ = small_request(server, dataset)  # a whole body at once never waits
    [thread.join() for thread in slow]
    assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
    assert seconds < TIMEOUT
    assert b"\r\nretry-after: 5\r\n" in answer.lower()
    assert f"{WAITING_BODIES} requests are waiting for their bodies" in error_of(answer)
    assert status == 200 and answered["classes"] == ["Ankle boot"]


def test_a_client_gone_mid_body_is_one_line_in_the_log_without_a_traceback(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        port = connection.getsockname()[1]
        connection.sendall(head(1000) + b'{"instances": [')
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f":{port} went away" not in server.log_text():
        time.sleep(0.2)
    lines = [line for line in server.log_text().splitlines() if f":{port} " in line]
    assert len(lines) == 1 and f"127.0.0.1:{port} went away after 15 of 1000 bytes of its body" in lines[0], lines
    assert "Traceback" not in server.log_text() and "Exception in ASGI application" not in server.log_text()


def picture(width: int, height: int, item: np.ndarray) -> str:
    """A test item, dark on white, in a width x height PNG, as base64."""
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(Image.fromarray(255 - item).resize((height, height)), ((width - height) // 2, 0))
    return base64.b64encode(encode(canvas.convert("RGB"), "PNG")).decode()


@pytest.mark.parametrize("size", [(3000, 2000), (8000, 5000)])
def test_a_picture_over_the_pixel_limit_gets_a_413_naming_its_size_the_limit_and_the_fix(server, dataset, size):
    width, height = size
    status, answer = server.predict(MODEL, {"instances": [{"b64": picture(width, height, dataset.test_images[0])}]})
    assert status == 413, answer
    assert answer["error"].startswith(f"instances[0]: the picture is {width}x{height} pixels "
                                      f"({width * height / 1e6:.1f} megapixels), over this server's limit of "
                                      f"{MEGAPIXELS} megapixels per picture. Resize it before sending")


def test_images_in_flight_are_limited_a_request_over_it_waits_then_gets_a_503(server, dataset):
    many = {"instances": [{"b64": picture(2000, 1900, dataset.test_images[0])}] * 40}  # seconds of decoding
    results = {}
    big = threading.Thread(target=lambda: results.setdefault("big", server.predict(MODEL, many)))
    big.start()
    time.sleep(0.5)
    status, answer, _ = small_request(server, dataset)
    big.join()
    assert status == 503, answer
    assert f"answering {IMAGES_IN_FLIGHT} images at once" in answer["error"] and "try again" in answer["error"]
    assert results["big"][0] == 200 and results["big"][1]["classes"] == ["Ankle boot"] * 40
    assert small_request(server, dataset)[0] == 200  # room again
