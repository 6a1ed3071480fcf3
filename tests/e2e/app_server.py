"""The real app (`streamlit run streamlit_app.py`) on a free loopback port, and Debian's Chromium to drive it.

Used by the browser tests' fixtures and by docs/screenshots.py; it knows nothing about pytest.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 90
VIEWPORT = {"width": 1400, "height": 1000}
OPERATOR_PASSWORD = "e2e-operator"  # the browser tests' server has an operator, who signs in with this
WEBSOCKET_HEADER_LINE_BYTES = 262144  # as `make run` sets WEBSOCKETS_MAX_LINE_LENGTH (Makefile)


class AppServerError(RuntimeError):
    """The app exited or did not answer; the message ends with the server's log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_shipped_model(models_dir: Path) -> Path:
    """A model store holding only a copy of the shipped default model, so the repository's models/ is never written."""
    shutil.copytree(REPO / "models" / "default", models_dir / "default")
    return models_dir


class AppServer:
    """A `streamlit run streamlit_app.py` process serving the models in `models_dir`, and its log."""

    def __init__(self, models_dir: Path, log_path: Path, one_tensorflow_thread: bool = True, port: int | None = None,
                 operator_password: str | None = None, repo: Path = REPO, environment: dict[str, str] | None = None):
        self.port = port or free_port()  # a port of its own, or a stopped server's, to restart it where it was
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path, self.models_dir = log_path, models_dir
        env = {**os.environ, "FMNIST_MODELS_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
               "WEBSOCKETS_MAX_LINE_LENGTH": str(WEBSOCKET_HEADER_LINE_BYTES)}
        env.pop("FMNIST_OPERATOR_PASSWORD", None)
        if operator_password:
            env["FMNIST_OPERATOR_PASSWORD"] = operator_password
        env.update(environment or {})  # settings of the server under test (FMNIST_…)
        if one_tensorflow_thread:
            # For the tests: a run then leaves a core to the browser, which otherwise takes a minute to load
            # a page's scripts while training saturates both cores of a small machine. The benchmarks measure
            # the app as users run it, with TensorFlow's own thread counts.
            env["TF_NUM_INTRAOP_THREADS"] = "1"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            # .streamlit/config.toml as `make run` uses it (address, allowed hosts, no file watcher); only the port
            # differs, and headless keeps Streamlit from opening a browser of its own
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(self.port),
             "--server.headless", "true"],
            cwd=repo, env=env, stdout=self.log, stderr=subprocess.STDOUT,  # another checkout, to compare builds
        )

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-8000:]

    def wait_until_healthy(self) -> None:
        """Return once the app answers its health check; raise AppServerError if it exits or takes too long."""
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AppServerError(f"the app exited with code {self.process.returncode}; server log:\n"
                                     f"{self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AppServerError(f"the app did not answer within {SERVER_START_SECONDS}s; server log:\n{self.log_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def launch_chromium(playwright):
    """Debian's Chromium, headless; raises FileNotFoundError when it is not installed."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (`make test` does it).")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
