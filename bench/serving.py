"""Serving under load: `python -m fmnist_core serve default` on a loopback port, N concurrent keep-alive clients for
a bounded time, and the app's own classify path (the Classifier in one process, no HTTP) in the same run.

Scenarios: single-image requests from 32 clients, 256-image requests from 4 clients and single b64 PNG pictures from 32
clients, against the default server (the app's Classifier, batching on), with batching off, and with the LiteRT float
and int8 runtimes. Every answer's classes are checked against the classes that server gave the same images in one
request. The clients run in this process, the server in its own; both share the machine's 2 cores.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .load_client import PreparedRequest, predict_request, run_load
from .measure import REPO, Row, percentile_ms, run_python

sys.path.insert(0, str(REPO / "tests"))
from serving_server import ServingServer  # noqa: E402

SECONDS = 10.0
SINGLE_CLIENTS, BATCH_CLIENTS, BATCH_IMAGES = 32, 4, 256
SECTION = "Serving"

APP_PATH_CODE = """
import json, threading, time
import numpy as np
from fmnist_core.settings import Settings
from fmnist_core.data import load_fashion_mnist
from fmnist_core.preprocessing import prepare_upload
from fmnist_core.store import ModelStore

images = load_fashion_mnist().test_images[:1000]
pictures = json.load(open(%(pictures)r))
classifier = ModelStore.from_settings(Settings.from_environment()).load_classifier("default")

def hammer(threads, work, seconds=%(seconds)r, warm_up=1.0):
    latencies, counts, lock = [], [0], threading.Lock()
    start = time.perf_counter(); warm_until, deadline = start + warm_up, start + warm_up + seconds
    def loop(offset):
        i = offset
        while (begin := time.perf_counter()) < deadline:
            n = work(i); i += 1; end = time.perf_counter()
            if begin >= warm_until:
                with lock: latencies.append(end - begin); counts[0] += n
    pool = [threading.Thread(target=loop, args=(k * 7,)) for k in range(threads)]
    [t.start() for t in pool]; [t.join() for t in pool]
    return {"latencies": latencies, "images": counts[0], "seconds": time.perf_counter() - warm_until}

def one(i):
    classifier.probabilities(images[i %% 1000]); return 1
def batch(i):
    first = (i * %(batch)d) %% 744; classifier.probabilities(images[first : first + %(batch)d]); return %(batch)d
def picture(i):
    import base64
    classifier.probabilities(prepare_upload(base64.b64decode(pictures[i %% len(pictures)]), "p.png").model_input)
    return 1
print(json.dumps({"single": hammer(%(single)d, one), "batch": hammer(%(clients)d, batch),
                  "picture": hammer(%(single)d, picture)}))
