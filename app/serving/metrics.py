"""Prometheus metrics: what the service does, for the tools operators already scrape with.

Requests by route template and status with their latency, preprocessing and inference time,
predictions by digit, refused inputs by status and reason, and the served model's identity.
Every label takes one of a few values: route templates (never raw paths), known methods,
the statuses the app sends, ten digits, the reasons below.

Several workers (gunicorn) share one view through prometheus_client's multi-process mode:
each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR, a fresh directory the
supervisor creates at start (app.serving.workers), and GET /metrics, answered by whichever
worker, adds them up. This module is imported by workers only, after that variable is set:
prometheus_client chooses where values live when it is first imported.

With `metrics_port` set, /metrics is served on that port only and nowhere else; the public
port answers 404 for it, and the metrics port for anything else.
"""

import os
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.serving.isolation import IsolatedPreprocessing, runs_inline
from app.serving.preprocessing import Limits

T = TypeVar("T")

# Not a label value any route has: requests that matched no route (404s of any path).
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
METRICS_PATH = "/metrics"

# A canvas prediction takes 1-3 ms on one core; a photo decoded in a process of its own,
# 20-100 ms; the slowest answers wait up to 10 s for a decoding slot.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
PREPROCESSING_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
# The forward pass in NumPy: 40-75 us for one image, more for a batch of 64.
INFERENCE_BUCKETS = (2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2)

# No `_created` series beside each counter and histogram: not kept in multi-process mode,
# and Prometheus does not need them.
disable_created_metrics()

REQUESTS = Counter(
    "digit_canvas_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "digit_canvas_http_request_duration_seconds",
    "From a request's headers to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS_IN_PROGRESS = Gauge(
    "digit_canvas_http_requests_in_progress",
    "Requests being handled now, by all live workers together.",
    multiprocess_mode="livesum",
)
PREPROCESSING_SECONDS = Histogram(
    "digit_canvas_preprocessing_seconds",
    "Image bytes to model input, per image, refused ones included: on the event loop "
    "(canvas exports), or in an isolated process (every other image; waiting for one too).",
    ["where"],
    buckets=PREPROCESSING_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "digit_canvas_inference_seconds",
    "The network's forward pass, per call (one request's images).",
    buckets=INFERENCE_BUCKETS,
)
PREDICTIONS = Counter(
    "digit_canvas_predictions", "Predictions made, by predicted digit.", ["digit"]
)
REJECTED_INPUTS = Counter(
    "digit_canvas_rejected_inputs",
    "Requests, and images of a batch, refused for what they carry, by status and reason.",
    ["status", "reason"],
)
MODEL_INFO = Gauge(
    "digit_canvas_model_info",
    "The served model, from its card: 1 for the model the live workers serve.",
    ["name", "sha256", "created"],
    multiprocess_mode="livemax",
)

# Children made once: `labels()` costs a lock and a lookup per call. Every digit shows from
# the start, at 0, as Prometheus' rate() expects.
PREPROCESSED_INLINE = PREPROCESSING_SECONDS.labels(where="inline")
PREPROCESSED_ISOLATED = PREPROCESSING_SECONDS.labels(where="isolated")
PREDICTED_DIGIT = [PREDICTIONS.labels(digit=str(digit)) for digit in range(10)]

# Refusals that FastAPI, Starlette or the routes raise as HTTPException: their status says
# which one it is (the README's table of statuses). 404, 405 and "not loaded" are not about
# the input.
HTTP_REJECTION_REASONS = {
    400: "unparsable_body",
    408: "too_slow",
    413: "too_large",
    415: "unsupported_content_type",
    422: "invalid_request",
}


def count_rejection(status: int, reason: str) -> None:
    REJECTED_INPUTS.labels(status=str(status), reason=reason).inc()


async def preprocessed(
    isolation: IsolatedPreprocessing,
    work: Callable[[bytes, Limits], T],
    data: bytes,
    limits: Limits,
) -> T:
    """`isolation.process(work, data, limits)`, its time recorded by where it ran."""
    timer = PREPROCESSED_INLINE if runs_inline(data) else PREPROCESSED_ISOLATED
    with timer.time():
        return await isolation.process(work, data, limits)


def count_prediction(digit: int) -> None:
    PREDICTED_DIGIT[digit].inc()


def show_model(card: dict[str, Any]) -> None:
    """The served model's identity as an info metric (value 1), from its card."""
    MODEL_INFO.labels(
        name=card.get("name", "unknown"),
        sha256=card.get("file", {}).get("sha256", "unknown"),
        created=card.get("created", "unknown"),
    ).set(1)


def exposed_registry() -> CollectorRegistry:
    """What GET /metrics shows: this process' metrics, or every worker's added up."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def route_template(scope: Scope) -> str:
    """The path its route was declared with, as the router left it in the scope:
    "/api/predict"; "/static/{path}" for a mounted application, as OpenTelemetry names it."""
    if (route := scope.get("route")) is not None:
        return route.path
    # Set by a Mount that took the request (FastAPI's router records no route for it): the
    # root path grew by the mount's path.
    if "app_root_path" in scope:
        return scope["root_path"].removeprefix(scope["app_root_path"]) + "/{path}"
    return UNMATCHED


class RequestMetricsMiddleware:
    """Counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the application fails before it answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = perf_counter()
        REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            REQUESTS_IN_PROGRESS.dec()
            method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
            route = route_template(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_SECONDS.labels(method, route).observe(perf_counter() - started)


class MetricsPortMiddleware:
    """/metrics on the metrics port only, and nothing else there: 404 for the rest."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            on_metrics_port = server is not None and server[1] == self.port
            if on_metrics_port != (scope["path"] == METRICS_PATH):
                await JSONResponse({"detail": "Not Found"}, 404)(scope, receive, send)
                return
        await self.app(scope, receive, send)
