"""GET /metrics: Prometheus' text format (see app.serving.metrics for what it holds)."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.serving.metrics import METRICS_PATH, exposed_registry

router = APIRouter(include_in_schema=False)
registry = exposed_registry()


# A plain `def`: FastAPI runs it in its thread pool. With several workers it reads every
# worker's files, a few milliseconds the event loop need not wait for.
@router.get(METRICS_PATH)
def metrics() -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
