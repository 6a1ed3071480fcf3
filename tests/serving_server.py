"""The prediction server started as the README starts it (`python -m fmnist_core serve MODEL ... --port N`), on a
free loopback port, and a JSON client for it. Used by tests/test_serving.py and bench/serving.py; knows no pytest.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 90


class ServingServerError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServingServer:
    """`python -m fmnist_core serve` in a subprocess on 127.0.0.1; `stop()` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, models: list[str], log_path: Path, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fmnist_core", "serve", *models, "--port", str(self.port), *(extra_args or [])],
            cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_until_serving(self, model: str) -> None:
        """Return once GET /v1/models/MODEL answers 200; raise ServingServerError if it exits or takes too long."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServingServerError(f"the server exited with code {self.process.returncode}:\n{self.log_text()}")
            try:
                if self.get(f"/v1/models/{model}")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise ServingServerError(f"the server did not answer within {START_SECONDS}s:\n{self.log_text()}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        """(status, JSON answer) of one request; 4xx/5xx answers are returned, not raised."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)

    def predict(self, model: str, payload: object) -> tuple[int, dict]:
        return self.request("POST", f"/v1/models/{model}:predict", json.dumps(payload).encode(),
                            {"Content-Type": "application/json"})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def serving(models: list[str], log_path: Path, extra_args: list[str] | None = None,
            env: dict[str, str] | None = None) -> Iterator[ServingServer]:
    """The server answering for `models` while inside (a test fails, saying why, if it cannot start); stopped after."""
    import pytest

    server = ServingServer(models, log_path, extra_args, env=env)
    try:
        server.wait_until_serving(models[0])
    except ServingServerError as error:
        server.stop()
        pytest.fail(str(error))
    try:
        yield server
    finally:
        server.stop()
