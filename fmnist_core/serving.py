"""The prediction server, `python -m fmnist_core serve [MODEL ...]`: TensorFlow Serving's REST API over saved models.

    GET  /v1/models/NAME[/versions/1]            the model's status
    GET  /v1/models/NAME[/versions/1]/metadata   its signature (and class names)
    POST /v1/models/NAME[/versions/1]:predict    {"instances": [...]} -> {"predictions": [...]}

Built on Starlette and uvicorn (which Streamlit runs on too). By default each model runs through the app's own
traced `Classifier`, so the server's answers are the Classify page's; `--runtime` serves a checked LiteRT (float or
int8) or ONNX export instead. Concurrent requests are batched on the model (fmnist_core/batching.py).
Request bodies are read into memory up to MAX_BODY_BYTES and parsed as JSON only:
nothing a client sends is loaded as a model or written to disk, and a model name is only ever looked up among the
models loaded at start. How long a client may take, and how much the server holds at once, is in serving_limits.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .batching import DEFAULT_MAX_BATCH_IMAGES, Batcher, BatcherClosedError
from .data import CLASS_NAMES
from .export import CHOICES
from .inference import UNSURE_BELOW
from .serving_limits import BodyLimits, InFlight, MemoryRelease, ServerBusyError, ServingLimits, uvicorn_settings
from .tf_serving import (
    MAX_BODY_BYTES,
    RequestError,
    metadata_answer,
    parse_predict,
    predict_answer,
    prepare_pictures,
    status_answer,
)

SERVED_VERSION = 1  # the store keeps one version of each model; a SavedModel export is version 1 unless asked
# Bodies up to this size are parsed on the event loop (about 0.1 ms); larger ones (a 256-image request takes ~10 ms)
# in a worker thread, so that small requests are not held up behind them.
SMALL_BODY_BYTES = 64_000
# An over-limit body is read and discarded up to this many bytes and seconds, so that its client gets the 413.
MAX_DRAIN_BYTES, DRAIN_SECONDS = 4 * MAX_BODY_BYTES, 5.0
# After a request with pictures or a body this large, the memory it freed is handed back to the system.
LARGE_BODY_BYTES = 4_000_000
log = logging.getLogger("uvicorn.error")
ROUTES_HINT = ("This server answers GET /v1/models/NAME, GET /v1/models/NAME/metadata and "
               "POST /v1/models/NAME:predict (optionally with /versions/1 after NAME).")


RUNTIMES = {  # --runtime: what runs the model (export formats are made and checked at start, then loaded)
    "keras": None,  # the app's own traced Classifier: exactly the Classify page's answers
    "litert": CHOICES["litert"],  # float: the fastest one image at a time (0.14 vs 0.8 ms here)
    "litert-int8": CHOICES["litert-int8"],  # int8: about 4x the images/s of float in batches, ~0.1 point less accurate
    "onnx": CHOICES["onnx"],
}


@dataclass
class ServedModel:
    """A loaded model as the server offers it."""

    name: str
    version: int
    class_names: tuple[str, ...]
    predict: Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) uint8 -> (N, 10) float32, safe from any thread
    batcher: Batcher | None  # None: each request runs on the model by itself
    runtime: str
    unsure_below: float = UNSURE_BELOW  # its card's: under this top probability the Classify page says "Unsure"

    async def probabilities(self, images: np.ndarray) -> np.ndarray:
        if self.batcher is None:
            return await run_in_threadpool(self.predict, images)
        try:
            return await asyncio.wrap_future(self.batcher.submit(images))
        except BatcherClosedError as error:
            raise RequestError(str(error), status=503) from error


def _checked_export_runtime(model, saved, runtime: str, dataset) -> Callable[[np.ndarray], np.ndarray]:
    """The model exported for `runtime` into a temporary folder, checked there, and loaded by that runtime."""
    from .export import export_model
    from .runtimes import load_runtime

    format, int8 = RUNTIMES[runtime]
    with tempfile.TemporaryDirectory(prefix="fmnist-serve-") as folder:
        result = export_model(model, saved, format, folder, dataset, int8=int8)
        loaded = load_runtime(format, result.path)  # read into memory: the folder can go
    return loaded.probabilities


def load_served_models(names: Iterable[str], models_dir: Path | str | None = None, batching: bool = True,
                       max_batch_images: int = DEFAULT_MAX_BATCH_IMAGES, runtime: str = "keras"
                       ) -> dict[str, ServedModel]:
    """Load each named model from the store (ModelStoreError if one cannot be) and make it ready to serve with
    `runtime` (a key of RUNTIMES; ExportError if its export fails its check)."""
    from .settings import REPOSITORY_MODELS
    from .store import ModelStore

    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}.")
    store, models, dataset = ModelStore(models_dir if models_dir is not None else REPOSITORY_MODELS), {}, None
    for name in dict.fromkeys(names):  # each once, in the order given
        saved = store.get(name)
        if runtime == "keras":
            predict = store.load_classifier(saved.name).probabilities
        else:
            if dataset is None:
                from .data import load_fashion_mnist

                dataset = load_fashion_mnist()  # the export's check (and int8 calibration) needs it
            predict = _checked_export_runtime(store.load_model(saved.name), saved, runtime, dataset)
        batcher = Batcher(predict, max_batch_images, name) if batching else None
        class_names = tuple(saved.card.get("class_names") or CLASS_NAMES)
        unsure_below = UNSURE_BELOW if saved.unsure_below is None else saved.unsure_below
        models[saved.name] = ServedModel(saved.name, SERVED_VERSION, class_names, predict, batcher, runtime,
                                         unsure_below)
    return models


# ---- requests ------------------------------------------------------------------------------------------------------
def _served(request: Request) -> ServedModel:
    """The model (and version) the request's path names; RequestError (404) if it is not served here."""
    models: dict[str, ServedModel] = request.app.state.models
    name = request.path_params["name"]
    if name not in models:
        if name.endswith(":predict"):
            raise RequestError(f"{request.url.path} takes POST, not {request.method}.", status=405)
        raise RequestError(f"no model named {name[:60]!r} is served here (served: {', '.join(models)}). "
                           f"Ask /v1/models/{next(iter(models))}, or start the server with that model.", status=404)
    served = models[name]
    version = request.path_params.get("version")
    if version is not None and (not version.isdigit() or int(version) != served.version):
        raise RequestError(f"model {name!r} has no version {version[:20]!r}: this server serves version "
                           f"{served.version}. Ask /v1/models/{name}/versions/{served.version}, or leave "
                           "/versions/... out for the latest.", status=404)
    return served


