"""The FastAPI application: `create_app()` builds it; the lifespan loads the model once."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from app.serving.connections import BodyDeadlineMiddleware
from app.serving.errors import PlainErrorsAsJSONMiddleware, install_error_handlers
from app.serving.isolation import IsolatedPreprocessing
from app.serving.logs import quiet_repeated_errors
from app.serving.metrics import MetricsPortMiddleware, RequestMetricsMiddleware, show_model
from app.serving.model_file import ModelFileError
from app.serving.rate_limit import RateLimiter
from app.serving.request_logs import RequestLogMiddleware
from app.serving.routes import docs, feedback, metrics, pages, predict, read, status
from app.serving.security import SecurityHeadersMiddleware
from app.serving.served_models import load_served_models
from app.serving.settings import Settings
from app.serving.static_files import VersionedStaticFiles

# Uvicorn configures its own loggers only; this one reaches its output at its log level.
logger = logging.getLogger("uvicorn.error")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    quiet_repeated_errors()
    try:
        models = load_served_models(settings)
    except ModelFileError as error:
        logger.error("Cannot serve the model: %s", error)
        raise
    for model in models.values():
        # The first matrix product pays for lazy set-up inside NumPy; not the first user.
        model.classifier.predict(np.zeros((1, model.classifier.input_size), dtype=np.float32))
    app.state.models = models
    show_model(models["default"].card)
    app.state.isolation = IsolatedPreprocessing(
        slots=settings.decode_slots,
        queue=settings.decode_queue,
        cpu_seconds=settings.decode_cpu_seconds,
        memory_mb=settings.decode_memory_mb,
    )
    logger.info(
        "Serving %s (%s)", settings.model_path, models["default"].card.get("created", "no card")
    )
    yield
    app.state.models = {}
    app.state.isolation.close()
    if app.state.store is not None:
        app.state.store.close()


class DigitCanvasAPI(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack inside layers of ours: its own outermost ones (server errors, the
        request body limit) answer outside middleware added with `add_middleware`, and their
        responses, too, get the security headers and errors in JSON, are counted and timed,
        and carry the request's id."""
        settings: Settings = self.state.settings
        return RequestLogMiddleware(
            RequestMetricsMiddleware(
                SecurityHeadersMiddleware(
                    PlainErrorsAsJSONMiddleware(super().build_middleware_stack())
                )
            ),
            log_requests=settings.log_format == "json",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = DigitCanvasAPI(
        title="Digit Canvas",
        summary="Which digit is this? A Dense MNIST network answers, with all ten confidences.",
        version="1.0.0",
        lifespan=lifespan,
        max_body_size=settings.max_request_bytes,
        # Served by app.serving.routes.docs, from local assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.models = {}
    app.state.store = None  # opened by the first request that needs it
    app.state.store_opening = asyncio.Lock()
    app.state.corrections_rate = RateLimiter(settings.corrections_per_minute, window=60.0)
    install_error_handlers(app)
    app.add_middleware(BodyDeadlineMiddleware, seconds=settings.body_timeout_seconds)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    if settings.metrics_port is not None:
        app.add_middleware(MetricsPortMiddleware, port=settings.metrics_port)
    app.include_router(pages.router)
    app.include_router(predict.router)
    app.include_router(predict.pixels_router, max_body_size=settings.max_pixels_request_bytes)
    app.include_router(read.router)
    app.include_router(feedback.router)
    app.include_router(status.router)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    app.state.static_files = VersionedStaticFiles()
    app.mount("/static", app.state.static_files, name="static")
    app.mount(docs.ASSETS_URL, docs.assets, name="docs-assets")
    return app
