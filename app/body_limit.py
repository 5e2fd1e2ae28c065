"""Refuse request bodies over a size limit with 413, before reading more than the limit."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestBodyTooLargeError(HTTPException):
    """An HTTP 413, so that whatever is reading the body passes it through untouched."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")


class BodySizeLimitMiddleware:
    """Counts body bytes as they arrive; raises RequestBodyTooLargeError past the limit.

    A declared Content-Length over the limit is refused before any of the body is read.
    Paths may have their own, smaller, limits. (Starlette's own RequestBodyLimitMiddleware
    answers such requests in plain text; here they get the JSON every other error gets.)
    """

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int]) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = path_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.limit)
        declared = next(
            (
                int(value)
                for name, value in scope["headers"]
                if name == b"content-length" and value.isdigit()
            ),
            0,
        )
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared > limit:
                raise RequestBodyTooLargeError(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLargeError(limit)
            return message

        await self.app(scope, limited_receive, send)
