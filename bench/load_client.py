"""A small HTTP/1.1 load generator for the serving benchmark: N clients, each on its own keep-alive connection,
sending prepared requests back to back until a deadline, on one asyncio loop.

Written for the benchmark rather than taken from a library so that the client costs the shared 2-core CPU as
little as possible (about 50 us a request) and checks every answer's classes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    images: int = 0
    wrong_answers: int = 0  # an answer whose classes differ from the expected ones
    errors: list[str] = field(default_factory=list)  # non-200 statuses and connection errors

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


@dataclass(frozen=True)
class PreparedRequest:
    wire: bytes  # the whole HTTP request
    images: int
    expected_classes: list[str] | None  # None: not checked


def predict_request(host: str, port: int, model: str, body: bytes, images: int,
                    expected_classes: list[str] | None = None) -> PreparedRequest:
    head = (f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return PreparedRequest(head.encode() + body, images, expected_classes)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status, length = int(status_line.split()[1]), 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _client(host: str, port: int, requests: list[PreparedRequest], first: int, warm_up_until: float,
                  deadline: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        index = first
        while (start := time.perf_counter()) < deadline:
            request = requests[index % len(requests)]
            index += 1
            writer.write(request.wire)
            status, body = await _read_answer(reader)
            end = time.perf_counter()
            if status != 200:
                result.errors.append(f"{status}: {body[:200]!r}")
                continue
            if start < warm_up_until:
                continue
            result.latencies.append(end - start)
            result.images += request.images
            if request.expected_classes is not None and json.loads(body)["classes"] != request.expected_classes:
                result.wrong_answers += 1
    finally:
        writer.close()


def run_load(host: str, port: int, requests: list[PreparedRequest], clients: int, seconds: float,
             warm_up_seconds: float = 1.0) -> LoadResult:
    """`clients` connections sending `requests` in turn for warm_up_seconds + seconds; figures cover `seconds`."""

    async def main() -> LoadResult:
        now = time.perf_counter()
        warm_up_until, deadline = now + warm_up_seconds, now + warm_up_seconds + seconds
        result = LoadResult(seconds)
        outcomes = await asyncio.gather(*(
            _client(host, port, requests, client * 7, warm_up_until, deadline, result) for client in range(clients)
        ), return_exceptions=True)
        result.errors += [f"{type(error).__name__}: {error}" for error in outcomes if isinstance(error, Exception)]
        # requests still running at the deadline finish after it: count the time they took
        result.seconds = time.perf_counter() - warm_up_until
        return result

    return asyncio.run(main())
