"""What a hostile or unlucky visitor can try against the real server (#19, #30): Markdown in a name, a rebound Host
header on the app's WebSocket, the server settings `make run` uses, a closed tab's uploads, many large cookies."""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import subprocess
import sys
import threading
import tomllib
import urllib.request
from urllib.parse import urlparse

import numpy as np
from app_actions import (
    RUN_SECONDS,
    open_page,
    png_file,
    prediction,
    run_heading,
    run_outcome,
    start_run,
    upload,
    upload_result,
    wait_until_no_run,
)
from app_server import REPO, VIEWPORT, WEBSOCKET_HEADER_LINE_BYTES, AppServer, copy_shipped_model, free_port
from playwright.sync_api import expect
from waiting import wait_until

ANKLE_BOOT = 4390  # a test image the shipped model names correctly with about 96 %


class _Listener(http.server.ThreadingHTTPServer):
    """A web server on loopback that only counts the requests it gets (a stranger's tracking pixel)."""

    def __init__(self):
        self.requests: list[str] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                listener.requests.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


def test_a_run_name_in_markdown_is_shown_as_typed_to_every_visitor_and_fetches_nothing(new_page, app_server):
    listener = _Listener()
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    name = f"![](http://127.0.0.1:{listener.server_port}/p.png) **hi**"
    starter, stranger = new_page(), new_page()
    try:
        wait_until_no_run(starter, app_server.url)
        open_page(starter, app_server.url, query="preset=quick&epochs=1&train_subset_size=2000")
        start_run(starter, name)  # waits for the heading `Run “<name>”`, character for character
        open_page(stranger, app_server.url)
        expect(run_heading(stranger, name)).to_be_visible()
        expect(run_outcome(stranger)).to_be_visible(timeout=RUN_SECONDS * 1000)  # refreshed every second meanwhile
        for page in (starter, stranger):
            assert page.locator("img[src*='p.png'], h3 strong").count() == 0
            assert page.locator(f"a[href*='{listener.server_port}']").count() == 0  # the address is no link either
        assert listener.requests == []
    finally:
        listener.shutdown()


def test_markdown_in_a_file_name_is_shown_as_typed(page, app_server, dataset):
    name = "![](p.png) **bold** :red[red] $x^2$ :smile: <b>b</b>.png"  # a file name cannot hold a slash
    open_page(page, app_server.url, "classify")
    upload(page, [png_file(name, dataset.test_images[ANKLE_BOOT])])
    result = page.locator('[class*="st-key-upload_result_"]').first
    expect(prediction(result)).to_have_text("Ankle boot")
    expect(result.get_by_text(name, exact=True)).to_be_visible()  # every character as typed
    assert result.locator("img[src*='p.png'], strong:text-is('bold'), b, .katex").count() == 0


def _websocket_handshake(url: str, host: str) -> int:
    """The status the app's WebSocket endpoint answers to an opening handshake naming `host`."""
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request("GET", "/_stcore/stream", headers={
            "Host": host, "Origin": f"http://{host}", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Version": "13",
        })
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_websocket_for_a_rebound_host_name_is_refused_and_the_real_one_accepted(app_server):
    port = urlparse(app_server.url).port
    assert _websocket_handshake(app_server.url, f"127.0.0.1:{port}") == 101
    assert _websocket_handshake(app_server.url, f"localhost:{port}") == 101
    assert _websocket_handshake(app_server.url, f"attacker.example:{port}") in (400, 403)


def test_make_run_serves_only_this_machine_without_a_file_watcher():
    server = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1" and server["fileWatcherType"] == "none"
    assert server["allowedHosts"] == ["localhost", "127.0.0.1"]
    makefile = (REPO / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in makefile and "--server.address $(ADDRESS)" in makefile
    assert f"WEBSOCKET_HEADER_LINE_BYTES := {WEBSOCKET_HEADER_LINE_BYTES}" in makefile  # as the tests' server has it
    assert "WEBSOCKETS_MAX_LINE_LENGTH=$(WEBSOCKET_HEADER_LINE_BYTES)" in makefile


TABS = 15


def test_fifteen_train_pages_stay_drawn_when_a_run_ends_on_a_busy_server(new_page, app_server):
    """Item 5: with 15 Train pages watching a run on a busy machine, pages turned white when the run ended ("Cannot
    set a node at a delta path" in the browser). Two busy loops stand in for the visitors' load on the 2 cores when
    the test runs alone; under `make test` none: the other pytest-xdist process keeps a core busy with its own tests
    and the run trains on the other (a loop there took a core from the rest of the suite for the test's 3 minutes).
    Known limits (2026-12-04, Streamlit 1.67): with views/fragments.py's fix taken out this test passed 3 times out of
    3, so it no longer makes the machine busy enough to show the white pages. A form that stopped a long run (as the
    operator) as soon as every page showed it, 30 s shorter, failed in a fresh clone: one of the fifteen pages kept
    its curves but lost the run's heading and progress and showed no outcome 30 s after the stop (a run ending right
    after fifteen reloads; not fixed, see the #26 note of that day), so the run here still ends by itself."""
    errors: dict[int, list[str]] = {}
    pages = []
    for number in range(TABS):
        page = new_page()
        page.on("pageerror", lambda error, number=number: errors.setdefault(number, []).append(str(error)))
        pages.append(page)
    starter, watchers = pages[0], pages[1:]
    wait_until_no_run(starter, app_server.url)
    open_page(starter, app_server.url, query="preset=quick&epochs=4&train_subset_size=15000")
    for page in watchers:  # one after another, while the server is idle: 14 first loads at once can starve one
        open_page(page, app_server.url)
    other_lanes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) - 1
    busy_loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(0 if other_lanes else 2)]
    try:
        start_run(starter, "fifteen-tabs")
        for page in watchers:  # all at once, as a class pressing reload together; the run shows on each
            page.reload(wait_until="commit")
        for page in watchers:
            expect(run_heading(page, "fifteen-tabs")).to_be_visible(timeout=RUN_SECONDS * 1000)
        expect(run_outcome(starter)).to_be_visible(timeout=RUN_SECONDS * 1000)
        starter.wait_for_timeout(5000)  # the timed redraws that follow the end, where the pages turned white
        without_outcome = []
        for number, page in enumerate(watchers, start=1):
            try:
                expect(run_outcome(page)).to_be_visible(timeout=30_000)
            except AssertionError:
                without_outcome.append(number)
    finally:
        for loop in busy_loops:
            loop.kill()
            loop.wait()
    white = [number for number, page in enumerate(pages)
             if not page.get_by_role("heading", name="Train a CNN", exact=True).is_visible()]
    assert not white and not errors and not without_outcome, (
        f"pages {white} turned white, pages {without_outcome} show no outcome; browser errors: {errors}")


