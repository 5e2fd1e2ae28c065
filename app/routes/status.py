"""Model card and health endpoints."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas import ErrorResponse, Status

router = APIRouter()


@router.get("/api/model", tags=["model"], summary="The model card of the served model")
async def model_card(request: Request) -> dict[str, Any]:
    """Architecture, hyper-parameters, training data and its hashes, test accuracy."""
    return request.app.state.model_card


@router.get("/healthz", tags=["health"], response_model=Status, summary="The process is alive")
async def healthz() -> Status:
    return Status(status="ok")


@router.get(
    "/readyz",
    tags=["health"],
    response_model=Status,
    responses={503: {"model": ErrorResponse, "description": "The model is not loaded"}},
    summary="The model is loaded and serving",
)
async def readyz(request: Request) -> Status | JSONResponse:
    if getattr(request.app.state, "classifier", None) is None:
        return JSONResponse({"detail": "the model is not loaded"}, status_code=503)
    return Status(status="ready")