async def _read_body(request: Request) -> bytes:
    """The body, or RequestError 413 when it exceeds MAX_BODY_BYTES; only the first MAX_BODY_BYTES are ever kept."""
    too_large = RequestError(f"the request body is over the limit of {MAX_BODY_BYTES / 1e6:g} MB. Send fewer images "
                             "per request, or smaller pictures.", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES and (
            int(declared) > MAX_DRAIN_BYTES or request.headers.get("expect", "").lower() == "100-continue"):
        raise too_large  # answered before the body is sent (the client waits for 100 Continue) or read
    chunks, size = [], 0
    stream = request.stream()
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
        chunks.clear()
        # Read on and discard the rest (within bounds) before answering: most clients send the whole body before they
        # read the answer, and a connection closed on unread data reaches them as a reset instead of this 413.
        with contextlib.suppress(TimeoutError, RequestError):  # RequestError: the body's time limit (BodyLimits)
            async with asyncio.timeout(DRAIN_SECONDS):
                async for chunk in stream:
                    size += len(chunk)
                    if size > MAX_DRAIN_BYTES:
                        break
    except ClientDisconnect:
        request.state.body_bytes_read = size
        raise
    raise too_large


async def _status(request: Request) -> JSONResponse:
    return JSONResponse(status_answer(_served(request).version))


async def _metadata(request: Request) -> JSONResponse:
    served = _served(request)
    return JSONResponse(metadata_answer(served.name, served.version, served.class_names))


async def _predict(request: Request) -> JSONResponse:
    served, state = _served(request), request.app.state
    body = await _read_body(request)
    async with state.bytes_in_flight.hold(len(body)):
        parsed = parse_predict(body) if len(body) <= SMALL_BODY_BYTES else await run_in_threadpool(parse_predict, body)
        async with state.images_in_flight.hold(len(parsed.images)):
            if parsed.pictures:  # decoding pictures (Pillow) takes milliseconds to seconds: in the bounded pool
                await asyncio.get_running_loop().run_in_executor(
                    state.decode_pool, prepare_pictures, parsed, round(state.limits.max_picture_megapixels * 1e6))
            probabilities = await served.probabilities(parsed.images)
    if parsed.pictures or len(body) >= LARGE_BODY_BYTES:
        state.memory_release.soon(state.decode_pool)
    return JSONResponse(predict_answer(probabilities, parsed, served.class_names, served.unsure_below))


async def _request_error(request: Request, error: RequestError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, ServerBusyError) else {}
    if getattr(error, "body_unread", False):
        headers["Connection"] = "close"  # the rest of the body may still come: no next request on this connection
    return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)


