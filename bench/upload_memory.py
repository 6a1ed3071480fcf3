"""Server memory while visitors upload the largest pictures the caps allow, and after they leave (#19 item 7).

Three browser sessions (Debian's Chromium) on Classify each upload 3 noise PNGs of 9.5 MB (28.5 MB, under the
30 MB per-session cap), three times over (each round a reload: new sessions); the tabs close; two new visitors
arrive 135 s later, past Streamlit's 120 s reconnect window. Prints the server's RSS and high-water mark.
Run alone (it starts its own server): `.venv/bin/python bench/upload_memory.py`.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from app_actions import open_page, upload  # noqa: E402
from app_server import VIEWPORT, AppServer, copy_shipped_model, launch_chromium  # noqa: E402

SESSIONS, ROUNDS, RECONNECT_WINDOW_SECONDS = 3, 3, 120


def megabytes(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (the high-water mark) of process `pid`, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def big_pictures() -> list[dict]:
    rng = np.random.default_rng(0)
    files = []
    for number in range(3):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (1780, 1780, 3), dtype=np.uint8)).save(buffer, format="PNG")
        files.append({"name": f"big-{number}.png", "mimeType": "image/png", "buffer": buffer.getvalue()})
    return files


def visit(browser, url: str):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(120_000)
    open_page(page, url, "classify")
    return page


def main() -> None:
    files = big_pictures()
    print("pictures (MB):", [round(len(file["buffer"]) / 1e6, 2) for file in files])
    server = AppServer(copy_shipped_model(Path(tempfile.mkdtemp())), Path(tempfile.mkdtemp()) / "server.log",
                       one_tensorflow_thread=False)
    server.wait_until_healthy()
    pid = server.process.pid

    def report(moment: str) -> None:
        print(f"{moment}: RSS {megabytes(pid, 'VmRSS'):.0f} MB, high-water mark {megabytes(pid, 'VmHWM'):.0f} MB")

    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            pages = [visit(browser, server.url) for _ in range(SESSIONS)]
            report(f"{SESSIONS} sessions on Classify, nothing uploaded")
            for round_number in range(1, ROUNDS + 1):
                for page in pages:
                    upload(page, files)
                for page in pages:
                    expect(page.locator('[class*="st-key-upload_result_"]')).to_have_count(len(files), timeout=180_000)
                report(f"round {round_number}, every picture answered")
                for page in pages:
                    page.reload()
                    open_page(page, server.url, "classify")
            for page in pages:
                page.context.close()
            time.sleep(RECONNECT_WINDOW_SECONDS + 15)
            report(f"{RECONNECT_WINDOW_SECONDS + 15} s after the tabs closed")
            visit(browser, server.url).context.close()
            visit(browser, server.url)
            report("then two new visitors")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
