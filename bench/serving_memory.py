"""The prediction server's memory under large pictures (#30 item 4): `python -m fmnist_core serve default` on a
loopback port, 8 concurrent requests of 3 large b64 PNGs each, while one client keeps asking single-image requests;
the server's resident memory is sampled every 50 ms during the attack and for 60 s after it.

Two attacks: pictures of 40 megapixels (8000x5000, a 0.66 MB PNG like the issue's 0.63 MB: within Pillow's bomb
limit and the app's own 40-megapixel cap for uploads), and pictures at the server's own pixel limit (4000x4000,
16.0 megapixels).
Run alone: `.venv/bin/python -m bench serving_memory`.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .measure import REPO, Row

sys.path.insert(0, str(REPO / "tests"))
from serving_server import ServingServer  # noqa: E402

SECTION = "Serving memory"
CLIENTS, PICTURES_PER_REQUEST, AFTER_SECONDS = 8, 3, 60.0
PEAK_TARGET_GB, SETTLED_TARGET_GB = 1.5, 1.3


def resident_gb(pid: int) -> float:
    """The process's resident memory (VmRSS) now, in GB (10^9 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024 / 1e9
    raise KeyError("VmRSS")


def large_picture(width: int, height: int, image: np.ndarray) -> bytes:
    """A Fashion-MNIST test item (dark on white) filling a width x height PNG, with sparse noise so that the file is
    about as large as a real scan of that size would compress to (0.63 MB at 8000x5000)."""
    from PIL import Image

    item = Image.fromarray(255 - image).resize((height, height), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(item, ((width - height) // 2, 0))
    pixels = np.asarray(canvas).copy()
    rng = np.random.default_rng(0)
    specks = rng.integers(0, pixels.size, pixels.size // 8000)
    pixels.flat[specks] = rng.integers(200, 255, specks.size, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _post(url: str, body: bytes, timeout: float = 120) -> tuple[int, dict, float]:
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read()), time.perf_counter() - start
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), time.perf_counter() - start
    except OSError as error:
        return 0, {"error": f"{type(error).__name__}: {error}"}, time.perf_counter() - start


class Sampler(threading.Thread):
    """The server's resident memory every 50 ms, with the time it was taken."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stopped = pid, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), resident_gb(self.pid)))
            time.sleep(0.05)


def attack(server: ServingServer, picture: bytes, label: str) -> Row:
    """CLIENTS requests of PICTURES_PER_REQUEST copies of `picture` at once, small requests alongside, then a minute
    of watching the server's memory."""
    from fmnist_core.data import load_fashion_mnist

    url = f"{server.url}/v1/models/default:predict"
    body = json.dumps({"instances": [{"b64": base64.b64encode(picture).decode()}] * PICTURES_PER_REQUEST}).encode()
    small = json.dumps({"instances": load_fashion_mnist().test_images[:1].tolist()}).encode()
    before = resident_gb(server.process.pid)
    sampler = Sampler(server.process.pid)
    sampler.start()
    attack_over, small_answers = threading.Event(), []

    def small_client() -> None:
        while not attack_over.is_set():
            small_answers.append(_post(url, small, timeout=60))
            time.sleep(0.2)

    watcher = threading.Thread(target=small_client, daemon=True)
    watcher.start()
    start = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda _: _post(url, body), range(CLIENTS)))
    attack_seconds = time.monotonic() - start
    attack_over.set()
    watcher.join()
    time.sleep(AFTER_SECONDS)
    sampler.stopped.set()
    sampler.join()
    peak = max(rss for _, rss in sampler.samples)
    end_of_attack = start + attack_seconds
    after = [rss for moment, rss in sampler.samples if moment >= end_of_attack + AFTER_SECONDS - 1]
    settled = after[-1] if after else sampler.samples[-1][1]
    statuses = {}
    for status, _, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    first_error = next((answer.get("error", "") for status, answer, _ in answers if status != 200), "")
    small_ok = sum(status == 200 for status, _, _ in small_answers)
    slowest_small = max((seconds for _, _, seconds in small_answers), default=0.0)
    met = peak <= PEAK_TARGET_GB and settled <= SETTLED_TARGET_GB and small_ok == len(small_answers) > 0
    value = (f"peak {peak:.2f} GB (from {before:.2f} GB), {settled:.2f} GB {AFTER_SECONDS:.0f} s after; "
             f"attack answers {', '.join(f'{count}× {status}' for status, count in sorted(statuses.items()))} in "
             f"{attack_seconds:.1f} s; small requests {small_ok}/{len(small_answers)} answered, slowest "
             f"{slowest_small * 1000:.0f} ms")
    note = f"{CLIENTS} concurrent requests × {PICTURES_PER_REQUEST} {label} ({len(picture) / 1e6:.2f} MB each)"
    if first_error:
        note += f"; first refusal: {first_error[:160]}"
    return Row(SECTION, f"server RSS under {label}", value, f"peak ≤ {PEAK_TARGET_GB} GB, ≤ {SETTLED_TARGET_GB} GB "
               f"within {AFTER_SECONDS:.0f} s, small requests answered", met, note)


def run() -> list[Row]:
    from fmnist_core.data import load_fashion_mnist

    item = load_fashion_mnist().test_images[0]
    rows = []
    for width, height, label in ((8000, 5000, "40-megapixel PNGs"), (4000, 4000, "16.0-megapixel PNGs")):
        picture = large_picture(width, height, item)
        with tempfile.TemporaryDirectory() as folder:
            server = ServingServer(["default"], Path(folder) / "serve.log")
            try:
                server.wait_until_serving("default")
                rows.append(attack(server, picture, label))
            finally:
                server.stop()
    return rows
