"""The FastAPI application: `create_app()` builds it; the lifespan loads the model once."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.artifacts import read_model_card
from app.body_limit import BodySizeLimitMiddleware
from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.inference import DenseClassifier
from app.routes import pages, predict, status
from app.security import SecurityHeadersMiddleware
from app.static_files import VersionedStaticFiles

# Uvicorn configures its own loggers only; this one reaches its output at its log level.
logger = logging.getLogger("uvicorn.error")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    classifier = DenseClassifier.load(settings.model_path)
    # The first matrix product pays for lazy set-up inside NumPy; not the first user.
    classifier.predict(np.zeros((1, classifier.input_size), dtype=np.float32))
    app.state.model_card = read_model_card(settings.model_path)
    app.state.classifier = classifier
    # Importing TensorFlow leaves about a million objects for the garbage collector to walk
    # on every full collection, a latency spike of tens of milliseconds; none of them is ever
    # freed, so they are moved out of its way.
    gc.collect()
    gc.freeze()
    logger.info(
        "Serving %s (%s)", settings.model_path, app.state.model_card.get("created", "no card")
    )
    yield
    app.state.classifier = None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Digit Canvas",
        summary="Which digit is this? A Dense MNIST network answers, with all ten confidences.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.classifier = None
    app.state.model_card = {}
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit=settings.max_request_bytes,
        path_limits={"/api/predict/pixels": settings.max_pixels_request_bytes},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(pages.router)
    app.include_router(predict.router)
    app.include_router(status.router)
    app.state.static_files = VersionedStaticFiles()
    app.mount("/static", app.state.static_files, name="static")
    return app
