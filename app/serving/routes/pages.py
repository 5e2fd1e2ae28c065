"""GET /: the drawing page."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.paths import TEMPLATES_DIR
from app.serving.dependencies import ModelCardDep
from app.serving.security import PAGE_CSP

# Brush width in pixels of the 560-pixel canvas: a digit drawn across most of it then has
# strokes as wide, relative to its size, as MNIST's (about 2.3 of its 20 pixels).
DEFAULT_BRUSH = 36

templates = Jinja2Templates(directory=TEMPLATES_DIR)
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, card: ModelCardDep) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        "index.html",
        {
            "static_url": request.app.state.static_files.url_for,
            "default_brush": DEFAULT_BRUSH,
            "test_accuracy": card.get("evaluation", {}).get("test_accuracy"),
        },
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    # The page names its assets by content hash; it must itself be fetched fresh.
    response.headers["Cache-Control"] = "no-cache"
    return response
