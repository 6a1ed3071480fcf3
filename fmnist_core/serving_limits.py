"""What the prediction server (serving.py) holds for its clients, and for how long: slow and vanished clients,
connections waiting for a body, bytes and images in flight, picture sizes.

uvicorn has settings for some of this, used as they are (`uvicorn_settings`): idle keep-alive connections
(`timeout_keep_alive`), the size of a request's headers (`h11_max_incomplete_event_size`) and a cap on connections
(`limit_concurrency`, answered with uvicorn's plain 503). It has no time limit on receiving a request (its issue
#157; `timeout_keep_alive` restarts with every byte): the headers' limit is a subclass of its h11 protocol, since no
ASGI code runs before the headers are complete, and the body's is the ASGI middleware `BodyLimits`, which also caps
the requests waiting for their client's body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .tf_serving import RequestError

log = logging.getLogger("uvicorn.error")  # uvicorn's own log: its format, its level


@dataclass(frozen=True)
class ServingLimits:
    """The server's limits; every field is a `serve` flag (`--body-timeout 2`)."""

    header_timeout: float = field(default=10.0, metadata={"help": "seconds a client has to send a request's headers"})
    body_timeout: float = field(default=30.0, metadata={
        "help": "seconds a client has to send a request's body, from the end of its headers (408 after)"})
    max_waiting_bodies: int = field(default=64, metadata={
        "help": "requests that may wait for their body at once; one more is answered 503 (a whole body that is "
                "already there never waits)"})
    max_connections: int = field(default=512, metadata={"help": "open connections (uvicorn's limit_concurrency)"})
    keep_alive: float = field(default=5.0, metadata={"help": "seconds an idle keep-alive connection stays open"})
    max_picture_megapixels: float = field(default=16.0, metadata={
        "help": "largest b64 picture, as decoded (a JPEG decodes at 1/8 scale): 413 over it"})
    decode_threads: int = field(default=2, metadata={"help": "pictures decoded at once"})
    max_images_in_flight: int = field(default=4096, metadata={
        "help": "images in requests being answered; a request that would exceed it waits, then gets 503"})
    max_mb_in_flight: float = field(default=48.0, metadata={
        "help": "MB of request bodies being answered; a request that would exceed it waits, then gets 503"})
    busy_wait: float = field(default=2.0, metadata={"help": "seconds a request waits for room in flight before 503"})

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"{name} is {value!r}: expected a number above 0. Leave the flag out for the default.")


# A request whose body comes within this long of asking does not count as waiting for it (a client that sends its
# headers and body in two packets); one that does not must find room among max_waiting_bodies.
WAITING_GRACE = 0.05
HEADER_BYTES_LIMIT = 16 * 1024  # h11's default, named: request headers beyond it are answered 400 by uvicorn


def uvicorn_settings(limits: ServingLimits) -> dict:
    """uvicorn.run's own settings for these limits: the h11 protocol with a headers deadline, and the rest as is."""
    return {"http": header_deadline_protocol(limits.header_timeout), "limit_concurrency": limits.max_connections,
            "timeout_keep_alive": limits.keep_alive, "h11_max_incomplete_event_size": HEADER_BYTES_LIMIT}


class ServerBusyError(RequestError):
    """503: the server is at one of its limits; `retry_after` is the seconds to wait, sent as Retry-After, and
    `body_unread` says the answer comes before the request's body was read (the connection is then closed)."""

    def __init__(self, message: str, retry_after: int = 1, body_unread: bool = False):
        super().__init__(message, status=503)
        self.retry_after, self.body_unread = retry_after, body_unread


class BodyTimeoutError(RequestError):
    """408: the client did not send the whole body within the limit (the connection is then closed)."""

    body_unread = True

    def __init__(self, message: str):
        super().__init__(message, status=408)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


# ---- headers: a deadline on the protocol -----------------------------------------------------------------------
def _raw_408(message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request's headers are not complete `seconds` after it
    opened or after its previous answer (a 408 if part of a request came, silently if nothing did)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._deadline_passed)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # the headers are in: the app answers, BodyLimits times the body

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers (or the rest of an unread body) have the same time

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _deadline_passed(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return
            partial = self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]
            if partial:
                message = (f"the request's headers did not arrive within {seconds:g} s ({len(partial)} bytes came). "
                           "Send the whole request at once; a slow link needs a proxy that buffers requests.")
                self.transport.write(_raw_408(message))
                log.warning("%s sent %d bytes of a request's headers in %g s; answered 408 and closed",
                            _peer(self.client), len(partial), seconds)
            self.transport.close()

    return HeaderDeadlineProtocol


