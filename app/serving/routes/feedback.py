"""POST /api/feedback and GET /api/feedback/stats: people correct the model."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from app.serving.corrections import NewCorrection
from app.serving.dependencies import (
    IsolationDep,
    ModelsDep,
    RateLimiterDep,
    SettingsDep,
    StoreDep,
)
from app.serving.metrics import preprocessed
from app.serving.preprocessing import preprocess
from app.serving.routes.predict import ERRORS, image_limits
from app.serving.schemas import (
    CorrectionReceipt,
    CorrectionStatistics,
    ErrorResponse,
    ServedModelOnCorrections,
)

STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    429: {"model": ErrorResponse, "description": "Too many corrections: see Retry-After"},
    503: {"model": ErrorResponse, "description": "The corrections store cannot take it now"},
}
Digit = Annotated[int, Form(ge=0, le=9)]
Side = Annotated[int | None, Form(ge=1, le=100_000)]

router = APIRouter(prefix="/api/feedback", tags=["feedback"], responses=STORE_ERRORS)


@router.post(
    "",
    status_code=201,
    form_limits={"max_files": 1},
    summary="Say which digit a drawing really is",
)
async def add_correction(
    *,
    request: Request,
    file: Annotated[UploadFile, File(description="The drawing, as sent to /api/predict.")],
    label: Annotated[int, Form(ge=0, le=9, description="The digit it really is.")],
    predicted: Annotated[
        int | None, Form(ge=0, le=9, description="The answer the page showed, if any.")
    ] = None,
    pointer_type: Annotated[
        Literal["mouse", "pen", "touch"] | None, Form(description="What drew it.")
    ] = None,
    canvas_width: Side = None,
    canvas_height: Side = None,
    settings: SettingsDep,
    models: ModelsDep,
    isolation: IsolationDep,
    store: StoreDep,
    rate: RateLimiterDep,
) -> CorrectionReceipt:
    """Stored: the 28x28 input the server computes from the drawing itself (never pixels a
    client sends), the label, the served model's answer and probabilities, its identity,
    the time and the coarse hints given. Not stored: the client's address; the drawing
    itself only where the server is set to keep uploads."""
    client = request.client.host if request.client else "unknown"
    if (wait := rate.retry_after(client)) is not None:
        raise HTTPException(
            429,
            f"at most {settings.corrections_per_minute} corrections a minute; "
            f"retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    image = await file.read()
    model_input = await preprocessed(isolation, preprocess, image, image_limits(settings))
    served = models["default"]
    probabilities = served.classifier.predict(model_input[np.newaxis])[0]
    correction = NewCorrection(
        created_at=datetime.now(UTC),
        label=label,
        model_input=np.round(model_input * 255).astype(np.uint8).tobytes(),
        model_digit=int(probabilities.argmax()),
        probabilities=probabilities.round(6).astype(float).tolist(),
        model_sha256=served.card.get("file", {}).get("sha256", "unknown"),
        claimed_prediction=predicted,
        pointer_type=pointer_type,
        canvas_width=canvas_width,
        canvas_height=canvas_height,
        image=image if settings.keep_uploaded_images else None,
    )
    # Returned only once committed: a 201 is a correction kept.
    return CorrectionReceipt(id=await asyncio.to_thread(store.add, correction))


@router.get("/stats", summary="How many corrections, and how right the served model was")
async def correction_statistics(models: ModelsDep, store: StoreDep) -> CorrectionStatistics:
    """Counts per label, and the served model's accuracy on the corrections of drawings it
    answered itself."""
    sha256 = models["default"].card.get("file", {}).get("sha256", "unknown")
    stats = await asyncio.to_thread(store.stats, sha256)
    return CorrectionStatistics(
        total=stats.total,
        per_label=stats.per_label,
        served_model=ServedModelOnCorrections(
            sha256=sha256,
            corrections=stats.by_served_model,
            right=stats.served_model_right,
            accuracy=stats.served_model_right / stats.by_served_model
            if stats.by_served_model
            else None,
        ),
    )