"""


def _pictures(images: np.ndarray) -> list[str]:
    """Test images as 280x280 dark-on-white PNGs (like a photo of the item), base64."""
    from PIL import Image

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - image).resize((280, 280), Image.Resampling.BILINEAR).save(buffer, "PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


def _requests(server: ServingServer, images: np.ndarray, per_request: int, pictures: list[str] | None = None
              ) -> list[PreparedRequest]:
    """Requests of `per_request` test images each, with the classes the server gave them in one big request first."""
    status, answer = server.predict("default", {"instances": images.tolist()})
    assert status == 200, answer
    classes = answer["classes"]
    if pictures is not None:
        _, answer = server.predict("default", {"instances": [{"b64": p} for p in pictures]})
        classes = answer["classes"]
    prepared = []
    for first in range(0, len(images) - per_request + 1, per_request):
        chunk = slice(first, first + per_request)
        instances = [{"b64": p} for p in pictures[chunk]] if pictures is not None else images[chunk].tolist()
        body = json.dumps({"instances": instances}).encode()
        prepared.append(predict_request("127.0.0.1", server.port, "default", body, per_request, classes[chunk]))
    return prepared


def _row(measure: str, result, target: str = "", met: bool | None = None, per_image: bool = False) -> Row:
    p50, p99 = percentile_ms(result.latencies, 50), percentile_ms(result.latencies, 99)
    rate = (f"{result.images_per_second:,.0f} images/s ({result.requests_per_second:,.0f} requests/s)" if per_image
            else f"{result.requests_per_second:,.0f} requests/s")
    note = f"{len(result.latencies):,} answers in {result.seconds:.1f} s, {result.wrong_answers} wrong"
    if result.errors:
        note += f", {len(result.errors)} errors (first: {result.errors[0][:80]})"
    return Row(SECTION, measure, f"{rate}; p50 {p50:.1f} ms, p99 {p99:.1f} ms", target, met, note)


SERVERS = (  # (extra serve flags, scenarios run against that server)
    ([], ("single", "batch", "b64")),
    (["--no-batching"], ("single",)),
    (["--runtime", "litert"], ("single", "batch")),
    (["--runtime", "litert-int8"], ("single", "batch")),
)


def _scenario(server: ServingServer, flags: list[str], scenario: str, images: np.ndarray, pictures: list[str]) -> Row:
    how = " ".join(flags) or "--runtime keras, batching on (the defaults)"
    if scenario == "single":
        result = run_load("127.0.0.1", server.port, _requests(server, images, 1), SINGLE_CLIENTS, SECONDS)
        met = (result.requests_per_second >= 500 and percentile_ms(result.latencies, 99) <= 50
               and not result.wrong_answers and not result.errors)
        return _row(f"single-image requests, {SINGLE_CLIENTS} clients; {how}", result, "≥ 500/s, p99 ≤ 50 ms", met)
    if scenario == "batch":
        result = run_load("127.0.0.1", server.port, _requests(server, images, BATCH_IMAGES), BATCH_CLIENTS, SECONDS)
        met = result.images_per_second >= 10_000 and not result.wrong_answers and not result.errors
        return _row(f"{BATCH_IMAGES}-image requests, {BATCH_CLIENTS} clients; {how}", result, "≥ 10,000 images/s",
                    met, per_image=True)
    result = run_load("127.0.0.1", server.port, _requests(server, images[:200], 1, pictures), SINGLE_CLIENTS,
                      SECONDS)
    return _row(f"single b64 280x280 PNG pictures, {SINGLE_CLIENTS} clients; {how}", result)


def run() -> list[Row]:
    from fmnist_core.data import load_fashion_mnist

    images = load_fashion_mnist().test_images[:1000]
    pictures = _pictures(images[:200])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for number, (flags, scenarios) in enumerate(SERVERS):
            server = ServingServer(["default"], Path(folder) / f"serve-{number}.log", flags)
            try:
                server.wait_until_serving("default")
                rows += [_scenario(server, flags, scenario, images, pictures) for scenario in scenarios]
            finally:
                server.stop()
        pictures_file = Path(folder) / "pictures.json"
        pictures_file.write_text(json.dumps(pictures))
        app = run_python(APP_PATH_CODE % {"pictures": str(pictures_file), "seconds": SECONDS, "batch": BATCH_IMAGES,
                                          "single": SINGLE_CLIENTS, "clients": BATCH_CLIENTS})
    for key, measure, per_image in (
        ("single", f"app's classify path in one process: Classifier, one image a call, {SINGLE_CLIENTS} threads",
         False),
        ("batch", f"app's classify path: Classifier on {BATCH_IMAGES}-image batches, {BATCH_CLIENTS} threads", True),
        ("picture", f"app's classify path: prepare_upload + Classifier on the PNGs, {SINGLE_CLIENTS} threads", False),
    ):
        figures = app[key]
        calls = len(figures["latencies"])
        rate = (f"{figures['images'] / figures['seconds']:,.0f} images/s" if per_image
                else f"{calls / figures['seconds']:,.0f} calls/s")
        rows.append(Row(SECTION, measure, f"{rate}; p50 {percentile_ms(figures['latencies'], 50):.1f} ms, p99 "
                                          f"{percentile_ms(figures['latencies'], 99):.1f} ms", "", None,
                        f"{calls:,} calls in {figures['seconds']:.1f} s; no HTTP, for comparison"))
    return rows
