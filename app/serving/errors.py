"""Every error is JSON {"detail": "..."} with a status that says whose fault it was."""

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.serving.isolation import ServiceBusyError
from app.serving.preprocessing import PreprocessError


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable line: "pixels.3: Input should be a finite number; ..."."""
    problems = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part not in ("body", "query"))
        problems.append(f"{location}: {problem['msg']}" if location else problem["msg"])
    # A malformed list of 784 values can fail on every one; the first few say enough.
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": describe_validation_error(error)}, status_code=422)


async def preprocess_error(request: Request, error: PreprocessError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=error.status_code)


async def service_busy(request: Request, error: ServiceBusyError) -> JSONResponse:
    return JSONResponse(
        {"detail": str(error)},
        status_code=503,
        headers={"Retry-After": str(error.retry_after)},
    )


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the client gets JSON without internals; the server log gets the traceback."""
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(PreprocessError, preprocess_error)
    app.add_exception_handler(ServiceBusyError, service_busy)
    app.add_exception_handler(Exception, unexpected_error)


class PlainErrorsAsJSONMiddleware:
    """Error responses the framework writes in plain text itself, outside the exception
    handlers (Starlette's request body limit: 413 "Content Too Large"), rewritten as the JSON
    `{"detail": ...}` every other error has."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of a plain-text error, until its body
        text = bytearray()

        async def send_as_json(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if message["status"] >= 400 and content_type.startswith("text/plain"):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                text.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = json.dumps({"detail": text.decode("utf-8", "replace")}).encode()
                headers = MutableHeaders(raw=list(held.get("headers", [])))
                headers["content-type"] = "application/json"
                headers["content-length"] = str(len(body))
                await send({**held, "headers": headers.raw})
                message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, send_as_json)
