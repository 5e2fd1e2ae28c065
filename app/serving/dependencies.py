"""What routes depend on, through FastAPI's `Depends`: the settings, the served model and
its card, all put in the application's state by `create_app` and the lifespan.

They are `async def` although they do not wait for anything: FastAPI runs a plain `def`
dependency in its thread pool, and three thread hops per request halved the throughput
(355 against 750 requests/s, measured under wrk). Unit tests swap the model for a fake one
with `app.dependency_overrides[get_classifier]`.
"""

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from app.serving.inference import DenseClassifier
from app.serving.isolation import IsolatedPreprocessing
from app.serving.rate_limit import RateLimiter
from app.serving.served_models import ModelName, ServedModel
from app.serving.settings import Settings

if TYPE_CHECKING:  # imported when first needed: see get_store
    from app.serving.corrections.store import CorrectionsStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_models(request: Request) -> dict[str, ServedModel]:
    """The served models; 503 until the lifespan has loaded them."""
    if not request.app.state.models:
        raise HTTPException(503, "the model is not loaded")
    return request.app.state.models


ModelsDep = Annotated[dict[str, ServedModel], Depends(get_models)]


async def get_classifier(
    models: ModelsDep,
    model: Annotated[
        ModelName,
        Query(description="default: the served model; seed: the book's recipe, for comparison."),
    ] = "default",
) -> DenseClassifier:
    if model not in models:
        raise HTTPException(404, f"the model {model!r} is not served here")
    return models[model].classifier


async def get_model_card(request: Request) -> dict[str, Any]:
    """The served (default) model's card; empty until it is loaded."""
    models = request.app.state.models
    return models["default"].card if models else {}


async def get_isolation(request: Request) -> IsolatedPreprocessing:
    return request.app.state.isolation


async def get_store(request: Request) -> "CorrectionsStore":
    """The corrections store, opened (and migrated) by the first request of this process
    that needs it: its libraries take half a second to import, not worth every start."""
    state = request.app.state
    async with state.store_opening:
        if state.store is None:
            from app.serving.corrections.store import open_store  # noqa: PLC0415

            settings: Settings = state.settings
            state.store = await asyncio.to_thread(
                open_store, settings.database_url, settings.max_corrections
            )
    return state.store


async def get_rate_limiter(request: Request) -> RateLimiter:
    return request.app.state.corrections_rate


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClassifierDep = Annotated[DenseClassifier, Depends(get_classifier)]
ModelCardDep = Annotated[dict[str, Any], Depends(get_model_card)]
IsolationDep = Annotated[IsolatedPreprocessing, Depends(get_isolation)]
StoreDep = Annotated["CorrectionsStore", Depends(get_store)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