async def _client_gone(request: Request, error: ClientDisconnect) -> Response:
    """One line in the log for a client that closed its connection before sending its whole body (no one to answer)."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.warning("%s went away after %s of %s bytes of its body to %s %s; nothing answered", client,
                getattr(request.state, "body_bytes_read", "?"), request.headers.get("content-length", "?")[:20],
                request.method, request.url.path[:100])
    return Response(status_code=400)


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    return JSONResponse({"error": f"{request.method} {request.url.path[:200]}: {error.detail}. {ROUTES_HINT}"},
                        status_code=error.status_code)


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"error": f"internal error ({type(error).__name__}) while answering {request.url.path[:200]};"
                                  " the server goes on serving. Report it with the server's log."}, status_code=500)


def create_app(models: dict[str, ServedModel], limits: ServingLimits | None = None) -> Starlette:
    """The ASGI app serving `models` within `limits` (closing their batchers when it shuts down)."""
    if not models:
        raise ValueError("models is empty: serve at least one model.")
    limits = limits or ServingLimits()
    decode_pool = ThreadPoolExecutor(limits.decode_threads, thread_name_prefix="decode")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        decode_pool.shutdown(wait=False, cancel_futures=True)
        for served in models.values():
            if served.batcher is not None:
                await run_in_threadpool(served.batcher.close)

    versioned = "/v1/models/{name}/versions/{version}"
    app = Starlette(
        routes=[
            Route("/v1/models/{name}:predict", _predict, methods=["POST"]),
            Route(versioned + ":predict", _predict, methods=["POST"]),
            Route("/v1/models/{name}", _status, methods=["GET"]),
            Route(versioned, _status, methods=["GET"]),
            Route("/v1/models/{name}/metadata", _metadata, methods=["GET"]),
            Route(versioned + "/metadata", _metadata, methods=["GET"]),
        ],
        middleware=[Middleware(BodyLimits, limits=limits)],
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, ClientDisconnect: _client_gone,
                            Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.models, app.state.limits, app.state.decode_pool = models, limits, decode_pool
    app.state.bytes_in_flight = InFlight(round(limits.max_mb_in_flight * 1e6), "bytes of requests", limits.busy_wait)
    app.state.images_in_flight = InFlight(limits.max_images_in_flight, "images", limits.busy_wait)
    app.state.memory_release = MemoryRelease()
    return app


def serve(names: Iterable[str], models_dir: Path | str | None = None, host: str = "127.0.0.1", port: int = 8502,
          batching: bool = True, max_batch_images: int | None = None, access_log: bool = False,
          runtime: str = "keras", limits: ServingLimits | None = None) -> None:
    """Load the models and answer requests on host:port within `limits` until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    models = load_served_models(names, models_dir, batching, max_batch_images or DEFAULT_MAX_BATCH_IMAGES, runtime)
    for name, served in models.items():
        sys.stderr.write(f"serving {name!r} (version {served.version}, runtime {served.runtime}, batching "
                         f"{'on' if served.batcher else 'off'}): POST http://{host}:{port}/v1/models/{name}:predict\n")
    # The pure-Python HTTP parser and event loop, whatever else is installed, so figures hold for any install. Measured
    # here (32 single-image clients): httptools parses 10-35 % more requests/s, uvloop adds little; not needed.
    # (uvicorn_settings: the h11 protocol, with a time limit on each request's headers.)
    limits = limits or ServingLimits()
    uvicorn.run(create_app(models, limits), host=host, port=port, loop="asyncio", access_log=access_log,
                log_level="info", timeout_graceful_shutdown=5, **uvicorn_settings(limits))
