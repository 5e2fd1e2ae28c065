"""Static assets with content-hashed URLs, so browsers may cache them for a year."""

import hashlib
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.paths import STATIC_DIR

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class VersionedStaticFiles(StaticFiles):
    """`/static/app.js?v=<hash>` is immutable; without the hash, revalidate every time."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        super().__init__(directory=directory)
        # Hashed once at start-up: the files are part of the release, not edited live.
        self.versions = {
            path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[
                :12
            ]
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }

    def url_for(self, name: str) -> str:
        return f"/static/{name}?v={self.versions[name]}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        versioned = f"v={self.versions.get(path)}".encode() in scope.get("query_string", b"")
        if response.status_code == 200:
            response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        return response