def test_after_a_server_restart_the_page_says_which_uploads_the_server_no_longer_has(browser, tmp_path, dataset):
    """Item 11: after a restart the uploader still lists the files the old server held, and the next upload made
    their results vanish while their names stayed, with no word why. Now the page says so and what to do."""
    models = copy_shipped_model(tmp_path / "models")
    server = AppServer(models, tmp_path / "first.log")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        server.wait_until_healthy()
        page = context.new_page()
        open_page(page, server.url, "classify")
        upload(page, [png_file("before-restart.png", dataset.test_images[ANKLE_BOOT])])
        expect(prediction(upload_result(page, "before-restart.png"))).to_contain_text("Ankle boot")
        app = page.locator('[data-testid="stApp"]')
        server.stop()
        expect(app).not_to_have_attribute("data-test-connection-state", "CONNECTED")  # the browser noticed
        server = AppServer(models, tmp_path / "second.log", port=server.port)
        server.wait_until_healthy()
        # the browser reconnects by itself; the next upload goes to the new server
        expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=60_000)
        upload(page, [png_file("after-restart.png", dataset.test_images[ANKLE_BOOT])])
        expect(prediction(upload_result(page, "after-restart.png"))).to_contain_text("Ankle boot", timeout=60_000)
        expect(page.get_by_text("1 of the pictures listed above was uploaded before the server restarted")
               ).to_be_visible()
        expect(upload_result(page, "before-restart.png")).to_have_count(0)
    finally:
        context.close()
        server.stop()


def _uploads_held(url: str) -> int:
    """Bytes of uploaded files the server holds, all sessions together (Streamlit's own metrics)."""
    with urllib.request.urlopen(f"{url}/_stcore/metrics?families=cache_memory_bytes", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    return sum(int(float(line.split()[-1])) for line in lines if 'cache_type="UploadedFileManager"' in line)


def test_a_closed_tabs_uploads_are_freed_within_a_minute_without_another_visitor(page, app_server, dataset):
    """#30 item 5: the memory of sessions that uploaded and closed was kept until another visitor came (and went:
    Streamlit drops a disconnected session only as another one disconnects, past its 2-minute reconnect window)."""
    before = _uploads_held(app_server.url)
    open_page(page, app_server.url, "classify")
    noise = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)  # a 3 MB PNG
    upload(page, [png_file("noise.png", noise), png_file("boot.png", dataset.test_images[ANKLE_BOOT])])
    expect(prediction(upload_result(page, "boot.png"))).to_have_text("Ankle boot")
    # the noise's 3 MB may still be on its way when the boot's answer shows: held once it has arrived
    wait_until(lambda: _uploads_held(app_server.url) >= before + 3_000_000, 30, "the uploads were not held",
               interval_seconds=0.5)
    page.context.close()
    wait_until(lambda: _uploads_held(app_server.url) <= before, 60, "the closed tab's uploads were not freed",
               interval_seconds=1)


def test_a_browser_with_many_large_cookies_gets_the_app(new_page, app_server):
    """#30 item 7: with 20 cookies of 3.9 KB (other apps' on the same host) the page stayed at "Skip to main
    content": the WebSocket handshake's Cookie line was over the 8 KB the `websockets` library reads, and the server
    never answered it."""
    page = new_page()
    page.context.add_cookies([{"name": f"other_app_{number}", "value": "x" * 3900, "domain": "127.0.0.1",
                               "path": "/"} for number in range(20)])
    open_page(page, app_server.url)
    expect(page.get_by_role("heading", name="Train a CNN")).to_be_visible()
