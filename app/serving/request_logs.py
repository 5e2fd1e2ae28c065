"""A request id on every response, and one log line per request when logs are JSON.

The id is the client's `X-Request-ID` when it is a plausible one (a load balancer's or a
tracing system's: up to 128 letters, digits and `-_.:+/=`), a fresh random one otherwise; it
goes back in the response's `X-Request-ID` header and into every log line written while the
request is handled, so that a client's report, the balancer's log and ours can be matched.
The request line holds the method, path, status, duration, client address and the id: never
the query string or the body (an image someone drew).
"""

import logging
import re
import secrets
from contextvars import ContextVar
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")
REQUEST_LOGGER = "digit_canvas.requests"

logger = logging.getLogger(REQUEST_LOGGER)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID if it is a valid one, else a new random id."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if VALID_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(16)


class RequestLogMiddleware:
    """Gives each request its id, echoes it back, and logs the request's line when
    `log_requests` (JSON logs; uvicorn's own access line serves the text format)."""

    def __init__(self, app: ASGIApp, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # Not reset afterwards: uvicorn runs each request in an asyncio task of its own, whose
        # context ends with it, and the traceback it logs for a failed request, after this
        # middleware has returned, belongs to the request too.
        current_request_id.set(request_id)
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # if the application fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_requests and logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((perf_counter() - started) * 1000, 3),
                        "client": client[0] if client else None,
                    },
                )
