"""Model card and health endpoints."""

from fastapi import APIRouter

from app.serving.dependencies import ClassifierDep, ModelCardDep
from app.serving.schemas import ErrorResponse, ModelCard, Status

router = APIRouter()


@router.get("/api/model", tags=["model"], summary="The model card of the served model")
async def model_card(card: ModelCardDep) -> ModelCard:
    """Architecture, hyper-parameters, training data and its hashes, test accuracy."""
    return ModelCard.model_validate(card)


# HEAD as well as GET: load balancers and uptime probes often ask with HEAD.
@router.get("/healthz", tags=["health"], summary="The process is alive")
@router.head("/healthz", include_in_schema=False)
async def healthz() -> Status:
    return Status(status="ok")


@router.head("/readyz", include_in_schema=False)
@router.get(
    "/readyz",
    tags=["health"],
    responses={503: {"model": ErrorResponse, "description": "The model is not loaded"}},
    summary="The model is loaded and serving",
)
async def readyz(_: ClassifierDep) -> Status:
    return Status(status="ready")