# ---- bodies: a deadline and a cap on requests waiting -------------------------------------------------------------
class BodyLimits:
    """ASGI middleware: a request's body must arrive within `body_timeout` of its headers (BodyTimeoutError after),
    and at most `max_waiting_bodies` requests may be waiting for theirs (ServerBusyError for one more). Both errors
    are raised from `receive`, so the app's error handler answers them."""

    def __init__(self, app, limits: ServingLimits):
        self.app, self.limits, self.waiting = app, limits, 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline, counted, complete, received = loop.time() + self.limits.body_timeout, False, False, 0

        async def within(moment: float) -> dict | None:
            """The next message, or None if it has not come by `moment` (uvicorn's receive may be cancelled: what
            comes later waits for the next call)."""
            try:
                async with asyncio.timeout_at(moment):
                    return await receive()
            except TimeoutError:
                return None

        async def limited_receive() -> dict:
            nonlocal counted, complete, received
            if complete:
                return await receive()
            # A body already there (or close behind its headers) comes back at once, without waiting
            message = await within(min(loop.time() + WAITING_GRACE, deadline))
            if message is None and not counted:  # this request now waits for its client
                if self.waiting >= self.limits.max_waiting_bodies:
                    raise ServerBusyError(
                        f"{self.waiting} requests are waiting for their bodies, this server's limit: try again in a "
                        "few seconds, and send each request's body at once.", retry_after=5, body_unread=True)
                self.waiting, counted = self.waiting + 1, True
            if message is None:
                message = await within(deadline)
            if message is None:
                declared = dict(scope["headers"]).get(b"content-length", b"?").decode(errors="replace")[:20]
                log.warning("%s sent %d of %s bytes of its body to %s in %g s; answered 408 and closed",
                            _peer(scope.get("client")), received, declared, scope["path"][:100],
                            self.limits.body_timeout)
                raise BodyTimeoutError(
                    f"the request's body did not arrive within {self.limits.body_timeout:g} s ({received:,} of "
                    f"{declared} bytes came). Send the whole body at once; over a slow link, send fewer or smaller "
                    "pictures per request.")
            received += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
                if counted:
                    self.waiting, counted = self.waiting - 1, False
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            if counted:
                self.waiting -= 1


# ---- in flight ----------------------------------------------------------------------------------------------------
class InFlight:
    """A budget of something requests hold while they are answered (bytes of bodies, images): `hold(amount)` waits
    up to `wait_seconds` for room, else raises ServerBusyError. A request larger than the whole budget runs alone."""

    def __init__(self, limit: int, unit: str, wait_seconds: float):
        self.limit, self.unit, self.wait_seconds, self.used = limit, unit, wait_seconds, 0
        self._room = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        amount = min(amount, self.limit)
        async with self._room:
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self._room.wait_for(lambda: self.used + amount <= self.limit)
            except TimeoutError:
                raise ServerBusyError(
                    f"this server is answering {self.used:,} {self.unit} at once, and this request's {amount:,} would "
                    f"take it over its limit of {self.limit:,}: try again in a second, or send fewer or smaller "
                    "images per request.") from None
            self.used += amount
        try:
            yield
        finally:
            async with self._room:
                self.used -= amount
                self._room.notify_all()


class MemoryRelease:
    """Hands the memory that large requests freed back to the system (glibc keeps it otherwise; Python's own garbage
    is collected as it goes), in `executor`, at most once every MIN_INTERVAL seconds: `soon()` after such a request
    runs a trim now, or once the interval has passed if one ran just before, so the last request is followed by one."""

    MIN_INTERVAL = 0.5  # a trim takes a few ms of one decode thread

    def __init__(self) -> None:
        self._pending, self._last = False, 0.0

    def soon(self, executor) -> None:
        if self._pending:
            return
        self._pending = True
        loop = asyncio.get_running_loop()
        delay = max(self._last + self.MIN_INTERVAL - time.monotonic(), 0.0)
        loop.call_later(delay, lambda: loop.run_in_executor(executor, self._trim))

    def _trim(self) -> None:
        from .memory import release_free_memory

        self._pending, self._last = False, time.monotonic()  # a request ending from now on asks for another
        release_free_memory(collect_garbage=False)
