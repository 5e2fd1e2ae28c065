"""Model card and health endpoints."""

from fastapi import APIRouter

from app.serving.dependencies import ModelCardDep, ModelsDep
from app.serving.schemas import ErrorResponse, ModelCard, ServedModel, Status

router = APIRouter()


@router.get("/api/model", tags=["model"], summary="The model card of the served model")
async def model_card(card: ModelCardDep) -> ModelCard:
    """Architecture, hyper-parameters, training data and its hashes, test accuracy."""
    return ModelCard.model_validate(card)


@router.get("/api/models", tags=["model"], summary="The models served, with their cards")
async def served_models(models: ModelsDep) -> list[ServedModel]:
    """The served default and the book's recipe beside it; choose one with `?model=`."""
    return [
        ServedModel(
            name=model.name,
            description=model.description,
            card=ModelCard.model_validate(model.card),
        )
        for model in models.values()
    ]


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
async def readyz(_: ModelsDep) -> Status:
    return Status(status="ready")
