"""GET /docs and /redoc: the interactive API documentation, working offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN. Here their assets come from the
`fastapi-offline` package, served by the app itself, and the pages get a Content-Security-
Policy that allows their one inline script by its hash.
"""

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.serving.security import content_security_policy

ASSETS_URL = "/docs/assets"
assets = StaticFiles(directory=str(files("fastapi_offline") / "static"))
router = APIRouter(include_in_schema=False)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse, *, inline_styles: bool = False) -> HTMLResponse:
    """The page with a CSP that allows exactly its own inline scripts."""
    hashes = tuple(
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in INLINE_SCRIPT.findall(page.body.decode())
    )
    page.headers["Content-Security-Policy"] = content_security_policy(
        script_hashes=hashes, inline_styles=inline_styles
    )
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
    )
    return with_policy(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    # ReDoc styles itself with <style> elements written at run time.
    return with_policy(page, inline_styles=True)
